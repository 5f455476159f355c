"""Barlow Twins: two augmented views, encoder f, projector g, cross-correlation towards identity.

[0] Barlow Twins, Zbontar et al. 2021, arXiv:2103.03230, Algorithm 1 and Sec. 2 (projector of
three linear layers of 8192 units, BN + ReLU after the first two; λ = 5e-3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from selfsup.checks import check_float
from selfsup.losses.barlow_twins import barlow_twins_loss
from selfsup.methods.plugin import MethodConfig, MethodPlugin, register_method
from selfsup.models.heads import ProjectionHead
from selfsup.models.registry import feature_dim


class BarlowTwins(nn.Module):
    """z = g(f(x̃)) for both views; the loss makes their cross-correlation matrix the identity.

    No negatives, no momentum network, no predictor: the redundancy-reduction term alone prevents
    collapse, and it benefits from a wide projector. Each view runs through f and g on its own,
    so batch norm sees one view's batch at a time (as in [0]'s code, and as BYOL does here).

    Args:
        encoder: any backbone with a `feature_dim` attribute.
        head_widths: projector layer widths (paper: `[8192, 8192, 8192]`).
        redundancy_weight: λ on the off-diagonal terms of the loss.
        gather_distributed: batch statistics and cross-correlation over the global batch.

    >>> from selfsup.models import build_encoder
    >>> method = BarlowTwins(build_encoder("resnet18", base_width=4), head_widths=[32, 32])
    >>> method([torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)]).shape
    torch.Size([])
    """

    def __init__(
        self,
        encoder: nn.Module,
        head_widths: Sequence[int] = (8192, 8192, 8192),
        redundancy_weight: float = 5e-3,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        if redundancy_weight < 0:
            raise ValueError(f"redundancy_weight must be non-negative, got {redundancy_weight}")
        self.encoder = encoder
        self.projection_head = ProjectionHead(feature_dim(encoder), head_widths)
        self.redundancy_weight = redundancy_weight
        self.gather_distributed = gather_distributed

    def forward(self, views: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(views) != 2:
            raise ValueError(f"BarlowTwins takes 2 views, got {len(views)}")
        # Each view in its own pass, as in the paper's code: every BN layer normalises one
        # view's batch, so neither view's statistics leak into the other's features.
        first, second = (self.projection_head(self.encoder(view)) for view in views)
        return barlow_twins_loss(first, second, self.redundancy_weight, self.gather_distributed)


@dataclass
class BarlowTwinsConfig(MethodConfig):
    """Barlow Twins' hyper-parameters.

    Attributes:
        name: barlow_twins.
        redundancy_weight: λ on the off-diagonal (redundancy-reduction) terms (5e-3 in [0]).
        gather_distributed: the cross-correlation is computed over the global batch.
    """

    name: str = "barlow_twins"
    redundancy_weight: float = 5e-3
    gather_distributed: bool = True

    def __post_init__(self) -> None:
        check_float("redundancy_weight", self.redundancy_weight, 0, 1e3)


def build_barlow_twins(
    encoder: nn.Module, config: BarlowTwinsConfig, head_widths: Sequence[int]
) -> BarlowTwins:
    """Barlow Twins from its config section and the model's head widths."""
    return BarlowTwins(
        encoder,
        head_widths=head_widths,
        redundancy_weight=config.redundancy_weight,
        gather_distributed=config.gather_distributed,
    )


register_method(
    MethodPlugin(
        "barlow_twins",
        BarlowTwinsConfig,
        build_barlow_twins,
        recipes={"barlow-twins": "barlow-twins-fashion-mnist"},
        exports={"BarlowTwins": BarlowTwins, "BarlowTwinsConfig": BarlowTwinsConfig},
    )
)
