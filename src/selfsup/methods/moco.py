"""MoCo v1 and v2: a query encoder trained against a momentum key encoder and a queue of keys.

[0] MoCo, He et al. 2019, arXiv:1911.05722, Algorithm 1.
[1] MoCo v2, Chen et al. 2020, arXiv:2003.04297: an MLP head, blur in the views, τ = 0.2.

v1 and v2 differ only in their recipe: v1's head is one linear layer (`head_widths=[128]`),
v2's an MLP (`[2048, 128]`, fc-ReLU-fc with no BN, as in [1]'s code); both are this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.checks import check_float, check_int
from selfsup.dist.gather import gather_with_grad
from selfsup.dist.shuffle import batch_shuffle, batch_unshuffle
from selfsup.losses.info_nce import info_nce_loss
from selfsup.methods.momentum import momentum_copy, update_momentum
from selfsup.methods.plugin import MethodConfig, MethodPlugin, register_method
from selfsup.methods.queue import KeyQueue
from selfsup.models.heads import ProjectionHead
from selfsup.models.registry import feature_dim


class MoCo(nn.Module):
    """q = g(f(x_q)), k = g_k(f_k(x_k)) from the momentum copy; InfoNCE of q vs k and the queue.

    The key encoder gets no gradient; `on_step_end` (called by the loop after each optimiser
    step) moves it by θ_k ← m θ_k + (1 − m) θ_q. The batch's keys join the queue after the loss
    is computed, so a query never sees its own positive among the negatives.

    Args:
        encoder: backbone with a `feature_dim` attribute (the query encoder f_q).
        head_widths: projection-head widths ([128] = v1's linear head, [2048, 128] = v2's MLP).
        temperature: τ of InfoNCE (0.07 in v1, 0.2 in v2).
        momentum: m of the key encoder (0.999 in the paper).
        queue_size: K, the number of negative keys.
        shuffle_bn: shuffle the key batch across processes (no effect on one process).
        head_batch_norm: BN in the head's hidden layers (off in MoCo v2; on in later variants).
        symmetric: also let the second view query the first view's key and average the two
            losses (the symmetrised loss of [1]'s ablations and MoCo v3); both keys join the
            queue. Off by default, as in the papers.
    """

    def __init__(
        self,
        encoder: nn.Module,
        head_widths: Sequence[int] = (2048, 128),
        temperature: float = 0.2,
        momentum: float = 0.999,
        queue_size: int = 4096,
        shuffle_bn: bool = True,
        head_batch_norm: bool = False,
        symmetric: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self.encoder = encoder
        self.projection_head = ProjectionHead(
            feature_dim(encoder), head_widths, batch_norm=head_batch_norm
        )
        self.key_encoder = momentum_copy(self.encoder)
        self.key_head = momentum_copy(self.projection_head)
        self.queue = KeyQueue(queue_size, head_widths[-1])
        self.temperature = temperature
        self.momentum = momentum
        self.shuffle_bn = shuffle_bn
        self.symmetric = symmetric

    @torch.no_grad()
    def keys(self, images: torch.Tensor) -> torch.Tensor:
        """Unit-length keys from the momentum encoder, with shuffled BN across processes."""
        if self.shuffle_bn:
            images, unshuffle = batch_shuffle(images)
        keys = F.normalize(self.key_head(self.key_encoder(images)), dim=1)
        return batch_unshuffle(keys, unshuffle) if self.shuffle_bn else keys

    def forward(self, views: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(views) != 2:
            raise ValueError(f"MoCo takes 2 views (query, key), got {len(views)}")
        # The clone is what the loss saved for backward; enqueueing below writes the buffer.
        negatives = self.queue.keys.clone()
        if self.symmetric:
            batch = views[0].shape[0]
            both = torch.cat(list(views))
            queries = self.projection_head(self.encoder(both))
            keys = self.keys(torch.cat([views[1], views[0]]))
            loss = (
                info_nce_loss(queries[:batch], keys[:batch], negatives, self.temperature)
                + info_nce_loss(queries[batch:], keys[batch:], negatives, self.temperature)
            ) / 2
        else:
            queries = self.projection_head(self.encoder(views[0]))
            keys = self.keys(views[1])
            loss = info_nce_loss(queries, keys, negatives, self.temperature)
        if self.training:
            self.queue.enqueue(gather_with_grad(keys))  # every process's keys, as in [0]
        return loss

    @torch.no_grad()
    def on_step_end(self, step: int, total_steps: int) -> None:
        """The momentum update of the key encoder and head (Eq. 2 of [0])."""
        update_momentum(self.key_encoder, self.encoder, self.momentum)
        update_momentum(self.key_head, self.projection_head, self.momentum)


@dataclass
class MoCoConfig(MethodConfig):
    """MoCo's hyper-parameters (v1 and v2 differ by recipe: temperature, head, augmentation).

    Attributes:
        name: moco.
        temperature: InfoNCE's τ (0.07 in v1, 0.2 in v2).
        momentum: the key encoder's constant momentum m, θ_k ← m θ_k + (1 − m) θ_q.
        queue_size: the dictionary size K, in keys (any size; it need not divide by the batch).
        shuffle_bn: shuffle the key encoder's batch across processes so BN cannot leak.
        symmetric: each view also queries the other's key, and the two losses are averaged.
    """

    name: str = "moco"
    temperature: float = 0.5
    momentum: float = 0.999
    queue_size: int = 4096
    shuffle_bn: bool = True
    symmetric: bool = False

    def __post_init__(self) -> None:
        check_float("temperature", self.temperature, 0, 100, low_open=True)
        check_float("momentum", self.momentum, 0, 1)
        check_int("queue_size", self.queue_size, 1)


def build_moco(encoder: nn.Module, config: MoCoConfig, head_widths: Sequence[int]) -> MoCo:
    """MoCo from its config section and the model's head widths."""
    return MoCo(
        encoder,
        head_widths=head_widths,
        temperature=config.temperature,
        momentum=config.momentum,
        queue_size=config.queue_size,
        shuffle_bn=config.shuffle_bn,
        symmetric=config.symmetric,
    )


register_method(
    MethodPlugin(
        "moco",
        MoCoConfig,
        build_moco,
        recipes={
            "moco": "moco-v2-fashion-mnist",
            "moco-v1": "moco-v1-fashion-mnist",
            "moco-v2": "moco-v2-fashion-mnist",
        },
        exports={"MoCo": MoCo, "MoCoConfig": MoCoConfig},
    )
)
