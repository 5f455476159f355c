"""Per-channel statistics of a uint8 dataset and the normalisation that uses them, shared by
the views, the evaluation and the data sources."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from selfsup.data.base import ImageDataset
from selfsup.errors import SelfsupError


def normalize(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Standardise each channel, `(x - mean) / std`, on the images' device.

    Args:
        images: (B, C, H, W) float images.
        mean: C per-channel means (e.g. from `dataset_stats`).
        std: C per-channel standard deviations.
    """
    c = images.shape[1]
    if len(mean) != c or len(std) != c:
        raise ValueError(f"need {c} means and stds, got {len(mean)} and {len(std)}")
    if any(s <= 0 for s in std):
        raise ValueError(f"std must be positive, got {list(std)}")
    mean_t = torch.as_tensor(mean, dtype=images.dtype, device=images.device).view(1, c, 1, 1)
    std_t = torch.as_tensor(std, dtype=images.dtype, device=images.device).view(1, c, 1, 1)
    return (images - mean_t) / std_t


def dataset_stats(
    images: Tensor, max_chunk_elements: int = 1 << 24
) -> tuple[list[float], list[float]]:
    """Per-channel mean and (population) std of uint8 images, in [0, 1] units.

    Accumulated in float64 over chunks of at most `max_chunk_elements` values, so a large
    dataset never needs a full float copy.

    Args:
        images: (N, C, H, W) uint8 images.
        max_chunk_elements: bound on the size of each float64 chunk.

    Returns:
        (mean, std), each a list of C floats.
    """
    if images.ndim != 4 or images.dtype != torch.uint8:
        raise ValueError(
            f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
        )
    n, c = images.shape[:2]
    if n == 0:
        raise ValueError("cannot compute statistics of an empty dataset")
    per_image = images[0].numel()
    chunk = max(1, max_chunk_elements // per_image)
    total = torch.zeros(c, dtype=torch.float64, device=images.device)
    total_sq = torch.zeros_like(total)
    for start in range(0, n, chunk):
        x = images[start : start + chunk].to(torch.float64)
        total += x.sum(dim=(0, 2, 3))
        total_sq += x.square().sum(dim=(0, 2, 3))
    count = n * per_image // c
    mean = total / count
    var = (total_sq / count - mean.square()).clamp(min=0)
    return (mean / 255).tolist(), (var.sqrt() / 255).tolist()


def sample_stats(
    dataset: Dataset | ImageDataset, count: int = 1024, seed: int = 0
) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] units from a seeded random sample of the dataset.

    Normalisation statistics without reading a whole collection: `count` items drawn without
    replacement (all of them, in order, when `count >= len(dataset)`), stacked and passed to
    `selfsup.augment.dataset_stats`, so the convention (population std) is the same.

    Args:
        dataset: a map-style dataset whose items are uint8 (C, S, S) tensors (`ImageFiles`,
            `TarShards`), or an `ImageDataset`.
        count: how many items to read.
        seed: seeds the draw, so the statistics are reproducible.

    Returns:
        (mean, std), each a list of C floats.

    >>> mean, std = sample_stats(ImageFiles("photos/train"), count=512)  # doctest: +SKIP
    """
    if count < 1:
        raise SelfsupError(f"count must be positive, got {count}")
    n = len(dataset)
    if n == 0:
        raise SelfsupError("cannot compute statistics of an empty dataset")
    if count >= n:
        indices = torch.arange(n)
    else:
        generator = torch.Generator().manual_seed(seed)
        # Sorted: neighbouring reads stay in the same shard and in file order.
        indices = torch.randperm(n, generator=generator)[:count].sort().values
    if isinstance(dataset, ImageDataset):
        images = dataset.images[indices]
    else:
        images = torch.stack([dataset[int(i)] for i in indices])
    return dataset_stats(images)
