"""The generalized contrastive method of *Intriguing Properties of Contrastive Losses* (Chen,
Luo & Li 2021): SimCLR's encoder, head and two views, trained with alignment + λ · a
distribution-matching term (logsumexp, or a sliced Wasserstein distance to a prior) in place of
NT-Xent; see `selfsup.losses.generalized`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from selfsup.checks import check_choice, check_float
from selfsup.losses.generalized import DISTRIBUTIONS, generalized_contrastive_loss
from selfsup.methods.plugin import MethodConfig, MethodPlugin, register_method
from selfsup.models.heads import ProjectionHead
from selfsup.models.registry import feature_dim


class GeneralizedContrastive(nn.Module):
    """h = f(x̃), z = g(h); the loss aligns the two views' z and matches the batch's z to a
    distribution.

    Args:
        encoder: any backbone with a `feature_dim` attribute.
        head_widths: projection-head layer widths.
        distribution: logsumexp, gaussian, hypersphere or hypercube.
        weight: λ of the distribution term.
        temperature: τ of the logsumexp term.
        gather_distributed: logsumexp candidates from the global batch across processes.
    """

    def __init__(
        self,
        encoder: nn.Module,
        head_widths: Sequence[int] = (512, 128),
        distribution: str = "logsumexp",
        weight: float = 1.0,
        temperature: float = 0.5,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.projection_head = ProjectionHead(feature_dim(encoder), head_widths)
        self.distribution, self.weight = distribution, weight
        self.temperature, self.gather_distributed = temperature, gather_distributed

    def forward(self, views: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(views) != 2:
            raise ValueError(f"the generalized contrastive loss takes 2 views, got {len(views)}")
        batch = views[0].shape[0]
        projections = self.projection_head(self.encoder(torch.cat(list(views))))
        return generalized_contrastive_loss(
            projections[:batch],
            projections[batch:],
            self.distribution,
            self.weight,
            self.temperature,
            self.gather_distributed,
        )


@dataclass
class GeneralizedConfig(MethodConfig):
    """The generalized contrastive loss's settings.

    Attributes:
        name: generalized.
        distribution: the distribution-matching term: logsumexp (decoupled NT-Xent), or a
            sliced Wasserstein distance to a gaussian, hypersphere or hypercube prior.
        weight: λ, the distribution term's weight against alignment.
        temperature: τ of the logsumexp term (unused by the priors).
        gather_distributed: logsumexp candidates come from the global batch across processes.
    """

    name: str = "generalized"
    distribution: str = "logsumexp"
    weight: float = 1.0
    temperature: float = 0.5
    gather_distributed: bool = True

    def __post_init__(self) -> None:
        check_choice("distribution", self.distribution, DISTRIBUTIONS)
        check_float("weight", self.weight, 0, 1e6)
        check_float("temperature", self.temperature, 0, 100, low_open=True)


def build_generalized(
    encoder: nn.Module, config: GeneralizedConfig, head_widths: Sequence[int]
) -> GeneralizedContrastive:
    """The method from its config section and the model's head widths."""
    return GeneralizedContrastive(
        encoder,
        head_widths=head_widths,
        distribution=config.distribution,
        weight=config.weight,
        temperature=config.temperature,
        gather_distributed=config.gather_distributed,
    )


register_method(
    MethodPlugin(
        "generalized",
        GeneralizedConfig,
        build_generalized,
        recipes={"generalized": "generalized-fashion-mnist"},
        exports={
            "GeneralizedContrastive": GeneralizedContrastive,
            "GeneralizedConfig": GeneralizedConfig,
        },
    )
)
