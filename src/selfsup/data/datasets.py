"""Dataset loaders: every dataset becomes one uint8 (N, C, H, W) tensor plus int64 labels.

Whole datasets are held in memory as uint8 (Fashion-MNIST is 47 MB, CIFAR 150 MB), so a
training loop can move them to the device once and crop/flip/normalise there, batched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from selfsup.data.base import ImageDataset
from selfsup.data.files import ImageFiles
from selfsup.data.folder import load_folder_split, split_folder
from selfsup.data.idx import read_idx
from selfsup.data.shards import TarShards
from selfsup.data.synthetic import make_synthetic
from selfsup.errors import SelfsupError

DATASETS: tuple[str, ...] = (
    "fashion-mnist",
    "mnist",
    "cifar10",
    "cifar100",
    "stl10",
    "digits",
    "folder",
    "shards",
    "synthetic",
)
STREAMABLE: tuple[str, ...] = ("folder", "shards")

SPLITS: dict[str, tuple[str, ...]] = {name: ("train", "test") for name in DATASETS}
SPLITS["stl10"] = ("train", "test", "unlabeled", "train+unlabeled")

FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
MNIST_CLASSES = [str(digit) for digit in range(10)]
STL10_CLASSES = [
    "airplane",
    "bird",
    "car",
    "cat",
    "deer",
    "dog",
    "horse",
    "monkey",
    "ship",
    "truck",
]

SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def cache_dir() -> Path:
    """Where `download=True` stores datasets when no data_dir is given (~/.cache/selfsup)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "selfsup"


# ---------------------------------------------------------------------------------------------
# Resizing


def resize_images(images: torch.Tensor, size: int, chunk: int = 2048) -> torch.Tensor:
    """Resize uint8 (N, C, H, W) images to (N, C, size, size), batched, antialiased when shrinking.

    Works in chunks so a 100k-image set never needs a full float copy in memory.
    """
    if size < 1:
        raise SelfsupError(f"image_size must be a positive integer, got {size}")
    if images.shape[-2:] == (size, size):
        return images
    antialias = size < images.shape[-1] or size < images.shape[-2]
    out = torch.empty((*images.shape[:2], size, size), dtype=torch.uint8)
    for start in range(0, len(images), chunk):
        batch = images[start : start + chunk].float()
        batch = F.interpolate(
            batch, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias
        )
        out[start : start + chunk] = batch.round_().clamp_(0, 255).to(torch.uint8)
    return out


# ---------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST (IDX files)

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find_idx(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _load_idx_pair(directory: Path, split: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Images (N, 1, H, W) and labels (N,) from `directory`, or None if the files are absent."""
    image_stem, label_stem = _IDX_FILES[split]
    image_path, label_path = _find_idx(directory, image_stem), _find_idx(directory, label_stem)
    if image_path is None or label_path is None:
        return None
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise SelfsupError(
            f"{image_path} holds {images.dtype} {images.shape}, not uint8 (N, H, W) images; "
            "fetch the dataset again"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise SelfsupError(
            f"{label_path} holds {labels.shape} labels for {len(images)} images in "
            f"{image_path.name}; fetch the dataset again"
        )
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def _load_mnist_like(name: str, split: str, data_dir: str | None, download: bool) -> ImageDataset:
    fashion = name == "fashion-mnist"
    title, folder = ("Fashion-MNIST", "FashionMNIST") if fashion else ("MNIST", "MNIST")
    classes = FASHION_MNIST_CLASSES if fashion else MNIST_CLASSES
    # An explicit data_dir wins: never silently fall back to other data than the one asked for.
    roots = [Path(data_dir).expanduser()] if data_dir is not None else [cache_dir()]
    places = [place for root in roots for place in (root, root / folder / "raw")]
    if data_dir is None and fashion:
        places.insert(0, SYSTEM_FASHION_MNIST)
    for place in places:
        found = _load_idx_pair(place, split)
        if found is not None:
            images, labels = found
            return ImageDataset(images, labels, list(classes), name)
    if download:
        import torchvision

        cls = torchvision.datasets.FashionMNIST if fashion else torchvision.datasets.MNIST
        root = roots[0]
        try:
            dataset = cls(root=str(root), train=split == "train", download=True)
        except (RuntimeError, OSError) as error:
            raise SelfsupError(
                f"could not download {title} into {root} ({error}); check the network or pass "
                "--data.data_dir DIR holding the IDX files"
            ) from error
        images = dataset.data.to(torch.uint8).unsqueeze(1).contiguous()
        return ImageDataset(images, dataset.targets.to(torch.int64), list(classes), name)
    looked = ", ".join(str(place) for place in places)
    if fashion:
        how = (
            "install it with `apt-get install dataset-fashion-mnist`, pass --data.data_dir DIR "
            "holding the IDX files, or add --data.download true"
        )
    else:
        how = "pass --data.data_dir DIR holding the IDX files, or add --data.download true"
    raise SelfsupError(f"{title} {split} split not found in {looked}; {how}")


# ---------------------------------------------------------------------------------------------
# torchvision-backed datasets: CIFAR-10/100, STL-10


def _torchvision_dataset(
    title: str, cls: Any, data_dir: str | None, download: bool, what: str, **kwargs: Any
) -> Any:
    """Instantiate a torchvision dataset, turning its 'not found' errors into one-line advice."""
    root = Path(data_dir).expanduser() if data_dir is not None else cache_dir()
    try:
        return cls(root=str(root), download=download, **kwargs)
    except (RuntimeError, OSError) as error:
        if download:
            raise SelfsupError(
                f"could not download {title} into {root} ({error}); check the network or pass "
                f"--data.data_dir DIR holding {what}"
            ) from error
        raise SelfsupError(
            f"{title} not found in {root}; pass --data.data_dir DIR holding {what} "
            "(torchvision layout), or add --data.download true"
        ) from error


def _load_cifar(name: str, split: str, data_dir: str | None, download: bool) -> ImageDataset:
    import torchvision

    if name == "cifar10":
        title, cls, what = "CIFAR-10", torchvision.datasets.CIFAR10, "cifar-10-batches-py/"
    else:
        title, cls, what = "CIFAR-100", torchvision.datasets.CIFAR100, "cifar-100-python/"
    dataset = _torchvision_dataset(title, cls, data_dir, download, what, train=split == "train")
    # (N, 32, 32, 3) -> (N, 3, 32, 32) in one tensor op: no per-image PIL round trip.
    images = torch.from_numpy(np.asarray(dataset.data, dtype=np.uint8)).permute(0, 3, 1, 2)
    labels = torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64)
    return ImageDataset(images.contiguous(), labels, list(dataset.classes), name)


def _load_stl10(split: str, data_dir: str | None, download: bool) -> ImageDataset:
    import torchvision

    dataset = _torchvision_dataset(
        "STL-10", torchvision.datasets.STL10, data_dir, download, "stl10_binary/", split=split
    )
    images = torch.from_numpy(np.ascontiguousarray(dataset.data, dtype=np.uint8))
    # Unlabeled images carry -1, kept as a label so train+unlabeled stays one tensor.
    labels = torch.as_tensor(np.asarray(dataset.labels), dtype=torch.int64)
    classes = list(getattr(dataset, "classes", None) or STL10_CLASSES)
    return ImageDataset(images, labels, classes, "stl10")


# ---------------------------------------------------------------------------------------------
# scikit-learn digits (8x8, bundled with scikit-learn: always available offline)

_DIGITS_TEST_FRACTION = 0.25
_DIGITS_SPLIT_SEED = 0  # fixed, so train and test are disjoint whatever seed a run uses


def _load_digits(split: str) -> ImageDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    values = torch.as_tensor(bunch.images, dtype=torch.float64)  # (N, 8, 8) in 0..16
    images = (values * (255.0 / 16.0)).round().clamp(0, 255).to(torch.uint8).unsqueeze(1)
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    # Stratified split: a fixed quarter of every class is the test set.
    generator = torch.Generator().manual_seed(_DIGITS_SPLIT_SEED)
    test_mask = torch.zeros(len(labels), dtype=torch.bool)
    for c in range(10):
        members = torch.nonzero(labels == c).flatten()
        n_test = round(len(members) * _DIGITS_TEST_FRACTION)
        test_mask[members[torch.randperm(len(members), generator=generator)[:n_test]]] = True
    indices = torch.nonzero(test_mask if split == "test" else ~test_mask).flatten()
    return ImageDataset(images[indices].contiguous(), labels[indices], MNIST_CLASSES[:], "digits")


# ---------------------------------------------------------------------------------------------
# The one entry point


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | None = None,
    *,
    image_size: int | None = None,
    seed: int = 0,
    synthetic_size: int = 512,
    download: bool = False,
) -> ImageDataset:
    """Load a dataset split as one uint8 (N, C, H, W) tensor plus int64 labels.

    Args:
        name: one of `DATASETS`.
        split: "train" or "test"; stl10 also has "unlabeled" and "train+unlabeled" (label -1).
        data_dir: where the files are; for "folder", the image tree itself.
        image_size: resize every image to this side (folder default: 64).
        seed: only for "synthetic": seeds the images (train and test use different streams).
        synthetic_size: number of synthetic images.
        download: fetch a missing dataset with torchvision into data_dir or ~/.cache/selfsup.

    Raises:
        SelfsupError: unknown name or split, or the data cannot be found (the message says how
            to get it).

    >>> load_dataset("digits", "test").images.shape
    torch.Size([450, 1, 8, 8])
    """
    key = name.strip().lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10", "cifar-100": "cifar100"}.get(
        key, key
    )
    if key not in DATASETS:
        raise SelfsupError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if split not in SPLITS[key]:
        raise SelfsupError(
            f"dataset {key} has no split {split!r}; choose one of {', '.join(SPLITS[key])}"
        )
    if image_size is not None and image_size < 1:
        raise SelfsupError(f"image_size must be a positive integer, got {image_size}")
    if key == "folder":
        return load_folder_split(split, data_dir, image_size)
    if key == "shards":
        stream = open_stream("shards", split, data_dir, image_size)
        images = torch.stack([stream[index] for index in range(len(stream))])
        return ImageDataset(images, stream.labels, list(stream.classes), "shards")
    if key == "synthetic":
        # 2 * seed + split gives train and test disjoint, reproducible random streams.
        split_seed = 2 * seed + (split == "test")
        return make_synthetic(synthetic_size, image_size or 32, split_seed)
    if key in ("fashion-mnist", "mnist"):
        dataset = _load_mnist_like(key, split, data_dir, download)
    elif key in ("cifar10", "cifar100"):
        dataset = _load_cifar(key, split, data_dir, download)
    elif key == "stl10":
        dataset = _load_stl10(split, data_dir, download)
    else:
        dataset = _load_digits(split)
    if image_size is not None:
        dataset.images = resize_images(dataset.images, image_size)
    return dataset


def open_stream(
    name: str, split: str, data_dir: str | None, image_size: int | None = None
) -> ImageFiles | TarShards:
    """A split of an image folder or of tar shards, decoded item by item (for DataLoader
    workers) instead of loaded into memory; splits as `folder.split_folder` finds them, images
    `image_size` (default 64) pixels square."""
    key = name.strip().lower()
    if key not in STREAMABLE:
        raise SelfsupError(
            f"dataset {name!r} is held in memory; streaming is for {' and '.join(STREAMABLE)}"
        )
    folder, classes = split_folder(split, data_dir, key)
    size = 64 if image_size is None else image_size
    if key == "shards":
        return TarShards(folder, size)
    return ImageFiles(folder, size, classes=classes)
