"""NNCLR's loss against a float64 loop from Eq. (2) of arXiv:2104.14548."""

import math

import pytest
import torch

from selfsup.losses.nnclr import nnclr_loss


def reference_nnclr(nn_a, nn_b, p_a, p_b, temperature):
    """½ (L(NN(z₁), p₂) + L(NN(z₂), p₁)), each the mean over i of −log softmax_k at k = i."""

    def unit(row):
        return row / torch.sqrt(sum(v * v for v in row))

    def one_way(neighbours, predictions):
        rows = len(neighbours)
        total = 0.0
        for i in range(rows):
            logits = [
                sum(a * b for a, b in zip(unit(neighbours[i]), unit(predictions[k]), strict=True))
                / temperature
                for k in range(rows)
            ]
            total = total - (logits[i] - torch.logsumexp(torch.stack(logits), 0))
        return total / rows

    return (one_way(nn_a, p_b) + one_way(nn_b, p_a)) / 2


@pytest.mark.parametrize(("rows", "dim", "temperature"), [(2, 3, 0.1), (5, 4, 0.5), (8, 6, 1.0)])
def test_matches_reference_values_and_gradients(rows, dim, temperature) -> None:
    generator = torch.Generator().manual_seed(rows + dim)
    tensors = [
        torch.randn(rows, dim, dtype=torch.float64, generator=generator).requires_grad_(True)
        for _ in range(4)
    ]
    value = nnclr_loss(*tensors, temperature=temperature)
    expected = reference_nnclr(*tensors, temperature)
    torch.testing.assert_close(value, expected)
    grads = torch.autograd.grad(value, tensors[2:])
    expected_grads = torch.autograd.grad(expected, tensors[2:])
    for grad, reference in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, reference)


def test_no_gradient_reaches_the_neighbours_and_a_perfect_match_is_near_zero() -> None:
    neighbours = [torch.randn(4, 3, requires_grad=True) for _ in range(2)]
    predictions = [torch.randn(4, 3, requires_grad=True) for _ in range(2)]
    nnclr_loss(*neighbours, *predictions).backward()
    assert all(t.grad is None for t in neighbours) and all(t.grad is not None for t in predictions)
    basis = torch.eye(4)
    value = nnclr_loss(basis, basis, basis, basis, temperature=0.01)
    assert float(value) == pytest.approx(3 * math.exp(-100), abs=1e-12)
    with pytest.raises(ValueError, match="one shape"):
        nnclr_loss(basis, basis, basis, basis[:, :3])
