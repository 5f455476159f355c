"""Distillation loss against a float64 loop written from SimCLRv2's Eq. (2) and (3)."""

import math

import pytest
import torch
import torch.nn.functional as F

from selfsup.losses import DistillationLoss, distillation_loss


def reference_distillation(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float
) -> torch.Tensor:
    """−(1/N) Σ_x Σ_y P^T(y|x; τ) log P^S(y|x; τ), every softmax written out."""
    total = 0.0
    for s_row, t_row in zip(student, teacher, strict=True):
        t_norm = sum(math.exp(v / temperature) for v in t_row.tolist())
        s_norm = sum(torch.exp(v / temperature) for v in s_row)
        for y in range(len(s_row)):
            p_teacher = math.exp(t_row[y].item() / temperature) / t_norm
            total = total - p_teacher * torch.log(torch.exp(s_row[y] / temperature) / s_norm)
    return total / len(student)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_matches_reference_values_and_gradients(temperature: float) -> None:
    generator = torch.Generator().manual_seed(int(temperature * 10))
    student = torch.randn(5, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    teacher = torch.randn(5, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    ours = distillation_loss(student, teacher, temperature)
    expected = reference_distillation(student, teacher.detach(), temperature)
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12)
    (grad,) = torch.autograd.grad(ours, student)
    (expected_grad,) = torch.autograd.grad(expected, student)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-12)
    # ∂L/∂s = (P^S − P^T) / (N τ): the closed form of the cross-entropy gradient.
    closed = (F.softmax(student / temperature, dim=1) - F.softmax(teacher / temperature, dim=1)) / (
        5 * temperature
    )
    torch.testing.assert_close(grad, closed.detach(), rtol=1e-12, atol=1e-12)


def test_teacher_gets_no_gradient() -> None:
    student = torch.randn(3, 5, requires_grad=True)
    teacher = torch.randn(3, 5, requires_grad=True)
    distillation_loss(student, teacher, 2.0).backward()
    assert teacher.grad is None
    assert student.grad is not None


def test_temperature_changes_the_targets() -> None:
    """The minimum over students is the teacher's entropy at τ, and it rises with τ."""
    teacher = torch.tensor([[3.0, 1.0, -2.0]], dtype=torch.float64)
    entropies = []
    for temperature in (0.5, 1.0, 4.0):
        probabilities = F.softmax(teacher / temperature, dim=1)
        entropy = -(probabilities * probabilities.log()).sum()
        torch.testing.assert_close(distillation_loss(teacher, teacher, temperature), entropy)
        entropies.append(entropy.item())
    assert entropies == sorted(entropies) and entropies[0] < entropies[-1]


def test_weighted_combination_is_eq_3() -> None:
    generator = torch.Generator().manual_seed(0)
    student, teacher = (
        torch.randn(6, 3, generator=generator),
        torch.randn(6, 3, generator=generator),
    )
    labelled, labels = torch.randn(2, 3, generator=generator), torch.tensor([0, 2])
    loss = DistillationLoss(temperature=2.0, distill_weight=0.25)
    expected = 0.25 * distillation_loss(student, teacher, 2.0) + 0.75 * F.cross_entropy(
        labelled, labels
    )
    torch.testing.assert_close(loss(student, teacher, labelled, labels), expected)
    torch.testing.assert_close(
        DistillationLoss(2.0)(student, teacher), distillation_loss(student, teacher, 2.0)
    )
    with pytest.raises(ValueError, match="labelled"):
        loss(student, teacher)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="equal shape"):
        distillation_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), 0.0)
    with pytest.raises(ValueError, match="distill_weight"):
        DistillationLoss(distill_weight=1.5)
