"""Crop, flip and resize as one sampling grid per batch; SimCLR's random crop boxes; the
deterministic resize of evaluation."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from selfsup.augment.random import Draws, uniform
from selfsup.augment.tensors import to_float

# Candidate (scale, ratio) pairs drawn per sample before falling back to a center crop; the
# same number of tries torchvision's RandomResizedCrop makes one at a time.
_CROP_TRIES = 10


def _size_pair(size: int | Sequence[int] | None, height: int, width: int) -> tuple[int, int]:
    if size is None:
        return height, width
    if isinstance(size, int):
        return size, size
    return int(size[0]), int(size[1])


def resized_crop_flip(
    images: Tensor,
    boxes: Tensor,
    flip: Tensor,
    size: int | Sequence[int] | None = None,
    *,
    normalized: bool = False,
) -> Tensor:
    """Crop a box out of each image, flip it if asked and resize it, in one `grid_sample`.

    Crop, flip and resize together are one axis-aligned affine map per sample; the flip is
    the sign of its x scale. The sampling grid is built separably (an x row and a y column
    per sample) rather than with `F.affine_grid`: the same map, ~6x cheaper on CPU, and it
    lets the crop-edge clamp below act on 1-D coordinates.

    Equals slicing each crop and resizing it with bilinear interpolation
    (`align_corners=False`, no antialiasing): sampling points that fall between the crop's
    edge pixel centres and the crop's border are clamped to the edge pixels, so nothing outside
    the box leaks in. Non-integer boxes are allowed.

    Args:
        images: (B, C, H, W) uint8 or float images in [0, 1].
        boxes: (B, 4) crop boxes as (top, left, height, width), in pixels or, with
            `normalized=True`, as fractions of the image height and width.
        flip: (B,) bool, flip the crop horizontally.
        size: output side (int) or (height, width); None keeps (H, W).
        normalized: whether `boxes` are fractions of the image size.

    Returns:
        (B, C, size, size) images: float32 for uint8 input, else the input's float dtype (the
        sampling grid is built in that dtype too, so float64 views stay float64 throughout).

    >>> x = torch.rand(2, 3, 8, 8)
    >>> full = torch.tensor([[0.0, 0.0, 8.0, 8.0]] * 2)
    >>> resized_crop_flip(x, full, torch.tensor([False, True]), 4).shape
    torch.Size([2, 3, 4, 4])
    """
    x = to_float(images)
    b, _, h, w = x.shape
    out_h, out_w = _size_pair(size, h, w)
    boxes = boxes.to(device=x.device, dtype=x.dtype)
    if normalized:
        boxes = boxes * boxes.new_tensor([h, w, h, w])
    top, left, box_h, box_w = boxes.unbind(1)
    sign = 1.0 - 2.0 * flip.to(device=x.device, dtype=x.dtype)
    # Output pixel j samples input pixel left + (j + 0.5) * box_w / out_w - 0.5; in the
    # normalised coordinates of align_corners=False (pixel x at (2 x + 1) / W - 1) that is
    # x_in = u * box_w / W + (2 left + box_w) / W - 1 for output coordinate u. A flip is u -> -u.
    u = _pixel_centres(out_w, x)
    v = _pixel_centres(out_h, x)
    grid_x = (sign * box_w / w)[:, None] * u + ((2 * left + box_w) / w - 1)[:, None]
    grid_y = (box_h / h)[:, None] * v + ((2 * top + box_h) / h - 1)[:, None]
    # Clamp to the centres of the crop's first and last pixels: that is what slicing the crop
    # and then resizing does, and it keeps pixels outside the box from leaking in.
    x_lo, y_lo = (2 * left + 1) / w - 1, (2 * top + 1) / h - 1
    x_hi = torch.maximum((2 * (left + box_w) - 1) / w - 1, x_lo)
    y_hi = torch.maximum((2 * (top + box_h) - 1) / h - 1, y_lo)
    grid_x = grid_x.clamp_(min=x_lo[:, None], max=x_hi[:, None])
    grid_y = grid_y.clamp_(min=y_lo[:, None], max=y_hi[:, None])
    grid = torch.stack(
        [grid_x[:, None, :].expand(b, out_h, out_w), grid_y[:, :, None].expand(b, out_h, out_w)],
        dim=-1,
    )  # (B, out_h, out_w, 2) as (x, y)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _pixel_centres(n: int, like: Tensor) -> Tensor:
    """Normalised centres of n pixels, (2 j + 1) / n - 1, as F.affine_grid would place them, on
    `like`'s device and in its dtype."""
    return (2 * torch.arange(n, device=like.device, dtype=like.dtype) + 1) / n - 1


def sample_crop_boxes(
    batch_size: int,
    height: int,
    width: int,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: Draws = None,
) -> Tensor:
    """Draw RandomResizedCrop boxes for a batch at once, on the CPU generator.

    As torchvision's RandomResizedCrop: the area fraction is uniform in `scale`, the aspect
    ratio log-uniform in `ratio`, sides are rounded to pixels and the offsets are uniform; of
    10 candidates per sample the first that fits is kept, else the largest center crop whose
    ratio is within `ratio`. Vectorised, so all 10 candidates are always drawn.

    Args:
        batch_size: number of boxes B.
        height: image height H.
        width: image width W.
        scale: range of the crop area as a fraction of H * W.
        ratio: range of the crop aspect ratio (width / height).
        generator: CPU generator (or `ShardedDraws`); None uses torch's default CPU generator.

    Returns:
        (B, 4) float32 CPU tensor of integer-valued (top, left, height, width).
    """
    shape = (batch_size, _CROP_TRIES)
    area = height * width * (scale[0] + (scale[1] - scale[0]) * uniform(shape, generator))
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * uniform(shape, generator))
    cand_w = torch.sqrt(area * aspect).round()
    cand_h = torch.sqrt(area / aspect).round()
    fits = (cand_w > 0) & (cand_w <= width) & (cand_h > 0) & (cand_h <= height)
    first = fits.to(torch.uint8).argmax(1, keepdim=True)  # argmax returns the first maximum
    box_w = cand_w.gather(1, first).squeeze(1)
    box_h = cand_h.gather(1, first).squeeze(1)

    in_ratio = width / height
    if in_ratio < ratio[0]:
        fallback_w, fallback_h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fallback_w, fallback_h = round(height * ratio[1]), height
    else:
        fallback_w, fallback_h = width, height
    any_fit = fits.any(1)
    box_w = torch.where(any_fit, box_w, torch.full_like(box_w, fallback_w))
    box_h = torch.where(any_fit, box_h, torch.full_like(box_h, fallback_h))

    offsets = uniform((batch_size, 2), generator)
    top = torch.minimum((offsets[:, 0] * (height - box_h + 1)).floor(), height - box_h)
    left = torch.minimum((offsets[:, 1] * (width - box_w + 1)).floor(), width - box_w)
    # The fallback is centered, as in torchvision.
    top = torch.where(any_fit, top, ((height - box_h) / 2).round())
    left = torch.where(any_fit, left, ((width - box_w) / 2).round())
    return torch.stack([top, left, box_h, box_w], 1)


def eval_transform(images: Tensor, size: int | Sequence[int] | None = None) -> Tensor:
    """Deterministic evaluation input: uint8 to float in [0, 1], resized if `size` differs.

    Resizing is bilinear with antialiasing, so downscaling does not alias.

    Args:
        images: (B, C, H, W) uint8 (or float in [0, 1]) images.
        size: output side (int) or (height, width); None keeps the input size.

    Returns:
        (B, C, size, size) float images.
    """
    x = to_float(images)
    h, w = x.shape[-2:]
    out = _size_pair(size, h, w)
    if out == (h, w):
        return x
    return F.interpolate(x, size=out, mode="bilinear", align_corners=False, antialias=True).clamp_(
        0, 1
    )


def rotate_quarter_turns(images: Tensor, turns: Tensor) -> Tensor:
    """Rotate each square image by its `turns` (B,) quarter turns counter-clockwise (0-3):
    SimCLR's rotation {90, 180, 270} (Fig. 4), one `rot90` per turn count.

    >>> x = torch.arange(4.0).view(1, 1, 2, 2)
    >>> rotate_quarter_turns(x, torch.tensor([1]))[0, 0].tolist()
    [[1.0, 3.0], [0.0, 2.0]]
    """
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(f"quarter turns need square images, got {tuple(images.shape[-2:])}")
    turns = turns.to(images.device) % 4
    out = images.clone()
    for count in (1, 2, 3):
        chosen = (turns == count).nonzero().squeeze(1)
        if chosen.numel():
            out[chosen] = torch.rot90(images[chosen], count, dims=(2, 3))
    return out
