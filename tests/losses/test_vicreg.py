"""VICReg against a float64 loop written straight from Eq. (1)-(6) of arXiv:2105.04906."""

import math

import pytest
import torch

from selfsup.losses.vicreg import VICRegLoss, vicreg_loss

EPS = 1e-4


def reference_vicreg(z_a, z_b, lam, mu, nu, gamma):
    """λ s + μ (v_a + v_b) + ν (c_a + c_b), one scalar at a time."""
    n, d = z_a.shape

    def variance_covariance(z):
        means = [sum(z[b, j] for b in range(n)) / n for j in range(d)]
        cov = [
            [
                sum((z[b, i] - means[i]) * (z[b, j] - means[j]) for b in range(n)) / (n - 1)
                for j in range(d)
            ]
            for i in range(d)
        ]
        v = sum(torch.clamp(gamma - torch.sqrt(cov[j][j] + EPS), min=0) for j in range(d)) / d
        c = sum(cov[i][j] ** 2 for i in range(d) for j in range(d) if i != j) / d
        return v, c

    s = sum((z_a[b, j] - z_b[b, j]) ** 2 for b in range(n) for j in range(d)) / (n * d)
    v_a, c_a = variance_covariance(z_a)
    v_b, c_b = variance_covariance(z_b)
    return lam * s + mu * (v_a + v_b) + nu * (c_a + c_b)


@pytest.mark.parametrize(
    ("n", "d", "weights", "scale"),
    [
        (2, 3, (25, 25, 1, 1), 1.0),
        (6, 4, (25, 25, 1, 1), 0.3),
        (9, 5, (1, 0, 0, 1), 1.0),
        (7, 6, (0, 2, 3, 0.5), 2.0),
        (16, 8, (25, 25, 1, 1), 0.1),
    ],
)
def test_matches_reference_values_and_gradients(n, d, weights, scale) -> None:
    generator = torch.Generator().manual_seed(n * 10 + d)
    z_a = scale * torch.randn(n, d, dtype=torch.float64, generator=generator)
    z_b = z_a + 0.5 * scale * torch.randn(n, d, dtype=torch.float64, generator=generator)
    z_a.requires_grad_(True)
    z_b.requires_grad_(True)
    value = vicreg_loss(z_a, z_b, *weights)
    expected = reference_vicreg(z_a, z_b, *weights)
    torch.testing.assert_close(value, expected)
    grads = torch.autograd.grad(value, (z_a, z_b))
    expected_grads = torch.autograd.grad(expected, (z_a, z_b))
    for grad, reference in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, reference)


def test_collapse_costs_the_variance_hinge_and_spread_views_cost_nothing() -> None:
    collapsed = torch.zeros(8, 4, dtype=torch.float64)
    # Every dimension at std 0: the hinge is γ − sqrt(ε) per dimension, twice μ.
    expected = 25 * 2 * (1 - math.sqrt(EPS))
    torch.testing.assert_close(
        vicreg_loss(collapsed, collapsed), torch.tensor(expected, dtype=torch.float64)
    )
    # Identical views with orthogonal, zero-mean columns of std > 1: every term is zero.
    hadamard = torch.tensor(
        [[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=torch.float64
    )
    spread = 3.0 * torch.cat([hadamard, hadamard])[:, 1:]
    assert float(vicreg_loss(spread, spread)) == pytest.approx(0.0, abs=1e-12)


def test_low_precision_inputs_compute_in_float32_and_shapes_are_checked() -> None:
    z = torch.randn(8, 16)
    value = VICRegLoss()(z.bfloat16(), (z + 0.1).bfloat16())
    assert value.dtype == torch.float32
    with pytest.raises(ValueError, match="equal shape"):
        vicreg_loss(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="at least 2 rows"):
        vicreg_loss(torch.randn(1, 3), torch.randn(1, 3))
