"""SimSiam: two views through one network, a predictor on one side, a stop-gradient on the
other; no negatives and no momentum network.

[0] SimSiam, Chen & He 2021, arXiv:2011.10566, Sec. 3 and 4 (a 3-layer projector with BN on
every layer, its output included; a bottleneck predictor 2048 → 512 → 2048).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from selfsup.checks import check_int
from selfsup.losses.simsiam import simsiam_loss
from selfsup.methods.plugin import MethodConfig, MethodPlugin, register_method
from selfsup.models.heads import ProjectionHead
from selfsup.models.registry import feature_dim


class SimSiam(nn.Module):
    """z = g(f(x̃)), p = h(z) for both views; L = ½ D(p₁, sg(z₂)) + ½ D(p₂, sg(z₁)).

    The projector g ends in a batch norm without affine parameters, as in [0]; the predictor h
    is Linear-BN-ReLU-Linear with a narrow hidden layer. Each view runs through the network on
    its own, so batch norm never mixes an image's two views.

    Args:
        encoder: any backbone with a `feature_dim` attribute.
        head_widths: projector layer widths (paper: `[2048, 2048, 2048]`).
        predictor_hidden: the predictor's hidden width (paper: 512, a quarter of its output).

    >>> from selfsup.models import build_encoder
    >>> method = SimSiam(build_encoder("resnet18", base_width=4), [32, 32], predictor_hidden=8)
    >>> method([torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)]).shape
    torch.Size([])
    """

    def __init__(
        self,
        encoder: nn.Module,
        head_widths: Sequence[int] = (2048, 2048, 2048),
        predictor_hidden: int = 512,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.projection_head = ProjectionHead(
            feature_dim(encoder), head_widths, last_batch_norm=True
        )
        width = self.projection_head.output_dim()
        self.predictor = ProjectionHead(width, [predictor_hidden, width])

    def forward(self, views: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(views) != 2:
            raise ValueError(f"SimSiam takes 2 views, got {len(views)}")
        projections = [self.projection_head(self.encoder(view)) for view in views]
        predictions = [self.predictor(projection) for projection in projections]
        return simsiam_loss(*predictions, *projections)


@dataclass
class SimSiamConfig(MethodConfig):
    """SimSiam's hyper-parameters.

    Attributes:
        name: simsiam.
        predictor_hidden: width of the predictor's hidden layer; its output is the projector's
            (512 for a 2048-d projector in [0]).
    """

    name: str = "simsiam"
    predictor_hidden: int = 128

    def __post_init__(self) -> None:
        check_int("predictor_hidden", self.predictor_hidden, 1, 65536)


def build_simsiam(encoder: nn.Module, config: SimSiamConfig, head_widths: Sequence[int]) -> SimSiam:
    """SimSiam from its config section and the model's head (projector) widths."""
    return SimSiam(encoder, head_widths=head_widths, predictor_hidden=config.predictor_hidden)


register_method(
    MethodPlugin(
        "simsiam",
        SimSiamConfig,
        build_simsiam,
        recipes={"simsiam": "simsiam-fashion-mnist"},
        exports={"SimSiam": SimSiam, "SimSiamConfig": SimSiamConfig},
    )
)
