"""Every registered encoder: forward/backward shapes and feature dimension; the head builder."""

import pytest
import torch

from selfsup.errors import SelfsupError
from selfsup.models import ENCODERS, ProjectionHead, build_encoder, load_encoder, save_encoder

EXPANSION = {"resnet18": 1, "resnet34": 1, "resnet50": 4, "resnet101": 4, "resnet152": 4}


@pytest.mark.parametrize("name", sorted(ENCODERS))
@pytest.mark.parametrize("stem", ["cifar", "imagenet"])
def test_every_encoder_forward_backward(name: str, stem: str) -> None:
    encoder = build_encoder(name, in_channels=1, stem=stem, base_width=4, width_multiplier=2)
    images = torch.randn(2, 1, 32, 32, requires_grad=True)
    features = encoder(images)
    assert features.shape == (2, encoder.feature_dim)
    assert encoder.feature_dim == 8 * 8 * EXPANSION[name]  # width 4·2, ×8 at the last stage
    features.sum().backward()
    assert images.grad is not None and images.grad.shape == images.shape
    assert all(p.grad is not None for p in encoder.parameters())


def test_width_multiplier_and_standard_width() -> None:
    assert build_encoder("resnet18").feature_dim == 512
    assert build_encoder("resnet50", width_multiplier=2).feature_dim == 4096
    assert build_encoder("resnet18", base_width=16).feature_dim == 128
    with pytest.raises(SelfsupError, match="unknown encoder"):
        build_encoder("vgg")


def test_projection_head_depths() -> None:
    head = ProjectionHead(32, [32, 32, 16])
    features = torch.randn(5, 32)
    assert head(features).shape == (5, 16)
    assert head(features, depth=0) is features
    assert head(features, depth=1).shape == (5, 32)
    assert head.output_dim(0) == 32 and head.output_dim(3) == 16
    with pytest.raises(ValueError):
        head(features, depth=4)


def test_encoder_export_round_trip(tmp_path) -> None:
    encoder = build_encoder("resnet18", in_channels=1, base_width=4).eval()
    save_encoder(
        encoder, {"name": "resnet18", "kwargs": {"in_channels": 1, "base_width": 4}}, tmp_path
    )
    loaded, architecture = load_encoder(tmp_path)
    images = torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(loaded.eval()(images), encoder(images))
    assert architecture["name"] == "resnet18"
    (tmp_path / "encoder.json").write_text('{"name": "resnet18", "kwargs": {"base_width": 8}}')
    with pytest.raises(SelfsupError, match="does not match"):
        load_encoder(tmp_path)


def test_selective_kernel_resnet() -> None:
    """SK-ResNet: each bottleneck's 3×3 is two branches (3×3 and dilated 3×3) mixed per channel
    by a softmax across branches; it trains, and only bottleneck ResNets take it."""
    from selfsup.models.resnet import SelectiveKernel

    torch.manual_seed(0)
    encoder = build_encoder("resnet50", in_channels=1, base_width=8, selective_kernel=True)
    plain = build_encoder("resnet50", in_channels=1, base_width=8)
    kernels = [m for m in encoder.modules() if isinstance(m, SelectiveKernel)]
    assert len(kernels) == 16  # one per bottleneck: 3 + 4 + 6 + 3
    assert encoder.feature_dim == plain.feature_dim == 256
    assert sum(p.numel() for p in encoder.parameters()) > sum(p.numel() for p in plain.parameters())
    images = torch.randn(4, 1, 16, 16)
    encoder(images).sum().backward()
    assert all(p.grad is not None for p in encoder.parameters())

    sk = kernels[0].eval()
    x = torch.randn(2, sk.branches[0][0].in_channels, 5, 5)
    paths = torch.stack([branch(x) for branch in sk.branches], dim=1)
    weights = sk.select(sk.squeeze(paths.sum(1))).view(2, 2, -1, 1, 1).softmax(dim=1)
    torch.testing.assert_close(weights.sum(1), torch.ones_like(weights.sum(1)))
    torch.testing.assert_close(sk(x), weights[:, 0] * paths[:, 0] + weights[:, 1] * paths[:, 1])
    assert sk.branches[1][0].dilation == (2, 2)  # the 5×5 receptive field
    with pytest.raises(ValueError, match="bottleneck"):
        build_encoder("resnet18", selective_kernel=True)


def test_pool_grid_keeps_the_layout_of_the_last_stage() -> None:
    images = torch.randn(3, 1, 28, 28)
    torch.manual_seed(0)
    pooled = build_encoder("resnet18", in_channels=1, base_width=4, pool_grid=2).eval()
    torch.manual_seed(0)
    global_pool = build_encoder("resnet18", in_channels=1, base_width=4).eval()
    assert pooled.feature_dim == 4 * global_pool.feature_dim == 128
    with torch.no_grad():
        grid, whole = pooled(images), global_pool(images)
    assert grid.shape == (3, 128)
    # The 2x2 cells of a 4x4 map average back to the global pool (same weights).
    cells = grid.view(3, 32, 4).mean(2)
    assert torch.allclose(cells, whole, atol=1e-6)
    with pytest.raises(ValueError, match="pool_grid"):
        build_encoder("resnet18", in_channels=1, base_width=4, pool_grid=0)
