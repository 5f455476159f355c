"""Every registered method: forward(views) is a finite scalar, backward reaches every parameter,
and a state-dict round trip reproduces the loss."""

import pytest
import torch

from selfsup.config import load_config
from selfsup.losses import nt_xent_loss
from selfsup.methods import METHODS, SimCLR, build_method, build_views
from selfsup.models import build_encoder


def _views(seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(6, 3, 16, 16, generator=generator) for _ in range(2)]


def _method_views(config, seed: int) -> list[torch.Tensor]:
    """What the loop would feed the method: its own view maker on a uint8 batch."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (12, 3, 16, 16), dtype=torch.uint8, generator=generator)
    make_views = build_views(config, images, [0.5] * 3, [0.25] * 3)
    indices = torch.arange(6)
    return make_views(images[indices], indices, generator)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_forward_backward_and_state_round_trip(name: str) -> None:
    own = {
        "byol": {"method.predictor_widths": [16, 8]},
        "cpc": {"method.prediction_steps": 2},  # a 3×3 grid of 8 px patches at stride 4
    }
    config = load_config(
        None, {"method.name": name, "model.head_widths": [16, 8], **own.get(name, {})}
    )
    torch.manual_seed(0)
    method = build_method(build_encoder("resnet18", base_width=4), config)
    loss = method(_method_views(config, 0))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in method.parameters() if p.requires_grad)
    torch.manual_seed(1)
    copy = build_method(build_encoder("resnet18", base_width=4), config)
    copy.load_state_dict(method.state_dict())
    method.eval()
    copy.eval()
    views = _method_views(config, 1)
    torch.testing.assert_close(copy(views), method(views))


def test_simclr_is_nt_xent_on_projections_of_both_views() -> None:
    torch.manual_seed(0)
    method = SimCLR(build_encoder("resnet18", base_width=4), head_widths=[16, 8], temperature=0.3)
    views = _views()
    projections = method.projection_head(method.encoder(torch.cat(views)))
    expected = nt_xent_loss(projections[:6], projections[6:], temperature=0.3)
    torch.testing.assert_close(method(views), expected)
    with pytest.raises(ValueError, match="2 views"):
        method(views[:1])
