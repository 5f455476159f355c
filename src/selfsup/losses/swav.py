"""SwAV: swapped prediction of cluster assignments computed online with Sinkhorn-Knopp.

[0] SwAV, Caron et al. 2020, arXiv:2006.09882, Eq. (1)-(3) and Appendix A.1:

    Q* = Diag(u) exp(Cᵀ Z / ε) Diag(v)      (K prototypes × B images, rows summing to 1/K and
                                             columns to 1/B: an equipartition of the batch)
    ℓ(z_t, q_s) = −Σ_k q_s^(k) log softmax_k(z_tᵀ c_k / τ)

The codes q of each global crop are computed without gradient from its scores, and every
other crop predicts them; the loss averages ℓ over those (code, crop) pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.dist.gather import world_size


def _all_reduce(tensor: torch.Tensor, distributed: bool) -> torch.Tensor:
    if distributed and world_size() > 1:
        torch.distributed.all_reduce(tensor)
    return tensor


@torch.no_grad()
def sinkhorn_knopp(
    scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3, distributed: bool = False
) -> torch.Tensor:
    """Soft codes (B, K) for scores (B, K) = zᵀc: exp(scores / ε), then `iterations` rounds of
    scaling the prototypes' totals to 1/K and the images' to 1/B; each returned row sums to 1.

    Args:
        scores: each image's similarity to each prototype.
        epsilon: ε, the entropy weight (0.05 in [0]; smaller is sharper).
        iterations: Sinkhorn rounds (3 in [0]).
        distributed: the totals over every process's images (the batch is the global one).
    """
    if scores.ndim != 2:
        raise ValueError(f"expected (B, K) scores, got {tuple(scores.shape)}")
    if epsilon <= 0 or iterations < 1:
        raise ValueError(f"need epsilon > 0 and iterations >= 1, got {epsilon}, {iterations}")
    dtype = torch.promote_types(scores.dtype, torch.float32)
    scores = scores.to(dtype) / epsilon
    peak = scores.max()  # one constant for every process's scores: it cancels in the scaling
    if distributed and world_size() > 1:
        torch.distributed.all_reduce(peak, op=torch.distributed.ReduceOp.MAX)
    codes = torch.exp(scores - peak).T  # K x B
    count = scores.shape[0] * (world_size() if distributed else 1)
    prototypes = codes.shape[0]
    tiny = torch.finfo(dtype).tiny  # a prototype or image whose mass underflowed stays at 0
    codes /= _all_reduce(codes.sum(), distributed)
    for _ in range(iterations):
        codes /= _all_reduce(codes.sum(dim=1, keepdim=True), distributed).clamp_min(tiny)
        codes /= prototypes
        codes /= codes.sum(dim=0, keepdim=True).clamp_min(tiny) * count
    return (codes * count).T


def swav_loss(
    scores: Sequence[torch.Tensor], codes: Sequence[torch.Tensor], temperature: float = 0.1
) -> torch.Tensor:
    """Eq. (3) over crops: the mean over code crops s and every other crop t of
    −Σ_k q_s log softmax(scores_t / τ), averaged over the batch.

    Args:
        scores: (B, K) prototype scores of every crop; the first `len(codes)` are the crops
            the codes came from (the global views).
        codes: (B, K) soft codes of those crops (from `sinkhorn_knopp`; no gradient).
        temperature: τ (0.1 in [0]).
    """
    if not codes or len(scores) < 2 or len(codes) > len(scores):
        raise ValueError(f"need codes for 1..{len(scores)} crops of {len(scores)} (at least 2)")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    total, pairs = 0.0, 0
    for source, code in enumerate(codes):
        code = code.detach()
        for target, score in enumerate(scores):
            if target == source:
                continue
            dtype = torch.promote_types(score.dtype, torch.float32)
            log_probabilities = F.log_softmax(score.to(dtype) / temperature, dim=1)
            total = total - (code.to(dtype) * log_probabilities).sum(dim=1).mean()
            pairs += 1
    return total / pairs


class SwAVLoss(nn.Module):
    """Module form: codes by `sinkhorn_knopp` from the first `code_crops` crops' scores, then
    `swav_loss`.

    >>> loss = SwAVLoss()
    >>> loss([torch.randn(8, 5) for _ in range(3)]).shape
    torch.Size([])
    """

    def __init__(
        self,
        temperature: float = 0.1,
        epsilon: float = 0.05,
        iterations: int = 3,
        code_crops: int = 2,
    ) -> None:
        super().__init__()
        self.temperature, self.epsilon, self.iterations = temperature, epsilon, iterations
        self.code_crops = code_crops

    def forward(self, scores: Sequence[torch.Tensor]) -> torch.Tensor:
        codes = [
            sinkhorn_knopp(score, self.epsilon, self.iterations)
            for score in scores[: self.code_crops]
        ]
        return swav_loss(scores, codes, self.temperature)


__all__ = ["SwAVLoss", "sinkhorn_knopp", "swav_loss"]
