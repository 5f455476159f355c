"""Image sources: the device tensor, the pinned host tensor and the decoding DataLoader all give
the loop the same batches, so training from any of them ends with the same weights."""

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.augment.makers import AugmentedViews
from selfsup.cli import main
from selfsup.config import load_config
from selfsup.data import ImageFiles, load_dataset, load_folder
from selfsup.methods import build_method
from selfsup.models import build_encoder
from selfsup.train import train
from selfsup.train.batches import DeviceImages, LoaderImages, PinnedImages, image_source

MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """40 synthetic 16-pixel images as lossless PNGs in two class folders."""
    root = tmp_path_factory.mktemp("folder")
    images = load_dataset("synthetic", "train", synthetic_size=40, image_size=16).images
    for index, image in enumerate(images):
        folder = root / f"class{index % 2}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{index:03d}.png")
    return root


def _step_indices() -> list[torch.Tensor]:
    order = torch.randperm(40, generator=torch.Generator().manual_seed(3))
    return [order[start : start + 8] for start in range(0, 40, 8)]


def test_every_source_yields_the_batches_in_the_loops_order(image_folder) -> None:
    in_memory, _ = load_folder(image_folder, image_size=16)
    device = torch.device("cpu")
    expected = [in_memory.images[indices] for indices in _step_indices()]
    sources = [
        DeviceImages(in_memory.images, device),
        PinnedImages(in_memory.images, device),
        LoaderImages(ImageFiles(image_folder, image_size=16), device, workers=2),
    ]
    for source in sources:
        batches = list(source.batches(_step_indices()))
        assert len(batches) == len(expected)
        for batch, want in zip(batches, expected, strict=True):
            assert batch.dtype == torch.uint8
            assert torch.equal(batch, want), type(source).__name__


def test_image_source_picks_by_kind() -> None:
    images = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    cpu = torch.device("cpu")
    assert isinstance(image_source(images, cpu), DeviceImages)
    assert isinstance(image_source(images, cpu, on_device=False), PinnedImages)
    with pytest.raises(ValueError, match="uint8"):
        image_source(images.float(), cpu)


def _trained_weights(images, run_dir, **overrides) -> dict[str, torch.Tensor]:
    config = load_config(
        None,
        {
            "run_dir": str(run_dir),
            "model.base_width": 4,
            "model.head_widths": [16, 8],
            "train.epochs": 2,
            "train.batch_size": 8,
            "train.progress": False,
            "train.device": "cpu",
            "augment.crop_scale": [0.3, 1.0],
            **overrides,
        },
    )
    torch.manual_seed(0)
    method = build_method(build_encoder("resnet18", in_channels=3, base_width=4), config)
    train(method, images, AugmentedViews.from_config(config.augment, 2, MEAN, STD), config, run_dir)
    return method.state_dict()


def test_streamed_and_host_training_equal_on_device_training(image_folder, tmp_path, one_thread):
    in_memory, _ = load_folder(image_folder, image_size=16)
    expected = _trained_weights(in_memory.images, tmp_path / "device")
    streamed = _trained_weights(
        ImageFiles(image_folder, image_size=16), tmp_path / "stream", **{"train.workers": 2}
    )
    on_host = _trained_weights(
        in_memory.images, tmp_path / "host", **{"train.data_on_device": False}
    )
    for name, value in expected.items():
        assert torch.equal(streamed[name], value), name
        assert torch.equal(on_host[name], value), name


def test_cli_packs_shards_and_pretrains_from_them(image_folder, tmp_path, capsys) -> None:
    shards = tmp_path / "shards"
    assert main(["shards", str(image_folder), str(shards), "--images-per-shard", "16"]) == 0
    assert sorted(path.name for path in shards.glob("*.tar")) == [
        "shard-000000.tar",
        "shard-000001.tar",
        "shard-000002.tar",
    ]
    run_dir = tmp_path / "run"
    status = main(
        [
            "pretrain",
            "--run-dir", str(run_dir),
            "--data.dataset", "shards",
            "--data.data_dir", str(shards),
            "--data.image_size", "16",
            "--model.base_width", "4",
            "--train.epochs", "1",
            "--train.batch_size", "8",
            "--train.workers", "1",
            "--train.progress", "false",
            "--train.device", "cpu",
        ]
    )  # fmt: skip
    assert status == 0, capsys.readouterr().err
    assert (run_dir / "encoder.safetensors").is_file()
    assert (run_dir / "views.png").is_file()
    recorded = np.array(Image.open(run_dir / "views.png")).shape
    assert recorded[0] > 16  # the preview grid was drawn from the streamed images
