"""The generalized contrastive loss of Chen, Luo & Li, *Intriguing Properties of Contrastive
Losses* (NeurIPS 2021, arXiv:2011.02803), Sec. 2:

    L = L_alignment + λ · L_distribution

    L_alignment = mean over the N·D entries of (ẑ_a − ẑ_b)², halved (ẑ: the embeddings, unit
                  length where the distribution term asks for it)

and one distribution-matching term over the 2N embeddings of the batch:

- `logsumexp`: mean_i log Σ_k exp(ẑ_i·ẑ_k / τ) − log D over all 2N (the positive is not singled
  out: NT-Xent decoupled into alignment plus this uniformity term);
- a sliced Wasserstein distance to a prior: a fresh random orthogonal D × D projection W on
  every call; every projected dimension of the embeddings and of as many prior samples is
  sorted across the batch, and the two sorted sets are compared by mean squared error. Priors:
  `gaussian` (N(0, 1) per dimension), `hypersphere` (Gaussian samples normalised; the
  embeddings are normalised too) and `hypercube` (uniform on [−1, 1]^D).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.dist.gather import gather_with_grad

DISTRIBUTIONS = ("logsumexp", "gaussian", "hypersphere", "hypercube")
NORMALISED = ("logsumexp", "hypersphere")
"""Distribution terms whose embeddings are L2-normalised (the others match an unbounded prior)."""


def alignment_loss(embeddings_a: torch.Tensor, embeddings_b: torch.Tensor) -> torch.Tensor:
    """Half the mean over all N·D entries of (a − b)²."""
    return (embeddings_a - embeddings_b).pow(2).mean() / 2


def logsumexp_loss(
    embeddings: torch.Tensor, temperature: float, candidates: torch.Tensor | None = None
) -> torch.Tensor:
    """mean_i logsumexp_k(e_i·c_k / τ) − log D, the candidates c defaulting to the embeddings
    themselves (each row's own similarity included, as in the paper's decoupled form)."""
    candidates = embeddings if candidates is None else candidates
    scores = embeddings @ candidates.T
    scores = scores.to(torch.promote_types(scores.dtype, torch.float32)) / temperature  # bf16
    return (torch.logsumexp(scores, dim=1) - math.log(embeddings.shape[1])).mean()


def random_orthogonal(
    dim: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """A (dim, dim) orthogonal matrix drawn uniformly (Haar): QR of a Gaussian matrix, with the
    signs of R's diagonal moved into Q so that the draw is not biased."""
    gaussian = torch.randn(dim, dim, device=device, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    return (q * torch.sign(torch.diagonal(r))).to(dtype)


def sample_prior(
    prior: str,
    shape: tuple[int, int],
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """`shape` samples of a prior: gaussian, hypersphere or hypercube."""
    if prior == "gaussian":
        return torch.randn(shape, device=device, dtype=dtype)
    if prior == "hypersphere":
        return F.normalize(torch.randn(shape, device=device, dtype=dtype), dim=1)
    if prior == "hypercube":
        return torch.rand(shape, device=device, dtype=dtype) * 2 - 1
    raise ValueError(f"prior must be gaussian, hypersphere or hypercube, got {prior!r}")


def sliced_wasserstein_loss(
    embeddings: torch.Tensor, prior_samples: torch.Tensor, projection: torch.Tensor
) -> torch.Tensor:
    """Mean squared difference between the sorted columns of `embeddings @ projection` and of
    `prior_samples @ projection` (the squared 1-D Wasserstein-2 distance along each projected
    direction, averaged); zero when the embeddings are the prior samples in another order."""
    if prior_samples.shape != embeddings.shape:
        raise ValueError(
            f"need as many prior samples as embeddings: {tuple(prior_samples.shape)} vs "
            f"{tuple(embeddings.shape)}"
        )
    projected = torch.sort(embeddings @ projection, dim=0).values
    target = torch.sort(prior_samples.to(embeddings.dtype) @ projection, dim=0).values
    return (projected - target).pow(2).mean()


def generalized_contrastive_loss(
    embeddings_a: torch.Tensor,
    embeddings_b: torch.Tensor,
    distribution: str = "logsumexp",
    weight: float = 1.0,
    temperature: float = 1.0,
    gather_distributed: bool = False,
    prior_samples: torch.Tensor | None = None,
    projection: torch.Tensor | None = None,
) -> torch.Tensor:
    """Alignment + `weight` · distribution matching between two views (row i of each is one
    image).

    Args:
        embeddings_a, embeddings_b: (N, D) projections of the two views.
        distribution: logsumexp, gaussian, hypersphere or hypercube (see the module docstring).
        weight: λ.
        temperature: τ of the logsumexp term.
        gather_distributed: the logsumexp term's candidates come from every process's batch;
            the sliced Wasserstein term always uses the local 2N, whose random draws are local.
        prior_samples: (2N, D) prior samples for the SWD term (default: fresh ones).
        projection: (D, D) orthogonal projection for the SWD term (default: a fresh one).
    """
    if embeddings_a.shape != embeddings_b.shape or embeddings_a.ndim != 2:
        raise ValueError(
            f"expected two (N, D) tensors of equal shape, got {tuple(embeddings_a.shape)} and "
            f"{tuple(embeddings_b.shape)}"
        )
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if distribution in NORMALISED:
        embeddings_a = F.normalize(embeddings_a, dim=1)
        embeddings_b = F.normalize(embeddings_b, dim=1)
    both = torch.cat([embeddings_a, embeddings_b])
    if distribution == "logsumexp":
        candidates = gather_with_grad(both) if gather_distributed else both
        matching = logsumexp_loss(both, temperature, candidates)
    else:
        dim = both.shape[1]
        if projection is None:
            projection = random_orthogonal(dim, both.device, both.dtype)
        if prior_samples is None:
            prior_samples = sample_prior(distribution, tuple(both.shape), both.device, both.dtype)
        matching = sliced_wasserstein_loss(both, prior_samples, projection.to(both.dtype))
    return alignment_loss(embeddings_a, embeddings_b) + weight * matching


class GeneralizedContrastiveLoss(nn.Module):
    """Module form of `generalized_contrastive_loss`, holding its settings.

    >>> loss = GeneralizedContrastiveLoss("hypersphere", weight=1.0)
    >>> loss(torch.randn(8, 16), torch.randn(8, 16)).shape
    torch.Size([])
    """

    def __init__(
        self,
        distribution: str = "logsumexp",
        weight: float = 1.0,
        temperature: float = 1.0,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
        self.distribution, self.weight = distribution, weight
        self.temperature, self.gather_distributed = temperature, gather_distributed

    def forward(self, embeddings_a: torch.Tensor, embeddings_b: torch.Tensor) -> torch.Tensor:
        return generalized_contrastive_loss(
            embeddings_a,
            embeddings_b,
            self.distribution,
            self.weight,
            self.temperature,
            self.gather_distributed,
        )
