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
