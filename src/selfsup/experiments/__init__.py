"""Experiments that reproduce a paper's figure end to end: train, measure, plot."""

from selfsup.experiments.drlim_map import drlim_map

__all__ = ["drlim_map"]
