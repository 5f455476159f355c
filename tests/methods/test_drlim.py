"""DrLIM: the mean over row pairs (similar) plus the mean over cross pairs (dissimilar)."""

import pytest
import torch

from selfsup.losses import drlim_margin_loss
from selfsup.methods.drlim import DrLIM
from selfsup.models import build_encoder


def make_method(margin: float = 1.0, seed: int = 0) -> DrLIM:
    torch.manual_seed(seed)
    return DrLIM(build_encoder("resnet18", in_channels=1, base_width=4), [16, 2], margin)


def make_views(batch: int = 6, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 1, 12, 12, generator=generator) for _ in range(2)]


def test_forward_is_a_finite_scalar_and_gradients_reach_every_parameter() -> None:
    method = make_method()
    loss = method(make_views())
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    for name, parameter in method.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


@pytest.mark.parametrize("margin", [0.5, 1.0, 3.0])
def test_loss_is_similar_mean_plus_dissimilar_mean_over_all_cross_pairs(margin: float) -> None:
    method = make_method(margin).eval()  # eval: the reference's forward sees the same BN
    views = make_views(batch=5, seed=1)
    outputs = method.projection_head(method.encoder(torch.cat(views))).double()
    anchors, partners = outputs[:5], outputs[5:]
    pull = sum(0.5 * (anchors[i] - partners[i]).square().sum() for i in range(5)) / 5
    push = [
        0.5 * (margin - (anchors[i] - partners[j]).norm()).clamp_min(0) ** 2
        for i in range(5)
        for j in range(5)
        if j != i
    ]
    expected = pull + sum(push) / len(push)
    torch.testing.assert_close(method(views).double(), expected, rtol=1e-5, atol=1e-6)


def test_uses_drlim_margin_loss_on_the_projections() -> None:
    method = make_method(margin=2.0).eval()
    views = make_views(batch=3, seed=2)
    outputs = method.projection_head(method.encoder(torch.cat(views)))
    anchors, partners = outputs[:3], outputs[3:]
    rows, columns = torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([1, 2, 0, 2, 0, 1])
    expected = drlim_margin_loss(
        anchors, partners, torch.zeros(3, dtype=torch.bool), 2.0
    ) + drlim_margin_loss(anchors[rows], partners[columns], torch.ones(6, dtype=torch.bool), 2.0)
    torch.testing.assert_close(method(views), expected)


def test_identical_views_give_finite_gradients() -> None:
    # Every similar pair at distance 0: the pull term is 0 and its gradient must not be NaN.
    method = make_method()
    view = make_views()[0]
    loss = method([view, view.clone()])
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in method.parameters() if p.grad is not None)


def test_output_width_is_the_last_head_width() -> None:
    method = make_method()
    assert method.projection_head(method.encoder(make_views()[0])).shape == (6, 2)


def test_bad_inputs_raise() -> None:
    method = make_method()
    views = make_views()
    with pytest.raises(ValueError, match="2 views"):
        method(views[:1])
    with pytest.raises(ValueError, match="2 views"):
        method([*views, views[0]])
    with pytest.raises(ValueError, match="at least 2"):
        method([view[:1] for view in views])
    with pytest.raises(ValueError, match="margin"):
        make_method(margin=0.0)
