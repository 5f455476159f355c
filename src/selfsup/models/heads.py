"""Projection heads g(·) built from a list of widths (SimCLR: 2 layers, SimCLRv2: 3 layers)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn


class ProjectionHead(nn.Module):
    """An MLP `in_dim → widths[0] → … → widths[-1]`, Linear + BN + ReLU between layers.

    The last layer is linear (optionally followed by a BN without affine, as SimCLRv2/MoCo v3 do).
    SimCLRv2 fine-tunes from the middle of the head, so `forward(x, depth=k)` returns the output
    after the first k layers (0 = encoder features, len(widths) = full projection).

    Args:
        in_dim: encoder feature width.
        widths: output width of each layer; SimCLR's head is `[in_dim, 128]` and SimCLRv2's
            `[in_dim, in_dim, 128]`.
        batch_norm: BN after each hidden linear layer (SimCLR uses it; so does our default).
        last_batch_norm: BN (no affine) on the final output.

    >>> head = ProjectionHead(512, [512, 128])
    >>> head(torch.randn(4, 512)).shape
    torch.Size([4, 128])
    """

    def __init__(
        self,
        in_dim: int,
        widths: Sequence[int],
        batch_norm: bool = True,
        last_batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if not widths:
            raise ValueError("a projection head needs at least one layer width")
        layers: list[nn.Module] = []
        dims = [in_dim, *widths]
        for index, (dim_in, dim_out) in enumerate(itertools.pairwise(dims)):
            last = index == len(widths) - 1
            if last:
                block: list[nn.Module] = [nn.Linear(dim_in, dim_out, bias=not last_batch_norm)]
                if last_batch_norm:
                    block.append(nn.BatchNorm1d(dim_out, affine=False))
            else:
                block = [nn.Linear(dim_in, dim_out, bias=not batch_norm)]
                if batch_norm:
                    block.append(nn.BatchNorm1d(dim_out))
                block.append(nn.ReLU())
            layers.append(nn.Sequential(*block))
        self.layers = nn.ModuleList(layers)
        self.in_dim = in_dim
        self.widths = list(widths)

    def output_dim(self, depth: int | None = None) -> int:
        """Width of the output after `depth` layers (None = all)."""
        depth = len(self.layers) if depth is None else depth
        return self.in_dim if depth == 0 else self.widths[depth - 1]

    def forward(self, features: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        depth = len(self.layers) if depth is None else depth
        if not 0 <= depth <= len(self.layers):
            raise ValueError(f"depth must be in [0, {len(self.layers)}], got {depth}")
        for layer in self.layers[:depth]:
            features = layer(features)
        return features
