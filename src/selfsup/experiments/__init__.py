"""Experiments that reproduce a paper's figure or pipeline end to end: train, measure, report."""

from selfsup.experiments import (  # noqa: F401  (their studies register on import)
    augment_pairs,
    local_features,
    method_ablations,
    randbit,
    simclr_ablations,
    suppression,
)
from selfsup.experiments.drlim_map import drlim_map
from selfsup.experiments.semisup import semisup
from selfsup.experiments.study import STUDIES, run_study

__all__ = ["STUDIES", "drlim_map", "run_study", "semisup"]
