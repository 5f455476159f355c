"""NT-Xent against a float64 loop written straight from SimCLR's Algorithm 1."""

import math

import pytest
import torch

from selfsup.losses import NTXentLoss, nt_xent_loss


def reference_nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Algorithm 1: interleave views as z_{2k-1}, z_{2k}; ℓ(i,j) over k ≠ i; mean of both orders."""
    batch = z_a.shape[0]
    z = []
    for k in range(batch):
        z += [z_a[k], z_b[k]]
    sim = [
        [(z[i] @ z[j]) / (z[i].norm() * z[j].norm()) for j in range(2 * batch)]
        for i in range(2 * batch)
    ]

    def ell(i: int, j: int) -> torch.Tensor:
        denominator = sum(torch.exp(sim[i][k] / temperature) for k in range(2 * batch) if k != i)
        return -torch.log(torch.exp(sim[i][j] / temperature) / denominator)

    total = sum(ell(2 * k, 2 * k + 1) + ell(2 * k + 1, 2 * k) for k in range(batch))
    return total / (2 * batch)


@pytest.mark.parametrize("batch", [2, 3, 8])
@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_matches_reference_values_and_gradients(batch: int, temperature: float) -> None:
    generator = torch.Generator().manual_seed(batch * 100 + int(temperature * 10))
    z_a = torch.randn(batch, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    z_b = torch.randn(batch, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    ours = nt_xent_loss(z_a, z_b, temperature)
    grads = torch.autograd.grad(ours, (z_a, z_b))
    expected = reference_nt_xent(z_a, z_b, temperature)
    expected_grads = torch.autograd.grad(expected, (z_a, z_b))
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, expected)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want)


def test_identical_views_exact_value() -> None:
    # With orthonormal embeddings and identical views: positive sim 1, the 2N-2 negatives sim 0.
    batch, temperature = 4, 0.5
    z = torch.eye(batch, 8, dtype=torch.float64)
    loss = nt_xent_loss(z, z.clone(), temperature)
    positive = math.exp(1 / temperature)
    expected = -math.log(positive / (positive + (2 * batch - 2)))
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_symmetric_in_views_and_scale_invariant() -> None:
    generator = torch.Generator().manual_seed(0)
    z_a, z_b = torch.randn(6, 4, generator=generator), torch.randn(6, 4, generator=generator)
    torch.testing.assert_close(nt_xent_loss(z_a, z_b), nt_xent_loss(z_b, z_a))
    torch.testing.assert_close(nt_xent_loss(z_a, z_b), nt_xent_loss(3.0 * z_a, 0.5 * z_b))


def test_aligned_views_give_lower_loss_than_random() -> None:
    generator = torch.Generator().manual_seed(1)
    z_a = torch.randn(16, 32, generator=generator)
    assert nt_xent_loss(z_a, z_a + 0.01 * torch.randn(16, 32, generator=generator)) < nt_xent_loss(
        z_a, torch.randn(16, 32, generator=generator)
    )


def test_module_and_validation() -> None:
    z = torch.randn(4, 3)
    assert NTXentLoss(0.2)(z, z).item() == pytest.approx(nt_xent_loss(z, z, 0.2).item())
    with pytest.raises(ValueError):
        NTXentLoss(temperature=0.0)
    with pytest.raises(ValueError):
        nt_xent_loss(torch.randn(4, 3), torch.randn(5, 3))


def reference_memory_nt_xent(
    z_a: torch.Tensor, z_b: torch.Tensor, memory: torch.Tensor, temperature: float
) -> torch.Tensor:
    """SimCLRv2's memory: Algorithm 1's ℓ(i, j) with Σ_m exp(sim(z_i, k_m)/τ) added below."""
    batch = z_a.shape[0]
    z = []
    for k in range(batch):
        z += [z_a[k], z_b[k]]

    def sim(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (u @ v) / (u.norm() * v.norm())

    def ell(i: int, j: int) -> torch.Tensor:
        denominator = sum(
            torch.exp(sim(z[i], z[k]) / temperature) for k in range(2 * batch) if k != i
        )
        denominator = denominator + sum(torch.exp(sim(z[i], key) / temperature) for key in memory)
        return -torch.log(torch.exp(sim(z[i], z[j]) / temperature) / denominator)

    total = sum(ell(2 * k, 2 * k + 1) + ell(2 * k + 1, 2 * k) for k in range(batch))
    return total / (2 * batch)


@pytest.mark.parametrize("filled", [0, 3, 7])
def test_memory_matches_reference_and_empty_memory_is_plain_nt_xent(filled: int) -> None:
    generator = torch.Generator().manual_seed(filled)
    z_a = torch.randn(4, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    z_b = torch.randn(4, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    memory = torch.nn.functional.normalize(
        torch.randn(7, 5, dtype=torch.float64, generator=generator), dim=1
    )
    ours = nt_xent_loss(z_a, z_b, 0.3, memory=memory, memory_filled=torch.tensor(filled))
    expected = reference_memory_nt_xent(z_a, z_b, memory[:filled], 0.3)
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12)
    grads = torch.autograd.grad(ours, (z_a, z_b))
    expected_grads = torch.autograd.grad(expected, (z_a, z_b))
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    if filled == 0:  # nothing in memory: exactly NT-Xent
        torch.testing.assert_close(ours, nt_xent_loss(z_a, z_b, 0.3), rtol=0, atol=0)
    if filled == 7:  # a full memory is the same as passing all its rows
        torch.testing.assert_close(ours, nt_xent_loss(z_a, z_b, 0.3, memory=memory))
