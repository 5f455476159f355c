"""DINO's loss against a float64 loop from Eq. (1)-(3) of arXiv:2104.14294, and its centre."""

import pytest
import torch

from selfsup.losses.dino import DINOLoss, dino_loss


def reference_dino(student, teacher, center, tau_s, tau_t):
    """Mean over (teacher crop i, student crop v ≠ i) of −Σ_k P_t,i log P_s,v, per image."""
    total, pairs = 0.0, 0
    for i, t in enumerate(teacher):
        for v, s in enumerate(student):
            if v == i:
                continue
            batch, k = s.shape
            pair = 0.0
            for b in range(batch):
                t_logits = torch.stack([(t[b, j] - center[j]) / tau_t for j in range(k)])
                s_logits = torch.stack([s[b, j] / tau_s for j in range(k)])
                p_t = torch.exp(t_logits - torch.logsumexp(t_logits, 0))
                log_p_s = s_logits - torch.logsumexp(s_logits, 0)
                pair = pair - sum(p_t[j] * log_p_s[j] for j in range(k))
            total = total + pair / batch
            pairs += 1
    return total / pairs


@pytest.mark.parametrize(
    ("crops", "tau_s", "tau_t"), [(2, 0.1, 0.04), (4, 0.2, 0.07), (3, 1.0, 0.5)]
)
def test_matches_reference_values_and_student_gradients(crops, tau_s, tau_t) -> None:
    generator = torch.Generator().manual_seed(crops)
    student = [
        torch.randn(3, 5, dtype=torch.float64, generator=generator).requires_grad_(True)
        for _ in range(crops)
    ]
    teacher = [torch.randn(3, 5, dtype=torch.float64, generator=generator) for _ in range(2)]
    center = 0.3 * torch.randn(5, dtype=torch.float64, generator=generator)
    value = dino_loss(student, teacher, center, tau_s, tau_t)
    expected = reference_dino(student, teacher, center, tau_s, tau_t)
    torch.testing.assert_close(value, expected)
    grads = torch.autograd.grad(value, student)
    expected_grads = torch.autograd.grad(expected, student)
    for grad, reference in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, reference)


def test_the_centre_is_an_ema_of_the_teachers_batch_mean() -> None:
    loss = DINOLoss(3, center_momentum=0.9)
    teacher = [
        torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]),
        torch.tensor([[2.0, 2.0, 2.0]] * 2),
    ]
    loss.update_center(teacher)
    torch.testing.assert_close(loss.center, torch.full((1, 3), 0.2))
    loss.update_center(teacher)
    torch.testing.assert_close(loss.center, torch.full((1, 3), 0.9 * 0.2 + 0.2))
