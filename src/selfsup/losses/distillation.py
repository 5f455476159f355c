"""Distillation of a fine-tuned teacher into a student on unlabeled images (SimCLRv2's stage 3).

[0] SimCLRv2, Chen et al. 2020, arXiv:2006.10029, Sec. 2, Eq. (2) and (3):

    P(y | x; τ) = exp(f(x)[y] / τ) / Σ_y' exp(f(x)[y'] / τ)
    L_distill = −Σ_x Σ_y P^T(y | x; τ) log P^S(y | x; τ)
    L = −(1 − α) Σ_(x,y) log P^S(y | x) − α Σ_x Σ_y P^T(y | x; τ) log P^S(y | x; τ)

The teacher is fixed: its probabilities are targets, never a path for gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Cross-entropy of the student's tempered softmax against the teacher's, mean over the batch.

    Eq. (2) of [0] with the sum over images replaced by a mean, so the scale does not depend on
    the batch size. No τ² factor (Hinton et al. scale by it; [0] does not).

    Args:
        student_logits: (N, C) logits of the student.
        teacher_logits: (N, C) logits of the teacher on the same images (detached here).
        temperature: τ, applied to both.

    >>> logits = torch.tensor([[2.0, 0.0]])
    >>> round(distillation_loss(logits, logits).item(), 4)  # H(P) of the teacher: the minimum
    0.3653
    """
    if student_logits.shape != teacher_logits.shape or student_logits.ndim != 2:
        raise ValueError(
            f"expected two (N, C) logits of equal shape, got {tuple(student_logits.shape)} and "
            f"{tuple(teacher_logits.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    dtype = torch.promote_types(student_logits.dtype, torch.float32)  # bf16 → fp32 for softmax
    targets = F.softmax(teacher_logits.detach().to(dtype) / temperature, dim=1)
    log_probabilities = F.log_softmax(student_logits.to(dtype) / temperature, dim=1)
    return -(targets * log_probabilities).sum(dim=1).mean()


class DistillationLoss(nn.Module):
    """Eq. (3) of [0]: (1 − α)·CE(student, labels) on labelled images + α·distillation.

    With α = 1 (the default, and [0]'s main setting) only the teacher's soft labels are used.

    >>> loss = DistillationLoss(temperature=1.0)
    >>> loss(torch.randn(4, 10), torch.randn(4, 10)).shape
    torch.Size([])
    """

    def __init__(self, temperature: float = 1.0, distill_weight: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if not 0.0 <= distill_weight <= 1.0:
            raise ValueError(f"distill_weight α must be in [0, 1], got {distill_weight}")
        self.temperature = temperature
        self.distill_weight = distill_weight

    def forward(
        self,
        student_logits: torch.Tensor,
        teacher_logits: torch.Tensor,
        labelled_logits: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """α·L_distill(student, teacher) + (1 − α)·CE(labelled_logits, labels) if labels given."""
        loss = self.distill_weight * distillation_loss(
            student_logits, teacher_logits, self.temperature
        )
        if self.distill_weight < 1.0:
            if labelled_logits is None or labels is None:
                raise ValueError("distill_weight < 1 needs labelled_logits and labels")
            loss = loss + (1.0 - self.distill_weight) * F.cross_entropy(labelled_logits, labels)
        return loss
