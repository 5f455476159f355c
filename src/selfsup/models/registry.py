"""Named encoders, so configs and saved architecture JSON can rebuild a network by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from selfsup.errors import SelfsupError
from selfsup.models import resnet
from selfsup.models.timm_encoder import PREFIX as TIMM_PREFIX
from selfsup.models.timm_encoder import build_timm_encoder

ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet.resnet18,
    "resnet34": resnet.resnet34,
    "resnet50": resnet.resnet50,
    "resnet101": resnet.resnet101,
    "resnet152": resnet.resnet152,
}


def register_encoder(name: str, builder: Callable[..., nn.Module]) -> None:
    """Add a builder `builder(**kwargs) -> nn.Module` with a `feature_dim` attribute."""
    ENCODERS[name] = builder


def check_encoder_name(name: str) -> None:
    """A registered encoder or a `timm:`-prefixed timm model; otherwise a ValueError."""
    if name not in ENCODERS and not (name.startswith(TIMM_PREFIX) and len(name) > len(TIMM_PREFIX)):
        raise ValueError(
            f"unknown encoder {name!r}: encoder must be one of {', '.join(sorted(ENCODERS))}, "
            f"or {TIMM_PREFIX}MODEL for any timm model"
        )


def build_encoder(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered encoder, or a timm model (`timm:NAME`, keyword arguments of
    `TimmEncoder`); unknown names give the list of valid ones."""
    try:
        check_encoder_name(name)
    except ValueError as error:
        raise SelfsupError(str(error)) from None
    if name.startswith(TIMM_PREFIX):
        return build_timm_encoder(name, **kwargs)
    return ENCODERS[name](**kwargs)


def feature_dim(encoder: nn.Module) -> int:
    """The encoder's output width: its `feature_dim` attribute (required of user backbones)."""
    dim = getattr(encoder, "feature_dim", None)
    if not isinstance(dim, int):
        raise SelfsupError(
            f"{type(encoder).__name__} has no integer `feature_dim`; set it to the width of its "
            "output features"
        )
    return dim
