"""Multi-crop for the methods that take it (SwAV, DINO): their view recipe, and one encoder
pass per crop size.

[0] SwAV, Caron et al. 2020, arXiv:2006.09882, Sec. 3.2: two standard-resolution crops and V
low-resolution crops of each image; the low-resolution ones cost little and add views to
predict from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from selfsup.augment.config import ViewConfig
from selfsup.augment.makers import AugmentedViews, MultiCropViews, ViewMaker


def multi_crop_views(
    config: object,
    augment: ViewConfig,
    images: torch.Tensor | torch.utils.data.Dataset,
    mean: Sequence[float],
    std: Sequence[float],
    dtype: torch.dtype = torch.float32,
) -> ViewMaker:
    """The view recipe of a method that takes multi-crop: two global views and
    `augment.local_crops` small crops (the plain pair when it is 0)."""
    if augment.local_crops:
        return MultiCropViews(augment, mean, std, dtype)
    return AugmentedViews.from_config(augment, 2, mean, std, dtype)


def encode_by_size(
    network: Callable[[torch.Tensor], torch.Tensor], crops: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    """`network` on every crop, one pass per run of consecutive crops of one size (the global
    pair, then the small crops), split back into one output per crop.

    Batch norm then normalises each size's crops together, as in [0]'s code.

    >>> crops = [torch.ones(2, 3, 8, 8), torch.ones(2, 3, 8, 8), torch.ones(2, 3, 4, 4)]
    >>> calls = []
    >>> outputs = encode_by_size(lambda x: calls.append(x.shape) or x.mean((1, 2, 3)), crops)
    >>> [tuple(shape) for shape in calls], [tuple(o.shape) for o in outputs]
    ([(4, 3, 8, 8), (2, 3, 4, 4)], [(2,), (2,), (2,)])
    """
    outputs: list[torch.Tensor] = []
    start = 0
    while start < len(crops):
        end = start + 1
        while end < len(crops) and crops[end].shape == crops[start].shape:
            end += 1
        group = crops[start:end]
        outputs += list(network(torch.cat(list(group))).split([len(c) for c in group]))
        start = end
    return outputs


__all__ = ["encode_by_size", "multi_crop_views"]
