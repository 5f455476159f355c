"""Any directory tree of images: labels from sub-folders, unreadable files skipped and counted."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from selfsup.data.base import ImageDataset
from selfsup.errors import SelfsupError

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
# PIL modes of single-channel sources; converted to RGB they have three equal channels.
GRAYSCALE_MODES: tuple[str, ...] = ("1", "L", "LA", "I", "I;16", "F")


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


def decode_image(source: Path | BinaryIO, size: int) -> tuple[np.ndarray, bool]:
    """One image as uint8 (size, size, 3): shorter side resized to `size`, then centre-cropped.

    `source` is a path or a binary file object (e.g. `io.BytesIO` of a tar member).
    Returns the array and whether the source was grayscale.
    """
    from PIL import Image

    with Image.open(source) as image:
        if image.format == "JPEG":
            image.draft(image.mode, (size, size))  # decode at reduced scale: much faster
        image.load()
        grayscale = image.mode in GRAYSCALE_MODES
        image = image.convert("RGB")
    width, height = image.size
    scale = size / min(width, height)
    new_size = (max(size, round(width * scale)), max(size, round(height * scale)))
    image = image.resize(new_size, Image.Resampling.BICUBIC, reducing_gap=3.0)
    left, top = (new_size[0] - size) // 2, (new_size[1] - size) // 2
    image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8), grayscale


@dataclass
class FolderListing:
    """Every file `load_folder` looks at, in order, and which of them are images to use.

    Attributes:
        files: all visible files considered (recursively when labelled, else only `root`'s own).
        labels: class index per file, -1 where it has none.
        usable: whether the file has an image extension (and, when labelled, a known class).
        classes: class names, index = label; [] when unlabelled.
        labelled: whether sub-folders of `root` hold images (and so name the classes).
    """

    files: list[Path]
    labels: list[int]
    usable: list[bool]
    classes: list[str]
    labelled: bool

    def images(self) -> tuple[list[Path], list[int]]:
        """The usable files and their labels."""
        keep = [i for i, usable in enumerate(self.usable) if usable]
        return [self.files[i] for i in keep], [self.labels[i] for i in keep]


def list_folder(root: Path, classes: list[str] | None = None) -> FolderListing:
    """List `root` the way `load_folder` reads it, without opening any image.

    Shared with the streaming datasets (`selfsup.data.files`, `selfsup.data.shards`) so that
    all see the same files, in the same order, with the same labels.

    Raises:
        SelfsupError: `root` is missing, or has a class folder not in `classes`.
    """
    if not root.is_dir():
        raise SelfsupError(f"image folder {root} does not exist; point --data.data_dir at a folder")
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
    labels, usable = [], []
    for path in files:
        relative = path.relative_to(root)
        label = index.get(relative.parts[0], -1) if labelled and len(relative.parts) > 1 else -1
        labels.append(label)
        usable.append(_is_image_name(path) and not (labelled and label < 0))
    return FolderListing(files, labels, usable, names if labelled else [], labelled)


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
    if image_size < 1:
        raise SelfsupError(f"image_size must be a positive integer, got {image_size}")
    listing = list_folder(root, classes)
    labelled = listing.labelled
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    skipped: list[str] = []
    all_gray = True
    for path, label, usable in zip(listing.files, listing.labels, listing.usable, strict=True):
        if not usable:
            skipped.append(str(path))
            continue
        try:
            array, grayscale = decode_image(path, image_size)
        # PIL raises many types for broken files (OSError, SyntaxError, ValueError, ...): a
        # corrupt file must never end a long job, it is counted and reported instead.
        except Exception:
            skipped.append(str(path))
            continue
        arrays.append(array)
        labels.append(label)
        all_gray = all_gray and grayscale
    report = FolderReport(found=len(listing.files), loaded=len(arrays), skipped=skipped)
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
    dataset = ImageDataset(images.contiguous(), label_tensor, listing.classes, "folder")
    return dataset, report


def split_folder(
    split: str, data_dir: str | None, kind: str = "folder"
) -> tuple[Path, list[str] | None]:
    """Where a split of an image tree lives: `DIR/train` and `DIR/test` when both exist, else
    `DIR` itself for the training split; and the class names another split must use (the
    train split's), or None.

    Raises:
        SelfsupError: no `data_dir`, a missing folder, or a test split that is not there.
    """
    if data_dir is None:
        raise SelfsupError(f"the {kind} dataset needs --data.data_dir DIR pointing at a folder")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise SelfsupError(f"{kind} {root} does not exist; point --data.data_dir at a folder")
    has_splits = (root / "train").is_dir() and (root / "test").is_dir()
    if split != "train" and not has_splits:
        raise SelfsupError(
            f"{kind} {root} has no {split} split; make {root}/train and {root}/{split} "
            "sub-folders or evaluate on another dataset"
        )
    if not has_splits:
        return root, None
    classes = (_class_folders(root / "train") or None) if split != "train" else None
    return root / split, classes


def load_folder_split(split: str, data_dir: str | None, image_size: int | None) -> ImageDataset:
    root, classes = split_folder(split, data_dir)
    size = 64 if image_size is None else image_size
    dataset, report = load_folder(root, size, classes=classes)
    if report.skipped:
        warnings.warn(
            f"skipped {len(report.skipped)} unreadable files in {root} "
            f"(first: {report.skipped[0]})",
            stacklevel=3,
        )
    return dataset


def folder_image_sizes(data_dir: str | None, sample: int = 200, seed: int = 0) -> tuple[int, int]:
    """(number of usable images, median shorter side in pixels) of a folder's training split,
    the side read from the headers of a seeded sample of at most `sample` files."""
    from PIL import Image

    root, _ = split_folder("train", data_dir)
    files, _ = list_folder(root).images()
    if not files:
        raise SelfsupError(f"image folder {root} holds no images")
    order = np.random.default_rng(seed).permutation(len(files))[:sample]
    sides = []
    for index in order:
        try:
            with Image.open(files[index]) as image:
                sides.append(min(image.size))
        except (OSError, ValueError):
            continue  # unreadable: load_folder skips and counts it
    if not sides:
        raise SelfsupError(f"none of the sampled images in {root} could be read")
    return len(files), int(np.median(sides))
