"""Distributed helpers: gradient-carrying gathers and sums, rank queries."""

from selfsup.dist.gather import all_reduce_with_grad, gather_with_grad, rank, world_size

__all__ = ["all_reduce_with_grad", "gather_with_grad", "rank", "world_size"]
