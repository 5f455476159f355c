"""View makers: what the training loop calls to turn a batch of uint8 images into model inputs.

The loop only knows `make_views(batch, indices, generator) -> list of tensors`; which views a
method wants (two augmented views, an asymmetric BYOL pair, neighbour pairs, a grid of patches)
is decided when the run is set up. Every maker normalises on the images' device and draws its
random numbers from the given CPU generator, so a run is reproducible and resumes exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor

from selfsup.augment.config import ViewConfig
from selfsup.augment.random import Draws
from selfsup.augment.views import ViewAugment
from selfsup.data.stats import normalize
from selfsup.data.suppression import append_bit_channels, content_bits


class ViewMaker(Protocol):
    """Turns a batch into the list of tensors a method's `forward(views)` takes."""

    def __call__(self, batch: Tensor, indices: Tensor, generator: Draws = None) -> list[Tensor]:
        """`batch`: (B, C, H, W) uint8 images on the device; `indices`: their rows in the
        dataset (CPU long tensor), for makers that look up related images."""
        ...


class WithBitViews:
    """RandBit views: every view the wrapped maker makes gets its image's content bits (from
    the un-augmented image, so the same in both views) appended as constant channels.

    Args:
        views: the view maker to wrap.
        count: bits per image (see `selfsup.data.suppression`).
        seed: seeds the hash that maps an image to its bits.
    """

    def __init__(self, views: ViewMaker, count: int, seed: int = 0) -> None:
        self.views, self.count, self.seed = views, count, seed

    def __call__(self, batch: Tensor, indices: Tensor, generator: Draws = None) -> list[Tensor]:
        bits = content_bits(batch, self.count, self.seed)
        return [append_bit_channels(view, bits) for view in self.views(batch, indices, generator)]


class MultiCropViews:
    """Multi-crop (SwAV, Caron et al. 2020, Sec. 3.2): two global views, then `local_crops`
    small crops of every image, `[global_1, global_2, local_1, ..., local_V]`.

    The small crops are made in one batched call on the batch repeated V times (one set of
    kernels for all of them, whatever V), so a step makes views in two sizes, as the encoder
    then sees them.

    Args:
        config: the view recipe; the small crops take `config.for_local_crops()`.
        mean, std: per-channel normalisation.
        dtype: the views' dtype.
    """

    def __init__(
        self,
        config: ViewConfig,
        mean: Sequence[float],
        std: Sequence[float],
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if config.local_crops < 1:
            raise ValueError(f"multi-crop needs at least one local crop, got {config.local_crops}")
        self.global_views = AugmentedViews.from_config(config, 2, mean, std, dtype)
        self.local_augment = ViewAugment(config.for_local_crops(), dtype)
        self.local_crops = config.local_crops
        self.mean, self.std = list(mean), list(std)

    def __call__(self, batch: Tensor, indices: Tensor, generator: Draws = None) -> list[Tensor]:
        views = self.global_views(batch, indices, generator)
        repeated = batch.repeat(self.local_crops, 1, 1, 1)
        local = normalize(self.local_augment(repeated, generator), self.mean, self.std)
        return [*views, *local.chunk(self.local_crops)]


class LabelledViews:
    """The wrapped maker's views followed by the batch's labels (looked up by index): the
    input of a supervised learner trained on the same views as a self-supervised one.

    Args:
        views: the view maker to wrap.
        labels: (N,) integer label of every image of the dataset.
    """

    def __init__(self, views: ViewMaker, labels: Tensor) -> None:
        self.views, self.labels = views, labels.long()

    def __call__(self, batch: Tensor, indices: Tensor, generator: Draws = None) -> list[Tensor]:
        labels = self.labels[indices.to(self.labels.device)].to(batch.device)
        return [*self.views(batch, indices, generator), labels]


class AugmentedViews:
    """One random view per augment, normalised: SimCLR/MoCo/Barlow pairs, BYOL's asymmetric pair.

    Args:
        augments: one `ViewAugment` per view (the same object twice for a symmetric pair).
        mean, std: per-channel normalisation applied after augmentation.
    """

    def __init__(
        self, augments: Sequence[ViewAugment], mean: Sequence[float], std: Sequence[float]
    ) -> None:
        if not augments:
            raise ValueError("need at least one augment (one per view)")
        self.augments = list(augments)
        self.mean, self.std = list(mean), list(std)

    @classmethod
    def from_config(
        cls,
        config: ViewConfig,
        n_views: int,
        mean: Sequence[float],
        std: Sequence[float],
        dtype: torch.dtype = torch.float32,
    ) -> AugmentedViews:
        """`n_views` views of the recipe in `dtype`, odd views taking its `second_*`
        probabilities."""
        augments = [ViewAugment(config.for_view(index), dtype) for index in range(n_views)]
        return cls(augments, mean, std)

    def __call__(self, batch: Tensor, indices: Tensor, generator: Draws = None) -> list[Tensor]:
        return [
            normalize(augment(batch, generator), self.mean, self.std) for augment in self.augments
        ]
