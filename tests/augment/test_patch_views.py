"""PatchViews: the grid of PatchGrid, every patch augmented with its own random parameters."""

import pytest
import torch

from selfsup.augment import PatchViews, ViewAugment, ViewConfig, normalize
from selfsup.models.patches import cut_grid

IDENTITY = ViewConfig(
    crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, grayscale_p=0.0
)


def _images(channels: int = 1, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, channels, 28, 28), dtype=torch.uint8, generator=generator)


@pytest.mark.parametrize("channels", [1, 3])
def test_shape_dtype_and_the_grid_of_patch_grid(channels: int) -> None:
    images = _images(channels)
    mean, std = [0.3] * channels, [0.2] * channels
    maker = PatchViews.from_config(IDENTITY, 8, 4, mean, std)
    views = maker(images, torch.arange(3), torch.Generator().manual_seed(0))
    assert len(views) == 1
    assert views[0].shape == (3, 6, 6, channels, 8, 8)
    assert views[0].dtype == torch.float32
    # With the identity recipe the patches are exactly the normalised grid cut for evaluation.
    grid = cut_grid(images.float() / 255, 8, 4)
    expected = normalize(grid.reshape(-1, channels, 8, 8), mean, std).view_as(grid)
    torch.testing.assert_close(views[0], expected)


def test_seed_reproducible() -> None:
    maker = PatchViews.from_config(ViewConfig(crop_scale=(0.5, 1.0)), 8, 4, [0.5], [0.25])
    images, indices = _images(), torch.arange(3)
    first = maker(images, indices, torch.Generator().manual_seed(7))[0]
    again = maker(images, indices, torch.Generator().manual_seed(7))[0]
    other = maker(images, indices, torch.Generator().manual_seed(8))[0]
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_each_patch_draws_its_own_parameters() -> None:
    # Flips only: every output patch is its source patch, flipped or not, and within one image
    # both happen, so the parameters are drawn per patch and not per image.
    config = ViewConfig(
        crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.5, jitter_p=0.0, grayscale_p=0.0
    )
    maker = PatchViews.from_config(config, 8, 4, [0.0], [1.0])
    images = _images()
    views = maker(images, torch.arange(3), torch.Generator().manual_seed(0))[0]
    source = cut_grid(images.float() / 255, 8, 4)
    flipped = torch.isclose(views, source.flip(-1)).flatten(3).all(-1).squeeze(-1)
    kept = torch.isclose(views, source).flatten(3).all(-1).squeeze(-1)
    assert (flipped ^ kept).all()  # each patch is exactly one of the two
    for image in range(3):
        assert flipped[image].any() and kept[image].any()


def test_parameters_are_one_draw_per_patch_in_grid_order() -> None:
    # The maker is exactly the augment run on the (B·rows·cols) flattened patches, with one row
    # of parameters per patch (crop box, flip, jitter factors and order, grayscale).
    config = ViewConfig(crop_scale=(0.3, 1.0), jitter_strength=0.5, grayscale_p=0.5)
    maker = PatchViews.from_config(config, 8, 4, [0.5, 0.4, 0.3], [0.2, 0.2, 0.2])
    images = _images(channels=3)
    views = maker(images, torch.arange(3), torch.Generator().manual_seed(3))[0]
    params = maker.augment.sample_params(3 * 36, 8, 8, torch.Generator().manual_seed(3))
    flat = cut_grid(images, 8, 4).reshape(3 * 36, 3, 8, 8)
    expected = normalize(maker.augment.apply_params(flat, params), maker.mean, maker.std)
    torch.testing.assert_close(views, expected.view(3, 6, 6, 3, 8, 8))
    assert len({tuple(box.tolist()) for box in params.boxes}) > 36  # crops vary within an image


def test_size_must_be_the_patch_size() -> None:
    with pytest.raises(ValueError, match=r"augment\.size"):
        PatchViews.from_config(ViewConfig(size=16), 8, 4, [0.5], [0.25])
    with pytest.raises(ValueError, match="leave its size unset"):
        PatchViews(ViewAugment(ViewConfig(size=6)), 8, 4, [0.5], [0.25])
    with pytest.raises(ValueError, match="stride"):
        PatchViews(ViewAugment(), 8, 0, [0.5], [0.25])
    assert PatchViews.from_config(ViewConfig(size=8), 8, 4, [0.5], [0.25]).patch_size == 8
