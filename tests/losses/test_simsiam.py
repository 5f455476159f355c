"""SimSiam's loss against a float64 loop from Eq. (1)-(4) of arXiv:2011.10566, and its
stop-gradient."""

import pytest
import torch

from selfsup.losses.simsiam import simsiam_loss


def reference_simsiam(p_a, p_b, z_a, z_b):
    """½ D(p₁, z₂) + ½ D(p₂, z₁), D the negative cosine, averaged over rows one at a time."""

    def negative_cosine(p, z):
        dot = sum(p[j] * z[j] for j in range(len(p)))
        norms = torch.sqrt(sum(v * v for v in p)) * torch.sqrt(sum(v * v for v in z))
        return -dot / norms

    rows = len(p_a)
    total = sum(
        0.5 * negative_cosine(p_a[i], z_b[i]) + 0.5 * negative_cosine(p_b[i], z_a[i])
        for i in range(rows)
    )
    return total / rows


@pytest.mark.parametrize(("rows", "dim"), [(1, 2), (3, 5), (8, 16)])
def test_matches_reference_values_and_gradients(rows, dim) -> None:
    generator = torch.Generator().manual_seed(rows * 7 + dim)
    tensors = [
        torch.randn(rows, dim, dtype=torch.float64, generator=generator).requires_grad_(True)
        for _ in range(4)
    ]
    value = simsiam_loss(*tensors)
    expected = reference_simsiam(*tensors)
    torch.testing.assert_close(value, expected)
    grads = torch.autograd.grad(value, tensors[:2])
    expected_grads = torch.autograd.grad(expected, tensors[:2])
    for grad, reference in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, reference)


def test_no_gradient_reaches_the_projections_and_the_range_is_minus_one_to_one() -> None:
    p_a, p_b, z_a, z_b = (torch.randn(6, 4, requires_grad=True) for _ in range(4))
    simsiam_loss(p_a, p_b, z_a, z_b).backward()
    assert z_a.grad is None and z_b.grad is None and p_a.grad is not None
    same = torch.randn(5, 3)
    assert float(simsiam_loss(same, same, same, same)) == pytest.approx(-1.0)
    assert float(simsiam_loss(same, same, -same, -same)) == pytest.approx(1.0)
