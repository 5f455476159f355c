"""MoCo's shuffling BN: the key encoder sees a batch permuted across processes, so its per-process
BN statistics cannot reveal which key is a query's positive.

[0] MoCo, He et al. 2019, arXiv:1911.05722, Sec. 3.3 ("Shuffling BN").
"""

from __future__ import annotations

import torch
import torch.distributed as torch_dist

from selfsup.dist.gather import gather_with_grad, rank, world_size


@torch.no_grad()
def batch_shuffle(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """This process's share of a random permutation of the global batch, and the order that
    undoes it (pass it to `batch_unshuffle`). With one process: the batch itself and None."""
    if world_size() == 1:
        return images, None
    everything = gather_with_grad(images)  # (B·world, ...)
    permutation = torch.randperm(len(everything), device=images.device)
    torch_dist.broadcast(permutation, src=0)  # every process uses rank 0's permutation
    mine = permutation.view(world_size(), -1)[rank()]
    return everything[mine], torch.argsort(permutation)


@torch.no_grad()
def batch_unshuffle(outputs: torch.Tensor, unshuffle: torch.Tensor | None) -> torch.Tensor:
    """Outputs of the shuffled batch, back in this process's original order."""
    if unshuffle is None:
        return outputs
    everything = gather_with_grad(outputs)
    return everything[unshuffle.view(world_size(), -1)[rank()]]
