"""`--section.field VALUE` flags for every config field, described from the dataclasses.

Each flag's help line is the field's entry in its class's `Attributes:` docstring section,
with its type and default; method fields list the methods that have them.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import typing
from typing import Any

import yaml

from selfsup.config.sections import RunConfig
from selfsup.methods import METHODS

_ENTRY = re.compile(r"^(\s*)([a-z_][a-z0-9_]*(?:\s*,\s*[a-z_][a-z0-9_]*)*):\s+(.*)$")


def field_descriptions(cls: type) -> dict[str, str]:
    """Field name → its one-paragraph description in `cls`'s `Attributes:` docstring section
    (an entry "a, b: text" describes a and b; indented lines continue an entry)."""
    lines = (inspect.getdoc(cls) or "").splitlines()
    if "Attributes:" not in lines:
        return {}
    descriptions: dict[str, list[str]] = {}
    current: list[str] = []
    indent = None
    for line in lines[lines.index("Attributes:") + 1 :]:
        if line and not line.startswith(" "):
            break  # the next docstring section
        match = _ENTRY.match(line)
        if match and (indent is None or len(match.group(1)) == indent):
            indent = len(match.group(1))
            current = [match.group(3).strip()]
            for name in re.split(r"\s*,\s*", match.group(2)):
                descriptions[name] = current
        elif line.strip() and current:
            current.append(line.strip())
    return {name: " ".join(words).rstrip(".") for name, words in descriptions.items()}


def _type_label(hint: Any) -> str:
    """A short type for the metavar: INT, FLOAT, STR, BOOL, LIST, or A|NULL."""
    origin = typing.get_origin(hint)
    if origin in (tuple, list):
        return "LIST"
    options = typing.get_args(hint) if origin is not None else ()
    if options:
        return "|".join("NULL" if o is type(None) else _type_label(o) for o in options)
    return getattr(hint, "__name__", str(hint)).upper()


def _escape(text: str) -> str:
    return text.replace("%", "%%")  # argparse formats help with %; label fractions hold "1%"


def _shown(value: Any) -> str:
    return "null" if value is None else repr(list(value) if isinstance(value, tuple) else value)


def add_override_arguments(parser: argparse.ArgumentParser) -> None:
    """One `--section.field VALUE` flag per config field (values parsed as YAML scalars)."""
    group = parser.add_argument_group(
        "config overrides (any field of the recipe; values are YAML: 5, 0.1, true, [1, 2], null)"
    )
    defaults = RunConfig()
    run_hints = typing.get_type_hints(RunConfig)
    run_docs = field_descriptions(RunConfig)
    for section in dataclasses.fields(defaults):
        value = getattr(defaults, section.name)
        if section.name == "method":
            _add_method_arguments(group)
        elif dataclasses.is_dataclass(value):
            hints, docs = typing.get_type_hints(type(value)), field_descriptions(type(value))
            for sub in dataclasses.fields(value):
                group.add_argument(
                    f"--{section.name}.{sub.name}",
                    dest=f"override:{section.name}.{sub.name}",
                    default=None,
                    metavar=_type_label(hints[sub.name]),
                    help=_escape(
                        f"{docs.get(sub.name, '')} (default: {_shown(getattr(value, sub.name))})"
                    ),
                )
        else:
            group.add_argument(
                f"--{section.name.replace('_', '-')}",
                dest=f"override:{section.name}",
                default=None,
                metavar=_type_label(run_hints[section.name]),
                help=_escape(f"{run_docs.get(section.name, '')} (default: {_shown(value)})"),
            )


def _add_method_arguments(group: argparse._ArgumentGroup) -> None:
    """`--method.name` and the union of the methods' fields; each flag says whose it is."""
    owners: dict[str, list[tuple[str, Any, str, str]]] = {}
    for plugin in sorted(METHODS.values(), key=lambda p: p.name):
        config, docs = plugin.config(), field_descriptions(plugin.config)
        hints = typing.get_type_hints(plugin.config)
        for sub in dataclasses.fields(config):
            if sub.name != "name":
                default, text = getattr(config, sub.name), docs.get(sub.name, "")
                entry = (plugin.name, default, text, _type_label(hints[sub.name]))
                owners.setdefault(sub.name, []).append(entry)
    group.add_argument(
        "--method.name",
        dest="override:method.name",
        default=None,
        metavar="STR",
        help="the method to train: " + ", ".join(sorted(METHODS)) + " (its fields start from "
        "its defaults; --method NAME picks its bundled recipe instead)",
    )
    for name in sorted(owners):
        entries = owners[name]
        texts = {text for _, _, text, _ in entries}
        if len(texts) == 1:
            described = texts.pop()
        else:
            described = "; ".join(f"{method}: {text}" for method, _, text, _ in entries)
        defaults = ", ".join(f"{method} {_shown(value)}" for method, value, _, _ in entries)
        group.add_argument(
            f"--method.{name}",
            dest=f"override:method.{name}",
            default=None,
            metavar=entries[0][3],
            help=_escape(
                f"[{', '.join(m for m, *_ in entries)}] {described} (default: {defaults})"
            ),
        )


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The overrides given on the command line, values parsed as YAML ("5" → 5, "[1, 2]" → list)."""
    overrides = {}
    for dest, text in vars(args).items():
        if dest.startswith("override:") and text is not None:
            try:
                value = yaml.safe_load(text)
            except yaml.YAMLError:
                value = text
            overrides[dest.removeprefix("override:")] = value
    return overrides
