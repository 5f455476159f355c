"""SimSiam's symmetrised loss: each view's prediction against the other view's projection,
whose gradient is stopped.

[0] SimSiam, Chen & He 2021, arXiv:2011.10566, Eq. (1)-(4):

    D(p, z) = −⟨p, z⟩ / (‖p‖₂ ‖z‖₂)
    L = ½ D(p₁, stopgrad(z₂)) + ½ D(p₂, stopgrad(z₁))

in [−1, 1]; −1 when every prediction points along the other view's projection. The stop-gradient
is what keeps SimSiam from collapsing (Sec. 4.1), so it is part of the loss here.
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.losses.negative_cosine import negative_cosine_loss


def simsiam_loss(
    predictions_a: torch.Tensor,
    predictions_b: torch.Tensor,
    projections_a: torch.Tensor,
    projections_b: torch.Tensor,
) -> torch.Tensor:
    """Eq. (4) averaged over the batch; row i of each (N, D) tensor is one image.

    Args:
        predictions_a, predictions_b: the predictor's outputs p₁, p₂ for the two views.
        projections_a, projections_b: the projector's outputs z₁, z₂ (detached here).
    """
    # BYOL's ‖p̄ − z̄‖² is 2 − 2 cos, so ½(−cos₁) + ½(−cos₂) = (sum of both) / 4 − 1.
    pairs = negative_cosine_loss(predictions_a, projections_b.detach()) + negative_cosine_loss(
        predictions_b, projections_a.detach()
    )
    return pairs / 4 - 1


class SimSiamLoss(nn.Module):
    """Module form of `simsiam_loss`.

    >>> views = [torch.randn(4, 8) for _ in range(2)]
    >>> float(SimSiamLoss()(views[0], views[1], views[1], views[0])) == -1.0
    True
    """

    def forward(
        self,
        predictions_a: torch.Tensor,
        predictions_b: torch.Tensor,
        projections_a: torch.Tensor,
        projections_b: torch.Tensor,
    ) -> torch.Tensor:
        return simsiam_loss(predictions_a, predictions_b, projections_a, projections_b)


__all__ = ["SimSiamLoss", "simsiam_loss"]
