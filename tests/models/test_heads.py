"""Fine-tuning from the middle of the head (SimCLRv2), classifiers, and their export."""

import pytest
import torch

from selfsup.errors import SelfsupError
from selfsup.models import (
    Classifier,
    EncoderWithHead,
    ProjectionHead,
    build_classifier,
    build_encoder,
    load_classifier,
    load_head,
    save_classifier,
    save_head,
)

ARCHITECTURE = {"name": "resnet18", "kwargs": {"in_channels": 1, "base_width": 4}}


@pytest.mark.parametrize(("depth", "width"), [(0, 32), (1, 48), (2, 40), (3, 16)])
def test_head_layer_attachment_has_the_layers_width(depth: int, width: int) -> None:
    encoder = build_encoder("resnet18", in_channels=1, base_width=4)  # 32 features
    head = ProjectionHead(encoder.feature_dim, [48, 40, 16])
    trunk = EncoderWithHead(encoder, head, depth).eval()
    images = torch.randn(3, 1, 12, 12)
    features = trunk(images)
    assert features.shape == (3, width) and trunk.feature_dim == width
    torch.testing.assert_close(features, head.eval()(encoder.eval()(images), depth=depth))
    assert len(list(trunk.head_layers)) == depth
    if depth:  # the very modules of the head, not copies: fine-tuning starts from them
        assert trunk.head_layers[0] is head.layers[0]
    with pytest.raises(ValueError, match="head depth"):
        EncoderWithHead(encoder, head, 4)


def test_classifier_starts_at_zero_and_round_trips(tmp_path) -> None:
    torch.manual_seed(0)
    encoder = build_encoder(**{"name": ARCHITECTURE["name"]}, **ARCHITECTURE["kwargs"])
    head = ProjectionHead(encoder.feature_dim, [24, 24, 8])
    model = Classifier(EncoderWithHead(encoder, head, 1), 24, 5)
    assert torch.count_nonzero(model(torch.randn(2, 1, 12, 12))) == 0
    with torch.no_grad():
        model.linear.weight.normal_()
    spec = {
        "encoder": ARCHITECTURE,
        "head": {"in_dim": 32, "widths": [24, 24, 8], "depth": 1},
        "num_classes": 5,
        "seconds": 1.5,
    }
    save_classifier(model, spec, tmp_path / "teacher")
    loaded, saved = load_classifier(tmp_path / "teacher")
    assert saved == spec and not loaded.training
    images = torch.randn(4, 1, 12, 12)
    torch.testing.assert_close(loaded(images), model.eval()(images))
    plain = build_classifier({"encoder": ARCHITECTURE, "head": None, "num_classes": 3})
    assert plain(images).shape == (4, 3) and isinstance(plain.encoder, torch.nn.Module)
    with pytest.raises(SelfsupError, match="does not match"):
        save_classifier(plain, {"encoder": ARCHITECTURE, "head": None, "num_classes": 5}, tmp_path)
        load_classifier(tmp_path)
    with pytest.raises(SelfsupError, match=r"classifier\.safetensors"):
        load_classifier(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="lacks"):
        save_classifier(plain, {"encoder": ARCHITECTURE}, tmp_path)


def test_head_round_trips(tmp_path) -> None:
    head = ProjectionHead(16, [16, 16, 4]).eval()
    save_head(head, tmp_path)
    loaded = load_head(tmp_path).eval()
    features = torch.randn(3, 16)
    for depth in range(4):
        torch.testing.assert_close(loaded(features, depth), head(features, depth))


@pytest.mark.parametrize(
    "options",
    [
        {"batch_norm": True, "last_batch_norm": False},  # SimCLR's head
        {"batch_norm": False, "last_batch_norm": False},  # MoCo v2's head (no BN)
        {"batch_norm": True, "last_batch_norm": True},  # SimCLRv2 / MoCo v3's BN'd output
        {"batch_norm": False, "last_batch_norm": True},
    ],
)
def test_every_head_option_is_saved_and_restored(tmp_path, options) -> None:
    torch.manual_seed(0)
    head = ProjectionHead(16, [12, 4], **options)
    head(torch.randn(8, 16))  # moves the BN running statistics off their initial values
    save_head(head.eval(), tmp_path)
    loaded = load_head(tmp_path).eval()
    assert loaded.spec() == head.spec() == {"in_dim": 16, "widths": [12, 4], **options}
    assert [type(m) for m in loaded.modules()] == [type(m) for m in head.modules()]
    features = torch.randn(3, 16)
    torch.testing.assert_close(loaded(features), head(features))


def test_a_moco_head_reloads_for_semisup(tmp_path) -> None:
    """MoCo v2's BN-free head, as a run exports it, is the head `semisup` fine-tunes from."""
    from selfsup.config import load_config
    from selfsup.methods import build_method

    config = load_config(None, {"method.name": "moco", "model.head_widths": [12, 4]})
    moco = build_method(build_encoder("resnet18", in_channels=1, base_width=2), config)
    save_head(moco.projection_head.eval(), tmp_path)
    loaded = load_head(tmp_path).eval()
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in loaded.modules())
    features = torch.randn(3, moco.projection_head.in_dim)
    torch.testing.assert_close(loaded(features), moco.projection_head(features))


def test_a_head_of_no_widths_is_the_identity_and_round_trips(tmp_path) -> None:
    head = ProjectionHead(12, [])
    features = torch.randn(5, 12)
    assert head(features) is features and head.output_dim() == 12
    assert not list(head.parameters())
    save_head(head, tmp_path)
    assert load_head(tmp_path)(features) is features
