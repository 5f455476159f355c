"""DINO: self-distillation with no labels; a student matches an EMA teacher's centred and
sharpened distribution over K outputs, the teacher on the global crops, the student on all.

[0] DINO, Caron et al. 2021, arXiv:2104.14294, Sec. 3.1 and Appendix (a head of a 3-layer
MLP with GELU to a 256-d bottleneck, L2-normalised, then a weight-normalised linear layer of
65,536 outputs; τ_s = 0.1, τ_t = 0.04-0.07, centre momentum 0.9, teacher momentum 0.996 → 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.checks import check_float, check_int, check_widths
from selfsup.losses.dino import DINOLoss
from selfsup.methods.momentum import cosine_momentum, momentum_copy, update_momentum
from selfsup.methods.multicrop import encode_by_size, multi_crop_views
from selfsup.methods.plugin import MethodConfig, MethodPlugin, register_method
from selfsup.models.registry import feature_dim


class DINOHead(nn.Module):
    """MLP (Linear-GELU between layers, no batch norm) to a bottleneck, L2 normalisation, then
    a linear layer to K outputs whose weight rows are kept at unit length (weight norm with
    g = 1, [0]'s `norm_last_layer`).

    >>> DINOHead(16, [32, 32, 8], 10)(torch.randn(3, 16)).shape
    torch.Size([3, 10])
    """

    def __init__(self, in_dim: int, widths: Sequence[int], prototypes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for index, width in enumerate(widths):
            layers.append(nn.Linear(in_dim if index == 0 else widths[index - 1], width))
            if index < len(widths) - 1:
                layers.append(nn.GELU())
        self.mlp = nn.Sequential(*layers)
        self.last = nn.Parameter(torch.randn(prototypes, widths[-1]) * 0.02)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        bottleneck = F.normalize(self.mlp(features), dim=1)
        return F.linear(bottleneck, F.normalize(self.last, dim=1))


class DINO(nn.Module):
    """Student f_s, g_s and teacher f_t, g_t (an EMA of the student); multi-crop views
    `[global_1, global_2, local_1, ...]`, crops of one size through a network together.

    `on_step_end` moves the teacher with the cosine-scheduled momentum (BYOL's). The centre is
    updated in training from the teacher's outputs on each batch.

    Args:
        encoder: any backbone with a `feature_dim` attribute.
        head_widths: the head's MLP widths, the last the bottleneck (paper: 2048, 2048, 256).
        prototypes: K outputs (paper: 65,536).
        student_temperature: τ_s (paper: 0.1).
        teacher_temperature: τ_t (paper: 0.04, warmed up to 0.07 for long runs).
        center_momentum: m of the centre's EMA (paper: 0.9).
        base_momentum: the teacher's momentum at the start (paper: 0.996).
        gather_distributed: the centre from the global batch.

    >>> from selfsup.models import build_encoder
    >>> method = DINO(build_encoder("resnet18", base_width=4), [32, 16], prototypes=10)
    >>> crops = [torch.randn(4, 3, 16, 16)] * 2 + [torch.randn(4, 3, 8, 8)] * 2
    >>> method(crops).shape
    torch.Size([])
    """

    def __init__(
        self,
        encoder: nn.Module,
        head_widths: Sequence[int] = (2048, 2048, 256),
        prototypes: int = 65_536,
        student_temperature: float = 0.1,
        teacher_temperature: float = 0.04,
        center_momentum: float = 0.9,
        base_momentum: float = 0.996,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        if not head_widths:
            raise ValueError("DINO's head needs at least one width (its bottleneck)")
        self.encoder = encoder
        self.projection_head = DINOHead(feature_dim(encoder), head_widths, prototypes)
        self.teacher_encoder = momentum_copy(self.encoder)
        self.teacher_head = momentum_copy(self.projection_head)
        self.loss = DINOLoss(prototypes, student_temperature, teacher_temperature, center_momentum)
        self.base_momentum = base_momentum
        self.gather_distributed = gather_distributed

    def forward(self, views: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(views) < 2:
            raise ValueError(f"DINO takes 2 global views and any small crops, got {len(views)}")
        student = encode_by_size(lambda crops: self.projection_head(self.encoder(crops)), views)
        with torch.no_grad():
            teacher = encode_by_size(
                lambda crops: self.teacher_head(self.teacher_encoder(crops)), views[:2]
            )
        loss = self.loss(student, teacher)
        if self.training:
            self.loss.update_center(teacher, self.gather_distributed)
        return loss

    @torch.no_grad()
    def on_step_end(self, step: int, total_steps: int) -> None:
        """The teacher's EMA update, its momentum rising from `base_momentum` to 1."""
        momentum = cosine_momentum(step, total_steps, self.base_momentum)
        update_momentum(self.teacher_encoder, self.encoder, momentum)
        update_momentum(self.teacher_head, self.projection_head, momentum)


@dataclass
class DINOConfig(MethodConfig):
    """DINO's hyper-parameters (multi-crop: `augment.local_crops`, `local_size`,
    `local_crop_scale`; the head's MLP widths: `model.head_widths`).

    Attributes:
        name: dino.
        prototypes: K, the head's outputs (65,536 in [0]).
        student_temperature: τ_s (0.1 in [0]).
        teacher_temperature: τ_t, below τ_s: the sharpening (0.04 in [0]).
        center_momentum: momentum of the teacher-output centre (0.9 in [0]).
        momentum: the teacher's EMA momentum at the start, cosine-scheduled to 1 (0.996).
        gather_distributed: the centre is the global batch's mean.
    """

    name: str = "dino"
    prototypes: int = 4096
    student_temperature: float = 0.1
    teacher_temperature: float = 0.04
    center_momentum: float = 0.9
    momentum: float = 0.996
    gather_distributed: bool = True

    def __post_init__(self) -> None:
        check_int("prototypes", self.prototypes, 2, 1_000_000)
        check_float("student_temperature", self.student_temperature, 0, 100, low_open=True)
        check_float("teacher_temperature", self.teacher_temperature, 0, 100, low_open=True)
        check_float("center_momentum", self.center_momentum, 0, 1)
        check_float("momentum", self.momentum, 0, 1)


def build_dino(encoder: nn.Module, config: DINOConfig, head_widths: Sequence[int]) -> DINO:
    """DINO from its config section and the model's head widths."""
    check_widths("head_widths", head_widths)
    return DINO(
        encoder,
        head_widths=head_widths,
        prototypes=config.prototypes,
        student_temperature=config.student_temperature,
        teacher_temperature=config.teacher_temperature,
        center_momentum=config.center_momentum,
        base_momentum=config.momentum,
        gather_distributed=config.gather_distributed,
    )


register_method(
    MethodPlugin(
        "dino",
        DINOConfig,
        build_dino,
        views=multi_crop_views,
        recipes={"dino": "dino-fashion-mnist"},
        exports={"DINO": DINO, "DINOConfig": DINOConfig, "DINOHead": DINOHead},
    )
)
