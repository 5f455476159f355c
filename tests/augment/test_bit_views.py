"""RandBit views: both views of an image carry its content bits, unaugmented, after the
augmented image channels the wrapped maker made."""

from __future__ import annotations

import torch

from selfsup.augment import AugmentedViews, ViewConfig, WithBitViews
from selfsup.data.suppression import content_bits


def test_both_views_carry_the_images_bits_and_the_wrapped_views() -> None:
    images = torch.randint(0, 256, (6, 1, 12, 12), dtype=torch.uint8)
    inner = AugmentedViews.from_config(ViewConfig(size=8), 2, [0.5], [0.25])
    maker = WithBitViews(inner, 7, seed=2)
    indices = torch.arange(6)
    views = maker(images, indices, torch.Generator().manual_seed(0))
    plain = inner(images, indices, torch.Generator().manual_seed(0))
    expected = content_bits(images, 7, seed=2).float() * 2 - 1
    assert len(views) == 2
    for view, own in zip(views, plain, strict=True):
        assert view.shape == (6, 8, 8, 8)
        torch.testing.assert_close(view[:, :1], own)  # the augmentation is untouched
        torch.testing.assert_close(view[:, 1:], expected[:, :, None, None].expand(-1, -1, 8, 8))
    assert not torch.equal(views[0][:, :1], views[1][:, :1])  # the views differ; the bits don't
