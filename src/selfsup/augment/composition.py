"""Views for SimCLR's study of augmentation pairs (Chen et al. 2020, Sec. 3.1, Fig. 5).

Both branches of every image are randomly cropped and resized; then the first branch gets the
row transformation followed by the column transformation (just one of them on the diagonal),
and the second branch nothing more. Every transformation is applied to every sample, with its
own random parameters drawn on the CPU generator:

- crop: a second random resized crop of the view;
- cutout: a square of half the side set to black;
- colour: SimCLR's colour distortion (jitter at strength 1 with p 0.8, grayscale with p 0.2);
- sobel: the edge magnitude;
- noise: additive Gaussian noise, σ uniform in [0.05, 0.2];
- blur: Gaussian blur, σ uniform in [0.1, 2] pixels;
- rotate: 90, 180 or 270 degrees.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from selfsup.augment.config import ViewConfig
from selfsup.augment.filters import sobel
from selfsup.augment.geometry import resized_crop_flip, rotate_quarter_turns, sample_crop_boxes
from selfsup.augment.occlusion import cutout, gaussian_noise, sample_cutout
from selfsup.augment.random import Draws, integers, uniform
from selfsup.augment.tensors import to_float
from selfsup.augment.views import ViewAugment
from selfsup.data.stats import normalize

TRANSFORMS = ("crop", "cutout", "colour", "sobel", "noise", "blur", "rotate")

_STILL = {"crop_scale": (1.0, 1.0), "crop_ratio": (1.0, 1.0), "flip_p": 0.0}
_COLOUR = ViewConfig(**_STILL, jitter_strength=1.0, jitter_p=0.8, grayscale_p=0.2)
_BLUR = ViewConfig(**_STILL, jitter_p=0.0, grayscale_p=0.0, blur_p=1.0, blur_sigma=(0.1, 2.0))


def apply_transform(
    name: str, views: Tensor, crop_scale: Sequence[float], generator: Draws
) -> Tensor:
    """One of `TRANSFORMS` applied to every float (B, C, S, S) view in [0, 1]."""
    batch, _, height, width = views.shape
    if name == "crop":
        boxes = sample_crop_boxes(
            batch, height, width, tuple(crop_scale), (3 / 4, 4 / 3), generator
        )
        return resized_crop_flip(views, boxes, torch.zeros(batch, dtype=torch.bool))
    if name == "cutout":
        return cutout(views, sample_cutout(batch, height, width, 0.5, generator))
    if name == "colour":
        return ViewAugment(_COLOUR, views.dtype)(views, generator)
    if name == "sobel":
        return sobel(views)
    if name == "noise":
        return gaussian_noise(views, 0.05 + 0.15 * uniform((batch,), generator), generator)
    if name == "blur":
        return ViewAugment(_BLUR, views.dtype)(views, generator)
    if name == "rotate":
        return rotate_quarter_turns(views, 1 + integers(3, (batch,), generator))
    raise ValueError(f"transformation must be one of {', '.join(TRANSFORMS)}, got {name!r}")


class CompositionViews:
    """Two views: crop+resize then `first` then `second` (once when they are the same), and
    crop+resize alone.

    Args:
        first, second: names from `TRANSFORMS`.
        size: the views' side in pixels.
        mean, std: per-channel normalisation applied last.
        crop_scale: the area range of the crops.
    """

    def __init__(
        self,
        first: str,
        second: str,
        size: int,
        mean: Sequence[float],
        std: Sequence[float],
        crop_scale: Sequence[float] = (0.08, 1.0),
    ) -> None:
        for name in (first, second):
            if name not in TRANSFORMS:
                raise ValueError(f"transformation must be one of {TRANSFORMS}, got {name!r}")
        self.transforms = [first] if first == second else [first, second]
        self.size, self.crop_scale = size, tuple(crop_scale)
        self.mean, self.std = list(mean), list(std)

    def __call__(self, batch: Tensor, indices: Tensor, generator: Draws = None) -> list[Tensor]:
        images = to_float(batch)
        count, _, height, width = images.shape
        still = torch.zeros(count, dtype=torch.bool)
        views = []
        for _ in range(2):
            boxes = sample_crop_boxes(
                count, height, width, self.crop_scale, (3 / 4, 4 / 3), generator
            )
            views.append(resized_crop_flip(images, boxes, still, self.size))
        for name in self.transforms:
            views[0] = apply_transform(name, views[0], self.crop_scale, generator)
        return [normalize(view, self.mean, self.std) for view in views]


__all__ = ["TRANSFORMS", "CompositionViews", "apply_transform"]
