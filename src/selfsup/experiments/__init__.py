"""Experiments that reproduce a paper's figure or pipeline end to end: train, measure, report."""

from selfsup.experiments import augment_pairs, randbit, suppression  # noqa: F401  (studies)
from selfsup.experiments.drlim_map import drlim_map
from selfsup.experiments.semisup import semisup
from selfsup.experiments.study import STUDIES, run_study

__all__ = ["STUDIES", "drlim_map", "run_study", "semisup"]
