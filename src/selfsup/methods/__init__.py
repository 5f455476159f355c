"""Methods: small modules that own their networks and whose forward(views) returns the loss.

Each method is a plug-in (`selfsup.methods.plugin`): its module declares its config, its view
recipe and its builder, and registers them; this package exports what each one declares.
Methods with a momentum network or a queue update them in `on_step_end(step, total_steps)`,
which the training loop calls after every optimiser step; call it too in your own loop.
"""

from selfsup.methods.momentum import cosine_momentum, freeze, momentum_copy, update_momentum
from selfsup.methods.plugin import (
    METHODS,
    MethodConfig,
    MethodPlugin,
    method_plugin,
    register_method,
    two_views,
)
from selfsup.methods.queue import KeyQueue
from selfsup.methods.registry import build_method, build_views, method_exports

globals().update(method_exports())

__all__ = [
    "METHODS",
    "KeyQueue",
    "MethodConfig",
    "MethodPlugin",
    "build_method",
    "build_views",
    "cosine_momentum",
    "freeze",
    "method_plugin",
    "momentum_copy",
    "register_method",
    "two_views",
    "update_momentum",
    *sorted(method_exports()),
]
