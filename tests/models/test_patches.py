"""PatchGrid: the grid is explicit slicing, patches are encoded alone, export round-trips."""

import json

import pytest
import torch

from selfsup.errors import SelfsupError
from selfsup.models import build_encoder, load_encoder, save_encoder
from selfsup.models.export import build_from_architecture
from selfsup.models.patches import EVAL_PATCHES_PER_PASS, PatchGrid, cut_grid

ARCHITECTURE = {"name": "resnet18", "kwargs": {"in_channels": 1, "base_width": 4, "norm": "layer"}}


def _patch_grid(patch_size: int = 8, stride: int = 4) -> PatchGrid:
    torch.manual_seed(0)
    return PatchGrid(
        build_encoder(ARCHITECTURE["name"], **ARCHITECTURE["kwargs"]), patch_size, stride
    )


@pytest.mark.parametrize(
    ("height", "width", "patch_size", "stride"), [(28, 28, 8, 4), (13, 10, 5, 3), (9, 9, 3, 3)]
)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_grid_matches_explicit_slicing(
    height: int, width: int, patch_size: int, stride: int, dtype: torch.dtype
) -> None:
    images = torch.randint(0, 256, (2, 3, height, width)).to(dtype)
    patches = cut_grid(images, patch_size, stride)
    rows, cols = (height - patch_size) // stride + 1, (width - patch_size) // stride + 1
    assert patches.shape == (2, rows, cols, 3, patch_size, patch_size)
    assert patches.dtype == dtype
    for r in range(rows):
        for c in range(cols):
            top, left = r * stride, c * stride
            expected = images[:, :, top : top + patch_size, left : left + patch_size]
            assert torch.equal(patches[:, r, c], expected)


def test_grid_shape_and_errors() -> None:
    grid = _patch_grid()
    assert grid.grid_shape(28, 28) == (6, 6)
    assert grid.grid_shape(32, 29) == (7, 6)  # pixels past the last full patch are unused
    assert grid.feature_dim == 32
    with pytest.raises(ValueError, match="smaller than"):
        grid.grid(torch.randn(1, 1, 7, 28))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        grid.grid(torch.randn(1, 28, 28))
    with pytest.raises(ValueError, match="patch_size"):
        PatchGrid(build_encoder("resnet18", base_width=4), 0, 4)
    with pytest.raises(ValueError, match="stride"):
        PatchGrid(build_encoder("resnet18", base_width=4), 8, 2.5)  # type: ignore[arg-type]


def test_patches_encoded_alone_and_forward_is_the_grid_mean() -> None:
    grid = _patch_grid()
    images = torch.randn(3, 1, 16, 20)
    vectors = grid.encode_grid(images)
    assert vectors.shape == (3, 3, 4, grid.feature_dim)
    for r in range(3):
        for c in range(4):
            patch = images[:, :, 4 * r : 4 * r + 8, 4 * c : 4 * c + 8]
            torch.testing.assert_close(vectors[:, r, c], grid.encoder(patch))
    torch.testing.assert_close(grid(images), vectors.mean(dim=(1, 2)))
    assert grid(images).shape == (3, grid.feature_dim)
    with pytest.raises(ValueError, match="patches must be"):
        grid.encode_patches(images)


def test_eval_mode_encodes_in_passes_with_the_same_result() -> None:
    grid = _patch_grid().eval()
    images = torch.randn(40, 1, 28, 28)  # 1440 patches: more than one pass
    assert EVAL_PATCHES_PER_PASS < 40 * 36
    flat = grid.grid(images).reshape(-1, 1, 8, 8)
    with torch.no_grad():
        one_pass = grid.encoder(flat).view(40, 6, 6, -1)
        torch.testing.assert_close(grid.encode_grid(images), one_pass)


def test_patch_grid_export_round_trip(tmp_path) -> None:
    grid = _patch_grid().eval()
    save_encoder(grid, {**ARCHITECTURE, "mean": [0.5], "std": [0.25]}, tmp_path)
    saved = json.loads((tmp_path / "encoder.json").read_text())
    assert saved["patches"] == {"size": 8, "stride": 4}
    assert saved["mean"] == [0.5]
    loaded, architecture = load_encoder(tmp_path)
    assert isinstance(loaded, PatchGrid)
    assert (loaded.patch_size, loaded.stride) == (8, 4)
    images = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(loaded.eval()(images), grid(images))
    assert architecture["patches"] == {"size": 8, "stride": 4}
    assert isinstance(build_from_architecture(architecture), PatchGrid)


def test_patch_grid_file_stays_a_plain_encoder_file(tmp_path) -> None:
    # The weights are the inner encoder's: dropping the "patches" entry loads a plain encoder,
    # and files written before PatchGrid existed load as before.
    grid = _patch_grid().eval()
    save_encoder(grid, ARCHITECTURE, tmp_path)
    (tmp_path / "encoder.json").write_text(json.dumps(ARCHITECTURE))
    plain, _ = load_encoder(tmp_path)
    assert not isinstance(plain, PatchGrid)
    patches = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(plain.eval()(patches), grid.encoder(patches))


def test_patch_grid_export_checks_its_architecture(tmp_path) -> None:
    with pytest.raises(ValueError, match="PatchGrid cuts"):
        save_encoder(_patch_grid(), {**ARCHITECTURE, "patches": {"size": 8, "stride": 2}}, tmp_path)
    save_encoder(_patch_grid(), ARCHITECTURE, tmp_path)
    spec = json.loads((tmp_path / "encoder.json").read_text())
    spec["kwargs"]["base_width"] = 8
    (tmp_path / "encoder.json").write_text(json.dumps(spec))
    with pytest.raises(SelfsupError, match="does not match"):
        load_encoder(tmp_path)
