"""What a training run is set up with: its device, its precision and its optimiser."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from selfsup.errors import SelfsupError
from selfsup.optim.lars import LARS
from selfsup.optim.param_groups import param_groups
from selfsup.optim.schedules import scaled_learning_rate


def resolve_device(name: str = "auto") -> torch.device:
    """ "auto" picks cuda, then mps, then cpu."""
    if name != "auto":
        try:
            device = torch.device(name)
        except RuntimeError:
            raise SelfsupError(
                f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps"
            ) from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise SelfsupError(
                "device 'cuda' requested but CUDA is not available; use --train.device cpu"
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on GPU by default ("auto"), fp32 on CPU; "bf16"/"fp32" force it."""
    if precision not in ("auto", "bf16", "fp32"):
        raise SelfsupError(f"precision must be auto, bf16 or fp32, got {precision!r}")
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if not use_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def build_optimizer(model: nn.Module, optim_config: Any, batch_size: int) -> torch.optim.Optimizer:
    """LARS, SGD or AdamW over the shared decay/no-decay parameter groups."""
    lr = scaled_learning_rate(optim_config.lr, batch_size, optim_config.lr_scaling)
    groups = param_groups(model, optim_config.weight_decay)
    name = optim_config.optimizer
    if name == "lars":
        return LARS(
            groups, lr=lr, momentum=optim_config.momentum, weight_decay=optim_config.weight_decay
        )
    for group in groups:
        group.pop("lars_exclude", None)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=optim_config.momentum)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise SelfsupError(f"unknown optimizer {name!r}; choose lars, sgd or adamw")
