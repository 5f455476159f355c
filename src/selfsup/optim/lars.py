"""LARS: SGD with momentum and a per-layer trust ratio (You et al. 2017, arXiv:1708.03888).

As SimCLR uses it: for a weight w with gradient g and decay λ, the update direction is
d = g + λw, scaled by η‖w‖/‖d‖ (the trust ratio), then fed to heavy-ball momentum:

    v ← μ·v + lr · η‖w‖/‖g + λw‖ · (g + λw)
    w ← w − v

Parameter groups with `lars_exclude=True` (biases, BN) skip both the decay and the trust ratio.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


class LARS(torch.optim.Optimizer):
    """Layer-wise Adaptive Rate Scaling.

    Args:
        params: parameters or groups; a group may set `lars_exclude=True`.
        lr: learning rate.
        momentum: μ.
        weight_decay: λ (not applied to excluded groups).
        trust_coefficient: η (1e-3 in SimCLR).
        eps: guards the division when a norm is zero.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 1e-6,
        trust_coefficient: float = 1e-3,
        eps: float = 1e-8,
    ) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0 or trust_coefficient <= 0:
            raise ValueError("lr, momentum and weight_decay must be ≥ 0 and trust_coefficient > 0")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            trust_coefficient=trust_coefficient,
            eps=eps,
            lars_exclude=False,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                update = param.grad
                if not group["lars_exclude"]:
                    if group["weight_decay"]:
                        update = update.add(param, alpha=group["weight_decay"])
                    param_norm = torch.linalg.vector_norm(param)
                    update_norm = torch.linalg.vector_norm(update)
                    trust_ratio = torch.where(
                        (param_norm > 0) & (update_norm > 0),
                        group["trust_coefficient"] * param_norm / (update_norm + group["eps"]),
                        torch.ones_like(param_norm),
                    )
                    update = update * trust_ratio
                state = self.state[param]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(param)
                buffer = state["momentum_buffer"]
                buffer.mul_(group["momentum"]).add_(update, alpha=group["lr"])
                param.sub_(buffer)
        return loss
