"""Occlusion and noise with per-sample parameters: cutout squares and additive Gaussian noise
(SimCLR's Fig. 4 transformations), drawn on the CPU generator like every other view op."""

from __future__ import annotations

import torch
from torch import Tensor

from selfsup.augment.random import Draws, normal, uniform


def sample_cutout(
    batch: int, height: int, width: int, fraction: float, generator: Draws = None
) -> Tensor:
    """(B, 4) squares (top, left, side, side) of side `fraction` of the shorter side, placed
    uniformly so that they lie inside the image."""
    if not 0 < fraction <= 1:
        raise ValueError(f"cutout fraction must be in (0, 1], got {fraction}")
    side = max(1, round(fraction * min(height, width)))
    corner = uniform((batch, 2), generator)
    top = (corner[:, 0] * (height - side + 1)).floor()
    left = (corner[:, 1] * (width - side + 1)).floor()
    size = torch.full((batch,), float(side))
    return torch.stack([top, left, size, size], 1)


def cutout(images: Tensor, boxes: Tensor, fill: float = 0.0) -> Tensor:
    """Set each image's box (top, left, height, width in whole pixels) to `fill`, by masks
    broadcast from row and column ranges (no per-sample loop).

    >>> x = torch.ones(1, 1, 4, 4)
    >>> cutout(x, torch.tensor([[1.0, 1.0, 2.0, 2.0]]))[0, 0].sum().item()
    12.0
    """
    h, w = images.shape[-2:]
    boxes = boxes.to(images.device)
    rows = torch.arange(h, device=images.device)
    cols = torch.arange(w, device=images.device)
    inside_rows = (rows >= boxes[:, :1]) & (rows < boxes[:, :1] + boxes[:, 2:3])  # (B, H)
    inside_cols = (cols >= boxes[:, 1:2]) & (cols < boxes[:, 1:2] + boxes[:, 3:4])  # (B, W)
    mask = (inside_rows[:, :, None] & inside_cols[:, None, :])[:, None]  # (B, 1, H, W)
    return images.masked_fill(mask, fill)


def gaussian_noise(images: Tensor, std: Tensor, generator: Draws = None) -> Tensor:
    """Add N(0, std_b²) noise to every pixel of image b (noise drawn on the CPU generator,
    then moved), clamped to [0, 1]."""
    noise = normal(tuple(images.shape), generator).to(device=images.device, dtype=images.dtype)
    scale = std.to(device=images.device, dtype=images.dtype).view(-1, 1, 1, 1)
    return (images + scale * noise).clamp(0, 1)


__all__ = ["cutout", "gaussian_noise", "sample_cutout"]
