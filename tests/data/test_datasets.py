"""Dataset loaders: shapes, dtypes, classes, splits and the advice given when data is missing."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from selfsup.data import DATASETS, ImageDataset, load_dataset
from selfsup.data.datasets import SYSTEM_FASHION_MNIST, resize_images
from selfsup.errors import SelfsupError


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(f">BBBB{array.ndim}I", 0, 0, 0x08, array.ndim, *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def write_tiny_mnist(directory: Path, n: int = 12, gz: bool = True) -> tuple[np.ndarray, ...]:
    """Fake MNIST-layout IDX files: train has n images, test n // 2."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    arrays = []
    for prefix, count in (("train", n), ("t10k", n // 2)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % 10).astype(np.uint8)
        write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        arrays += [images, labels]
    return tuple(arrays)


@pytest.mark.skipif(not SYSTEM_FASHION_MNIST.is_dir(), reason="dataset-fashion-mnist not installed")
def test_system_fashion_mnist() -> None:
    train = load_dataset("fashion-mnist", "train")
    test = load_dataset("fashion-mnist", "test")
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (10000, 1, 28, 28) and test.labels.dtype == torch.int64
    assert train.num_classes == 10 and train.classes[0] == "T-shirt/top"
    assert train.name == "fashion-mnist"
    assert torch.equal(test.labels.bincount(), torch.full((10,), 1000))


@pytest.mark.parametrize("layout", ["flat", "torchvision"])
@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_from_data_dir(tmp_path: Path, layout: str, gz: bool) -> None:
    where = tmp_path if layout == "flat" else tmp_path / "FashionMNIST" / "raw"
    train_images, train_labels, test_images, _ = write_tiny_mnist(where, gz=gz)
    train = load_dataset("fashion-mnist", "train", str(tmp_path))
    assert train.images.shape == (12, 1, 28, 28) and train.images.dtype == torch.uint8
    assert torch.equal(train.images[:, 0], torch.from_numpy(train_images))
    assert torch.equal(train.labels, torch.from_numpy(train_labels).long())
    assert train.classes[9] == "Ankle boot"
    test = load_dataset("fashion-mnist", "test", str(tmp_path))
    assert torch.equal(test.images[:, 0], torch.from_numpy(test_images))


def test_mnist_torchvision_layout(tmp_path: Path) -> None:
    write_tiny_mnist(tmp_path / "MNIST" / "raw")
    dataset = load_dataset("mnist", "test", str(tmp_path))
    assert len(dataset) == 6 and dataset.classes == [str(d) for d in range(10)]


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(SelfsupError) as info:
        load_dataset("fashion-mnist", "train", str(tmp_path / "nowhere"))
    message = str(info.value)
    assert "apt-get" in message and "--data.data_dir" in message and "--data.download" in message
    assert "\n" not in message


def test_download_uses_torchvision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    class FakeFashionMNIST:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            calls.append((root, train, download))
            self.data = torch.zeros(3, 28, 28, dtype=torch.uint8)
            self.targets = torch.tensor([0, 1, 2])

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", FakeFashionMNIST)
    dataset = load_dataset("fashion-mnist", "test", str(tmp_path), download=True)
    assert calls == [(str(tmp_path), False, True)]
    assert dataset.images.shape == (3, 1, 28, 28) and dataset.labels.dtype == torch.int64


def test_cifar_converts_without_pil(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)

    class FakeCIFAR10:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            self.data, self.targets = data, [0, 1, 2, 3]
            self.classes = [f"c{i}" for i in range(10)]

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    dataset = load_dataset("cifar10", "test", "/unused")
    assert dataset.images.shape == (4, 3, 32, 32) and dataset.images.is_contiguous()
    assert torch.equal(dataset.images[2, 1], torch.from_numpy(data[2, :, :, 1]))
    assert dataset.labels.tolist() == [0, 1, 2, 3] and dataset.num_classes == 10


def test_stl10_unlabeled_keeps_minus_one(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeSTL10:
        def __init__(self, root: str, split: str, download: bool) -> None:
            self.data = np.zeros((5, 3, 96, 96), dtype=np.uint8)
            self.labels = np.full(5, -1) if split == "unlabeled" else np.arange(5)

    monkeypatch.setattr(torchvision.datasets, "STL10", FakeSTL10)
    dataset = load_dataset("stl10", "unlabeled", "/unused", image_size=32)
    assert dataset.images.shape == (5, 3, 32, 32)
    assert dataset.labels.tolist() == [-1] * 5 and dataset.num_classes == 10


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "stl10"])
def test_missing_torchvision_dataset(tmp_path: Path, name: str) -> None:
    with pytest.raises(SelfsupError, match=r"--data\.download"):
        load_dataset(name, "test", str(tmp_path))


def test_unknown_name_and_split() -> None:
    with pytest.raises(SelfsupError, match="fashion-mnist, mnist"):
        load_dataset("imagenet")
    with pytest.raises(SelfsupError, match="train, test"):
        load_dataset("digits", "unlabeled")
    with pytest.raises(SelfsupError, match="train\\+unlabeled"):
        load_dataset("stl10", "val")
    assert "synthetic" in DATASETS


def test_digits_split_disjoint_and_reproducible() -> None:
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == torch.uint8
    assert len(train) + len(test) == 1797 and len(test) == 450
    assert int(train.images.max()) == 255
    # A partition: train and test together are exactly the 1797 digits, each once.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    full = (torch.as_tensor(bunch.images, dtype=torch.float64) * 255 / 16).round().to(torch.uint8)
    key = lambda images, labels: sorted(  # noqa: E731
        (bytes(i.flatten().tolist()), int(y)) for i, y in zip(images, labels, strict=True)
    )
    assert key(full, bunch.target) == sorted(
        key(train.images, train.labels) + key(test.images, test.labels)
    )
    again = load_dataset("digits", "test", seed=7)
    assert torch.equal(again.images, test.images)
    ratio = test.labels.bincount().float() / train.labels.bincount().float()
    assert ((ratio - 1 / 3).abs() < 0.02).all()  # stratified: a quarter of every class


def test_synthetic_is_deterministic() -> None:
    a = load_dataset("synthetic", "train", synthetic_size=40, seed=1)
    b = load_dataset("synthetic", "train", synthetic_size=40, seed=1)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.images.shape == (40, 3, 32, 32) and a.num_classes == 10
    assert torch.equal(a.labels.bincount(), torch.full((10,), 4))
    other_seed = load_dataset("synthetic", "train", synthetic_size=40, seed=2)
    test = load_dataset("synthetic", "test", synthetic_size=40, seed=1)
    assert not torch.equal(a.images, other_seed.images)
    assert not torch.equal(a.images, test.images)
    assert load_dataset("synthetic", synthetic_size=8, image_size=20).images.shape == (8, 3, 20, 20)


def test_synthetic_classes_are_separable() -> None:
    """Nearest class mean on raw pixels already beats chance: the classes carry signal."""
    train = load_dataset("synthetic", "train", synthetic_size=400)
    test = load_dataset("synthetic", "test", synthetic_size=200)
    x, xt = train.images.flatten(1).float(), test.images.flatten(1).float()
    x, xt = x - x.mean(1, keepdim=True), xt - xt.mean(1, keepdim=True)
    means = torch.stack([x[train.labels == c].mean(0) for c in range(10)])
    accuracy = (torch.cdist(xt, means).argmin(1) == test.labels).float().mean()
    assert accuracy > 0.2


def test_image_size_resizes_any_dataset() -> None:
    dataset = load_dataset("digits", "test", image_size=16)
    assert dataset.images.shape == (450, 1, 16, 16) and dataset.images.dtype == torch.uint8
    small = load_dataset("synthetic", synthetic_size=4, image_size=32)
    constant = torch.full((2, 3, 32, 32), 77, dtype=torch.uint8)
    assert torch.equal(resize_images(constant, 8), torch.full((2, 3, 8, 8), 77, dtype=torch.uint8))
    assert resize_images(small.images, 32) is small.images
    assert isinstance(small, ImageDataset)
