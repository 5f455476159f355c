"""InfoNCE with a dictionary of negatives, MoCo's contrastive loss.

[0] MoCo, He et al. 2019, arXiv:1911.05722, Eq. (1):

    L_q = −log exp(q·k₊/τ) / (exp(q·k₊/τ) + Σ_{i=1..K} exp(q·k_i/τ))

for a query q, its positive key k₊ (the other view of the same image, from the key encoder) and
K negative keys k_i (the queue); all vectors are L2-normalised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def info_nce_loss(
    queries: torch.Tensor,
    positive_keys: torch.Tensor,
    negative_keys: torch.Tensor,
    temperature: float = 0.07,
) -> torch.Tensor:
    """Eq. (1) averaged over the N queries.

    Args:
        queries: (N, D) query embeddings q (normalised here).
        positive_keys: (N, D) their positive keys k₊ (normalised here).
        negative_keys: (K, D) keys shared by every query as negatives (normalised here).
        temperature: τ (0.07 in MoCo v1, 0.2 in v2).

    Returns:
        The scalar loss; the positive is class 0 of a (1 + K)-way softmax.
    """
    if queries.ndim != 2 or queries.shape != positive_keys.shape:
        raise ValueError(
            f"expected queries and positive keys of equal shape (N, D), got "
            f"{tuple(queries.shape)} and {tuple(positive_keys.shape)}"
        )
    if negative_keys.ndim != 2 or negative_keys.shape[1] != queries.shape[1]:
        raise ValueError(
            f"expected negative keys of shape (K, {queries.shape[1]}), got "
            f"{tuple(negative_keys.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    dtype = torch.promote_types(queries.dtype, torch.float32)  # bf16 → fp32 for the softmax
    queries = F.normalize(queries.to(dtype), dim=1)
    positive_keys = F.normalize(positive_keys.to(dtype), dim=1)
    negative_keys = F.normalize(negative_keys.to(dtype), dim=1)
    positive_logits = (queries * positive_keys).sum(1, keepdim=True)  # N x 1
    negative_logits = queries @ negative_keys.T  # N x K
    logits = torch.cat([positive_logits, negative_logits], dim=1) / temperature
    targets = torch.zeros(len(queries), dtype=torch.long, device=queries.device)
    return F.cross_entropy(logits, targets)


class InfoNCELoss(nn.Module):
    """Module form of `info_nce_loss`, holding τ."""

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature

    def forward(
        self, queries: torch.Tensor, positive_keys: torch.Tensor, negative_keys: torch.Tensor
    ) -> torch.Tensor:
        return info_nce_loss(queries, positive_keys, negative_keys, self.temperature)
