"""Barlow Twins: the loss of projections of both views, reaching encoder and projector."""

import pytest
import torch

from selfsup.losses import barlow_twins_loss
from selfsup.methods.barlow_twins import BarlowTwins
from selfsup.models import build_encoder


def _barlow_twins(**kwargs) -> BarlowTwins:
    torch.manual_seed(0)
    options = {"head_widths": [16, 16, 8], "redundancy_weight": 5e-3}
    return BarlowTwins(
        build_encoder("resnet18", in_channels=3, base_width=4), **{**options, **kwargs}
    )


def _views(seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(6, 3, 16, 16, generator=generator) for _ in range(2)]


def test_forward_is_a_finite_scalar_and_backward_reaches_encoder_and_projector() -> None:
    method = _barlow_twins()
    loss = method(_views())
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in method.encoder.parameters())
    # The last bias gets a gradient of ~0 (standardisation removes any shift), but not None.
    assert all(p.grad is not None for p in method.projection_head.parameters())
    assert any(p.grad.abs().sum() > 0 for p in method.encoder.parameters())


def test_loss_is_barlow_twins_on_projections_of_each_view_on_its_own() -> None:
    """Each view passes f and g alone (per-view BN, as the paper's code), not one 2N batch."""
    method = _barlow_twins(redundancy_weight=0.1)
    views = _views(1)
    first, second = (method.projection_head(method.encoder(view)) for view in views)
    expected = barlow_twins_loss(first, second, redundancy_weight=0.1)
    torch.testing.assert_close(method(views), expected)
    joint = method.projection_head(method.encoder(torch.cat(views)))
    concatenated = barlow_twins_loss(joint[:6], joint[6:], redundancy_weight=0.1)
    assert not torch.allclose(method(views), concatenated)  # the batch statistics differ


def test_validation() -> None:
    method = _barlow_twins()
    with pytest.raises(ValueError, match="2 views"):
        method(_views()[:1])
    with pytest.raises(ValueError, match="redundancy_weight"):
        _barlow_twins(redundancy_weight=-1.0)
