"""Training for a wall-clock budget: "15m" becomes a number of steps, measured, not guessed.

The loop runs `MEASURE_AFTER + MEASURE_STEPS` steps with the provisional schedule, times the last
`MEASURE_STEPS` of them (the first ones pay for allocation and compilation), and from then on
trains for the steps that fit in what is left of the budget. It plans again after a tenth of
the steps left, and again halfway through what is left then, each time from the steps timed
since the plan before: a short stall cannot skew the length, and steps that slow down as the
run goes are caught. The cosine schedule is set for the planned number of steps, which the
checkpoints record, so a resumed run follows the same schedule.
"""

from __future__ import annotations

import math
import re

MEASURE_AFTER = 3
"""Steps run before the timing starts (allocator and compile warm-up)."""
MEASURE_STEPS = 10
"""Steps timed to estimate the step time."""

REPLAN_FRACTIONS = (0.1, 0.5)
"""After the first plan, plan again after these fractions of the steps left, each from the
steps timed since the plan before."""

LONGEST = 30 * 24 * 3600.0
"""The longest budget: past a month it is a typo."""
_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*$")


def parse_duration(text: str | float | int) -> float:
    """Seconds in "90s", "15m", "1.5h" or a plain number of seconds; a ValueError otherwise.

    >>> parse_duration("15m"), parse_duration("1.5h"), parse_duration(30)
    (900.0, 5400.0, 30.0)
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text).lower())
        if not match:
            raise ValueError(f"time_budget must look like 90s, 15m or 1.5h, got {text!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not math.isfinite(seconds) or not 0 < seconds <= LONGEST:
        raise ValueError(
            f"time_budget must be a positive duration of at most 30 days, got {text!r}"
        )
    return seconds


def steps_within_budget(
    budget_seconds: float, elapsed_seconds: float, steps_done: int, step_seconds: float, cap: int
) -> int:
    """Total steps: those done plus those that fit in the rest of the budget, at least one more
    than done and at most `cap` (the `train.epochs` limit).

    >>> steps_within_budget(100.0, 10.0, 13, 0.5, cap=1000)
    193
    """
    remaining = max(0.0, budget_seconds - elapsed_seconds)
    more = math.floor(remaining / max(step_seconds, 1e-9))
    return min(cap, steps_done + max(1, more))
