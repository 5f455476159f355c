"""Encoders f(·) and heads g(·)."""

from selfsup.models.export import build_from_architecture, load_encoder, save_encoder
from selfsup.models.heads import ProjectionHead
from selfsup.models.patches import PatchGrid
from selfsup.models.registry import ENCODERS, build_encoder, feature_dim, register_encoder
from selfsup.models.resnet import BasicBlock, Bottleneck, ResNet

__all__ = [
    "ENCODERS",
    "BasicBlock",
    "Bottleneck",
    "PatchGrid",
    "ProjectionHead",
    "ResNet",
    "build_encoder",
    "build_from_architecture",
    "feature_dim",
    "load_encoder",
    "register_encoder",
    "save_encoder",
]
