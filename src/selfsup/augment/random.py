"""Where the views' random numbers come from: a CPU generator, or one shared by all processes.

With several processes, every process holds the loop's generator in the same state; a
`ShardedDraws` makes each draw for the global batch and hands this process its rows. So no two
processes make the same view, the views of a sample do not depend on how many processes share
the batch, and a run resumed on a different number of processes continues the same stream.
The price is drawing world-size times as many numbers on the CPU (a few floats per sample).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class ShardedDraws:
    """The generator every process holds in the same state, and this process's share of a draw.

    A draw of shape (n, ...) is made as (world · n, ...) and rows rank·n … (rank + 1)·n are
    returned: the rows this process's samples would get on one process with the global batch.

    >>> generator = torch.Generator().manual_seed(0)
    >>> whole = uniform((4, 2), torch.Generator().manual_seed(0))
    >>> mine = uniform((2, 2), ShardedDraws(generator, rank=1, world=2))
    >>> torch.equal(mine, whole[2:])
    True
    """

    generator: torch.Generator
    rank: int
    world: int

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world:
            raise ValueError(f"rank must be in [0, {self.world}), got {self.rank}")
        if self.generator.device.type != "cpu":
            raise ValueError(f"views draw on a CPU generator, got one on {self.generator.device}")


Draws = torch.Generator | ShardedDraws | None


def uniform(shape: tuple[int, ...], source: Draws) -> Tensor:
    """U[0, 1) numbers of `shape` on the CPU, from a generator (None: torch's default) or this
    process's share of a `ShardedDraws`."""
    if isinstance(source, ShardedDraws):
        whole = torch.rand((source.world * shape[0], *shape[1:]), generator=source.generator)
        return whole.view(source.world, *shape)[source.rank]
    return torch.rand(shape, generator=source, device="cpu")


def integers(high: int, shape: tuple[int, ...], source: Draws) -> Tensor:
    """Integers uniform in [0, high) of `shape` on the CPU, drawn as `uniform` draws."""
    if isinstance(source, ShardedDraws):
        whole = torch.randint(
            high, (source.world * shape[0], *shape[1:]), generator=source.generator
        )
        return whole.view(source.world, *shape)[source.rank]
    return torch.randint(high, shape, generator=source)


def normal(shape: tuple[int, ...], source: Draws) -> Tensor:
    """Standard normal numbers of `shape` on the CPU, drawn as `uniform` draws."""
    if isinstance(source, ShardedDraws):
        whole = torch.randn((source.world * shape[0], *shape[1:]), generator=source.generator)
        return whole.view(source.world, *shape)[source.rank]
    return torch.randn(shape, generator=source, device="cpu")
