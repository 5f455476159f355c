"""SwAV's Sinkhorn-Knopp codes and swapped-prediction loss against float64 loops written from
Eq. (3) and Appendix A.1 of arXiv:2006.09882."""

import math

import pytest
import torch

from selfsup.losses.swav import SwAVLoss, sinkhorn_knopp, swav_loss


def reference_sinkhorn(scores, epsilon, iterations):
    """Q = exp(Cᵀz/ε) (K x B) scaled to total 1, then per round rows to 1/K, columns to 1/B;
    returned as B x K rows that sum to one (× B), one entry at a time."""
    batch, prototypes = scores.shape
    q = [[math.exp(float(scores[b, k]) / epsilon) for b in range(batch)] for k in range(prototypes)]
    total = sum(sum(row) for row in q)
    q = [[v / total for v in row] for row in q]
    for _ in range(iterations):
        q = [[v / (sum(row) * prototypes) for v in row] for row in q]
        columns = [sum(q[k][b] for k in range(prototypes)) for b in range(batch)]
        q = [[q[k][b] / (columns[b] * batch) for b in range(batch)] for k in range(prototypes)]
    return torch.tensor(
        [[q[k][b] * batch for k in range(prototypes)] for b in range(batch)], dtype=torch.float64
    )


def reference_swav(scores, codes, temperature):
    """Mean over (code crop s, other crop t) of the batch mean of −Σ_k q_s log softmax(p_t/τ)."""
    total, pairs = 0.0, 0
    for s, code in enumerate(codes):
        for t, score in enumerate(scores):
            if s == t:
                continue
            batch, prototypes = score.shape
            pair = 0.0
            for b in range(batch):
                logits = [score[b, k] / temperature for k in range(prototypes)]
                normaliser = torch.logsumexp(torch.stack(logits), 0)
                pair = pair - sum(code[b, k] * (logits[k] - normaliser) for k in range(prototypes))
            total = total + pair / batch
            pairs += 1
    return total / pairs


@pytest.mark.parametrize(
    ("batch", "prototypes", "epsilon", "iterations"),
    [(4, 3, 0.05, 3), (6, 6, 0.5, 1), (5, 8, 0.1, 200), (16, 4, 1.0, 3)],
)
def test_sinkhorn_matches_the_reference_and_its_marginals(
    batch, prototypes, epsilon, iterations
) -> None:
    generator = torch.Generator().manual_seed(batch + prototypes)
    scores = torch.nn.functional.normalize(
        torch.randn(batch, prototypes, dtype=torch.float64, generator=generator), dim=1
    )
    codes = sinkhorn_knopp(scores, epsilon, iterations)
    torch.testing.assert_close(codes, reference_sinkhorn(scores, epsilon, iterations))
    torch.testing.assert_close(codes.sum(1), torch.ones(batch, dtype=torch.float64))
    if iterations >= 100:  # converged: every prototype gets B/K of the batch
        expected = torch.full((prototypes,), batch / prototypes, dtype=torch.float64)
        torch.testing.assert_close(codes.sum(0), expected, atol=1e-3, rtol=0)


def test_sinkhorn_is_stable_for_sharp_scores_and_has_no_gradient() -> None:
    scores = torch.tensor([[1.0, -1.0], [0.9, -1.0]], requires_grad=True)
    codes = sinkhorn_knopp(scores, epsilon=0.001)  # exp(1000) unshifted: inf
    assert torch.isfinite(codes).all() and not codes.requires_grad
    # The second prototype's mass underflows to zero: both images go to the first.
    torch.testing.assert_close(codes, torch.tensor([[1.0, 0.0], [1.0, 0.0]]))


@pytest.mark.parametrize(("crops", "coded", "temperature"), [(2, 2, 0.1), (4, 2, 0.5), (3, 1, 1.0)])
def test_swav_loss_matches_the_reference_values_and_gradients(crops, coded, temperature) -> None:
    generator = torch.Generator().manual_seed(crops * 10 + coded)
    scores = [
        torch.randn(5, 4, dtype=torch.float64, generator=generator).requires_grad_(True)
        for _ in range(crops)
    ]
    codes = [sinkhorn_knopp(score, 0.05, 3) for score in scores[:coded]]
    value = swav_loss(scores, codes, temperature)
    expected = reference_swav(scores, codes, temperature)
    torch.testing.assert_close(value, expected)
    # A crop whose codes are not predicted by any other crop (one code crop) gets no gradient.
    grads = torch.autograd.grad(value, scores, allow_unused=True)
    expected_grads = torch.autograd.grad(expected, scores, allow_unused=True)
    for grad, reference in zip(grads, expected_grads, strict=True):
        assert (grad is None) == (reference is None)
        if grad is not None:
            torch.testing.assert_close(grad, reference)
    module = SwAVLoss(temperature, code_crops=coded)(scores)
    torch.testing.assert_close(module, value)
    with pytest.raises(ValueError, match="at least 2"):
        swav_loss(scores[:1], codes[:1])
