"""Build a method by name from the run config; adding a method = one entry here + its file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from selfsup.errors import SelfsupError
from selfsup.methods.simclr import SimCLR


def _simclr(encoder: nn.Module, config: Any) -> nn.Module:
    return SimCLR(
        encoder,
        head_widths=config.model.head_widths,
        temperature=config.method.temperature,
        gather_distributed=config.method.gather_distributed,
    )


METHODS: dict[str, Callable[[nn.Module, Any], nn.Module]] = {"simclr": _simclr}


def build_method(encoder: nn.Module, config: Any) -> nn.Module:
    """The method named by `config.method.name`, wrapping `encoder` (a `RunConfig` is passed)."""
    name = config.method.name
    if name not in METHODS:
        raise SelfsupError(f"unknown method {name!r}; choose one of {', '.join(sorted(METHODS))}")
    return METHODS[name](encoder, config)
