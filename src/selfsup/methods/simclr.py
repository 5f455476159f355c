"""SimCLR: two augmented views, encoder f, projection head g, NT-Xent; and SimCLRv2's additions.

[0] SimCLR, Chen et al. 2020, arXiv:2002.05709, Algorithm 1.
[1] SimCLRv2, Chen et al. 2020, arXiv:2006.10029, Sec. 2: a deeper head (3 layers, fine-tuned
    from its middle) and a memory of negatives from a momentum copy of the network, as in MoCo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from selfsup.checks import check_float, check_int
from selfsup.dist.gather import gather_with_grad
from selfsup.losses.nt_xent import nt_xent_loss
from selfsup.methods.momentum import momentum_copy, update_momentum
from selfsup.methods.plugin import MethodConfig, MethodPlugin, register_method
from selfsup.methods.queue import KeyQueue
from selfsup.models.heads import ProjectionHead
from selfsup.models.registry import feature_dim


class SimCLR(nn.Module):
    """h = f(x̃), z = g(h); the loss pulls the two views of an image together in z.

    With `memory_size` > 0 it is SimCLRv2's variant [1]: a momentum copy of f and g encodes both
    views, and its unit-length projections go into a queue whose keys are extra negatives in
    every anchor's NT-Xent denominator. The queue starts empty, so the first step's loss is
    plain NT-Xent.

    Args:
        encoder: any backbone with a `feature_dim` attribute.
        head_widths: projection-head layer widths (SimCLR: `[hidden, 128]`; SimCLRv2: three
            layers, `[hidden, hidden, 128]`).
        temperature: NT-Xent τ.
        gather_distributed: negatives from the global batch across processes.
        memory_size: K keys in SimCLRv2's memory (0: no memory, no momentum network).
        momentum: m of the memory network's update θ_k ← m θ_k + (1 − m) θ.
    """

    def __init__(
        self,
        encoder: nn.Module,
        head_widths: Sequence[int] = (512, 128),
        temperature: float = 0.5,
        gather_distributed: bool = False,
        memory_size: int = 0,
        momentum: float = 0.999,
    ) -> None:
        super().__init__()
        if memory_size < 0:
            raise ValueError(f"memory_size must be >= 0, got {memory_size}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self.encoder = encoder
        self.projection_head = ProjectionHead(feature_dim(encoder), head_widths)
        self.temperature = temperature
        self.gather_distributed = gather_distributed
        self.momentum = momentum
        self.memory: KeyQueue | None = None
        if memory_size:
            self.memory_encoder = momentum_copy(self.encoder)
            self.memory_head = momentum_copy(self.projection_head)
            self.memory = KeyQueue(memory_size, head_widths[-1], start_empty=True)

    def forward(self, views: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(views) != 2:
            raise ValueError(f"SimCLR takes 2 views, got {len(views)}")
        batch = views[0].shape[0]
        both = torch.cat(list(views))
        # One pass over both views: BN statistics are those of the whole 2N batch, as in the paper.
        projections = self.projection_head(self.encoder(both))  # 2N x D
        if self.memory is None:
            return nt_xent_loss(
                projections[:batch], projections[batch:], self.temperature, self.gather_distributed
            )
        # Clones: the loss keeps them for backward, and enqueueing below overwrites the buffers.
        memory, filled = self.memory.keys.clone(), self.memory.filled.clone()
        loss = nt_xent_loss(
            projections[:batch],
            projections[batch:],
            self.temperature,
            self.gather_distributed,
            memory=memory,
            memory_filled=filled,
        )
        if self.training:
            with torch.no_grad():
                keys = self.memory_head(self.memory_encoder(both))
                keys = nn.functional.normalize(keys.float(), dim=1)
                if self.gather_distributed:
                    keys = gather_with_grad(keys)  # every process's keys, as MoCo does
                self.memory.enqueue(keys)
        return loss

    @torch.no_grad()
    def on_step_end(self, step: int, total_steps: int) -> None:
        """Move the memory network towards the online one (nothing to do without a memory)."""
        if self.memory is not None:
            update_momentum(self.memory_encoder, self.encoder, self.momentum)
            update_momentum(self.memory_head, self.projection_head, self.momentum)


@dataclass
class SimCLRConfig(MethodConfig):
    """SimCLR's hyper-parameters (SimCLRv2's with a memory).

    Attributes:
        name: simclr.
        temperature: NT-Xent's softmax temperature τ (0.5 in SimCLR's CIFAR runs, 0.1-0.2 for
            big batches).
        gather_distributed: negatives come from the global batch across processes.
        memory_size: SimCLRv2's memory of momentum-encoded negatives, in keys (0: none).
        momentum: m of the memory network, θ_k ← m θ_k + (1 − m) θ (used with a memory only).
    """

    name: str = "simclr"
    temperature: float = 0.5
    gather_distributed: bool = True
    memory_size: int = 0
    momentum: float = 0.999

    def __post_init__(self) -> None:
        check_float("temperature", self.temperature, 0, 100, low_open=True)
        check_int("memory_size", self.memory_size, 0)
        check_float("momentum", self.momentum, 0, 1)


def build_simclr(encoder: nn.Module, config: SimCLRConfig, head_widths: Sequence[int]) -> SimCLR:
    """SimCLR from its config section and the model's head widths."""
    return SimCLR(
        encoder,
        head_widths=head_widths,
        temperature=config.temperature,
        gather_distributed=config.gather_distributed,
        memory_size=config.memory_size,
        momentum=config.momentum,
    )


register_method(
    MethodPlugin(
        "simclr",
        SimCLRConfig,
        build_simclr,
        recipes={"simclr": "simclr-fashion-mnist", "simclr-v2": "simclr-v2-fashion-mnist"},
        exports={"SimCLR": SimCLR, "SimCLRConfig": SimCLRConfig},
    )
)
