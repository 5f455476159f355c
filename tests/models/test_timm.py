"""timm backbones as encoders: any timm model by name, ViTs at small image sizes (patch size,
interpolated position embeddings), inside the methods and with multi-crop."""

import pytest
import torch

from selfsup.config import load_config
from selfsup.errors import SelfsupError
from selfsup.methods import METHODS, build_method, build_views
from selfsup.models import build_encoder

pytest.importorskip("timm")

MODELS = [
    ("timm:resnet10t", None),
    ("timm:vit_tiny_patch16_224", 4),
    ("timm:convnext_atto", None),
]


@pytest.mark.parametrize(("name", "patch_size"), MODELS)
def test_timm_models_give_pooled_features_of_their_width(name, patch_size, one_thread) -> None:
    torch.manual_seed(0)
    encoder = build_encoder(name, in_channels=1, image_size=32, patch_size=patch_size).eval()
    for side in (32, 48):  # ConvNeXt downsamples 32x: no smaller
        features = encoder(torch.randn(2, 1, side, side))
        assert features.shape == (2, encoder.feature_dim) and torch.isfinite(features).all()


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_trains_a_timm_backbone(name, one_thread) -> None:
    own = {"byol": {"method.predictor_widths": [16, 8]}, "cpc": {"method.prediction_steps": 2}}
    overrides = {"method.name": name, "model.head_widths": [16, 8], **own.get(name, {})}
    config = load_config(None, {**overrides, "model.encoder": "timm:resnet10t"})
    torch.manual_seed(0)
    encoder = build_encoder(config.model.encoder, in_channels=1)
    method = build_method(encoder, config)
    images = torch.randint(0, 256, (12, 1, 16, 16), dtype=torch.uint8)
    generator = torch.Generator().manual_seed(0)
    views = build_views(config, images, [0.5], [0.25])(images[:6], torch.arange(6), generator)
    loss = method(views)
    loss.backward()
    assert torch.isfinite(loss) and encoder.model.conv1[0].weight.grad is not None


def test_a_vit_trains_with_multi_crop_under_dino_and_swav(one_thread) -> None:
    for method_name in ("dino", "swav"):
        config = load_config(
            None,
            {
                "method.name": method_name,
                "model.encoder": "timm:vit_tiny_patch16_224",
                "model.patch_size": 4,
                "model.head_widths": [32, 16],
                "augment.size": 16,
                "augment.local_crops": 2,
                "augment.local_size": 8,
            },
        )
        torch.manual_seed(0)
        encoder = build_encoder(config.model.encoder, in_channels=1, image_size=16, patch_size=4)
        method = build_method(encoder, config)
        images = torch.randint(0, 256, (4, 1, 20, 20), dtype=torch.uint8)
        views = build_views(config, images, [0.5], [0.25])(images, torch.arange(4), None)
        assert [view.shape[-1] for view in views] == [16, 16, 8, 8]
        loss = method(views)
        loss.backward()
        assert torch.isfinite(loss)
        assert encoder.model.patch_embed.proj.weight.grad is not None


def test_unknown_timm_models_and_misplaced_patch_sizes_fail_in_one_line() -> None:
    with pytest.raises(SelfsupError, match="timm has no model 'nope'"):
        build_encoder("timm:nope")
    with pytest.raises(SelfsupError, match="takes no patch_size"):
        build_encoder("timm:resnet10t", patch_size=4)
    with pytest.raises(SelfsupError, match="or timm:MODEL"):
        load_config(None, {"model.encoder": "timm:"})
