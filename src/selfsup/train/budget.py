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
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch

from selfsup.dist.gather import rank
from selfsup.dist.launch import mean_over_processes

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


@dataclass
class Schedule:
    """How many steps the run takes and how its learning rate moves along them."""

    steps_per_epoch: int
    total_steps: int  # with a time budget: the upper bound until it is planned
    cap: int  # train.epochs' steps: no plan goes beyond
    warmup_steps: int
    budget: float | None  # seconds, or None: train for all epochs
    measure_from: int = MEASURE_AFTER  # with a budget: the steps timed to plan it
    measure_until: int = MEASURE_AFTER + MEASURE_STEPS
    measure_start: float = 0.0  # perf_counter() when step measure_from began
    planned: bool = False  # total_steps comes from a measurement
    plans: int = 0  # how many times it was planned
    replan_at: int | None = None  # the step of the next plan
    final: bool = False  # total_steps will not change again


def follow_budget(
    schedule: Schedule, step: int, started: float, device: torch.device, progress: Any = None
) -> None:
    """Plan a time budget from measured step times, then plan again as the run goes: after
    `MEASURE_STEPS` timed steps, and then after each of `REPLAN_FRACTIONS` of the steps left,
    each time from the steps since the previous plan. A short stall in the first window
    (another process, a page fault) or steps that slow down later (a warm machine, a fuller
    allocator) therefore do not set the run's length. Every process plans at the same step with
    the mean time, so all agree."""
    if schedule.plans == 0 and step == schedule.measure_from:
        schedule.measure_start = time.perf_counter()
    due = schedule.measure_until if schedule.plans == 0 else schedule.replan_at
    if step != due:
        return
    schedule.total_steps = plan_budget(
        schedule.budget,  # type: ignore[arg-type]
        started,
        schedule.measure_start,
        step - schedule.measure_from,
        step,
        schedule.cap,
        device,
    )
    schedule.planned = True
    schedule.plans += 1
    if schedule.plans > len(REPLAN_FRACTIONS):
        schedule.final = True
    else:
        left = schedule.total_steps - step
        fraction = REPLAN_FRACTIONS[schedule.plans - 1]
        schedule.replan_at = step + max(MEASURE_STEPS, math.ceil(fraction * left))
        schedule.final = schedule.replan_at >= schedule.total_steps
    schedule.measure_from, schedule.measure_start = step, time.perf_counter()
    if progress is not None:
        progress.total = schedule.total_steps


def plan_budget(
    budget: float,
    started: float,
    measure_start: float,
    timed_steps: int,
    step: int,
    cap: int,
    device: torch.device,
) -> int:
    """The run's total steps under a time budget, from the time of the last `timed_steps` steps
    (since `measure_start`); every process takes the mean estimate, so all agree."""
    now = time.perf_counter()
    seconds = [(now - measure_start) / max(1, timed_steps), now - started]
    timed = torch.tensor(seconds, device=device)
    step_seconds, elapsed = mean_over_processes(timed).tolist()
    total = steps_within_budget(budget, elapsed, step, step_seconds, cap)
    if rank() == 0:
        print(
            f"selfsup: time budget {budget:.0f} s: {step_seconds:.3f} s/step over {timed_steps} "
            f"steps -> {total} steps{' (the train.epochs cap)' if total == cap else ''}",
            file=sys.stderr,
            flush=True,
        )
    return total
