"""DrLIM's contrastive loss: pull similar pairs together, push dissimilar ones to a margin.

[0] DrLIM, Hadsell, Chopra and LeCun 2006, "Dimensionality Reduction by Learning an Invariant
    Mapping", CVPR, doi:10.1109/CVPR.2006.100, Eq. (4) with L_S and L_D of Eq. (3):

    L(W, Y, X₁, X₂) = (1 − Y) · ½ D_W² + Y · ½ · max(0, m − D_W)²,   D_W = ‖G_W(X₁) − G_W(X₂)‖₂

with Y = 0 for a similar pair and Y = 1 for a dissimilar one, averaged over the pairs.
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.dist.gather import gather_with_grad, rank


def drlim_margin_loss(
    embeddings_a: torch.Tensor,
    embeddings_b: torch.Tensor,
    dissimilar: torch.Tensor,
    margin: float = 1.0,
) -> torch.Tensor:
    """DrLIM's loss [0] over the pairs (row i of `embeddings_a`, row i of `embeddings_b`).

    The similar term is ½ D² written on the squared distance, so its gradient a_i − b_i is exact
    down to D = 0. The dissimilar term needs D itself; it is the square root of the squared
    distance clamped at the smallest normal float, so two coincident embeddings of a dissimilar
    pair get a zero gradient (D has no direction there) instead of NaN. Low-precision inputs
    (bf16 under autocast) are computed in float32.

    Args:
        embeddings_a: (N, D) outputs G_W(X₁).
        embeddings_b: (N, D) outputs G_W(X₂).
        dissimilar: (N,) bool, the paper's label Y: False for a similar pair, True for a
            dissimilar one.
        margin: m > 0; dissimilar pairs farther apart than m cost nothing.

    Returns:
        The scalar loss averaged over the N pairs.

    >>> a, b = torch.zeros(2, 2), torch.tensor([[0.0, 3.0], [0.0, 0.5]])
    >>> drlim_margin_loss(a, b, torch.tensor([False, True]), margin=1.0)
    tensor(2.3125)
    """
    if embeddings_a.shape != embeddings_b.shape or embeddings_a.ndim != 2:
        raise ValueError(
            f"expected two (N, D) tensors of equal shape, got {tuple(embeddings_a.shape)} and "
            f"{tuple(embeddings_b.shape)}"
        )
    if dissimilar.shape != embeddings_a.shape[:1] or dissimilar.dtype != torch.bool:
        raise ValueError(
            f"dissimilar must be a ({embeddings_a.shape[0]},) bool tensor (True = dissimilar), "
            f"got {dissimilar.dtype} {tuple(dissimilar.shape)}"
        )
    if embeddings_a.shape[0] == 0:
        raise ValueError("need at least one pair")
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")
    dtype = torch.promote_types(embeddings_a.dtype, torch.float32)
    difference = embeddings_a.to(dtype) - embeddings_b.to(dtype)  # N x D
    squared_distance = difference.square().sum(1)  # D_W², N
    distance = squared_distance.clamp_min(torch.finfo(dtype).tiny).sqrt()
    similar_term = 0.5 * squared_distance
    dissimilar_term = 0.5 * (margin - distance).clamp_min(0).square()
    return torch.where(dissimilar, dissimilar_term, similar_term).mean()


def drlim_batch_loss(
    anchors: torch.Tensor,
    partners: torch.Tensor,
    margin: float = 1.0,
    gather_distributed: bool = False,
) -> torch.Tensor:
    """DrLIM's loss [0] over a batch: row pairs are similar, every cross pair is dissimilar.

    The loss is the mean of `drlim_margin_loss` over the B similar pairs (a_i, b_i) plus its mean
    over the dissimilar pairs (a_i, b_j), j ≠ i: each kind is averaged on its own, so that the
    B − 1 dissimilar pairs of an anchor do not swamp its one similar pair. Dissimilar pairs are
    materialised as a (number of pairs) x D tensor, indexed on the device without a host sync.

    Args:
        anchors: (B, D) outputs G_W(X₁) of the anchors.
        partners: (B, D) outputs G_W(X₂) of their similar partners.
        margin: m in Eq. (4).
        gather_distributed: pair each local anchor with the partners of every process's batch
            (through a gradient-carrying all-gather), B·(W·B − 1) dissimilar pairs per process of
            W; the similar pairs stay local. Off: the B(B − 1) local cross pairs.

    Returns:
        The scalar loss of the local anchors.

    >>> drlim_batch_loss(torch.randn(4, 2), torch.randn(4, 2)).shape
    torch.Size([])
    """
    if anchors.shape != partners.shape or anchors.ndim != 2:
        raise ValueError(
            f"expected two (B, D) tensors of equal shape, got {tuple(anchors.shape)} and "
            f"{tuple(partners.shape)}"
        )
    # In float32 from here (bf16 under autocast): the gathers below then accumulate their
    # gradients in float32 too.
    dtype = torch.promote_types(anchors.dtype, torch.float32)
    anchors, partners = anchors.to(dtype), partners.to(dtype)
    batch = anchors.shape[0]
    if gather_distributed:
        all_partners, offset = gather_with_grad(partners), rank() * batch
    else:
        all_partners, offset = partners, 0
    total = all_partners.shape[0]  # W·B
    if total < 2:
        raise ValueError(f"DrLIM needs a batch of at least 2 for dissimilar pairs, got {total}")
    similar = torch.zeros(batch, dtype=torch.bool, device=anchors.device)
    pull = drlim_margin_loss(anchors, partners, similar, margin)
    # Anchor i (global index offset + i) against the total − 1 other partners, j = i + 1, ....
    rows = torch.arange(batch, device=anchors.device).repeat_interleave(total - 1)
    shifts = torch.arange(1, total, device=anchors.device).repeat(batch)
    columns = (rows + shifts + offset) % total
    dissimilar = torch.ones(len(rows), dtype=torch.bool, device=anchors.device)
    push = drlim_margin_loss(anchors[rows], all_partners[columns], dissimilar, margin)
    return pull + push


class DrLIMLoss(nn.Module):
    """Module form of `drlim_margin_loss`, holding the margin m.

    >>> loss = DrLIMLoss(margin=1.0)
    >>> loss(torch.randn(8, 2), torch.randn(8, 2), torch.rand(8) < 0.5).shape
    torch.Size([])
    """

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        if margin <= 0:
            raise ValueError(f"margin must be positive, got {margin}")
        self.margin = margin

    def forward(
        self, embeddings_a: torch.Tensor, embeddings_b: torch.Tensor, dissimilar: torch.Tensor
    ) -> torch.Tensor:
        return drlim_margin_loss(embeddings_a, embeddings_b, dissimilar, self.margin)
