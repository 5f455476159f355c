"""SimCLR's remaining Fig. 4 transformations (cutout, Sobel, Gaussian noise, rotation) and the
composition views of its Fig. 5: shapes, dtypes and ranges, per-sample randomness, seeded
reproducibility, exact values on tiny cases, and the same result on another device."""

from __future__ import annotations

import pytest
import torch

from selfsup.augment.composition import TRANSFORMS, CompositionViews, apply_transform
from selfsup.augment.filters import sobel
from selfsup.augment.geometry import rotate_quarter_turns
from selfsup.augment.occlusion import cutout, gaussian_noise, sample_cutout

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _images(count: int = 8, channels: int = 3, side: int = 12) -> torch.Tensor:
    return torch.rand(count, channels, side, side, generator=torch.Generator().manual_seed(0))


def test_cutout_blanks_one_square_per_image_inside_it() -> None:
    boxes = sample_cutout(50, 12, 10, 0.5, torch.Generator().manual_seed(1))
    assert boxes.shape == (50, 4) and (boxes[:, 2] == 5).all() and (boxes[:, 3] == 5).all()
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 0] + 5 <= 12).all()
    assert (boxes[:, 1] >= 0).all() and (boxes[:, 1] + 5 <= 10).all()
    assert len({tuple(b.tolist()) for b in boxes}) > 10  # each image its own square
    images = torch.ones(50, 2, 12, 10)
    out = cutout(images, boxes)
    assert ((out == 0).sum(dim=(1, 2, 3)) == 2 * 25).all()
    again = sample_cutout(50, 12, 10, 0.5, torch.Generator().manual_seed(1))
    torch.testing.assert_close(boxes, again)
    with pytest.raises(ValueError, match="fraction"):
        sample_cutout(2, 4, 4, 0.0)


def test_sobel_is_zero_on_flat_images_and_finds_a_step_edge() -> None:
    step = torch.zeros(1, 1, 6, 6)
    step[..., 3:] = 1.0
    edges = sobel(step)
    assert edges.shape == step.shape and edges.min() >= 0 and edges.max() <= 1
    torch.testing.assert_close(edges[0, 0, :, 0], torch.zeros(6))  # away from the edge
    torch.testing.assert_close(edges[0, 0, :, 2], torch.full((6,), 4 / (4 * 2**0.5)))
    colour = sobel(_images())
    assert colour.shape == (8, 3, 12, 12)
    torch.testing.assert_close(colour[:, 0], colour[:, 2])  # one magnitude for all channels


def test_noise_is_per_sample_seeded_and_clamped() -> None:
    images = torch.full((6, 1, 8, 8), 0.5)
    std = torch.tensor([0.0, 0.1, 0.1, 0.2, 0.2, 0.2])
    first = gaussian_noise(images, std, torch.Generator().manual_seed(3))
    again = gaussian_noise(images, std, torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, again)
    assert first.min() >= 0 and first.max() <= 1
    torch.testing.assert_close(first[0], images[0])  # zero std, no noise
    assert not torch.equal(first[1], first[2])  # the same std, each its own noise
    assert (first[3:] - 0.5).std() > (first[1:3] - 0.5).std()


def test_rotation_turns_each_image_its_own_quarter_turns() -> None:
    images = _images(4, 1, 5)
    turns = torch.tensor([0, 1, 2, 3])
    out = rotate_quarter_turns(images, turns)
    for index in range(4):
        expected = torch.rot90(images[index], index, dims=(1, 2))
        torch.testing.assert_close(out[index], expected)
    with pytest.raises(ValueError, match="square"):
        rotate_quarter_turns(torch.rand(1, 1, 4, 5), torch.tensor([1]))


@pytest.mark.parametrize("name", TRANSFORMS)
def test_every_transformation_keeps_shape_dtype_and_range(name: str) -> None:
    images = _images(6)
    out = apply_transform(name, images, (0.2, 1.0), torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.min() >= -1e-6 and out.max() <= 1 + 1e-6
    again = apply_transform(name, images, (0.2, 1.0), torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, again)
    if name != "sobel":  # deterministic; every other one draws per-sample parameters
        other = apply_transform(name, images, (0.2, 1.0), torch.Generator().manual_seed(1))
        assert not torch.equal(out, other)


@pytest.mark.parametrize("device", DEVICES)
def test_composition_views_same_on_every_device(device: str) -> None:
    images = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8)
    maker = CompositionViews("crop", "colour", 8, [0.5] * 3, [0.25] * 3)
    cpu = maker(images, torch.arange(5), torch.Generator().manual_seed(0))
    here = maker(images.to(device), torch.arange(5), torch.Generator().manual_seed(0))
    assert [view.shape for view in cpu] == [torch.Size([5, 3, 8, 8])] * 2
    for got, want in zip(here, cpu, strict=True):
        torch.testing.assert_close(got.cpu(), want, atol=1e-4, rtol=0)


def test_composition_transforms_one_branch_only() -> None:
    images = torch.randint(0, 256, (4, 1, 16, 16), dtype=torch.uint8)
    plain = CompositionViews("sobel", "sobel", 16, [0.0], [1.0], crop_scale=(1.0, 1.0))
    edges, untouched = plain(images, torch.arange(4), torch.Generator().manual_seed(0))
    torch.testing.assert_close(untouched, images.float() / 255)  # a full crop, nothing more
    torch.testing.assert_close(edges, sobel(images.float() / 255))
    with pytest.raises(ValueError, match="transformation"):
        CompositionViews("crop", "jpeg", 8, [0.5], [0.25])
