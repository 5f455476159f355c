"""Barlow Twins against a float64 loop written straight from Eq. (1) of arXiv:2103.03230."""

import pytest
import torch
from torch import nn

from selfsup.losses import BarlowTwinsLoss, barlow_twins_loss

EPS = 1e-5  # BatchNorm1d's default, inside the square root of the variance


def reference_barlow_twins(
    z_a: torch.Tensor, z_b: torch.Tensor, redundancy_weight: float
) -> torch.Tensor:
    """Eq. (1): standardise each dimension over the batch (biased variance, as BN does), then
    C_ij = Σ_b z^A_bi z^B_bj / N and L = Σ_i (1 − C_ii)² + λ Σ_i Σ_{j≠i} C_ij²."""
    batch, dim = z_a.shape

    def standardise(z: torch.Tensor) -> list[list[torch.Tensor]]:
        columns = []
        for i in range(dim):
            mean = sum(z[b, i] for b in range(batch)) / batch
            variance = sum((z[b, i] - mean) ** 2 for b in range(batch)) / batch
            columns.append([(z[b, i] - mean) / torch.sqrt(variance + EPS) for b in range(batch)])
        return columns

    standard_a, standard_b = standardise(z_a), standardise(z_b)
    cross_correlation = [
        [sum(standard_a[i][b] * standard_b[j][b] for b in range(batch)) / batch for j in range(dim)]
        for i in range(dim)
    ]
    invariance = sum((1 - cross_correlation[i][i]) ** 2 for i in range(dim))
    redundancy = sum(cross_correlation[i][j] ** 2 for i in range(dim) for j in range(dim) if j != i)
    return invariance + redundancy_weight * redundancy


def _orthogonal_zero_mean_columns(batch: int, dim: int) -> torch.Tensor:
    """(batch, dim) ±1024 columns of a Sylvester Hadamard matrix, skipping the all-ones one:
    zero mean, biased variance 1024², mutually orthogonal, so standardised C is I."""
    hadamard = torch.ones(1, 1, dtype=torch.float64)
    while hadamard.shape[0] < batch:
        hadamard = torch.cat(
            [torch.cat([hadamard, hadamard], 1), torch.cat([hadamard, -hadamard], 1)]
        )
    assert hadamard.shape[0] == batch and dim < batch
    # A large variance makes the BN ε negligible: C_ii = 1/(1 + ε/1024²) ≈ 1 − 1e-11.
    return 1024.0 * hadamard[:, 1 : dim + 1]


@pytest.mark.parametrize(
    ("batch", "dim", "redundancy_weight"),
    [(2, 3, 5e-3), (5, 4, 0.0), (8, 6, 5e-3), (7, 3, 1.0), (16, 10, 0.3)],
)
def test_matches_reference_values_and_gradients(
    batch: int, dim: int, redundancy_weight: float
) -> None:
    generator = torch.Generator().manual_seed(batch * 100 + dim)
    z_a = torch.randn(batch, dim, dtype=torch.float64, generator=generator, requires_grad=True)
    # Correlated views, so that C has a non-trivial diagonal.
    noise = torch.randn(batch, dim, dtype=torch.float64, generator=generator)
    z_b = (0.7 * z_a.detach() + 0.5 * noise + 3.0).requires_grad_(True)
    ours = barlow_twins_loss(z_a, z_b, redundancy_weight)
    grads = torch.autograd.grad(ours, (z_a, z_b))
    expected = reference_barlow_twins(z_a, z_b, redundancy_weight)
    expected_grads = torch.autograd.grad(expected, (z_a, z_b))
    assert ours.ndim == 0 and ours.dtype == torch.float64
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-12)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_equals_the_official_batch_norm_formulation() -> None:
    # The authors' code: c = bn(z1).T @ bn(z2) / N with BatchNorm1d(affine=False) in training mode.
    generator = torch.Generator().manual_seed(3)
    z_a = torch.randn(12, 5, dtype=torch.float64, generator=generator)
    z_b = torch.randn(12, 5, dtype=torch.float64, generator=generator)
    batch_norm = nn.BatchNorm1d(5, affine=False, dtype=torch.float64).train()
    cross_correlation = batch_norm(z_a).T @ batch_norm(z_b) / 12
    on_diagonal = (torch.diagonal(cross_correlation) - 1).pow(2).sum()
    off_diagonal = cross_correlation.pow(2).sum() - torch.diagonal(cross_correlation).pow(2).sum()
    expected = on_diagonal + 5e-3 * off_diagonal
    torch.testing.assert_close(barlow_twins_loss(z_a, z_b), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("redundancy_weight", [0.0, 5e-3, 1.0, 10.0])
def test_correlated_and_decorrelated_embeddings_give_zero(redundancy_weight: float) -> None:
    z = _orthogonal_zero_mean_columns(batch=8, dim=5)
    loss = barlow_twins_loss(z, z.clone(), redundancy_weight)
    assert abs(loss.item()) < 1e-10


def test_invariant_to_a_positive_affine_map_of_each_dimension() -> None:
    # Standardisation removes per-dimension shift and positive scale (up to the BN ε).
    generator = torch.Generator().manual_seed(4)
    z_a = torch.randn(10, 4, dtype=torch.float64, generator=generator)
    z_b = z_a + 0.3 * torch.randn(10, 4, dtype=torch.float64, generator=generator)
    scale = torch.tensor([2.0, 0.5, 10.0, 3.0], dtype=torch.float64)
    shift = torch.tensor([1.0, -4.0, 0.0, 100.0], dtype=torch.float64)
    torch.testing.assert_close(
        barlow_twins_loss(scale * z_a + shift, z_b - shift),
        barlow_twins_loss(z_a, z_b),
        rtol=1e-4,
        atol=1e-8,
    )


def test_symmetric_in_the_two_views() -> None:
    generator = torch.Generator().manual_seed(5)
    z_a, z_b = torch.randn(9, 6, generator=generator), torch.randn(9, 6, generator=generator)
    torch.testing.assert_close(barlow_twins_loss(z_a, z_b), barlow_twins_loss(z_b, z_a))


def test_redundancy_weight_only_scales_the_off_diagonal_part() -> None:
    # Duplicating a column makes C_01 = C_10 = 1 while the diagonal stays 1: the loss is 2λ.
    columns = _orthogonal_zero_mean_columns(batch=8, dim=3)
    z = torch.cat([columns[:, :1], columns], dim=1)
    for redundancy_weight in [0.0, 5e-3, 0.5, 2.0]:
        loss = barlow_twins_loss(z, z.clone(), redundancy_weight)
        assert loss.item() == pytest.approx(2 * redundancy_weight, rel=1e-9, abs=1e-10)
    # In general L(λ) = L(0) + λ·R with R independent of λ.
    generator = torch.Generator().manual_seed(6)
    z_a = torch.randn(7, 5, dtype=torch.float64, generator=generator)
    z_b = torch.randn(7, 5, dtype=torch.float64, generator=generator)
    invariance = barlow_twins_loss(z_a, z_b, 0.0)
    redundancy = barlow_twins_loss(z_a, z_b, 1.0) - invariance
    for redundancy_weight in [5e-3, 0.25, 3.0]:
        torch.testing.assert_close(
            barlow_twins_loss(z_a, z_b, redundancy_weight),
            invariance + redundancy_weight * redundancy,
            rtol=1e-12,
            atol=1e-12,
        )


def test_computes_in_float32_under_bfloat16_autocast() -> None:
    generator = torch.Generator().manual_seed(7)
    z_a, z_b = torch.randn(32, 16, generator=generator), torch.randn(32, 16, generator=generator)
    expected = barlow_twins_loss(z_a, z_b)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = barlow_twins_loss(z_a, z_b)
        from_bfloat16 = barlow_twins_loss(z_a.bfloat16(), z_b.bfloat16())
    assert under_autocast.dtype == torch.float32 and from_bfloat16.dtype == torch.float32
    torch.testing.assert_close(under_autocast, expected)
    reference = barlow_twins_loss(z_a.bfloat16().double(), z_b.bfloat16().double())
    torch.testing.assert_close(from_bfloat16.double(), reference, rtol=1e-5, atol=1e-5)


def test_module_and_validation() -> None:
    generator = torch.Generator().manual_seed(8)
    z_a, z_b = torch.randn(6, 4, generator=generator), torch.randn(6, 4, generator=generator)
    torch.testing.assert_close(BarlowTwinsLoss(0.1)(z_a, z_b), barlow_twins_loss(z_a, z_b, 0.1))
    with pytest.raises(ValueError, match="redundancy_weight"):
        BarlowTwinsLoss(redundancy_weight=-1.0)
    with pytest.raises(ValueError, match="redundancy_weight"):
        barlow_twins_loss(z_a, z_b, -1.0)
    with pytest.raises(ValueError, match="equal shape"):
        barlow_twins_loss(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="equal shape"):
        barlow_twins_loss(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="equal shape"):
        barlow_twins_loss(torch.randn(4, 3, 2), torch.randn(4, 3, 2))
    with pytest.raises(ValueError, match="2 rows"):
        barlow_twins_loss(torch.randn(1, 3), torch.randn(1, 3))
