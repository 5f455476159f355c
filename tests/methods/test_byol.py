"""BYOL: symmetric normalised regression onto a frozen EMA target with the cosine τ schedule."""

import pytest
import torch

from selfsup.losses import negative_cosine_loss
from selfsup.methods import BYOL, cosine_momentum
from selfsup.models import build_encoder


def _byol(**kwargs) -> BYOL:
    torch.manual_seed(0)
    options = {"head_widths": [16, 8], "predictor_widths": [16, 8], "base_momentum": 0.9}
    return BYOL(build_encoder("resnet18", base_width=4), **{**options, **kwargs})


def _views(seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 3, 16, 16, generator=generator) for _ in range(2)]


def test_loss_is_symmetric_regression_onto_the_target() -> None:
    byol = _byol()
    views = _views()
    loss = byol(views)
    # Each view alone through each network (batch norm never mixes the two views).
    predictions = [byol.predictor(byol.projection_head(byol.encoder(view))) for view in views]
    targets = [byol.target_head(byol.target_encoder(view)) for view in views]
    expected = negative_cosine_loss(predictions[0], targets[1]) + negative_cosine_loss(
        predictions[1], targets[0]
    )
    torch.testing.assert_close(loss, expected)
    both = torch.cat(views)  # one pass over 2N views would normalise them together: different
    predictions = byol.predictor(byol.projection_head(byol.encoder(both)))
    targets = byol.target_head(byol.target_encoder(both))
    mixed = negative_cosine_loss(predictions[:4], targets[4:]) + negative_cosine_loss(
        predictions[4:], targets[:4]
    )
    assert not torch.allclose(loss, mixed)


def test_target_gets_no_gradient_and_follows_the_cosine_schedule() -> None:
    byol = _byol()
    byol(_views()).backward()
    assert all(p.grad is None for p in byol.target_encoder.parameters())
    assert all(p.grad is None for p in byol.target_head.parameters())
    assert all(p.grad is not None for p in byol.predictor.parameters())
    with torch.no_grad():
        for parameter in byol.encoder.parameters():
            parameter.add_(1.0)
    before = [p.clone() for p in byol.target_encoder.parameters()]
    byol.on_step_end(3, 12)
    tau = cosine_momentum(3, 12, 0.9)
    for old, new, online in zip(
        before, byol.target_encoder.parameters(), byol.encoder.parameters(), strict=True
    ):
        torch.testing.assert_close(new, tau * old + (1 - tau) * online)
    frozen = [p.clone() for p in byol.target_encoder.parameters()]
    byol.on_step_end(12, 12)  # τ = 1 at the end: the target stops moving
    for old, new in zip(frozen, byol.target_encoder.parameters(), strict=True):
        assert torch.equal(old, new)


def test_predictor_must_end_at_the_projection_width() -> None:
    with pytest.raises(ValueError, match="predictor"):
        _byol(predictor_widths=[16, 4])
