"""Projection heads g(·) built from a list of widths (SimCLR: 2 layers, SimCLRv2: 3 layers)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

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
            `[in_dim, in_dim, 128]`. No widths is no head: g is the identity (SimCLR Fig. 8's
            "none").
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
        self.batch_norm = batch_norm
        self.last_batch_norm = last_batch_norm

    def spec(self) -> dict[str, Any]:
        """Every constructor argument, as JSON-able values: `from_spec` rebuilds the head."""
        return {
            "in_dim": self.in_dim,
            "widths": list(self.widths),
            "batch_norm": self.batch_norm,
            "last_batch_norm": self.last_batch_norm,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> ProjectionHead:
        """The head `spec()` describes; keys a spec lacks take the constructor's defaults."""
        return cls(
            spec["in_dim"],
            spec["widths"],
            batch_norm=spec.get("batch_norm", True),
            last_batch_norm=spec.get("last_batch_norm", False),
        )

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


class EncoderWithHead(nn.Module):
    """The encoder followed by the first `depth` layers of a projection head: the network that
    SimCLRv2 fine-tunes [Chen et al. 2020, arXiv:2006.10029, Sec. 2].

    depth 0 is the plain encoder (SimCLR's fine-tuning), 1 adds the head's first
    Linear-BN-ReLU (SimCLRv2's choice with a 3-layer head), and so on. `feature_dim` is the
    width of what it returns, so it drops in wherever an encoder does (fine-tuning, kNN, export).

    >>> from selfsup.models import build_encoder
    >>> encoder = build_encoder("resnet18", base_width=4)
    >>> trunk = EncoderWithHead(encoder, ProjectionHead(encoder.feature_dim, [64, 64, 16]), 1)
    >>> trunk(torch.randn(2, 3, 16, 16)).shape, trunk.feature_dim
    (torch.Size([2, 64]), 64)
    """

    def __init__(self, encoder: nn.Module, head: ProjectionHead, depth: int) -> None:
        super().__init__()
        if not 0 <= depth <= len(head.layers):
            raise ValueError(f"head depth must be in [0, {len(head.layers)}], got {depth}")
        self.encoder = encoder
        self.head_layers = nn.Sequential(*head.layers[:depth])
        self.depth = depth
        self.feature_dim = head.output_dim(depth)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head_layers(self.encoder(images))


class Classifier(nn.Module):
    """An encoder (or `EncoderWithHead`) and a linear layer from its features to class logits.

    The linear layer starts at zero: no draw from the RNG, and the first steps of fine-tuning
    fit it alone while the encoder's gradient is still zero.

    >>> Classifier(nn.Flatten(), 12, 3)(torch.randn(2, 3, 2, 2)).shape
    torch.Size([2, 3])
    """

    def __init__(self, encoder: nn.Module, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.linear = nn.Linear(feature_dim, num_classes)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.linear(self.encoder(images))
