"""Multi-crop views: two global views then V small crops of every image, each crop its own
draw, seeded."""

import pytest
import torch

from selfsup.augment import MultiCropViews, ViewConfig

MEAN, STD = [0.5], [0.25]


def _images() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8, generator=generator)


def test_two_global_views_then_the_small_crops_each_its_own_draw() -> None:
    config = ViewConfig(size=20, local_crops=3, local_size=8, local_crop_scale=(0.05, 0.3))
    views = MultiCropViews(config, MEAN, STD)(_images(), torch.arange(5), torch.Generator())
    assert [tuple(view.shape) for view in views] == [(5, 1, 20, 20)] * 2 + [(5, 1, 8, 8)] * 3
    assert all(view.dtype == torch.float32 and torch.isfinite(view).all() for view in views)
    assert not torch.equal(views[2], views[3])  # every small crop is drawn anew


def test_multi_crop_is_seeded() -> None:
    config = ViewConfig(local_crops=2, local_size=10)
    make = MultiCropViews(config, MEAN, STD)
    first = make(_images(), torch.arange(5), torch.Generator().manual_seed(3))
    again = make(_images(), torch.arange(5), torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    with pytest.raises(ValueError, match="at least one local crop"):
        MultiCropViews(ViewConfig(), MEAN, STD)
