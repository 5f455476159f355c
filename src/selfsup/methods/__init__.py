"""Methods: small modules that own their networks and whose forward(views) returns the loss.

Methods with a momentum network or a queue update them in `on_step_end(step, total_steps)`,
which the training loop calls after every optimiser step; call it too in your own loop.
"""

from selfsup.methods.barlow_twins import BarlowTwins
from selfsup.methods.byol import BYOL
from selfsup.methods.cpc import CPC
from selfsup.methods.drlim import DrLIM
from selfsup.methods.moco import MoCo
from selfsup.methods.momentum import cosine_momentum, freeze, momentum_copy, update_momentum
from selfsup.methods.queue import KeyQueue
from selfsup.methods.registry import METHODS, build_method, build_views
from selfsup.methods.simclr import SimCLR

__all__ = [
    "BYOL",
    "CPC",
    "METHODS",
    "BarlowTwins",
    "DrLIM",
    "KeyQueue",
    "MoCo",
    "SimCLR",
    "build_method",
    "build_views",
    "cosine_momentum",
    "freeze",
    "momentum_copy",
    "update_momentum",
]
