"""Pieces shared by methods with a slowly moving copy of the network (MoCo's key encoder, BYOL's
target): the momentum update, BYOL's cosine schedule for its coefficient, and freezing.

[0] MoCo, He et al. 2019, arXiv:1911.05722, Eq. (2): θ_k ← m θ_k + (1 − m) θ_q.
[1] BYOL, Grill et al. 2020, arXiv:2006.07733, Sec. 3.2: τ = 1 − (1 − τ_base)(cos(πk/K) + 1)/2.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def freeze(module: nn.Module) -> nn.Module:
    """Stop gradients to every parameter of `module` (in place); returns it."""
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen deep copy of `module`: the starting point of a key encoder or target network."""
    return freeze(copy.deepcopy(module))


@torch.no_grad()
def update_momentum(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """θ_target ← m·θ_target + (1 − m)·θ_online for every parameter, as in MoCo [0] and BYOL [1].

    Buffers (BN running statistics) are not averaged: the target's own forward passes keep
    them, as both papers' code does. m = 0 copies the online weights, m = 1 freezes the target.
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    target_params = list(target.parameters())
    online_params = list(online.parameters())
    if len(target_params) != len(online_params):
        raise ValueError("target and online networks have different parameter lists")
    # One fused call over all tensors: θ_t += (1 − m)(θ_o − θ_t) ≡ lerp.
    torch._foreach_lerp_(target_params, online_params, 1.0 - momentum)


def cosine_momentum(step: int, total_steps: int, base: float) -> float:
    """BYOL's schedule [1]: `base` at step 0, rising along a half cosine to 1 at `total_steps`."""
    if total_steps <= 0:
        return 1.0
    progress = min(max(step / total_steps, 0.0), 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0
