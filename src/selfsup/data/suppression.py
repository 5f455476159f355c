"""Feature-suppression inputs of *Intriguing Properties of Contrastive Losses* (Chen, Luo & Li
2021, Sec. 4): an easy feature shared by the two views of an image lets the contrastive loss
tell images apart without learning their content.

- RandBit: every image gets `count` random bits, fixed by its content and a seed (the same
  image always gets the same bits), appended to every network input as constant channels of
  ±1: the same in both views and at evaluation, and never augmented. With enough bits each
  image has its own code, and the content is suppressed.
- MultiDigits: two digits on one canvas, one of a fixed size, the other from small to large;
  the larger it grows, the less is learnt about the small one.
- Digits on images: one of a pool of n digit images tiled 3 x 3 over each image and merged by
  pixel-wise maximum; as n grows the digits become an easier feature than the image's own.

Digits come from MNIST where its files are, else from scikit-learn's 8 x 8 digits, upscaled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from selfsup.data.base import ImageDataset
from selfsup.errors import SelfsupError

_PRIME = 2_147_483_647  # 2^31 - 1: hash sums are taken modulo this prime


def content_bits(images: Tensor, count: int, seed: int = 0) -> Tensor:
    """(B, count) bits in {0, 1}, a seeded hash of each uint8 image's pixels: bit j is whether
    Σ_p pixel_p · w_jp mod P falls in the lower half, for seeded weights w_j uniform in [0, P)
    (a universal hash: distinct images get independent-looking bits).

    >>> images = torch.randint(0, 256, (4, 1, 5, 5), dtype=torch.uint8)
    >>> bool((content_bits(images, 8) == content_bits(images.clone(), 8)).all())
    True
    """
    if count < 0:
        raise ValueError(f"the number of bits must be >= 0, got {count}")
    flat = images.reshape(len(images), -1).cpu().to(torch.int64)  # integer matmul: on the CPU
    generator = torch.Generator().manual_seed(seed)
    weights = torch.randint(0, _PRIME, (flat.shape[1], count), generator=generator)
    # pixels < 2^8 and weights < 2^31: each product < 2^39, so rows of 2^24 pixels fit int64
    sums = (flat @ weights) % _PRIME
    return (sums < _PRIME // 2).to(torch.uint8).to(images.device)


def append_bit_channels(inputs: Tensor, bits: Tensor) -> Tensor:
    """(B, C, H, W) network inputs with each image's (B, k) bits appended as k constant
    channels of -1 (bit 0) or +1 (bit 1): (B, C + k, H, W)."""
    if bits.shape[0] != inputs.shape[0]:
        raise ValueError(f"{bits.shape[0]} rows of bits for {inputs.shape[0]} images")
    planes = (bits.to(inputs.dtype) * 2 - 1)[:, :, None, None]
    planes = planes.to(inputs.device).expand(-1, -1, *inputs.shape[-2:])
    return torch.cat([inputs, planes], dim=1)


class WithBits:
    """A preprocess (uint8 batch -> float inputs) whose inputs get each image's content bits
    appended as constant channels: how a RandBit encoder is evaluated."""

    def __init__(self, preprocess: Callable[[Tensor], Tensor], count: int, seed: int = 0) -> None:
        self.preprocess, self.count, self.seed = preprocess, count, seed

    def __call__(self, images: Tensor) -> Tensor:
        bits = content_bits(images, self.count, self.seed)
        return append_bit_channels(self.preprocess(images), bits)


def digit_images(split: str = "train", data_dir: str | None = None) -> ImageDataset:
    """28 x 28 digits: MNIST when its files are found (in `data_dir` or the usual places),
    else scikit-learn's 8 x 8 digits upscaled (bilinear) to 28 x 28."""
    from selfsup.data.datasets import load_dataset

    try:
        return load_dataset("mnist", split, data_dir)
    except SelfsupError:
        small = load_dataset("digits", split)
        images = F.interpolate(small.images.float(), size=28, mode="bilinear", align_corners=False)
        images = images.round().clamp(0, 255).to(torch.uint8)
        return ImageDataset(images, small.labels, small.classes, "digits-28px")


def _resized(digits: Tensor, side: int) -> Tensor:
    return F.interpolate(digits.float(), size=side, mode="bilinear", align_corners=False)


@dataclass
class MultiDigits:
    """Two-digit canvases: `images` (N, 1, S, S) uint8, the small digit's class, the large
    digit's class and side in pixels."""

    images: Tensor
    small_labels: Tensor
    large_labels: Tensor
    large_sides: Tensor


def multi_digits(
    digits: ImageDataset,
    count: int,
    canvas: int = 112,
    small_side: int = 20,
    large_sides: tuple[int, int] = (20, 80),
    seed: int = 0,
) -> MultiDigits:
    """`count` canvases, each with a digit of side `small_side` and another of a side drawn
    uniformly (whole pixels) from `large_sides`, drawn from `digits` at random: the large one
    anywhere, the small one uniformly among the places that do not overlap it (anywhere when
    the canvas leaves none), merged by pixel-wise maximum."""
    low, high = large_sides
    if not (1 <= small_side <= canvas and 1 <= low <= high <= canvas):
        raise SelfsupError(f"digits of {small_side} and {large_sides} px do not fit {canvas} px")
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randint(len(digits), (count, 2), generator=generator)
    sides = torch.randint(low, high + 1, (count,), generator=generator)
    out = torch.zeros(count, 1, canvas, canvas, dtype=torch.uint8)
    small = _resized(digits.images[chosen[:, 0]], small_side).round().clamp(0, 255).to(torch.uint8)
    for side in sides.unique().tolist():
        rows = (sides == side).nonzero().squeeze(1)
        large = _resized(digits.images[chosen[rows, 1]], side).round().clamp(0, 255)
        for row, image in zip(rows.tolist(), large.to(torch.uint8), strict=True):
            top, left = torch.randint(canvas - side + 1, (2,), generator=generator).tolist()
            out[row, :, top : top + side, left : left + side] = image
            y, x = _apart(canvas, small_side, top, left, side, generator)
            region = out[row, :, y : y + small_side, x : x + small_side]
            torch.maximum(region, small[row], out=region)
    return MultiDigits(out, digits.labels[chosen[:, 0]], digits.labels[chosen[:, 1]], sides)


def _apart(
    canvas: int, side: int, top: int, left: int, other: int, generator: torch.Generator
) -> tuple[int, int]:
    """A uniformly drawn corner for a `side` square that does not overlap the `other` square
    at (top, left), or any corner when there is none."""
    span = canvas - side + 1
    starts = torch.arange(span)
    rows_clear = (starts + side <= top) | (starts >= top + other)
    cols_clear = (starts + side <= left) | (starts >= left + other)
    corners = (rows_clear[:, None] | cols_clear[None, :]).flatten().nonzero().squeeze(1)
    if len(corners) == 0:
        corners = torch.arange(span * span)
    corner = int(corners[torch.randint(len(corners), (1,), generator=generator)])
    return divmod(corner, span)


def digits_on_images(
    images: ImageDataset, digits: ImageDataset, unique: int, seed: int = 0
) -> tuple[ImageDataset, Tensor]:
    """`images` with one of `unique` digit images (drawn from `digits`) tiled 3 x 3 over each,
    merged by pixel-wise maximum in every channel; returns the new dataset (its labels the
    images' own) and each image's digit class."""
    if not 1 <= unique <= len(digits):
        raise SelfsupError(f"the pool holds 1 to {len(digits)} digits, got {unique}")
    generator = torch.Generator().manual_seed(seed)
    pool = torch.randperm(len(digits), generator=generator)[:unique]
    slot = torch.randint(unique, (len(images),), generator=generator)  # each image's digit
    _, channels, height, width = images.images.shape
    tile_h, tile_w = height // 3, width // 3
    tiles = F.interpolate(digits.images[pool].float(), size=(tile_h, tile_w), mode="bilinear")
    overlay = torch.zeros(unique, 1, height, width)
    overlay[:, :, : 3 * tile_h, : 3 * tile_w] = tiles.repeat(1, 1, 3, 3)
    overlay = overlay.round().clamp(0, 255).to(torch.uint8)
    merged = torch.maximum(images.images, overlay[slot].expand(-1, channels, -1, -1))
    dataset = ImageDataset(merged, images.labels, images.classes, f"{images.name}+digits{unique}")
    return dataset, digits.labels[pool[slot]]


__all__ = [
    "MultiDigits",
    "WithBits",
    "append_bit_channels",
    "content_bits",
    "digit_images",
    "digits_on_images",
    "multi_digits",
]
