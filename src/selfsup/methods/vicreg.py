"""VICReg: two views, encoder f, expander g, and a loss of variance, invariance and covariance.

[0] VICReg, Bardes, Ponce & LeCun 2022, arXiv:2105.04906, Sec. 3 and Appendix C (expander of
three linear layers of 8192 units, BN + ReLU after the first two; λ = μ = 25, ν = 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from selfsup.checks import check_float
from selfsup.losses.vicreg import vicreg_loss
from selfsup.methods.plugin import MethodConfig, MethodPlugin, register_method
from selfsup.models.heads import ProjectionHead
from selfsup.models.registry import feature_dim


class VICReg(nn.Module):
    """z = g(f(x̃)) for both views; `vicreg_loss` keeps them close, spread and decorrelated.

    No negatives, no momentum network, no predictor, no normalisation of z: the variance and
    covariance terms alone prevent collapse. Each view runs through f and g on its own, as in
    [0]'s code, so batch norm never mixes the two views of an image.

    Args:
        encoder: any backbone with a `feature_dim` attribute.
        head_widths: expander layer widths (paper: `[8192, 8192, 8192]`).
        invariance_weight: λ (paper: 25).
        variance_weight: μ (paper: 25).
        covariance_weight: ν (paper: 1).
        gather_distributed: the terms over the global batch.

    >>> from selfsup.models import build_encoder
    >>> method = VICReg(build_encoder("resnet18", base_width=4), head_widths=[32, 32])
    >>> method([torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)]).shape
    torch.Size([])
    """

    def __init__(
        self,
        encoder: nn.Module,
        head_widths: Sequence[int] = (8192, 8192, 8192),
        invariance_weight: float = 25.0,
        variance_weight: float = 25.0,
        covariance_weight: float = 1.0,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.projection_head = ProjectionHead(feature_dim(encoder), head_widths)
        self.weights = (invariance_weight, variance_weight, covariance_weight)
        self.gather_distributed = gather_distributed

    def forward(self, views: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(views) != 2:
            raise ValueError(f"VICReg takes 2 views, got {len(views)}")
        first, second = (self.projection_head(self.encoder(view)) for view in views)
        return vicreg_loss(first, second, *self.weights, gather_distributed=self.gather_distributed)


@dataclass
class VICRegConfig(MethodConfig):
    """VICReg's hyper-parameters.

    Attributes:
        name: vicreg.
        invariance_weight: λ on the mean squared error between the views (25 in [0]).
        variance_weight: μ on the hinge that keeps each dimension's std above 1 (25 in [0]).
        covariance_weight: ν on the squared off-diagonal covariances (1 in [0]).
        gather_distributed: the terms are computed over the global batch.
    """

    name: str = "vicreg"
    invariance_weight: float = 25.0
    variance_weight: float = 25.0
    covariance_weight: float = 1.0
    gather_distributed: bool = True

    def __post_init__(self) -> None:
        check_float("invariance_weight", self.invariance_weight, 0, 1e4)
        check_float("variance_weight", self.variance_weight, 0, 1e4)
        check_float("covariance_weight", self.covariance_weight, 0, 1e4)


def build_vicreg(encoder: nn.Module, config: VICRegConfig, head_widths: Sequence[int]) -> VICReg:
    """VICReg from its config section and the model's head (expander) widths."""
    return VICReg(
        encoder,
        head_widths=head_widths,
        invariance_weight=config.invariance_weight,
        variance_weight=config.variance_weight,
        covariance_weight=config.covariance_weight,
        gather_distributed=config.gather_distributed,
    )


register_method(
    MethodPlugin(
        "vicreg",
        VICRegConfig,
        build_vicreg,
        recipes={"vicreg": "vicreg-fashion-mnist"},
        exports={"VICReg": VICReg, "VICRegConfig": VICRegConfig},
    )
)
