"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

[0] SimCLR, Chen et al. 2020, arXiv:2002.05709, Algorithm 1 and Eq. (1):

    ℓ(i, j) = −log exp(sim(z_i, z_j)/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ)
    L = 1/(2N) Σ_k [ℓ(2k−1, 2k) + ℓ(2k, 2k−1)]

over the 2N views of a batch of N images, sim = cosine similarity.

[1] SimCLRv2, Chen et al. 2020, arXiv:2006.10029, Sec. 2: a memory of momentum-encoded
    projections (as in MoCo) joins the denominator as extra negatives,

    ℓ(i, j) = −log exp(s_ij/τ) / (Σ_{k≠i} exp(s_ik/τ) + Σ_m exp(sim(z_i, k_m)/τ)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.dist.gather import gather_with_grad, rank


def nt_xent_loss(
    embeddings_a: torch.Tensor,
    embeddings_b: torch.Tensor,
    temperature: float = 0.5,
    gather_distributed: bool = False,
    memory: torch.Tensor | None = None,
    memory_filled: torch.Tensor | None = None,
) -> torch.Tensor:
    """NT-Xent between two views: row i of `embeddings_a` and row i of `embeddings_b` are positives.

    Args:
        embeddings_a: (N, D) projections of the first views.
        embeddings_b: (N, D) projections of the second views of the same images.
        temperature: τ in Eq. (1).
        gather_distributed: take negatives from every process's batch (global batch of 2·N·world
            views) through a gradient-carrying all-gather. Off: negatives are the local 2N − 2.
        memory: (K, D) extra negatives for every anchor, unit-length (SimCLRv2's memory [1]);
            no gradient flows into them.
        memory_filled: how many leading rows of `memory` hold keys (a 0-d tensor, so no host
            sync); the rest are left out of the denominator. Default: all K.

    Returns:
        The scalar loss averaged over the 2N local anchors.
    """
    if embeddings_a.shape != embeddings_b.shape or embeddings_a.ndim != 2:
        raise ValueError(
            f"expected two (N, D) tensors of equal shape, got {tuple(embeddings_a.shape)} and "
            f"{tuple(embeddings_b.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    batch = embeddings_a.shape[0]
    anchors = F.normalize(torch.cat([embeddings_a, embeddings_b]), dim=1)  # 2N x D
    if gather_distributed:
        all_a = gather_with_grad(anchors[:batch])
        all_b = gather_with_grad(anchors[batch:])
        offset = rank() * batch
    else:
        all_a, all_b, offset = anchors[:batch], anchors[batch:], 0
    candidates = torch.cat([all_a, all_b])  # 2M x D, M = N·world
    total = all_a.shape[0]
    logits = anchors @ candidates.T / temperature  # 2N x 2M
    local = torch.arange(batch, device=anchors.device)
    self_index = torch.cat([offset + local, total + offset + local])
    positive_index = torch.cat([total + offset + local, offset + local])
    rows = torch.arange(2 * batch, device=anchors.device)
    logits = logits.to(
        torch.promote_types(logits.dtype, torch.float32)
    )  # bf16 → fp32 for the softmax
    logits[rows, self_index] = float("-inf")  # a view is never its own negative
    if memory is not None:
        memory_logits = (anchors @ memory.detach().to(anchors.dtype).T / temperature).to(
            logits.dtype
        )
        if memory_filled is not None:
            empty = torch.arange(memory.shape[0], device=memory.device) >= memory_filled
            memory_logits = memory_logits.masked_fill(empty, float("-inf"))
        logits = torch.cat([logits, memory_logits], dim=1)  # 2N x (2M + K)
    return F.cross_entropy(logits, positive_index)


class NTXentLoss(nn.Module):
    """Module form of `nt_xent_loss`, holding τ and the distributed choice.

    >>> loss = NTXentLoss(temperature=0.5)
    >>> loss(torch.randn(8, 128), torch.randn(8, 128)).shape
    torch.Size([])
    """

    def __init__(self, temperature: float = 0.5, gather_distributed: bool = False) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature
        self.gather_distributed = gather_distributed

    def forward(self, embeddings_a: torch.Tensor, embeddings_b: torch.Tensor) -> torch.Tensor:
        return nt_xent_loss(embeddings_a, embeddings_b, self.temperature, self.gather_distributed)
