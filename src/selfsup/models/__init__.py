"""Encoders f(·) and heads g(·)."""

from selfsup.models.export import (
    build_classifier,
    build_from_architecture,
    load_classifier,
    load_encoder,
    load_head,
    save_classifier,
    save_encoder,
    save_head,
)
from selfsup.models.heads import Classifier, EncoderWithHead, ProjectionHead
from selfsup.models.patches import PatchGrid
from selfsup.models.registry import ENCODERS, build_encoder, feature_dim, register_encoder
from selfsup.models.resnet import BasicBlock, Bottleneck, ResNet

__all__ = [
    "ENCODERS",
    "BasicBlock",
    "Bottleneck",
    "Classifier",
    "EncoderWithHead",
    "PatchGrid",
    "ProjectionHead",
    "ResNet",
    "build_classifier",
    "build_encoder",
    "build_from_architecture",
    "feature_dim",
    "load_classifier",
    "load_encoder",
    "load_head",
    "register_encoder",
    "save_classifier",
    "save_encoder",
    "save_head",
]
