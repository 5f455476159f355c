"""Reading and writing configs: dataclass defaults ← a YAML recipe ← `--section.field` overrides.

Unknown keys, a field of another method, and wrong types are errors, never ignored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from selfsup.config.sections import RunConfig
from selfsup.errors import SelfsupError
from selfsup.methods import MethodConfig
from selfsup.methods.plugin import foreign_field_message, method_plugin


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint).replace("typing.", ""))


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check `value` against the annotation `hint`, converting only lossless cases (int→float,
    list→tuple)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except SelfsupError:
                continue
        raise SelfsupError(f"config key {key!r}: expected {_type_name(hint)}, got {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise SelfsupError(f"config key {key!r}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        if origin is tuple and args and args[-1] is not Ellipsis and len(args) != len(value):
            raise SelfsupError(f"config key {key!r}: expected {len(args)} values, got {value!r}")
        item_types = [args[0]] * len(value) if (not args or args[-1] is Ellipsis) else list(args)
        items = [_coerce(v, t, key) for v, t in zip(value, item_types, strict=True)]
        return origin(items)
    if hint is float and isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)  # YAML 1.1 reads "1e-3" as a string
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise SelfsupError(f"config key {key!r}: expected a finite number, got {value!r}")
        return float(value)
    if hint is Any or (isinstance(hint, type) and isinstance(value, hint)):
        if hint is int and isinstance(value, bool):
            raise SelfsupError(f"config key {key!r}: expected int, got {value!r}")
        return value
    raise SelfsupError(f"config key {key!r}: expected {_type_name(hint)}, got {value!r}")


def _apply(target: Any, updates: dict[str, Any], prefix: str = "") -> None:
    hints = typing.get_type_hints(type(target))
    names = {f.name for f in dataclasses.fields(target)}
    for name, value in updates.items():
        key = f"{prefix}{name}"
        if name not in names:
            raise SelfsupError(
                f"unknown config key {key!r}; valid keys here: {', '.join(sorted(names))}"
            )
        current = getattr(target, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise SelfsupError(f"config key {key!r} is a section; give it a mapping")
            if isinstance(current, MethodConfig):
                current = _method_section(current, value)
                setattr(target, name, current)
                value = {k: v for k, v in value.items() if k != "name"}
            _apply(current, value, f"{key}.")
        else:
            setattr(target, name, _coerce(value, hints[name], key))
    if hasattr(target, "__post_init__"):
        try:
            target.__post_init__()
        except ValueError as error:
            raise SelfsupError(f"config section {prefix.rstrip('.') or 'run'}: {error}") from None


def _method_section(current: MethodConfig, updates: dict[str, Any]) -> MethodConfig:
    """The method section `updates` apply to: a fresh config of the method they name (a new
    `name` starts from that method's defaults), after checking that each field is its own."""
    name = updates.get("name", current.name)
    try:
        plugin = method_plugin(name)
    except ValueError as error:
        raise SelfsupError(f"config key 'method.name': {error}") from None
    section = current if name == current.name else plugin.config()
    own = {f.name for f in dataclasses.fields(section)}
    for key in updates:
        if key not in own:
            raise SelfsupError(foreign_field_message(name, key))
    return section


def load_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> RunConfig:
    """Defaults ← YAML recipe at `path` ← dotted `overrides` ({"train.epochs": 5})."""
    config = RunConfig()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise SelfsupError(f"config file {path} not found; pass an existing YAML recipe")
        try:
            recipe = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise SelfsupError(
                f"config file {path} is not valid YAML: {error}".splitlines()[0]
            ) from None
        if not isinstance(recipe, dict):
            raise SelfsupError(f"config file {path} must hold a mapping of sections")
        recipe.pop("_meta", None)  # a run's saved config.yaml is a recipe too
        _apply(config, recipe)
    overrides = dict(overrides or {})
    if "train.epochs" in overrides and "train.time_budget" not in overrides:
        overrides["train.time_budget"] = None  # epochs given: they, not the recipe's budget, rule
    return apply_overrides(config, overrides)


def apply_overrides(config: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """Set dotted keys ({"train.epochs": 5}) in place, with the same checks as a recipe; all
    at once, so that fields checked together (warm-up and epochs) may change together."""
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        cursor = nested
        *parents, last = dotted.split(".")
        for part in parents:
            cursor = cursor.setdefault(part, {})
            if not isinstance(cursor, dict):
                raise SelfsupError(f"config key {dotted!r} sets a field inside a value")
        cursor[last] = value
    _apply(config, nested)
    return config


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain dict (tuples as lists) for YAML/JSON."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def save_config(config: RunConfig, path: str | Path, extra: dict[str, Any] | None = None) -> None:
    """Write the config (plus e.g. the command line and package version) as YAML."""
    document = config_to_dict(config)
    if extra:
        document = {"_meta": extra, **document}
    Path(path).write_text(yaml.safe_dump(document, sort_keys=False))


def config_from_dict(document: dict[str, Any]) -> RunConfig:
    """Inverse of `config_to_dict` (ignores the `_meta` block that `save_config` adds)."""
    config = RunConfig()
    _apply(config, {k: v for k, v in document.items() if k != "_meta"})
    return config
