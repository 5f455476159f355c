"""Every registered method: forward(views) is a finite scalar, backward reaches every parameter,
and a state-dict round trip reproduces the loss."""

import pytest
import torch

from selfsup.config import load_config
from selfsup.losses import nt_xent_loss
from selfsup.methods import METHODS, SimCLR, build_method
from selfsup.models import build_encoder


def _views(seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(6, 3, 16, 16, generator=generator) for _ in range(2)]


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_forward_backward_and_state_round_trip(name: str) -> None:
    config = load_config(
        None,
        {"method.name": name, "model.head_widths": [16, 8], "method.predictor_widths": [16, 8]},
    )
    torch.manual_seed(0)
    method = build_method(build_encoder("resnet18", base_width=4), config)
    loss = method(_views())
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in method.parameters() if p.requires_grad)
    torch.manual_seed(1)
    copy = build_method(build_encoder("resnet18", base_width=4), config)
    copy.load_state_dict(method.state_dict())
    method.eval()
    copy.eval()
    torch.testing.assert_close(copy(_views(1)), method(_views(1)))


def test_simclr_is_nt_xent_on_projections_of_both_views() -> None:
    torch.manual_seed(0)
    method = SimCLR(build_encoder("resnet18", base_width=4), head_widths=[16, 8], temperature=0.3)
    views = _views()
    projections = method.projection_head(method.encoder(torch.cat(views)))
    expected = nt_xent_loss(projections[:6], projections[6:], temperature=0.3)
    torch.testing.assert_close(method(views), expected)
    with pytest.raises(ValueError, match="2 views"):
        method(views[:1])
