"""DINO: a student matches the centred, sharpened output distribution of an EMA teacher.

[0] DINO, Caron et al. 2021, arXiv:2104.14294, Eq. (1)-(3) and Algorithm 1:

    P_t(x) = softmax((g_t(x) − c) / τ_t),   P_s(x) = softmax(g_s(x) / τ_s)
    L = mean over global crops x and every other crop x′ of  −Σ_k P_t(x)_k log P_s(x′)_k

The teacher sees the global crops only; centring (c) and sharpening (τ_t < τ_s) together keep
its outputs from collapsing. The cross-entropy over crop pairs is SwAV's swapped prediction
with the teacher's distributions as soft targets.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.dist.gather import world_size
from selfsup.losses.swav import swav_loss


def teacher_targets(
    teacher_logits: Sequence[torch.Tensor], center: torch.Tensor, temperature: float = 0.04
) -> list[torch.Tensor]:
    """softmax((t − c) / τ_t) of each global crop's teacher output (detached)."""
    if temperature <= 0:
        raise ValueError(f"teacher temperature must be positive, got {temperature}")
    targets = []
    for logits in teacher_logits:
        dtype = torch.promote_types(logits.dtype, torch.float32)
        centred = logits.detach().to(dtype) - center.detach().to(dtype)
        targets.append(F.softmax(centred / temperature, dim=1))
    return targets


def dino_loss(
    student_logits: Sequence[torch.Tensor],
    teacher_logits: Sequence[torch.Tensor],
    center: torch.Tensor,
    student_temperature: float = 0.1,
    teacher_temperature: float = 0.04,
) -> torch.Tensor:
    """Eq. (3): the mean over (teacher global crop i, student crop v ≠ i) of the batch mean of
    −Σ_k P_t,i log P_s,v.

    Args:
        student_logits: (B, K) student outputs for every crop, the global ones first.
        teacher_logits: (B, K) teacher outputs for the global crops (no gradient).
        center: (K,) or (1, K) running mean of the teacher's outputs.
        student_temperature: τ_s (0.1 in [0]).
        teacher_temperature: τ_t (0.04 to 0.07 in [0]).
    """
    targets = teacher_targets(teacher_logits, center, teacher_temperature)
    return swav_loss(student_logits, targets, student_temperature)


class DINOLoss(nn.Module):
    """`dino_loss` with the centre as a buffer, updated by `update_center` as an EMA of the
    teacher's batch mean (momentum 0.9 in [0]).

    >>> loss = DINOLoss(8)
    >>> student, teacher = [torch.randn(4, 8) for _ in range(3)], [torch.randn(4, 8)] * 2
    >>> loss(student, teacher).shape
    torch.Size([])
    """

    center: torch.Tensor

    def __init__(
        self,
        prototypes: int,
        student_temperature: float = 0.1,
        teacher_temperature: float = 0.04,
        center_momentum: float = 0.9,
    ) -> None:
        super().__init__()
        self.student_temperature = student_temperature
        self.teacher_temperature = teacher_temperature
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(1, prototypes))

    def forward(
        self, student_logits: Sequence[torch.Tensor], teacher_logits: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        return dino_loss(
            student_logits,
            teacher_logits,
            self.center,
            self.student_temperature,
            self.teacher_temperature,
        )

    @torch.no_grad()
    def update_center(
        self, teacher_logits: Sequence[torch.Tensor], distributed: bool = False
    ) -> None:
        """c ← m c + (1 − m) · the mean teacher output over the (global) batch and crops."""
        outputs = torch.cat([logits.detach().float() for logits in teacher_logits])
        count = outputs.new_full((1,), float(len(outputs)))
        sums = torch.cat([outputs.sum(dim=0), count])  # one all-reduce for the sums and count
        if distributed and world_size() > 1:
            torch.distributed.all_reduce(sums)
        mean = sums[:-1] / sums[-1]
        self.center.mul_(self.center_momentum).add_(mean, alpha=1 - self.center_momentum)


__all__ = ["DINOLoss", "dino_loss", "teacher_targets"]
