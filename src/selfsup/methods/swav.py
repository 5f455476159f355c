"""SwAV: cluster assignments (codes) of one view predicted from another, the codes computed
online by Sinkhorn-Knopp over learnable prototypes; multi-crop.

[0] SwAV, Caron et al. 2020, arXiv:2006.09882, Sec. 3 and Appendix A (unit-length projections
and prototypes, τ = 0.1, ε = 0.05, 3 Sinkhorn rounds, prototypes frozen in the first epoch,
an optional queue of past projections for small batches).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.checks import check_float, check_int
from selfsup.losses.swav import sinkhorn_knopp, swav_loss
from selfsup.methods.multicrop import encode_by_size, multi_crop_views
from selfsup.methods.plugin import MethodConfig, MethodPlugin, register_method
from selfsup.methods.queue import KeyQueue
from selfsup.models.heads import ProjectionHead
from selfsup.models.registry import feature_dim

CODE_CROPS = 2
"""The codes come from the two global views; every other crop predicts them."""


class SwAV(nn.Module):
    """z = normalise(g(f(x̃))) per crop, scores zᵀC against K unit prototypes, codes of the
    two global crops by Sinkhorn-Knopp, and each crop predicting the others' codes.

    Views are `[global_1, global_2, local_1, ...]` (`MultiCropViews`); crops of one size go
    through the network together. `on_step_end` puts the prototypes back on the unit sphere
    after each optimiser step. With `queue_size`, each global crop keeps its last projections
    and its codes are computed over them and the batch (for batches well below K).

    Args:
        encoder: any backbone with a `feature_dim` attribute.
        head_widths: projector widths (paper: `[2048, 128]`).
        prototypes: K (paper: 3000).
        temperature: τ of the prediction's softmax (paper: 0.1).
        epsilon: ε of Sinkhorn-Knopp (paper: 0.05).
        sinkhorn_iterations: its rounds (paper: 3).
        queue_size: past projections per global crop joined to the codes' batch (0: none).
        freeze_prototypes_steps: steps at the start during which no gradient reaches the
            prototypes (paper: the first epoch).
        gather_distributed: Sinkhorn's totals over every process's images.

    >>> from selfsup.models import build_encoder
    >>> method = SwAV(build_encoder("resnet18", base_width=4), [32, 16], prototypes=10)
    >>> crops = [torch.randn(4, 3, 16, 16)] * 2 + [torch.randn(4, 3, 8, 8)] * 2
    >>> method(crops).shape
    torch.Size([])
    """

    steps: torch.Tensor

    def __init__(
        self,
        encoder: nn.Module,
        head_widths: Sequence[int] = (2048, 128),
        prototypes: int = 3000,
        temperature: float = 0.1,
        epsilon: float = 0.05,
        sinkhorn_iterations: int = 3,
        queue_size: int = 0,
        freeze_prototypes_steps: int = 0,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.projection_head = ProjectionHead(feature_dim(encoder), head_widths)
        width = self.projection_head.output_dim()
        self.prototypes = nn.Linear(width, prototypes, bias=False)
        self.queues = nn.ModuleList(
            [KeyQueue(queue_size, width, start_empty=True) for _ in range(CODE_CROPS)]
            if queue_size
            else []
        )
        self.temperature, self.epsilon = temperature, epsilon
        self.sinkhorn_iterations = sinkhorn_iterations
        self.freeze_prototypes_steps = freeze_prototypes_steps
        self.gather_distributed = gather_distributed
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.normalize_prototypes()

    @torch.no_grad()
    def normalize_prototypes(self) -> None:
        """Every prototype back to unit length (as [0] does before each step)."""
        self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))

    def forward(self, views: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(views) < CODE_CROPS:
            raise ValueError(f"SwAV takes 2 global views and any small crops, got {len(views)}")
        embeddings = encode_by_size(
            lambda crops: F.normalize(self.projection_head(self.encoder(crops)), dim=1), views
        )
        weight = self.prototypes.weight
        if self.training and int(self.steps) < self.freeze_prototypes_steps:
            # A zero gradient rather than none: DDP expects every parameter to get one. Weight
            # decay only rescales the rows, which `on_step_end` puts back at unit length.
            weight = weight.detach() + 0 * weight
        scores = [embedding @ weight.T for embedding in embeddings]
        codes = [self._codes(index, scores[index], weight) for index in range(CODE_CROPS)]
        if self.training:
            for queue, embedding in zip(self.queues, embeddings, strict=False):
                queue.enqueue(embedding.detach())
        return swav_loss(scores, codes, self.temperature)

    @torch.no_grad()
    def _codes(self, index: int, scores: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Sinkhorn codes of one global crop, over its queue's projections too once it is full."""
        batch, scores = len(scores), scores.detach()
        if self.queues and int(self.queues[index].filled) == self.queues[index].size:
            scores = torch.cat([self.queues[index].keys.to(scores.dtype) @ weight.T, scores])
        codes = sinkhorn_knopp(
            scores, self.epsilon, self.sinkhorn_iterations, distributed=self.gather_distributed
        )
        return codes[-batch:]

    @torch.no_grad()
    def on_step_end(self, step: int, total_steps: int) -> None:
        """Count the step and put the prototypes back on the unit sphere."""
        self.steps += 1
        self.normalize_prototypes()


@dataclass
class SwAVConfig(MethodConfig):
    """SwAV's hyper-parameters (multi-crop: `augment.local_crops`, `local_size`,
    `local_crop_scale`).

    Attributes:
        name: swav.
        prototypes: K, the number of prototypes (3000 in [0] for ImageNet).
        temperature: τ of the swapped prediction (0.1 in [0]).
        epsilon: ε of Sinkhorn-Knopp (0.05 in [0]).
        sinkhorn_iterations: Sinkhorn-Knopp rounds (3 in [0]).
        memory_size: past projections per global crop added to the codes' batch, SwAV's
            queue (0: none; [0] adds 3840 for batches of 256 after 15 epochs).
        freeze_prototypes_steps: the first steps train everything but the prototypes (313 in
            [0], one epoch).
        gather_distributed: Sinkhorn-Knopp over the global batch.
    """

    name: str = "swav"
    prototypes: int = 300
    temperature: float = 0.1
    epsilon: float = 0.05
    sinkhorn_iterations: int = 3
    memory_size: int = 0
    freeze_prototypes_steps: int = 0
    gather_distributed: bool = True

    def __post_init__(self) -> None:
        check_int("prototypes", self.prototypes, 2, 1_000_000)
        check_float("temperature", self.temperature, 0, 100, low_open=True)
        check_float("epsilon", self.epsilon, 0, 100, low_open=True)
        check_int("sinkhorn_iterations", self.sinkhorn_iterations, 1, 1000)
        check_int("memory_size", self.memory_size, 0, 10_000_000)
        check_int("freeze_prototypes_steps", self.freeze_prototypes_steps, 0, 10**9)


def build_swav(encoder: nn.Module, config: SwAVConfig, head_widths: Sequence[int]) -> SwAV:
    """SwAV from its config section and the model's head (projector) widths."""
    return SwAV(
        encoder,
        head_widths=head_widths,
        prototypes=config.prototypes,
        temperature=config.temperature,
        epsilon=config.epsilon,
        sinkhorn_iterations=config.sinkhorn_iterations,
        queue_size=config.memory_size,
        freeze_prototypes_steps=config.freeze_prototypes_steps,
        gather_distributed=config.gather_distributed,
    )


register_method(
    MethodPlugin(
        "swav",
        SwAVConfig,
        build_swav,
        views=multi_crop_views,
        recipes={"swav": "swav-fashion-mnist"},
        exports={"SwAV": SwAV, "SwAVConfig": SwAVConfig},
    )
)
