"""InfoNCE of CPC on a grid of patches: predict the patch k rows below from the context.

[0] CPC, van den Oord et al. 2018, arXiv:1807.03748, Eq. (4) (InfoNCE) and Section 3.3.
[1] CPC v2, Hénaff et al. 2019, arXiv:1905.09272, Eq. (2)-(3):

    ẑ_{i+k,j} = W_k c_{i,j}
    L_k = −Σ_{i,j} log exp(ẑᵀ z_{i+k,j}) / (exp(ẑᵀ z_{i+k,j}) + Σ_l exp(ẑᵀ z_l)),  ẑ = ẑ_{i+k,j}

where the negatives z_l are all the other patch embeddings of the batch, from the same image
and from the others. The scores are plain dot products (the log-bilinear model f_k of [0]);
a temperature τ divides them and defaults to 1, the papers' form.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.dist.gather import gather_with_grad, rank


def cpc_info_nce(
    predictions: torch.Tensor,
    targets: torch.Tensor,
    step: int,
    temperature: float = 1.0,
    gather_distributed: bool = False,
) -> torch.Tensor:
    """InfoNCE of predictions `step` rows ahead against every patch embedding of the batch [1].

    Args:
        predictions: (B, rows − step, cols, D); `predictions[b, r, c]` is ẑ for the patch
            `targets[b, r + step, c]`, made from the context at (r, c).
        targets: (B, rows, cols, D) patch embeddings z; all B·rows·cols of them are candidates.
        step: k, how many rows below the context the predicted patch lies (1 <= k < rows).
        temperature: τ dividing the dot-product scores; 1 is the papers' loss.
        gather_distributed: candidates are the patch embeddings of every process's batch
            (W·B·rows·cols, through a gradient-carrying all-gather). Off: the local B·rows·cols.

    Returns:
        The scalar loss averaged over the B·(rows − k)·cols local predictions.

    >>> targets = torch.randn(2, 4, 4, 8)
    >>> cpc_info_nce(torch.randn(2, 3, 4, 8), targets, step=1).shape
    torch.Size([])
    """
    if targets.ndim != 4 or predictions.ndim != 4:
        raise ValueError(
            "expected (B, rows − step, cols, D) predictions and (B, rows, cols, D) targets, got "
            f"{tuple(predictions.shape)} and {tuple(targets.shape)}"
        )
    batch, rows, cols, dim = targets.shape
    if not 1 <= step < rows:
        raise ValueError(f"step must be in [1, rows) = [1, {rows}), got {step}")
    if predictions.shape != (batch, rows - step, cols, dim):
        raise ValueError(
            f"predictions {step} rows ahead of {tuple(targets.shape)} targets must have shape "
            f"{(batch, rows - step, cols, dim)}, got {tuple(predictions.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    candidates = targets.reshape(batch * rows * cols, dim)  # M x D, M = B·rows·cols
    if gather_distributed:
        candidates = gather_with_grad(candidates)  # M·W x D
    queries = predictions.reshape(-1, dim)  # N x D, N = B·(rows − k)·cols
    # τ divides the N x D queries rather than the N x M logits: the same scores, less work.
    logits = (queries / temperature) @ candidates.T  # N x M
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16 → fp32 softmax
    # The positive of prediction (b, r, c) is patch (b, r + k, c), at that flat index in M.
    flat_index = torch.arange(batch * rows * cols, device=targets.device)
    positive_index = flat_index.view(batch, rows, cols)[:, step:].reshape(-1)
    if gather_distributed:  # this process's patches sit at rows rank·M.. of the gathered ones
        positive_index = positive_index + rank() * batch * rows * cols
    return F.cross_entropy(logits, positive_index)


class CPCInfoNCELoss(nn.Module):
    """Module form of `cpc_info_nce`, holding τ and the distributed choice.

    >>> loss = CPCInfoNCELoss()
    >>> loss(torch.randn(2, 2, 3, 8), torch.randn(2, 4, 3, 8), step=2).shape
    torch.Size([])
    """

    def __init__(self, temperature: float = 1.0, gather_distributed: bool = False) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature
        self.gather_distributed = gather_distributed

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor, step: int) -> torch.Tensor:
        return cpc_info_nce(predictions, targets, step, self.temperature, self.gather_distributed)
