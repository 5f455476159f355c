"""MoCo's InfoNCE against a float64 loop written from Eq. (1) of the paper."""

import math

import pytest
import torch

from selfsup.losses import InfoNCELoss, info_nce_loss


def reference_info_nce(queries, positives, negatives, temperature: float) -> torch.Tensor:
    """L_q = −log exp(q·k₊/τ) / (exp(q·k₊/τ) + Σ_i exp(q·k_i/τ)), unit vectors, mean over q."""
    total = 0.0
    for q, k_pos in zip(queries, positives, strict=True):
        q = q / q.norm()
        positive = torch.exp((q @ (k_pos / k_pos.norm())) / temperature)
        denominator = positive + sum(
            torch.exp((q @ (k / k.norm())) / temperature) for k in negatives
        )
        total = total - torch.log(positive / denominator)
    return total / len(queries)


@pytest.mark.parametrize(("batch", "queue"), [(1, 1), (3, 5), (8, 16)])
@pytest.mark.parametrize("temperature", [0.07, 0.2, 1.0])
def test_matches_reference_values_and_gradients(batch: int, queue: int, temperature: float):
    generator = torch.Generator().manual_seed(batch * 31 + queue)
    make = lambda rows: torch.randn(  # noqa: E731
        rows, 6, dtype=torch.float64, generator=generator, requires_grad=True
    )
    queries, positives, negatives = make(batch), make(batch), make(queue)
    ours = info_nce_loss(queries, positives, negatives, temperature)
    expected = reference_info_nce(queries, positives, negatives, temperature)
    torch.testing.assert_close(ours, expected)
    inputs = (queries, positives, negatives)
    for got, want in zip(
        torch.autograd.grad(ours, inputs), torch.autograd.grad(expected, inputs), strict=True
    ):
        torch.testing.assert_close(got, want)


def test_positive_far_above_all_negatives_gives_zero() -> None:
    # q = k₊ (cosine 1) and every negative orthogonal (cosine 0): loss = log(1 + K e^{−1/τ}).
    queries = torch.eye(4, 8, dtype=torch.float64)
    negatives = torch.eye(8, dtype=torch.float64)[4:]
    loss = info_nce_loss(queries, queries.clone(), negatives, temperature=0.01)
    assert loss.item() == pytest.approx(math.log1p(4 * math.exp(-100)), abs=1e-40)
    assert loss.item() < 1e-40


def test_chance_level_when_every_key_is_the_same() -> None:
    # All logits equal: the positive is one of 1 + K equally likely classes.
    ones = torch.ones(5, 3, dtype=torch.float64)
    loss = info_nce_loss(ones, ones, torch.ones(9, 3, dtype=torch.float64), temperature=0.5)
    assert loss.item() == pytest.approx(math.log(10), rel=1e-12)


def test_module_and_errors() -> None:
    q, k, n = torch.randn(4, 3), torch.randn(4, 3), torch.randn(7, 3)
    torch.testing.assert_close(InfoNCELoss(0.2)(q, k, n), info_nce_loss(q, k, n, 0.2))
    with pytest.raises(ValueError, match="equal shape"):
        info_nce_loss(q, k[:3], n)
    with pytest.raises(ValueError, match="negative keys"):
        info_nce_loss(q, k, torch.randn(7, 4))
    with pytest.raises(ValueError, match="temperature"):
        info_nce_loss(q, k, n, temperature=0.0)
