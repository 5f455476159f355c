"""DINO on multi-crop views: the student on every crop, the teacher on the global crops in one
pass, the centre and the teacher's EMA updated; multi-crop views from its recipe."""

import pytest
import torch

from selfsup.config import load_config
from selfsup.errors import SelfsupError
from selfsup.losses.dino import dino_loss
from selfsup.methods import DINO, build_views
from selfsup.models import build_encoder


def _crops() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    sizes = [16, 16, 8, 8, 8]
    return [torch.randn(4, 3, size, size, generator=generator) for size in sizes]


def test_dino_student_sees_every_crop_and_the_teacher_the_global_ones() -> None:
    torch.manual_seed(0)
    method = DINO(build_encoder("resnet18", base_width=4), [16, 8], prototypes=12).eval()
    crops = _crops()
    seen: list[tuple[int, ...]] = []
    method.teacher_encoder.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape))
    student = [method.projection_head(method.encoder(c)) for c in crops]
    teacher = [method.teacher_head(method.teacher_encoder(c)) for c in crops[:2]]
    seen.clear()
    expected = dino_loss(student, teacher, method.loss.center, 0.1, 0.04)
    torch.testing.assert_close(method(crops), expected)
    assert seen == [torch.Size([8, 3, 16, 16])]  # one pass over both global crops
    method.train()
    method(crops)
    assert torch.count_nonzero(method.loss.center) > 0
    before = [p.clone() for p in method.teacher_encoder.parameters()]
    with torch.no_grad():
        for p in method.encoder.parameters():
            p.add_(1.0)
    method.on_step_end(0, 10)
    after = list(method.teacher_encoder.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_dino_takes_multi_crop_views_and_simclr_refuses_them() -> None:
    config = load_config(None, {"method.name": "dino", "augment.local_crops": 2})
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    views = build_views(config, images, [0.5], [0.25])(images, torch.arange(5), None)
    assert len(views) == 4 and views[2].shape[-1] == config.augment.local_size
    simclr = load_config(None, {"augment.local_crops": 2})
    with pytest.raises(SelfsupError, match=r"simclr takes two views.*dino"):
        build_views(simclr, images, [0.5], [0.25])
