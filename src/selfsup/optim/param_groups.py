"""The one place that decides which parameters get weight decay and LARS adaptation."""

from __future__ import annotations

from typing import Any

from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split parameters: matrices/kernels get decay; biases and norm scales (ndim < 2) do not.

    The second group carries `lars_exclude=True`, which LARS reads to skip the trust ratio, as
    SimCLR does for biases and batch-norm parameters.
    """
    decay, no_decay = [], []
    for param in model.parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0, "lars_exclude": True},
    ]
