"""SimCLR: two augmented views, encoder f, projection head g, NT-Xent.

[0] SimCLR, Chen et al. 2020, arXiv:2002.05709, Algorithm 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from selfsup.losses.nt_xent import nt_xent_loss
from selfsup.models.heads import ProjectionHead
from selfsup.models.registry import feature_dim


class SimCLR(nn.Module):
    """h = f(x̃), z = g(h); the loss pulls the two views of an image together in z.

    Args:
        encoder: any backbone with a `feature_dim` attribute.
        head_widths: projection-head layer widths (SimCLR: `[hidden, 128]`).
        temperature: NT-Xent τ.
        gather_distributed: negatives from the global batch across processes.
    """

    def __init__(
        self,
        encoder: nn.Module,
        head_widths: Sequence[int] = (512, 128),
        temperature: float = 0.5,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.projection_head = ProjectionHead(feature_dim(encoder), head_widths)
        self.temperature = temperature
        self.gather_distributed = gather_distributed

    def forward(self, views: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(views) != 2:
            raise ValueError(f"SimCLR takes 2 views, got {len(views)}")
        batch = views[0].shape[0]
        # One pass over both views: BN statistics are those of the whole 2N batch, as in the paper.
        projections = self.projection_head(self.encoder(torch.cat(list(views))))  # 2N x D
        return nt_xent_loss(
            projections[:batch], projections[batch:], self.temperature, self.gather_distributed
        )
