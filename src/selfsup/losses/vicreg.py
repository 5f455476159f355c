"""VICReg: variance, invariance and covariance terms on two views' embeddings.

[0] VICReg, Bardes, Ponce & LeCun 2022, arXiv:2105.04906, Eq. (1)-(6):

    v(Z) = 1/d Σ_j max(0, γ − sqrt(Var(z^j) + ε))            (unbiased variance over the batch)
    c(Z) = 1/d Σ_{i≠j} C(Z)_ij²,   C(Z) = 1/(n−1) Σ_b (z_b − z̄)(z_b − z̄)ᵀ
    s(Z, Z') = 1/n Σ_b ‖z_b − z'_b‖² / d                       (the mean squared error)
    L = λ s(Z, Z') + μ [v(Z) + v(Z')] + ν [c(Z) + c(Z')]

with λ = μ = 25, ν = 1, γ = 1, ε = 1e-4. The invariance term pulls the views together; the
variance term keeps every dimension's spread above γ (no collapse); the covariance term
decorrelates the dimensions.
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.dist.gather import gather_with_grad

VARIANCE_EPS = 1e-4
"""ε inside the square root of the variance term, as in [0]."""


def _variance_covariance(
    embeddings: torch.Tensor, target_std: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(v(Z), c(Z)) of one view's (n, d) embeddings."""
    count, dim = embeddings.shape
    centred = embeddings - embeddings.mean(dim=0)
    covariance = centred.T @ centred / (count - 1)
    std = torch.sqrt(torch.diagonal(covariance) + VARIANCE_EPS)
    variance = torch.relu(target_std - std).mean()
    off_diagonal = covariance.pow(2).sum() - torch.diagonal(covariance).pow(2).sum()
    return variance, off_diagonal / dim


def vicreg_loss(
    embeddings_a: torch.Tensor,
    embeddings_b: torch.Tensor,
    invariance_weight: float = 25.0,
    variance_weight: float = 25.0,
    covariance_weight: float = 1.0,
    target_std: float = 1.0,
    gather_distributed: bool = False,
) -> torch.Tensor:
    """VICReg between two views: row b of `embeddings_a` and of `embeddings_b` is one image.

    Computed in float32 at least, with autocast off (the variances are sums of squares).

    Args:
        embeddings_a: (n, d) expander outputs of the first views.
        embeddings_b: (n, d) expander outputs of the second views of the same images.
        invariance_weight: λ on the mean squared error between the views.
        variance_weight: μ on the hinge on each dimension's standard deviation.
        covariance_weight: ν on the squared off-diagonal covariances.
        target_std: γ, the standard deviation each dimension is kept above.
        gather_distributed: every term over the global batch (embeddings gathered from all
            processes with their gradients, as [0]'s code does). All must pass the same n.

    Returns:
        The scalar loss.
    """
    if embeddings_a.shape != embeddings_b.shape or embeddings_a.ndim != 2:
        raise ValueError(
            f"expected two (n, d) tensors of equal shape, got {tuple(embeddings_a.shape)} and "
            f"{tuple(embeddings_b.shape)}"
        )
    dtype = torch.promote_types(
        torch.promote_types(embeddings_a.dtype, embeddings_b.dtype), torch.float32
    )
    with torch.autocast(device_type=embeddings_a.device.type, enabled=False):
        views = [embeddings_a.to(dtype), embeddings_b.to(dtype)]
        if gather_distributed:
            views = [gather_with_grad(view) for view in views]
        if views[0].shape[0] < 2:
            raise ValueError("the variance over the batch needs at least 2 rows")
        invariance = (views[0] - views[1]).pow(2).mean()
        (variance_a, covariance_a), (variance_b, covariance_b) = (
            _variance_covariance(view, target_std) for view in views
        )
        return (
            invariance_weight * invariance
            + variance_weight * (variance_a + variance_b)
            + covariance_weight * (covariance_a + covariance_b)
        )


class VICRegLoss(nn.Module):
    """Module form of `vicreg_loss`, holding its weights.

    >>> loss = VICRegLoss()
    >>> loss(torch.randn(8, 32), torch.randn(8, 32)).shape
    torch.Size([])
    """

    def __init__(
        self,
        invariance_weight: float = 25.0,
        variance_weight: float = 25.0,
        covariance_weight: float = 1.0,
        target_std: float = 1.0,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        self.weights = (invariance_weight, variance_weight, covariance_weight, target_std)
        self.gather_distributed = gather_distributed

    def forward(self, embeddings_a: torch.Tensor, embeddings_b: torch.Tensor) -> torch.Tensor:
        return vicreg_loss(
            embeddings_a, embeddings_b, *self.weights, gather_distributed=self.gather_distributed
        )


__all__ = ["VICRegLoss", "vicreg_loss"]
