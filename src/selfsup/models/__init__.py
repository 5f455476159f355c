"""Encoders f(·) and heads g(·)."""

from selfsup.models.export import load_encoder, save_encoder
from selfsup.models.heads import ProjectionHead
from selfsup.models.registry import ENCODERS, build_encoder, feature_dim, register_encoder
from selfsup.models.resnet import BasicBlock, Bottleneck, ResNet

__all__ = [
    "ENCODERS",
    "BasicBlock",
    "Bottleneck",
    "ProjectionHead",
    "ResNet",
    "build_encoder",
    "feature_dim",
    "load_encoder",
    "register_encoder",
    "save_encoder",
]
