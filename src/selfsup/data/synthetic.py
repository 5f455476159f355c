"""A tiny, deterministic, learnable dataset for tests: each class a pattern in random colours."""

from __future__ import annotations

import math

import torch

from selfsup.data.base import ImageDataset
from selfsup.errors import SelfsupError

SYNTHETIC_CLASSES = [
    "h-stripes",
    "v-stripes",
    "diag-stripes",
    "antidiag-stripes",
    "checkerboard",
    "rings",
    "disc",
    "square",
    "cross",
    "triangle",
]


def _synthetic_patterns(c: int, n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Foreground masks (n, size, size) in {0, 1} of pattern class `c`, randomly placed."""
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    y, x = coords.view(1, size, 1), coords.view(1, 1, size)
    phase = torch.rand(n, 1, 1, generator=generator)
    centre = 0.35 + 0.3 * torch.rand(n, 2, 1, 1, generator=generator)
    dy, dx = y - centre[:, 0], x - centre[:, 1]
    half = 0.15 + 0.1 * torch.rand(n, 1, 1, generator=generator)  # shape radius
    tau = 2 * math.pi
    if c == 0:
        wave = torch.sin(tau * (3 * y + phase)).expand(n, size, size)
    elif c == 1:
        wave = torch.sin(tau * (3 * x + phase)).expand(n, size, size)
    elif c == 2:
        wave = torch.sin(tau * (2 * (x + y) + phase))
    elif c == 3:
        wave = torch.sin(tau * (2 * (x - y) + phase))
    elif c == 4:
        wave = torch.sin(tau * (2 * x + phase)) * torch.sin(tau * (2 * y + phase))
    elif c == 5:
        wave = torch.sin(tau * (5 * torch.sqrt(dx**2 + dy**2) + phase))
    elif c == 6:
        wave = half - torch.sqrt(dx**2 + dy**2)
    elif c == 7:
        wave = half - torch.maximum(dx.abs(), dy.abs())
    elif c == 8:
        wave = half / 3 - torch.minimum(dx.abs(), dy.abs())
    else:
        wave = torch.minimum(half - dy, dy - 2 * dx.abs() + half)
    return (wave > 0).float()


def make_synthetic(size: int = 512, image_size: int = 32, seed: int = 0) -> ImageDataset:
    """A deterministic 10-class dataset of coloured patterns (stripes, rings, shapes) plus noise.

    Classes differ by geometry, not colour, so they survive colour jitter and grayscale views:
    a learned encoder beats chance (10%) while a run takes seconds.
    """
    if size < 1 or image_size < 1:
        raise SelfsupError(
            f"synthetic size and image_size must be positive, got {size}, {image_size}"
        )
    generator = torch.Generator().manual_seed(seed)
    labels = (torch.arange(size) % 10)[torch.randperm(size, generator=generator)]
    images = torch.empty(size, 3, image_size, image_size)
    for c in range(10):
        members = torch.nonzero(labels == c).flatten()
        if len(members) == 0:
            continue
        mask = _synthetic_patterns(c, len(members), image_size, generator).unsqueeze(1)
        foreground = 0.6 + 0.4 * torch.rand(len(members), 3, 1, 1, generator=generator)
        background = 0.4 * torch.rand(len(members), 3, 1, 1, generator=generator)
        images[members] = mask * foreground + (1 - mask) * background
    noise = 0.08 * torch.randn(images.shape, generator=generator)
    pixels = ((images + noise).clamp(0, 1) * 255).round().to(torch.uint8)
    return ImageDataset(pixels, labels.to(torch.int64), SYNTHETIC_CLASSES[:], "synthetic")
