"""Neighbour pairs: DrLIM's similar pairs, an image and one of its k nearest neighbours.

[0] DrLIM, Hadsell, Chopra and LeCun 2006, "Dimensionality Reduction by Learning an Invariant
    Mapping", CVPR, doi:10.1109/CVPR.2006.100, Section 2.2 step 1 and Section 3.1: each sample
    is paired with its k nearest neighbours under a prior distance (pixel space, k = 5); no
    augmentation is involved.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from selfsup.augment.random import Draws, integers
from selfsup.augment.views import ViewAugment
from selfsup.data.neighbours import pixel_neighbours
from selfsup.data.stats import normalize


class NeighbourPairs:
    """A view maker: [anchors, one uniformly drawn neighbour of each anchor], normalised.

    The whole uint8 image set moves to the batch's device on the first call and stays there,
    so a neighbour is a gather on the device, never a host copy. The neighbour draw uses the
    loop's CPU generator, so a seed gives the same pairs on every device and a resumed run
    continues the same stream.

    Args:
        images: (N, C, H, W) uint8, the whole training set, indexed like the loop's `indices`.
        neighbours: (N, k) int64, row i holds the indices of image i's neighbours (e.g. from
            `selfsup.data.pixel_neighbours`).
        mean, std: per-channel normalisation.
        augment: applied independently to anchors and neighbours; None (the paper's setting)
            only scales to [0, 1] before normalising.
        dtype: the floating dtype of the pairs without `augment` (with one, its own `dtype`).

    >>> images = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    >>> pairs = NeighbourPairs(images, torch.tensor([[1], [0], [3], [2]]), [0.5], [0.25])
    >>> anchors, partners = pairs(images[:2], torch.tensor([0, 1]))
    >>> torch.equal(partners, normalize(images[[1, 0]].float() / 255, [0.5], [0.25]))
    True
    """

    def __init__(
        self,
        images: Tensor,
        neighbours: Tensor,
        mean: Sequence[float],
        std: Sequence[float],
        augment: ViewAugment | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        if (
            neighbours.ndim != 2
            or len(neighbours) != len(images)
            or neighbours.shape[1] < 1
            or neighbours.dtype != torch.int64
        ):
            raise ValueError(
                f"neighbours must be an ({len(images)}, k) int64 table, k >= 1, got "
                f"{neighbours.dtype} {tuple(neighbours.shape)}"
            )
        self.images = images
        self.neighbours = neighbours.cpu()
        self.mean, self.std = list(mean), list(std)
        self.augment = augment
        self.dtype = dtype

    @classmethod
    def from_images(
        cls,
        images: Tensor,
        k: int,
        mean: Sequence[float],
        std: Sequence[float],
        dtype: torch.dtype = torch.float32,
    ) -> NeighbourPairs:
        """The paper's pairs: each image with one of its `k` nearest neighbours in pixel space,
        found once over the whole set (`selfsup.data.pixel_neighbours`)."""
        return cls(images, pixel_neighbours(images, k), mean, std, dtype=dtype)

    def _to_input(self, images: Tensor, generator: Draws) -> Tensor:
        if self.augment is None:
            return normalize(images.to(self.dtype).div_(255.0), self.mean, self.std)
        return normalize(self.augment(images, generator), self.mean, self.std)

    def __call__(self, batch: Tensor, indices: Tensor, generator: Draws = None) -> list[Tensor]:
        if self.images.device != batch.device:
            self.images = self.images.to(batch.device)
        indices = indices.cpu()
        column = integers(self.neighbours.shape[1], (len(indices),), generator)
        partners = self.neighbours[indices, column]  # B, each uniform over its row's k
        partner_images = self.images[partners.to(batch.device, non_blocking=True)]
        return [self._to_input(batch, generator), self._to_input(partner_images, generator)]
