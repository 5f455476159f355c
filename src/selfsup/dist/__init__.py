"""Distributed helpers: gradient-carrying gathers and sums, rank queries, global batch norm."""

from selfsup.dist.batchnorm import GlobalBatchNorm, global_batch_norm, local_batch_norm
from selfsup.dist.gather import all_reduce_with_grad, gather_with_grad, rank, world_size

__all__ = [
    "GlobalBatchNorm",
    "all_reduce_with_grad",
    "gather_with_grad",
    "global_batch_norm",
    "local_batch_norm",
    "rank",
    "world_size",
]
