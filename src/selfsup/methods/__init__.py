"""Methods: small modules that own their networks and whose forward(views) returns the loss."""

from selfsup.methods.registry import METHODS, build_method, build_views
from selfsup.methods.simclr import SimCLR

__all__ = ["METHODS", "SimCLR", "build_method", "build_views"]
