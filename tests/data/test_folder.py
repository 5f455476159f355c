"""Folders of images: labels from sub-folders, unreadable files skipped and counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.data import FolderReport, load_dataset, load_folder
from selfsup.errors import SelfsupError


def save(path: Path, mode: str = "RGB", size: tuple[int, int] = (20, 12), value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value,) * 3).save(path)


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    save(tmp_path / "cat" / "a.png", value=10)
    save(tmp_path / "cat" / "b.jpg", value=20)
    save(tmp_path / "dog" / "nested" / "c.bmp", value=30)
    save(tmp_path / "dog" / "d.PNG", "L", value=40)
    (tmp_path / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    (tmp_path / "dog" / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "empty-class").mkdir()
    return tmp_path


def test_labelled_folder(labelled: Path) -> None:
    dataset, report = load_folder(labelled, image_size=16)
    assert dataset.images.shape == (4, 3, 16, 16) and dataset.images.dtype == torch.uint8
    assert dataset.classes == ["cat", "dog"] and dataset.name == "folder"
    assert dataset.labels.tolist() == [0, 0, 1, 1]
    assert report == FolderReport(
        found=6,
        loaded=4,
        skipped=[str(labelled / "dog" / "broken.png"), str(labelled / "dog" / "notes.txt")],
    )
    # The grayscale image keeps its value in all three channels.
    assert {int(v) for v in dataset.images[2].unique()} == {40}


def test_load_dataset_warns_with_count(labelled: Path) -> None:
    with pytest.warns(UserWarning, match="skipped 2 unreadable files"):
        dataset = load_dataset("folder", "train", str(labelled), image_size=8)
    assert dataset.images.shape == (4, 3, 8, 8)


def test_flat_grayscale_folder_is_unlabelled(tmp_path: Path) -> None:
    save(tmp_path / "x.png", "L", size=(40, 10), value=200)
    save(tmp_path / "y.png", "L", size=(10, 30), value=100)
    dataset = load_dataset("folder", "train", str(tmp_path))
    assert dataset.labels is None and dataset.classes == []
    assert dataset.images.shape == (2, 1, 64, 64)
    assert dataset.images[0].unique().tolist() == [200]


def test_resize_then_centre_crop(tmp_path: Path) -> None:
    array = np.zeros((10, 30, 3), dtype=np.uint8)
    array[:, 10:20] = 255  # white centre third of a wide image
    Image.fromarray(array).save(tmp_path / "wide.png")
    dataset, _ = load_folder(tmp_path, image_size=10)
    assert dataset.images.shape == (1, 3, 10, 10)
    assert dataset.images.float().mean() > 250  # the crop kept only the white middle


def test_train_test_split_folders(tmp_path: Path) -> None:
    save(tmp_path / "train" / "a" / "1.png")
    save(tmp_path / "train" / "b" / "2.png")
    save(tmp_path / "test" / "b" / "3.png")
    test = load_dataset("folder", "test", str(tmp_path), image_size=8)
    assert test.classes == ["a", "b"] and test.labels.tolist() == [1]
    assert len(load_dataset("folder", "train", str(tmp_path), image_size=8)) == 2


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(SelfsupError, match="no images found"):
        load_dataset("folder", "train", str(tmp_path))
    with pytest.raises(SelfsupError, match="does not exist"):
        load_dataset("folder", "train", str(tmp_path / "missing"))
    with pytest.raises(SelfsupError, match=r"--data\.data_dir"):
        load_dataset("folder", "train")
    save(tmp_path / "only.png")
    with pytest.raises(SelfsupError, match="no test split"):
        load_dataset("folder", "test", str(tmp_path))
    (tmp_path / "junk.jpg").write_bytes(b"garbage")
    (tmp_path / "only.png").unlink()
    with pytest.raises(SelfsupError, match="1 files skipped"):
        load_folder(tmp_path)
