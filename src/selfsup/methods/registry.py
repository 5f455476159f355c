"""Build a method by name from the run config; adding a method = one entry here + its file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from selfsup.augment.makers import AugmentedViews, ViewMaker
from selfsup.augment.pairs import NeighbourPairs
from selfsup.augment.patches import PatchViews
from selfsup.data.neighbours import pixel_neighbours
from selfsup.errors import SelfsupError
from selfsup.methods.barlow_twins import BarlowTwins
from selfsup.methods.byol import BYOL
from selfsup.methods.cpc import CPC
from selfsup.methods.drlim import DrLIM
from selfsup.methods.moco import MoCo
from selfsup.methods.simclr import SimCLR


def _simclr(encoder: nn.Module, config: Any) -> nn.Module:
    return SimCLR(
        encoder,
        head_widths=config.model.head_widths,
        temperature=config.method.temperature,
        gather_distributed=config.method.gather_distributed,
        memory_size=config.method.memory_size,
        momentum=config.method.momentum,
    )


def _moco(encoder: nn.Module, config: Any) -> nn.Module:
    return MoCo(
        encoder,
        head_widths=config.model.head_widths,
        temperature=config.method.temperature,
        momentum=config.method.momentum,
        queue_size=config.method.queue_size,
        shuffle_bn=config.method.shuffle_bn,
        symmetric=config.method.symmetric,
    )


def _byol(encoder: nn.Module, config: Any) -> nn.Module:
    return BYOL(
        encoder,
        head_widths=config.model.head_widths,
        predictor_widths=config.method.predictor_widths,
        base_momentum=config.method.momentum,
    )


def _barlow_twins(encoder: nn.Module, config: Any) -> nn.Module:
    return BarlowTwins(
        encoder,
        head_widths=config.model.head_widths,
        redundancy_weight=config.method.redundancy_weight,
        gather_distributed=config.method.gather_distributed,
    )


def _drlim(encoder: nn.Module, config: Any) -> nn.Module:
    return DrLIM(
        encoder,
        head_widths=config.model.head_widths,
        margin=config.method.margin,
        gather_distributed=config.method.gather_distributed,
    )


def _cpc(encoder: nn.Module, config: Any) -> nn.Module:
    return CPC(
        encoder,
        patch_size=config.method.patch_size,
        stride=config.method.patch_stride,
        prediction_steps=config.method.prediction_steps,
        temperature=config.method.temperature,
        gather_distributed=config.method.gather_distributed,
    )


METHODS: dict[str, Callable[[nn.Module, Any], nn.Module]] = {
    "simclr": _simclr,
    "moco": _moco,
    "byol": _byol,
    "barlow_twins": _barlow_twins,
    "drlim": _drlim,
    "cpc": _cpc,
}


def build_views(
    config: Any,
    images: torch.Tensor | torch.utils.data.Dataset,
    mean: Sequence[float],
    std: Sequence[float],
    dtype: torch.dtype = torch.float32,
) -> ViewMaker:
    """The view maker the configured method trains on (two augmented views unless it says),
    making its views in `dtype`."""
    method = config.method
    if method.name == "cpc":
        return PatchViews.from_config(
            config.augment, method.patch_size, method.patch_stride, mean, std, dtype
        )
    if method.name == "drlim":
        if method.pairs == "neighbours":
            if not isinstance(images, torch.Tensor):
                raise SelfsupError(
                    "DrLIM's neighbour pairs look images up in memory; drop --data.stream or use "
                    "--method.pairs augment"
                )
            # The paper's similar pairs: an image and one of its k nearest neighbours in pixels.
            neighbours = pixel_neighbours(images, method.neighbours)
            return NeighbourPairs(images, neighbours, mean, std, dtype=dtype)
        if method.pairs != "augment":
            raise SelfsupError(
                f"method.pairs must be 'neighbours' or 'augment', got {method.pairs!r}"
            )
    return AugmentedViews.from_config(config.augment, 2, mean, std, dtype)


def build_method(encoder: nn.Module, config: Any) -> nn.Module:
    """The method named by `config.method.name`, wrapping `encoder` (a `RunConfig` is passed)."""
    name = config.method.name
    if name not in METHODS:
        raise SelfsupError(f"unknown method {name!r}; choose one of {', '.join(sorted(METHODS))}")
    return METHODS[name](encoder, config)
