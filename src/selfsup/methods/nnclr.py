"""NNCLR: SimCLR whose positive is the nearest neighbour of a view's embedding in a support
set of past embeddings, so that positives vary more than one image's augmentations can.

[0] NNCLR, Dwibedi et al. 2021, arXiv:2104.14548, Sec. 3 and 4 (a 3-layer projector, a
predictor 256 → 4096 → 256, a support set of 98,304 embeddings, τ = 0.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.checks import check_float, check_int
from selfsup.dist.gather import gather_with_grad
from selfsup.losses.nnclr import nnclr_loss
from selfsup.methods.plugin import MethodConfig, MethodPlugin, register_method
from selfsup.methods.queue import KeyQueue
from selfsup.models.heads import ProjectionHead
from selfsup.models.registry import feature_dim


class NNCLR(nn.Module):
    """z = g(f(x̃)), p = h(z) per view; the positive of view 1 is NN(z₁, Q), contrasted against
    view 2's predictions (and the other way round).

    The support set Q is a FIFO queue of the first view's unit-length projections (every
    process's, gathered), written after each training step; it starts as random unit vectors.
    The neighbour lookup is an exact cosine search over Q.

    Args:
        encoder: any backbone with a `feature_dim` attribute.
        head_widths: projector layer widths (paper: `[2048, 2048, 256]`).
        predictor_hidden: the predictor's hidden width (paper: 4096).
        queue_size: |Q| (paper: 98,304).
        temperature: τ (paper: 0.1).

    >>> from selfsup.models import build_encoder
    >>> method = NNCLR(build_encoder("resnet18", base_width=4), [32, 16], 32, queue_size=64)
    >>> method([torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)]).shape
    torch.Size([])
    """

    def __init__(
        self,
        encoder: nn.Module,
        head_widths: Sequence[int] = (2048, 2048, 256),
        predictor_hidden: int = 4096,
        queue_size: int = 98_304,
        temperature: float = 0.1,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.encoder = encoder
        self.projection_head = ProjectionHead(feature_dim(encoder), head_widths)
        width = self.projection_head.output_dim()
        self.predictor = ProjectionHead(width, [predictor_hidden, width])
        self.support = KeyQueue(queue_size, width)
        self.temperature = temperature

    @torch.no_grad()
    def nearest_neighbours(self, projections: torch.Tensor) -> torch.Tensor:
        """Each row's most cosine-similar support-set entry (unit length)."""
        support = self.support.keys
        similarity = F.normalize(projections.to(support.dtype), dim=1) @ support.T
        return support[similarity.argmax(dim=1)]

    def forward(self, views: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(views) != 2:
            raise ValueError(f"NNCLR takes 2 views, got {len(views)}")
        projections = [self.projection_head(self.encoder(view)) for view in views]
        predictions = [self.predictor(projection) for projection in projections]
        neighbours = [self.nearest_neighbours(projection) for projection in projections]
        loss = nnclr_loss(*neighbours, *predictions, temperature=self.temperature)
        if self.training:
            first = F.normalize(projections[0].detach().float(), dim=1)
            self.support.enqueue(gather_with_grad(first))
        return loss


@dataclass
class NNCLRConfig(MethodConfig):
    """NNCLR's hyper-parameters.

    Attributes:
        name: nnclr.
        temperature: τ of the InfoNCE over nearest-neighbour positives (0.1 in [0]).
        queue_size: support-set size (98,304 in [0]; no more than the training set here).
        predictor_hidden: width of the predictor's hidden layer (4096 in [0]).
    """

    name: str = "nnclr"
    temperature: float = 0.1
    queue_size: int = 16_384
    predictor_hidden: int = 512

    def __post_init__(self) -> None:
        check_float("temperature", self.temperature, 0, 100, low_open=True)
        check_int("queue_size", self.queue_size, 1, 10_000_000)
        check_int("predictor_hidden", self.predictor_hidden, 1, 65536)


def build_nnclr(encoder: nn.Module, config: NNCLRConfig, head_widths: Sequence[int]) -> NNCLR:
    """NNCLR from its config section and the model's head (projector) widths."""
    return NNCLR(
        encoder,
        head_widths=head_widths,
        predictor_hidden=config.predictor_hidden,
        queue_size=config.queue_size,
        temperature=config.temperature,
    )


register_method(
    MethodPlugin(
        "nnclr",
        NNCLRConfig,
        build_nnclr,
        recipes={"nnclr": "nnclr-fashion-mnist"},
        exports={"NNCLR": NNCLR, "NNCLRConfig": NNCLRConfig},
    )
)
