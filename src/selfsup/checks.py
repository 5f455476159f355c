"""Range and choice checks for config fields: each config dataclass validates itself with these in
`__post_init__`, so a bad value fails where it is set, with the field's name and what is allowed.

They raise `ValueError`; the config loader turns it into one `selfsup: error:` line naming the
section. Bounds above are generous sanity limits: a value past them is a typo, not a recipe.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

LARGEST_COUNT = 10**7
"""Upper bound for counts and sizes (epochs, widths, queue lengths): larger is a typo."""


def check_int(
    name: str, value: Any, low: int, high: int = LARGEST_COUNT, optional: bool = False
) -> None:
    """`value` is an int in [low, high] (or None when `optional`)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        allowed = f"an integer in [{low}, {high:,}]" + (" or null" if optional else "")
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def check_float(
    name: str,
    value: Any,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
) -> None:
    """`value` is a finite number in the interval from `low` to `high` (ends open when asked)."""
    if value is None and optional:
        return
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    inside = (
        number
        and math.isfinite(value)
        and (low < value if low_open else low <= value)
        and (value < high if high_open else value <= high)
    )
    if not inside:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")


def check_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    """`value` is one of `choices`."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def check_widths(name: str, widths: Any, high: int = 65536, allow_empty: bool = False) -> None:
    """A list of layer widths, each in [1, high]; empty only when `allow_empty`."""
    if widths is None or (not widths and not allow_empty):
        raise ValueError(f"{name} must list at least one layer width, got {widths!r}")
    for width in widths:
        check_int(f"{name} entries", width, 1, high)
