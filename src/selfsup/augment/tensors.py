"""Helpers the image ops share: uint8 images to float, and an op applied to some samples."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def to_float(images: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """uint8 images as `dtype` in [0, 1]; float images pass through in their own dtype."""
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.to(dtype).div_(255.0)
    if not images.is_floating_point():
        raise ValueError(f"images must be uint8 or floating point, got {images.dtype}")
    return images


def apply_to_samples(
    images: Tensor, mask: Tensor, op: Callable[..., Tensor], *per_sample: Tensor
) -> Tensor:
    """`op(images, *per_sample)` for the samples in `mask`, the rest unchanged.

    On CPU only the selected samples are computed (most ops here apply to a fraction of the
    batch) and written into `images` in place, so pass a tensor you own. On an accelerator the
    whole batch is computed and selected with `torch.where`: that is cheap there, and a
    data-dependent subset would force a host sync.
    """
    if images.device.type != "cpu":
        return torch.where(mask.view(-1, 1, 1, 1), op(images, *per_sample), images)
    index = mask.nonzero().squeeze(1)
    if index.numel() == 0:
        return images
    if index.numel() == images.shape[0]:
        return op(images, *per_sample)
    selected = op(images.index_select(0, index), *(t.index_select(0, index) for t in per_sample))
    return images.index_copy_(0, index, selected)
