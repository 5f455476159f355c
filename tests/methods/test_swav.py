"""SwAV on multi-crop views: one encoder pass per crop size, unit prototypes frozen at first
and kept on the sphere, its queue of past projections; multi-crop views from its recipe."""

import pytest
import torch

from selfsup.config import load_config
from selfsup.errors import SelfsupError
from selfsup.losses.swav import sinkhorn_knopp, swav_loss
from selfsup.methods import SwAV, build_views
from selfsup.models import build_encoder


def _crops() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    sizes = [16, 16, 8, 8, 8]
    return [torch.randn(4, 3, size, size, generator=generator) for size in sizes]


def test_swav_is_its_loss_on_codes_of_the_global_crops() -> None:
    torch.manual_seed(0)
    method = SwAV(build_encoder("resnet18", base_width=4), [16, 8], prototypes=6).eval()
    crops = _crops()
    torch.testing.assert_close(method.prototypes.weight.norm(dim=1), torch.ones(6))
    embeddings = [
        torch.nn.functional.normalize(method.projection_head(method.encoder(c)), dim=1)
        for c in crops
    ]
    scores = [e @ method.prototypes.weight.T for e in embeddings]
    codes = [sinkhorn_knopp(s, 0.05, 3) for s in scores[:2]]
    torch.testing.assert_close(method(crops), swav_loss(scores, codes, 0.1))


def test_swav_freezes_then_trains_and_renormalises_its_prototypes() -> None:
    torch.manual_seed(0)
    method = SwAV(
        build_encoder("resnet18", base_width=4), [16, 8], 6, freeze_prototypes_steps=1, queue_size=8
    )
    method(_crops()).backward()
    assert torch.count_nonzero(method.prototypes.weight.grad) == 0
    assert int(method.queues[0].filled) == 4
    with torch.no_grad():
        method.prototypes.weight.mul_(3.0)
    method.on_step_end(0, 10)
    torch.testing.assert_close(method.prototypes.weight.norm(dim=1), torch.ones(6))
    method(_crops()).backward()  # step 1: past the freeze; the queue is full after this one
    assert torch.count_nonzero(method.prototypes.weight.grad) > 0
    assert int(method.queues[0].filled) == 8
    loss = method(_crops())  # codes over the queue and the batch
    assert torch.isfinite(loss)


def test_swav_takes_multi_crop_views_and_simclr_refuses_them() -> None:
    config = load_config(None, {"method.name": "swav", "augment.local_crops": 2})
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    views = build_views(config, images, [0.5], [0.25])(images, torch.arange(5), None)
    assert len(views) == 4 and views[2].shape[-1] == config.augment.local_size
    simclr = load_config(None, {"augment.local_crops": 2})
    with pytest.raises(SelfsupError, match=r"simclr takes two views.*swav"):
        build_views(simclr, images, [0.5], [0.25])
