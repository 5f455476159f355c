"""Dataset loaders: every dataset becomes one uint8 (N, C, H, W) tensor plus int64 labels.

Whole datasets are held in memory as uint8 (Fashion-MNIST is 47 MB, CIFAR 150 MB), so a
training loop can move them to the device once and crop/flip/normalise there, batched.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from selfsup.data.base import ImageDataset
from selfsup.data.idx import read_idx
from selfsup.errors import SelfsupError

DATASETS: tuple[str, ...] = (
    "fashion-mnist",
    "mnist",
    "cifar10",
    "cifar100",
    "stl10",
    "digits",
    "folder",
    "synthetic",
)

SPLITS: dict[str, tuple[str, ...]] = {name: ("train", "test") for name in DATASETS}
SPLITS["stl10"] = ("train", "test", "unlabeled", "train+unlabeled")

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".webp",
    ".tif",
    ".tiff",
    ".ppm",
    ".pgm",
)

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
SYNTHETIC_CLASSES = [
    "h-stripes",
    "v-stripes",
    "diag-stripes",
    "antidiag-stripes",
    "checkerboard",
    "rings",
    "disc",
    "square",
    "cross",
    "triangle",
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
# A folder of images


@dataclass
class FolderReport:
    """What `load_folder` found: files seen, images decoded, and the files it skipped."""

    found: int
    loaded: int
    skipped: list[str] = field(default_factory=list)


def _visible_files(directory: Path) -> list[Path]:
    """All files under `directory`, sorted, leaving out hidden files and folders (.DS_Store)."""
    files = []
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
    return files


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _class_folders(root: Path) -> list[str]:
    """Sorted names of the sub-folders of `root` that hold at least one image file."""
    return sorted(
        child.name
        for child in root.iterdir()
        if child.is_dir()
        and not child.name.startswith(".")
        and any(_is_image_name(path) for path in _visible_files(child))
    )


def _decode(path: Path, size: int) -> tuple[np.ndarray, bool]:
    """One image as uint8 (size, size, 3): shorter side resized to `size`, then centre-cropped.

    Returns the array and whether the source was grayscale.
    """
    from PIL import Image

    with Image.open(path) as image:
        if image.format == "JPEG":
            image.draft(image.mode, (size, size))  # decode at reduced scale: much faster
        image.load()
        grayscale = image.mode in ("1", "L", "LA", "I", "I;16", "F")
        image = image.convert("RGB")
    width, height = image.size
    scale = size / min(width, height)
    new_size = (max(size, round(width * scale)), max(size, round(height * scale)))
    image = image.resize(new_size, Image.Resampling.BICUBIC, reducing_gap=3.0)
    left, top = (new_size[0] - size) // 2, (new_size[1] - size) // 2
    image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8), grayscale


def load_folder(
    root: str | Path, image_size: int = 64, classes: list[str] | None = None
) -> tuple[ImageDataset, FolderReport]:
    """Load a directory tree of images; labels come from sub-folder names when there are any.

    If sub-folders of `root` hold images, each such sub-folder is a class (sorted names, like
    torchvision's ImageFolder) and files lying directly in `root` are skipped; otherwise every
    image in `root` is loaded without labels. Images become RGB, or 1-channel if every image is
    grayscale; unreadable and non-image files are skipped and listed in the report.

    Args:
        root: the directory.
        image_size: output side S; the shorter side is resized to S, then centre-cropped.
        classes: class names to label with (e.g. the train split's, so a test split with a
            missing class keeps the same indices); by default the sorted sub-folder names.

    Returns:
        The dataset, uint8 (N, C, S, S), and a `FolderReport`.

    Raises:
        SelfsupError: `root` is missing, holds no readable image, or has a class not in `classes`.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise SelfsupError(f"image folder {root} does not exist; point --data.data_dir at a folder")
    if image_size < 1:
        raise SelfsupError(f"image_size must be a positive integer, got {image_size}")
    found_classes = _class_folders(root)
    labelled = bool(found_classes)
    if labelled and classes is not None:
        unknown = sorted(set(found_classes) - set(classes))
        if unknown:
            raise SelfsupError(
                f"{root} has class folders {unknown} that are not among the classes {classes}; "
                "give the train and test splits the same class folders"
            )
    names = list(classes) if classes is not None else found_classes
    index = {name: i for i, name in enumerate(names)}

    files = _visible_files(root) if labelled else sorted(p for p in root.iterdir() if p.is_file())
    if not labelled:
        files = [p for p in files if not p.name.startswith(".")]
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    skipped: list[str] = []
    all_gray = True
    for path in files:
        relative = path.relative_to(root)
        label = index.get(relative.parts[0], -1) if labelled and len(relative.parts) > 1 else -1
        if not _is_image_name(path) or (labelled and label < 0):
            skipped.append(str(path))
            continue
        try:
            array, grayscale = _decode(path, image_size)
        # PIL raises many types for broken files (OSError, SyntaxError, ValueError, ...): a
        # corrupt file must never end a long job, it is counted and reported instead.
        except Exception:
            skipped.append(str(path))
            continue
        arrays.append(array)
        labels.append(label)
        all_gray = all_gray and grayscale
    report = FolderReport(found=len(files), loaded=len(arrays), skipped=skipped)
    if not arrays:
        extensions = "/".join(IMAGE_EXTENSIONS)
        raise SelfsupError(
            f"no images found in {root} (looked for {extensions}; {len(skipped)} files "
            "skipped); point --data.data_dir at a folder of images"
        )
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    if all_gray:
        images = images[:, :1]  # grayscale converted to RGB has three equal channels
    label_tensor = torch.tensor(labels, dtype=torch.int64) if labelled else None
    dataset = ImageDataset(images.contiguous(), label_tensor, names if labelled else [], "folder")
    return dataset, report


def _load_folder_split(split: str, data_dir: str | None, image_size: int | None) -> ImageDataset:
    if data_dir is None:
        raise SelfsupError(
            "the folder dataset needs --data.data_dir DIR pointing at a folder of images"
        )
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise SelfsupError(f"image folder {root} does not exist; point --data.data_dir at a folder")
    has_splits = (root / "train").is_dir() and (root / "test").is_dir()
    if split == "test" and not has_splits:
        raise SelfsupError(
            f"folder {root} has no test split; make {root}/train and {root}/test sub-folders "
            "or evaluate on another dataset"
        )
    size = 64 if image_size is None else image_size
    classes = None
    if has_splits:
        if split == "test":
            classes = _class_folders(root / "train") or None
        root = root / split
    dataset, report = load_folder(root, size, classes=classes)
    if report.skipped:
        warnings.warn(
            f"skipped {len(report.skipped)} unreadable files in {root} "
            f"(first: {report.skipped[0]})",
            stacklevel=3,
        )
    return dataset


# ---------------------------------------------------------------------------------------------
# Synthetic: a tiny, deterministic, learnable dataset for tests


def _synthetic_patterns(c: int, n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Foreground masks (n, size, size) in {0, 1} of pattern class `c`, randomly placed."""
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    y, x = coords.view(1, size, 1), coords.view(1, 1, size)
    phase = torch.rand(n, 1, 1, generator=generator)
    centre = 0.35 + 0.3 * torch.rand(n, 2, 1, 1, generator=generator)
    dy, dx = y - centre[:, 0], x - centre[:, 1]
    half = 0.15 + 0.1 * torch.rand(n, 1, 1, generator=generator)  # shape radius
    tau = 2 * math.pi
    if c == 0:
        wave = torch.sin(tau * (3 * y + phase)).expand(n, size, size)
    elif c == 1:
        wave = torch.sin(tau * (3 * x + phase)).expand(n, size, size)
    elif c == 2:
        wave = torch.sin(tau * (2 * (x + y) + phase))
    elif c == 3:
        wave = torch.sin(tau * (2 * (x - y) + phase))
    elif c == 4:
        wave = torch.sin(tau * (2 * x + phase)) * torch.sin(tau * (2 * y + phase))
    elif c == 5:
        wave = torch.sin(tau * (5 * torch.sqrt(dx**2 + dy**2) + phase))
    elif c == 6:
        wave = half - torch.sqrt(dx**2 + dy**2)
    elif c == 7:
        wave = half - torch.maximum(dx.abs(), dy.abs())
    elif c == 8:
        wave = half / 3 - torch.minimum(dx.abs(), dy.abs())
    else:
        wave = torch.minimum(half - dy, dy - 2 * dx.abs() + half)
    return (wave > 0).float()


def make_synthetic(size: int = 512, image_size: int = 32, seed: int = 0) -> ImageDataset:
    """A deterministic 10-class dataset of coloured patterns (stripes, rings, shapes) plus noise.

    Classes differ by geometry, not colour, so they survive colour jitter and grayscale views:
    a learned encoder beats chance (10%) while a run takes seconds.
    """
    if size < 1 or image_size < 1:
        raise SelfsupError(
            f"synthetic size and image_size must be positive, got {size}, {image_size}"
        )
    generator = torch.Generator().manual_seed(seed)
    labels = (torch.arange(size) % 10)[torch.randperm(size, generator=generator)]
    images = torch.empty(size, 3, image_size, image_size)
    for c in range(10):
        members = torch.nonzero(labels == c).flatten()
        if len(members) == 0:
            continue
        mask = _synthetic_patterns(c, len(members), image_size, generator).unsqueeze(1)
        foreground = 0.6 + 0.4 * torch.rand(len(members), 3, 1, 1, generator=generator)
        background = 0.4 * torch.rand(len(members), 3, 1, 1, generator=generator)
        images[members] = mask * foreground + (1 - mask) * background
    noise = 0.08 * torch.randn(images.shape, generator=generator)
    pixels = ((images + noise).clamp(0, 1) * 255).round().to(torch.uint8)
    return ImageDataset(pixels, labels.to(torch.int64), SYNTHETIC_CLASSES[:], "synthetic")


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
        return _load_folder_split(split, data_dir, image_size)
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
