"""MoCo's dictionary: a FIFO queue of the most recent K keys, kept as a module buffer so it is
saved in checkpoints and moves with the model to its device.

[0] MoCo, He et al. 2019, arXiv:1911.05722, Sec. 3.2 ("Dictionary as a queue").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class KeyQueue(nn.Module):
    """A ring buffer of `size` unit-length keys of width `dim`; the oldest are overwritten first.

    By default it starts full of random unit vectors (as MoCo's code does), so a step never sees
    an empty dictionary; with `start_empty` it starts with no keys (SimCLRv2's memory) and
    `filled` counts the keys written so far, which sit in the leading rows until it is full. Any
    batch size works: a batch that runs past the end wraps around, and a batch larger than the
    queue keeps only its last `size` keys.

    >>> queue = KeyQueue(size=6, dim=4)
    >>> queue.enqueue(torch.randn(4, 4)); queue.enqueue(torch.randn(4, 4))
    >>> queue.keys.shape, int(queue.pointer)
    (torch.Size([6, 4]), 2)
    """

    keys: torch.Tensor
    pointer: torch.Tensor
    filled: torch.Tensor

    def __init__(
        self,
        size: int,
        dim: int,
        generator: torch.Generator | None = None,
        start_empty: bool = False,
    ) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"queue size and key width must be positive, got {size} and {dim}")
        if start_empty:
            initial = torch.zeros(size, dim)
        else:
            initial = F.normalize(torch.randn(size, dim, generator=generator), dim=1)
        self.register_buffer("keys", initial)
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))
        self.register_buffer("filled", torch.tensor(0 if start_empty else size))

    @property
    def size(self) -> int:
        return self.keys.shape[0]

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Append `keys` (B, dim), dropping the oldest B entries."""
        keys = keys.detach().to(self.keys.dtype)[-self.size :]
        count = keys.shape[0]
        # Slots pointer, pointer+1, … modulo size: one index_copy_, wrap-around included, and no
        # host sync (the pointer stays on the device).
        slots = (self.pointer + torch.arange(count, device=self.keys.device)) % self.size
        self.keys.index_copy_(0, slots, keys)
        self.pointer.copy_((self.pointer + count) % self.size)
        self.filled.copy_((self.filled + count).clamp(max=self.size))

    def ordered(self) -> torch.Tensor:
        """The keys written so far, oldest first (the loss does not care about order; tests and
        users may)."""
        filled = int(self.filled)
        if filled < self.size:
            return self.keys[:filled]
        return torch.roll(self.keys, -int(self.pointer), dims=0)
