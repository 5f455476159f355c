"""Distributed helpers: gradient-carrying gathers and rank queries."""

from selfsup.dist.gather import gather_with_grad, rank, world_size

__all__ = ["gather_with_grad", "rank", "world_size"]
