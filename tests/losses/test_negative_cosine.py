"""BYOL's normalised regression loss against Eq. (2) written with explicit norms."""

import pytest
import torch

from selfsup.losses import NegativeCosineLoss, negative_cosine_loss


def reference_byol(predictions, targets) -> torch.Tensor:
    """‖q/‖q‖ − z/‖z‖‖² per row, averaged."""
    total = 0.0
    for q, z in zip(predictions, targets, strict=True):
        total = total + ((q / q.norm() - z / z.norm()) ** 2).sum()
    return total / len(predictions)


@pytest.mark.parametrize(("batch", "dim"), [(1, 2), (4, 7), (9, 32)])
def test_matches_reference_values_and_gradients(batch: int, dim: int) -> None:
    generator = torch.Generator().manual_seed(batch + dim)
    predictions = torch.randn(batch, dim, dtype=torch.float64, generator=generator)
    targets = torch.randn(batch, dim, dtype=torch.float64, generator=generator)
    predictions.requires_grad_(True)
    targets.requires_grad_(True)
    ours = negative_cosine_loss(predictions, targets)
    expected = reference_byol(predictions, targets)
    torch.testing.assert_close(ours, expected)
    for got, want in zip(
        torch.autograd.grad(ours, (predictions, targets)),
        torch.autograd.grad(expected, (predictions, targets)),
        strict=True,
    ):
        torch.testing.assert_close(got, want)


def test_identical_normalised_vectors_give_zero_and_opposite_give_four() -> None:
    vectors = torch.randn(5, 8, dtype=torch.float64)
    assert negative_cosine_loss(vectors, 3.0 * vectors).item() == pytest.approx(0.0, abs=1e-12)
    assert negative_cosine_loss(vectors, -vectors).item() == pytest.approx(4.0, rel=1e-12)


def test_module_and_shape_errors() -> None:
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    torch.testing.assert_close(NegativeCosineLoss()(a, b), negative_cosine_loss(a, b))
    with pytest.raises(ValueError, match="equal shape"):
        negative_cosine_loss(a, b[:2])
