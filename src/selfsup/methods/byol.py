"""BYOL: an online network predicts a slowly moving target network's projection; no negatives.

[0] BYOL, Grill et al. 2020, arXiv:2006.07733, Sec. 3 and Appendix A.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from selfsup.checks import check_float, check_widths
from selfsup.losses.negative_cosine import negative_cosine_loss
from selfsup.methods.momentum import cosine_momentum, momentum_copy, update_momentum
from selfsup.methods.plugin import MethodConfig, MethodPlugin, register_method
from selfsup.models.heads import ProjectionHead
from selfsup.models.registry import feature_dim


class BYOL(nn.Module):
    """Online f_θ, g_θ, q_θ; target f_ξ, g_ξ, an EMA of the online encoder and projector.

    L = ‖q̄(z₁) − sg(z̄′₂)‖² + ‖q̄(z₂) − sg(z̄′₁)‖² (Eq. 2 symmetrised). `on_step_end` moves
    ξ ← τ ξ + (1 − τ) θ with τ = 1 − (1 − τ_base)(cos(πk/K) + 1)/2 at step k of K.
    Each view goes through each network on its own, as in [0]'s implementation: batch norm
    normalises a view's N images together, never the two views of one image.

    Args:
        encoder: backbone with a `feature_dim` attribute.
        head_widths: projector g widths (paper: [4096, 256]).
        predictor_widths: predictor q widths (paper: [4096, 256]); must end at the projector's
            output width.
        base_momentum: τ_base (paper: 0.996).
    """

    def __init__(
        self,
        encoder: nn.Module,
        head_widths: Sequence[int] = (4096, 256),
        predictor_widths: Sequence[int] = (4096, 256),
        base_momentum: float = 0.996,
    ) -> None:
        super().__init__()
        projection_width = head_widths[-1] if head_widths else feature_dim(encoder)
        if predictor_widths[-1] != projection_width:
            raise ValueError(
                f"the predictor must output the projection width {projection_width}, "
                f"got predictor widths {list(predictor_widths)}"
            )
        if not 0.0 <= base_momentum <= 1.0:
            raise ValueError(f"base_momentum must be in [0, 1], got {base_momentum}")
        self.encoder = encoder
        self.projection_head = ProjectionHead(feature_dim(encoder), head_widths)
        self.predictor = ProjectionHead(projection_width, predictor_widths)
        self.target_encoder = momentum_copy(self.encoder)
        self.target_head = momentum_copy(self.projection_head)
        self.base_momentum = base_momentum

    def forward(self, views: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(views) != 2:
            raise ValueError(f"BYOL takes 2 views, got {len(views)}")
        predictions = [self.predictor(self.projection_head(self.encoder(view))) for view in views]
        with torch.no_grad():
            targets = [self.target_head(self.target_encoder(view)) for view in views]
        # View 1's prediction regresses view 2's target and vice versa.
        return negative_cosine_loss(predictions[0], targets[1]) + negative_cosine_loss(
            predictions[1], targets[0]
        )

    @torch.no_grad()
    def on_step_end(self, step: int, total_steps: int) -> None:
        """The EMA update of the target with the cosine-scheduled τ of [0]."""
        momentum = cosine_momentum(step, total_steps, self.base_momentum)
        update_momentum(self.target_encoder, self.encoder, momentum)
        update_momentum(self.target_head, self.projection_head, momentum)


@dataclass
class BYOLConfig(MethodConfig):
    """BYOL's hyper-parameters.

    Attributes:
        name: byol.
        momentum: the target network's base τ, raised to 1 along a cosine over the run
            (0.996 in the paper; 0.99 for short runs).
        predictor_widths: the predictor q's layer widths (hidden, output); the output must
            equal the projection width, the last of model.head_widths.
    """

    name: str = "byol"
    momentum: float = 0.999
    predictor_widths: tuple[int, ...] = (512, 128)

    def __post_init__(self) -> None:
        check_float("momentum", self.momentum, 0, 1)
        check_widths("predictor_widths", self.predictor_widths)


def build_byol(encoder: nn.Module, config: BYOLConfig, head_widths: Sequence[int]) -> BYOL:
    """BYOL from its config section and the model's head widths."""
    return BYOL(
        encoder,
        head_widths=head_widths,
        predictor_widths=config.predictor_widths,
        base_momentum=config.momentum,
    )


register_method(
    MethodPlugin(
        "byol",
        BYOLConfig,
        build_byol,
        recipes={"byol": "byol-fashion-mnist"},
        exports={"BYOL": BYOL, "BYOLConfig": BYOLConfig},
    )
)
