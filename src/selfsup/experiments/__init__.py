"""Experiments that reproduce a paper's figure or pipeline end to end: train, measure, report."""

from selfsup.experiments.drlim_map import drlim_map
from selfsup.experiments.semisup import semisup

__all__ = ["drlim_map", "semisup"]
