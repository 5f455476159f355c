"""Tiny images and a tiny conv encoder shared by the evaluation tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from selfsup.data.base import ImageDataset


class TinyConvEncoder(nn.Module):
    """conv-BN-ReLU-pool: enough to tell bright from dark images, fast on a CPU."""

    def __init__(self, channels: int = 1, width: int = 8, declare_dim: bool = True) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        if declare_dim:
            self.feature_dim = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def bright_dark(n: int, seed: int, size: int = 8) -> ImageDataset:
    """Class 0: dark noise in [0, 100); class 1: bright noise in [155, 255); half each."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    noise = torch.randint(0, 100, (n, 1, size, size), generator=g)
    images = (noise + 155 * labels.view(-1, 1, 1, 1)).to(torch.uint8)
    return ImageDataset(images, labels, ["dark", "bright"], "bright-dark")


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Every eval test runs on one thread (the shared fixture in tests/conftest.py)."""


@pytest.fixture
def make_encoder() -> Callable[..., TinyConvEncoder]:
    def build(seed: int = 0, **kwargs: object) -> TinyConvEncoder:
        torch.manual_seed(seed)
        return TinyConvEncoder(**kwargs)  # type: ignore[arg-type]

    return build


@pytest.fixture
def make_bright_dark() -> Callable[..., ImageDataset]:
    return bright_dark
