"""Optimisers, parameter groups and schedules."""

from selfsup.optim.lars import LARS
from selfsup.optim.param_groups import param_groups
from selfsup.optim.schedules import scaled_learning_rate, warmup_cosine

__all__ = ["LARS", "param_groups", "scaled_learning_rate", "warmup_cosine"]
