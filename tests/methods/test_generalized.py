"""The generalized contrastive method: the loss on the head's projections of both views, by
registry name and recipe, with every distribution term."""

from __future__ import annotations

import pytest
import torch

from selfsup.config import load_config, recipe_path
from selfsup.losses import generalized_contrastive_loss
from selfsup.methods import GeneralizedContrastive, build_method
from selfsup.models import build_encoder


def test_forward_is_the_generalized_loss_of_both_views_projections() -> None:
    torch.manual_seed(0)
    method = GeneralizedContrastive(
        build_encoder("resnet18", base_width=4), [16, 8], "logsumexp", weight=0.5, temperature=0.2
    )
    views = [torch.randn(5, 3, 16, 16) for _ in range(2)]
    projections = method.projection_head(method.encoder(torch.cat(views)))
    expected = generalized_contrastive_loss(projections[:5], projections[5:], "logsumexp", 0.5, 0.2)
    torch.testing.assert_close(method(views), expected)
    with pytest.raises(ValueError, match="2 views"):
        method(views[:1])


@pytest.mark.parametrize("distribution", ["gaussian", "hypersphere", "hypercube"])
def test_the_recipe_builds_each_prior_and_trains_a_step(distribution: str) -> None:
    config = load_config(
        recipe_path("generalized-fashion-mnist"),
        {"method.distribution": distribution, "model.head_widths": [16, 8]},
    )
    assert config.method.name == "generalized" and config.method.distribution == distribution
    torch.manual_seed(0)
    method = build_method(build_encoder("resnet18", base_width=4, in_channels=1), config)
    loss = method([torch.randn(6, 1, 10, 10) for _ in range(2)])
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert method.encoder.stem[0].weight.grad is not None


def test_bad_settings_are_refused() -> None:
    with pytest.raises(Exception, match="distribution"):
        load_config(None, {"method.name": "generalized", "method.distribution": "cauchy"})
