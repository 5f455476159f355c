"""Label-free quality of embeddings: is the representation spread out, or collapsing?

For users with no labels at all, four numbers computed from embeddings alone:

- effective rank, RankMe [0]: exp of the entropy of the normalised singular values,
  exp(-Σ_k p_k log p_k) with p_k = σ_k / Σ_j σ_j (+ ε); from 1 (one direction) to min(N, D);
- alignment [1]: E ||f(x) - f(y)||² over positive pairs of L2-normalised embeddings (0 is best);
- uniformity [1]: log E exp(-2 ||f(x) - f(y)||²) over distinct pairs (more negative is more
  uniform on the sphere);
- collapse level: the mean per-dimension standard deviation of L2-normalised embeddings times
  √D, so that 1 is a spread-out representation and 0 a complete collapse (SimSiam [2], Sec. 4.1,
  compares that std with 1/√D).

[0] RankMe: Assessing the downstream performance of pretrained self-supervised representations
    by their rank, Garrido et al. 2023, arXiv:2210.02885.
[1] Understanding Contrastive Representation Learning through Alignment and Uniformity on the
    Hypersphere, Wang & Isola 2020, arXiv:2005.10242.
[2] Exploring Simple Siamese Representation Learning, Chen & He 2021, arXiv:2011.10566.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _matrix(embeddings: Tensor) -> Tensor:
    if embeddings.ndim != 2 or len(embeddings) < 2:
        raise ValueError(f"expected (N >= 2, D) embeddings, got shape {tuple(embeddings.shape)}")
    return embeddings.detach().double()


def effective_rank(embeddings: Tensor, eps: float = 1e-7) -> float:
    """RankMe: exp of the entropy of the singular-value distribution of (N, D) embeddings.

    >>> round(effective_rank(torch.eye(4)), 4)
    4.0
    """
    singular = torch.linalg.svdvals(_matrix(embeddings))
    p = singular / singular.sum() + eps
    return math.exp(-(p * p.log()).sum().item())


def alignment(embeddings: Tensor, positives: Tensor) -> float:
    """Mean squared distance between L2-normalised embeddings of positive pairs (row i, row i).

    >>> alignment(torch.tensor([[1.0, 0.0]]).repeat(2, 1), torch.tensor([[0.0, 1.0]]).repeat(2, 1))
    2.0
    """
    a, b = _matrix(embeddings), _matrix(positives)
    if a.shape != b.shape:
        raise ValueError(f"pairs differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    return (F.normalize(a, dim=1) - F.normalize(b, dim=1)).square().sum(1).mean().item()


def uniformity(embeddings: Tensor, t: float = 2.0) -> float:
    """log of the mean of exp(-t ||u - v||²) over distinct pairs of L2-normalised embeddings."""
    z = F.normalize(_matrix(embeddings), dim=1)
    squared = torch.pdist(z).square()  # the N (N - 1) / 2 distinct pairs
    return (torch.logsumexp(-t * squared, 0) - math.log(len(squared))).item()


def collapse_level(embeddings: Tensor) -> float:
    """√D times the mean per-dimension std of L2-normalised embeddings: ~1 spread, 0 collapsed."""
    z = F.normalize(_matrix(embeddings), dim=1)
    return (z.std(dim=0).mean() * math.sqrt(z.shape[1])).item()


def embedding_quality(embeddings: Tensor, positives: Tensor | None = None) -> dict[str, float]:
    """All four measures (alignment only when `positives`, a second view of each row, is given).

    Returns:
        {"effective_rank", "uniformity", "collapse_level"[, "alignment"]}.
    """
    report = {
        "effective_rank": effective_rank(embeddings),
        "uniformity": uniformity(embeddings),
        "collapse_level": collapse_level(embeddings),
    }
    if positives is not None:
        report["alignment"] = alignment(embeddings, positives)
    return report


__all__ = ["alignment", "collapse_level", "effective_rank", "embedding_quality", "uniformity"]
