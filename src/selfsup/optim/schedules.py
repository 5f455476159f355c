"""Schedules as tiny functions of the step, and the batch-size learning-rate rule."""

from __future__ import annotations

import math


def warmup_cosine(
    step: int, total_steps: int, warmup_steps: int, base: float, final: float = 0.0
) -> float:
    """Linear warm-up from base/warmup to `base`, then cosine decay to `final` at the last step.

    Step counts from 0; at `step = warmup_steps - 1` the value is `base`, and at
    `step = total_steps - 1` it is `final`.
    """
    if step < warmup_steps:
        return base * (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - 1 - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return final + (base - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def scaled_learning_rate(base_lr: float, batch_size: int, rule: str) -> float:
    """SimCLR's scaling: "linear" = base·B/256, "sqrt" = base·√B, "none" = base."""
    if rule == "linear":
        return base_lr * batch_size / 256
    if rule == "sqrt":
        return base_lr * math.sqrt(batch_size)
    if rule == "none":
        return base_lr
    raise ValueError(f"lr scaling rule must be 'linear', 'sqrt' or 'none', got {rule!r}")
