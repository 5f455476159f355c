"""BYOL's regression loss: the squared distance between L2-normalised vectors.

[0] BYOL, Grill et al. 2020, arXiv:2006.07733, Eq. (2):

    L = ‖q̄ − z̄′‖² = 2 − 2·⟨q, z′⟩ / (‖q‖·‖z′‖)

between the online prediction q and the target projection z′ (the caller stops its gradient).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def negative_cosine_loss(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Eq. (2) averaged over the batch: 0 when every prediction points along its target, 4 when
    opposite.

    Args:
        predictions: (N, D) online predictions q(z).
        targets: (N, D) target projections z′; detach them for BYOL's stop-gradient.
    """
    if predictions.shape != targets.shape or predictions.ndim != 2:
        raise ValueError(
            f"expected two (N, D) tensors of equal shape, got {tuple(predictions.shape)} and "
            f"{tuple(targets.shape)}"
        )
    dtype = torch.promote_types(predictions.dtype, torch.float32)
    cosine = F.cosine_similarity(predictions.to(dtype), targets.to(dtype), dim=1)
    return (2 - 2 * cosine).mean()


class NegativeCosineLoss(nn.Module):
    """Module form of `negative_cosine_loss`."""

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return negative_cosine_loss(predictions, targets)
