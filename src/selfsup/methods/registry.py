"""Build the configured method and its views from the registered plug-ins.

Every module of `selfsup.methods` is imported once here, so a method that registers itself in
its own module (see `selfsup.methods.plugin`) is known without being listed anywhere.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from selfsup.augment.makers import ViewMaker
from selfsup.errors import SelfsupError
from selfsup.methods.plugin import METHODS, MethodPlugin, method_plugin


def discover_methods() -> None:
    """Import every module of the `selfsup.methods` package (each registers its method)."""
    package = sys.modules["selfsup.methods"]  # imported first: this module is part of it
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"selfsup.methods.{module.name}")


def method_exports() -> dict[str, Any]:
    """The public names every registered method exports (its class, its config, ...)."""
    return {name: value for plugin in METHODS.values() for name, value in plugin.exports.items()}


def build_views(
    config: Any,
    images: torch.Tensor | torch.utils.data.Dataset,
    mean: Sequence[float],
    std: Sequence[float],
    dtype: torch.dtype = torch.float32,
) -> ViewMaker:
    """The view maker the configured method trains on (a `RunConfig` is passed), making its
    views in `dtype`."""
    plugin = _plugin(config.method.name)
    try:
        return plugin.views(config.method, config.augment, images, mean, std, dtype)
    except ValueError as error:
        raise SelfsupError(str(error)) from None


def build_method(encoder: nn.Module, config: Any) -> nn.Module:
    """The method named by `config.method.name`, wrapping `encoder` (a `RunConfig` is passed)."""
    plugin = _plugin(config.method.name)
    return plugin.build(encoder, config.method, config.model.head_widths)


def _plugin(name: str) -> MethodPlugin:
    try:
        return method_plugin(name)
    except ValueError as error:
        raise SelfsupError(str(error)) from None


discover_methods()
