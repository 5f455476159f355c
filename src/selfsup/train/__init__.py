"""Training: the loop, checkpoints and metric logging."""

from selfsup.train.checkpoint import (
    has_checkpoint,
    load_checkpoint,
    read_checkpoint,
    save_atomic,
    save_checkpoint,
)
from selfsup.train.loop import TrainSummary, train
from selfsup.train.metrics import MetricsLogger, plot_metrics, read_metrics
from selfsup.train.setup import autocast_context, build_optimizer, resolve_device

__all__ = [
    "MetricsLogger",
    "TrainSummary",
    "autocast_context",
    "build_optimizer",
    "has_checkpoint",
    "load_checkpoint",
    "plot_metrics",
    "read_checkpoint",
    "read_metrics",
    "resolve_device",
    "save_atomic",
    "save_checkpoint",
    "train",
]
