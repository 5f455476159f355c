"""What a method declares so that it can be trained by name: its config, views and builder.

A method module ends with `register_method(MethodPlugin(...))`. The registry (`METHODS`), the
config's `method` section, the CLI's `--method NAME` recipes and `--help`, and the package's
exports are all read from these declarations, so adding a method touches no other file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import nn

from selfsup.augment.config import ViewConfig
from selfsup.augment.makers import AugmentedViews, ViewMaker
from selfsup.methods.multicrop import multi_crop_views


@dataclass
class MethodConfig:
    """Base of every method's config section.

    Attributes:
        name: the registered method to train (its own fields follow in its config).
    """

    name: str = ""


ViewsBuilder = Callable[..., ViewMaker]
"""(method config, augment config, images, mean, std, dtype) → the view maker it trains on."""

Builder = Callable[[nn.Module, Any, Sequence[int]], nn.Module]
"""(encoder, method config, the model's head widths) → the method module."""


def two_views(
    config: MethodConfig,
    augment: ViewConfig,
    images: torch.Tensor | torch.utils.data.Dataset,
    mean: Sequence[float],
    std: Sequence[float],
    dtype: torch.dtype = torch.float32,
) -> ViewMaker:
    """The default view recipe: two views of the augment recipe (the second view may take its
    own `second_*` probabilities, as BYOL's asymmetric pair)."""
    if augment.local_crops:
        takers = sorted(p.name for p in METHODS.values() if p.views is multi_crop_views)
        raise ValueError(
            f"{config.name} takes two views; augment.local_crops (multi-crop) is for "
            f"{', '.join(takers) or 'methods that take several views'}"
        )
    return AugmentedViews.from_config(augment, 2, mean, std, dtype)


@dataclass(frozen=True)
class MethodPlugin:
    """A method as the registry sees it.

    Attributes:
        name: the `method.name` that selects it.
        config: its config dataclass, a `MethodConfig` whose `name` defaults to `name`; only
            its fields are accepted under `method.`.
        build: makes the method from an encoder, its config and `model.head_widths`.
        views: its view recipe (`two_views` unless it says otherwise).
        recipes: `--method` names that pick a bundled recipe, e.g. {"moco-v1": "moco-v1-..."}.
        exports: public names of its module, re-exported by `selfsup.methods` and `selfsup`.
    """

    name: str
    config: type[MethodConfig]
    build: Builder
    views: ViewsBuilder = two_views
    recipes: Mapping[str, str] = field(default_factory=dict)
    exports: Mapping[str, Any] = field(default_factory=dict)


METHODS: dict[str, MethodPlugin] = {}
"""Every registered method, by name."""


def register_method(plugin: MethodPlugin) -> MethodPlugin:
    """Add `plugin` to `METHODS` (registering the same declaration twice is harmless)."""
    names = {f.name for f in fields(plugin.config)}
    if not issubclass(plugin.config, MethodConfig) or "name" not in names:
        raise TypeError(f"{plugin.name}: config must be a MethodConfig dataclass")
    if plugin.config().name != plugin.name:
        raise ValueError(
            f"{plugin.name}: its config's name defaults to {plugin.config().name!r}, "
            f"not {plugin.name!r}"
        )
    known = METHODS.get(plugin.name)
    if known is not None and known.config.__qualname__ != plugin.config.__qualname__:
        raise ValueError(f"a method named {plugin.name!r} is already registered")
    taken = {recipe: other.name for other in METHODS.values() for recipe in other.recipes}
    for recipe in plugin.recipes:
        if taken.get(recipe, plugin.name) != plugin.name:
            raise ValueError(f"--method {recipe} already picks {taken[recipe]}'s recipe")
    METHODS[plugin.name] = plugin
    return plugin


def method_plugin(name: str) -> MethodPlugin:
    """The registered method `name`, or a ValueError that lists the names."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(sorted(METHODS))}")
    return METHODS[name]


def foreign_field_message(name: str, key: str) -> str:
    """Why `method.<key>` is refused for method `name`: whose field it is, and name's own."""
    owners = sorted(p.name for p in METHODS.values() if key in _field_names(p))
    where = f"it belongs to {', '.join(owners)}" if owners else "no method has it"
    own = ", ".join(sorted(_field_names(method_plugin(name)))) or "none"
    return f"method.{key} is not a field of {name} ({where}); {name}'s fields: {own}"


def method_recipes() -> dict[str, str]:
    """`--method NAME` → bundled recipe name, over every registered method."""
    return {recipe: path for p in METHODS.values() for recipe, path in p.recipes.items()}


def _field_names(plugin: MethodPlugin) -> set[str]:
    return {f.name for f in fields(plugin.config)} - {"name"}
