"""NNCLR's loss: InfoNCE whose positive is the nearest neighbour of a view's embedding in a
support set, contrasted against the other view's predictions.

[0] NNCLR, Dwibedi et al. 2021, arXiv:2104.14548, Eq. (2) with the predictor of Sec. 3:

    L_i = −log exp(NN(z_i, Q)·p⁺_i / τ) / Σ_k exp(NN(z_i, Q)·p⁺_k / τ)

over the batch's N images (all vectors L2-normalised), and the same with the views' roles
swapped; the two are averaged. The neighbours come from the support set, so no gradient
reaches them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _one_way(
    neighbours: torch.Tensor, predictions: torch.Tensor, temperature: float
) -> torch.Tensor:
    dtype = torch.promote_types(predictions.dtype, torch.float32)
    neighbours = F.normalize(neighbours.detach().to(dtype), dim=1)
    predictions = F.normalize(predictions.to(dtype), dim=1)
    logits = neighbours @ predictions.T / temperature  # row i: NN(z_i) against every p⁺_k
    targets = torch.arange(len(logits), device=logits.device)
    return F.cross_entropy(logits, targets)


def nnclr_loss(
    neighbours_a: torch.Tensor,
    neighbours_b: torch.Tensor,
    predictions_a: torch.Tensor,
    predictions_b: torch.Tensor,
    temperature: float = 0.1,
) -> torch.Tensor:
    """Eq. (2) symmetrised: ½ L(NN(z₁), p₂) + ½ L(NN(z₂), p₁); row i of each (N, D) tensor is
    one image.

    Args:
        neighbours_a, neighbours_b: each view's nearest support-set neighbours (detached here).
        predictions_a, predictions_b: the predictor's outputs for the two views.
        temperature: τ (0.1 in [0]).
    """
    shapes = {tuple(t.shape) for t in (neighbours_a, neighbours_b, predictions_a, predictions_b)}
    if len(shapes) != 1 or neighbours_a.ndim != 2:
        raise ValueError(f"expected four (N, D) tensors of one shape, got {sorted(shapes)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return (
        _one_way(neighbours_a, predictions_b, temperature)
        + _one_way(neighbours_b, predictions_a, temperature)
    ) / 2


class NNCLRLoss(nn.Module):
    """Module form of `nnclr_loss`, holding τ.

    >>> loss = NNCLRLoss(temperature=0.1)
    >>> loss(*(torch.randn(4, 8) for _ in range(4))).shape
    torch.Size([])
    """

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(
        self,
        neighbours_a: torch.Tensor,
        neighbours_b: torch.Tensor,
        predictions_a: torch.Tensor,
        predictions_b: torch.Tensor,
    ) -> torch.Tensor:
        return nnclr_loss(
            neighbours_a, neighbours_b, predictions_a, predictions_b, self.temperature
        )


__all__ = ["NNCLRLoss", "nnclr_loss"]
