"""Barlow Twins: the cross-correlation of two views' embeddings is pulled towards the identity.

[0] Barlow Twins, Zbontar et al. 2021, arXiv:2103.03230, Eq. (1) and Algorithm 1:

    C_ij = 1/N Σ_b ẑ^A_{b,i} ẑ^B_{b,j}
    L = Σ_i (1 − C_ii)² + λ Σ_i Σ_{j≠i} C_ij²

where ẑ is z standardised per dimension over the batch of N (mean 0, std 1, as BatchNorm without
affine does in training mode). The first term makes the embedding invariant to the augmentations,
the second (redundancy reduction) decorrelates its dimensions.
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.dist.gather import all_reduce_with_grad, world_size

BATCH_NORM_EPS = 1e-5
"""Added to the variance inside the square root, BatchNorm1d's default as in the authors' code."""


def _off_diagonal(matrix: torch.Tensor) -> torch.Tensor:
    """The D(D−1) off-diagonal entries of a D x D matrix, as a (D−1) x D view if contiguous."""
    dim = matrix.shape[0]
    # Row-major, the diagonal sits every D+1 entries: drop the last, reshape, it is column 0.
    return matrix.flatten()[:-1].view(dim - 1, dim + 1)[:, 1:]


def barlow_twins_loss(
    embeddings_a: torch.Tensor,
    embeddings_b: torch.Tensor,
    redundancy_weight: float = 5e-3,
    gather_distributed: bool = False,
) -> torch.Tensor:
    """Barlow Twins between two views: row i of `embeddings_a` and of `embeddings_b` is one image.

    Computed in float32 (float64 inputs stay float64) with autocast off: C_ii sits near 1, where
    bfloat16 cannot resolve the (1 − C_ii)² the loss is made of.

    Args:
        embeddings_a: (N, D) projections of the first views.
        embeddings_b: (N, D) projections of the second views of the same images.
        redundancy_weight: λ in Eq. (1), the weight of the off-diagonal terms (paper: 5e-3).
        gather_distributed: standardise with the global batch statistics and sum C over every
            process (gradient-carrying all-reduces), so each process returns the loss of the
            global batch of N·world. All processes must pass the same N. Off: the local batch.

    Returns:
        The scalar loss (a sum over dimensions, not a mean).
    """
    if embeddings_a.shape != embeddings_b.shape or embeddings_a.ndim != 2:
        raise ValueError(
            f"expected two (N, D) tensors of equal shape, got {tuple(embeddings_a.shape)} and "
            f"{tuple(embeddings_b.shape)}"
        )
    if redundancy_weight < 0:
        raise ValueError(f"redundancy_weight must be non-negative, got {redundancy_weight}")
    batch = embeddings_a.shape[0]
    count = batch * world_size() if gather_distributed else batch
    if count < 2:
        raise ValueError(f"standardising over the batch needs at least 2 rows, got {count}")
    dtype = torch.promote_types(
        torch.promote_types(embeddings_a.dtype, embeddings_b.dtype), torch.float32
    )
    with torch.autocast(device_type=embeddings_a.device.type, enabled=False):
        views = torch.stack([embeddings_a.to(dtype), embeddings_b.to(dtype)])  # 2 x N x D
        sums = views.sum(dim=1)  # 2 x D
        if gather_distributed:
            sums = all_reduce_with_grad(sums)
        centred = views - (sums / count)[:, None]
        # Two passes (mean, then squared deviations) rather than E[z²] − E[z]², which cancels.
        squares = centred.pow(2).sum(dim=1)
        if gather_distributed:
            squares = all_reduce_with_grad(squares)
        standardised = centred / torch.sqrt(squares / count + BATCH_NORM_EPS)[:, None]
        cross_correlation = standardised[0].T @ standardised[1] / count  # D x D
        if gather_distributed:
            cross_correlation = all_reduce_with_grad(cross_correlation)
        invariance = (1 - torch.diagonal(cross_correlation)).pow(2).sum()
        redundancy = _off_diagonal(cross_correlation).pow(2).sum()
        return invariance + redundancy_weight * redundancy


class BarlowTwinsLoss(nn.Module):
    """Module form of `barlow_twins_loss`, holding λ and the distributed choice.

    >>> loss = BarlowTwinsLoss(redundancy_weight=5e-3)
    >>> loss(torch.randn(8, 128), torch.randn(8, 128)).shape
    torch.Size([])
    """

    def __init__(self, redundancy_weight: float = 5e-3, gather_distributed: bool = False) -> None:
        super().__init__()
        if redundancy_weight < 0:
            raise ValueError(f"redundancy_weight must be non-negative, got {redundancy_weight}")
        self.redundancy_weight = redundancy_weight
        self.gather_distributed = gather_distributed

    def forward(self, embeddings_a: torch.Tensor, embeddings_b: torch.Tensor) -> torch.Tensor:
        return barlow_twins_loss(
            embeddings_a, embeddings_b, self.redundancy_weight, self.gather_distributed
        )
