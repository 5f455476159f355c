"""The generalized contrastive loss against float64 loops written from the paper's definitions:
alignment, the logsumexp term and the sliced Wasserstein distance, values and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from selfsup.losses import GeneralizedContrastiveLoss, generalized_contrastive_loss
from selfsup.losses.generalized import random_orthogonal, sample_prior, sliced_wasserstein_loss


def _value(scalar: torch.Tensor) -> float:
    return scalar.detach().item()


def reference(
    a: torch.Tensor,
    b: torch.Tensor,
    distribution: str,
    weight: float,
    temperature: float,
    prior: torch.Tensor,
    projection: torch.Tensor,
) -> torch.Tensor:
    """Entry by entry: ½·mean (a − b)², plus λ times the distribution term over the 2N rows."""
    count, dim = a.shape
    if distribution in ("logsumexp", "hypersphere"):
        a = torch.stack([row / row.norm() for row in a])
        b = torch.stack([row / row.norm() for row in b])
    alignment = sum((a[i, d] - b[i, d]) ** 2 for i in range(count) for d in range(dim))
    alignment = alignment / (count * dim) / 2
    rows = [*a, *b]
    if distribution == "logsumexp":
        terms = [
            torch.log(sum(torch.exp(rows[i] @ rows[k] / temperature) for k in range(2 * count)))
            - math.log(dim)
            for i in range(2 * count)
        ]
        matching = sum(terms) / (2 * count)
    else:
        total = 0.0
        for column in range(dim):
            ours = sorted((row @ projection[:, column] for row in rows), key=_value)
            theirs = sorted((row @ projection[:, column] for row in prior), key=_value)
            total = total + sum((x - y) ** 2 for x, y in zip(ours, theirs, strict=True))
        matching = total / (2 * count * dim)
    return alignment + weight * matching


@pytest.mark.parametrize("distribution", ["logsumexp", "gaussian", "hypersphere", "hypercube"])
@pytest.mark.parametrize("batch", [2, 5])
def test_matches_reference_values_and_gradients(distribution: str, batch: int) -> None:
    generator = torch.Generator().manual_seed(batch)
    a = torch.randn(batch, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    b = torch.randn(batch, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    torch.manual_seed(batch)
    prior = sample_prior(
        "gaussian" if distribution == "logsumexp" else distribution, (2 * batch, 4), dtype=a.dtype
    )
    projection = random_orthogonal(4, dtype=torch.float64)
    ours = generalized_contrastive_loss(
        a, b, distribution, 0.7, 0.3, prior_samples=prior, projection=projection
    )
    expected = reference(a, b, distribution, 0.7, 0.3, prior, projection)
    torch.testing.assert_close(ours, expected)
    for got, want in zip(
        torch.autograd.grad(ours, (a, b)), torch.autograd.grad(expected, (a, b)), strict=True
    ):
        torch.testing.assert_close(got, want)


def test_sliced_wasserstein_is_zero_when_embeddings_are_the_prior_reordered() -> None:
    torch.manual_seed(0)
    prior = sample_prior("gaussian", (12, 6), dtype=torch.float64)
    shuffled = prior[torch.randperm(12)]
    signed_permutation = torch.eye(6, dtype=torch.float64)[torch.randperm(6)]
    signed_permutation[:, 1] *= -1  # orthogonal, and every product with it exact
    assert sliced_wasserstein_loss(shuffled, prior, signed_permutation).item() == 0.0
    rotation = random_orthogonal(6, dtype=torch.float64)
    assert sliced_wasserstein_loss(shuffled, prior, rotation).item() < 1e-24
    assert sliced_wasserstein_loss(shuffled + 0.1, prior, rotation).item() > 1e-3


def test_random_projections_are_orthogonal_and_fresh_on_every_call() -> None:
    torch.manual_seed(0)
    first, second = random_orthogonal(16), random_orthogonal(16)
    torch.testing.assert_close(first.T @ first, torch.eye(16), atol=1e-5, rtol=0)
    assert not torch.allclose(first, second)
    a, b = torch.randn(8, 16), torch.randn(8, 16)
    losses = {round(generalized_contrastive_loss(a, b, "gaussian").item(), 6) for _ in range(3)}
    assert len(losses) == 3  # a fresh projection and prior sample each time


def test_priors_have_their_support() -> None:
    torch.manual_seed(0)
    sphere = sample_prior("hypersphere", (500, 8))
    torch.testing.assert_close(sphere.norm(dim=1), torch.ones(500))
    cube = sample_prior("hypercube", (500, 8))
    assert cube.min() >= -1 and cube.max() <= 1 and cube.min() < -0.95 and cube.max() > 0.95
    gaussian = sample_prior("gaussian", (4000, 8))
    assert abs(gaussian.mean().item()) < 0.05 and abs(gaussian.std().item() - 1) < 0.05
    with pytest.raises(ValueError, match="prior"):
        sample_prior("laplace", (4, 2))


def test_logsumexp_term_is_exact_for_identical_orthonormal_views() -> None:
    # identical views: alignment vanishes; orthonormal rows: every row's logsumexp is
    # log(2·exp(1/τ) + (2N − 2)) − log D (itself and its twin at similarity 1, the rest 0)
    batch, dim, temperature = 3, 8, 0.5
    z = torch.eye(batch, dim, dtype=torch.float64)
    loss = generalized_contrastive_loss(z, z.clone(), "logsumexp", 1.0, temperature)
    expected = math.log(2 * math.exp(1 / temperature) + 2 * batch - 2) - math.log(dim)
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_module_and_bad_arguments() -> None:
    a, b = torch.randn(4, 6), torch.randn(4, 6)
    module = GeneralizedContrastiveLoss("logsumexp", weight=2.0, temperature=0.2)
    expected = generalized_contrastive_loss(a, b, "logsumexp", 2.0, 0.2)
    torch.testing.assert_close(module(a, b), expected)
    with pytest.raises(ValueError, match="distribution"):
        generalized_contrastive_loss(a, b, "cauchy")
    with pytest.raises(ValueError, match="equal shape"):
        generalized_contrastive_loss(a, b[:, :5])
    with pytest.raises(ValueError, match="temperature"):
        generalized_contrastive_loss(a, b, temperature=0.0)
