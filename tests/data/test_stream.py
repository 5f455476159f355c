"""Streamed image files and tar shards: the same pixels as `load_folder`, read on request."""

from __future__ import annotations

import io
import pickle
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from selfsup.data import ImageFiles, TarShards, load_folder, sample_stats, write_shards
from selfsup.data.stats import dataset_stats
from selfsup.errors import SelfsupError

SIZE = 12


def save(path: Path, seed: int, mode: str = "RGB", size: tuple[int, int] = (20, 14)) -> None:
    """A noise image, so that any mix-up of files or pixels shows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(pixels, mode).save(path)


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    save(root / "cat" / "a.png", 0)
    save(root / "cat" / "b.jpg", 1, size=(14, 30))
    save(root / "dog" / "nested" / "c.png", 2, size=(40, 12))
    save(root / "dog" / "d.PNG", 3, "L")
    save(root / "dog" / "e.webp", 4)
    (root / "dog" / "notes.txt").write_text("not an image")
    return root


def stacked(dataset: ImageFiles | TarShards) -> torch.Tensor:
    return torch.stack([dataset[i] for i in range(len(dataset))])


def shards_of(root: Path, out: Path, **kwargs: object) -> TarShards:
    write_shards(root, out, images_per_shard=2, **kwargs)
    return TarShards(out, image_size=SIZE)


def test_image_files_match_load_folder(labelled: Path) -> None:
    reference, _ = load_folder(labelled, image_size=SIZE)
    dataset = ImageFiles(labelled, image_size=SIZE)
    assert len(dataset) == 5 and dataset.channels == 3
    assert dataset[0].shape == (3, SIZE, SIZE) and dataset[0].dtype == torch.uint8
    assert torch.equal(stacked(dataset), reference.images)
    assert torch.equal(dataset.labels, reference.labels) and dataset.labels.dtype == torch.int64
    assert dataset.classes == reference.classes == ["cat", "dog"] and dataset.num_classes == 2
    # os.walk order: a folder's own files before its sub-folders'.
    assert dataset.path(2) == labelled / "dog" / "d.PNG"
    assert dataset.path(4) == labelled / "dog" / "nested" / "c.png"
    assert torch.equal(dataset[-1], dataset[4])
    with pytest.raises(IndexError):
        dataset[5]


def test_shards_match_load_folder(labelled: Path, tmp_path: Path) -> None:
    reference, _ = load_folder(labelled, image_size=SIZE)
    # Original bytes: decoding them is decoding the files, JPEG and WebP included.
    original = shards_of(labelled, tmp_path / "original")
    assert len(original.shards) == 3 and len(original) == 5
    assert torch.equal(stacked(original), reference.images)
    assert original.labels.tolist() == reference.labels.tolist()
    assert original.classes == ["0", "1"]
    # Re-encoded PNGs already at SIZE decode to the same pixels: resizing to the same size and
    # PNG are lossless.
    resized = shards_of(labelled, tmp_path / "resized", image_size=SIZE)
    assert torch.equal(stacked(resized), reference.images)
    # A larger stored size is decoded again with the same rule.
    larger = shards_of(labelled, tmp_path / "larger", image_size=2 * SIZE)
    assert stacked(larger).shape == (5, 3, SIZE, SIZE)


def test_write_shards_layout_and_determinism(labelled: Path, tmp_path: Path) -> None:
    first = write_shards(labelled, tmp_path / "a", images_per_shard=3)
    second = write_shards(labelled, tmp_path / "b", images_per_shard=3)
    assert [p.name for p in first] == ["shard-000000.tar", "shard-000001.tar"]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    with tarfile.open(first[0]) as tar:
        names = tar.getnames()
        expected = ["000000.png", "000000.cls", "000001.jpg", "000001.cls", "000002.png"]
        assert names == [*expected, "000002.cls"]
        assert tar.extractfile("000001.jpg").read() == (labelled / "cat" / "b.jpg").read_bytes()
        assert tar.extractfile("000002.cls").read() == b"1"
    with pytest.raises(SelfsupError, match="already holds shards"):
        write_shards(labelled, tmp_path / "a")
    # Reading is deterministic: two datasets over the same shards agree item by item.
    assert torch.equal(stacked(TarShards(first)), stacked(TarShards(tmp_path / "b")))


def test_unlabelled_folder_and_grayscale(tmp_path: Path) -> None:
    for i in range(3):
        save(tmp_path / "gray" / f"{i}.png", i, "L", size=(16 + 4 * i, 13))
    reference, _ = load_folder(tmp_path / "gray", image_size=SIZE)
    dataset = ImageFiles(tmp_path / "gray", image_size=SIZE)
    assert dataset.labels is None and dataset.classes == [] and dataset.channels == 1
    assert torch.equal(stacked(dataset), reference.images) and reference.images.shape[1] == 1
    for image_size in (None, SIZE):
        out = tmp_path / f"shards-{image_size}"
        shards = shards_of(tmp_path / "gray", out, image_size=image_size)
        assert shards.labels is None and shards.classes == [] and shards.channels == 1
        assert torch.equal(stacked(shards), reference.images)
    # Asked for three channels, a grayscale image repeats its value.
    rgb = ImageFiles(tmp_path / "gray", image_size=SIZE, channels=3)
    assert torch.equal(rgb[0], reference.images[0].expand(3, -1, -1))


def test_channels_decided_from_first_files(tmp_path: Path) -> None:
    for i in range(64):
        save(tmp_path / f"{i:03d}.png", i, "L", size=(4, 4))
    save(tmp_path / "064.png", 64, size=(4, 4))  # colour, but after the files that decide
    dataset = ImageFiles(tmp_path, image_size=4)
    assert dataset.channels == 1
    colour = np.array(Image.open(tmp_path / "064.png").convert("L"))
    assert torch.equal(dataset[64][0], torch.from_numpy(colour))
    save(tmp_path / "000.png", 0, size=(4, 4))  # now a colour file among the first 64
    assert ImageFiles(tmp_path, image_size=4).channels == 3


def test_corrupt_file_yields_next_image_and_one_warning(labelled: Path, tmp_path: Path) -> None:
    (labelled / "cat" / "b.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (labelled / "dog" / "nested" / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    datasets = [ImageFiles(labelled, image_size=SIZE), shards_of(labelled, tmp_path / "shards")]
    for dataset in datasets:
        assert len(dataset) == 5  # a bad file is only found by decoding it
        with pytest.warns(UserWarning, match=r"b\.jpg|000001\.jpg") as caught:
            assert torch.equal(dataset[1], dataset[2])
            assert torch.equal(dataset[1], dataset[2])
        assert len(caught) == 1
        with pytest.warns(UserWarning, match=r"c\.png|000004\.png"):
            assert torch.equal(dataset[4], dataset[0])  # wraps around
        assert torch.equal(dataset.labels, torch.tensor([0, 0, 1, 1, 1]))


def test_resizing_write_leaves_out_corrupt_files(labelled: Path, tmp_path: Path) -> None:
    (labelled / "cat" / "b.jpg").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match=r"left out 1 unreadable files"):
        shards = shards_of(labelled, tmp_path / "shards", image_size=SIZE)
    assert len(shards) == 4 and shards.labels.tolist() == [0, 1, 1, 1]


def test_tar_keys_labels_and_errors(tmp_path: Path) -> None:
    def member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    def png(seed: int) -> bytes:
        buffer = io.BytesIO()
        pixels = np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(buffer, format="PNG")
        return buffer.getvalue()

    with tarfile.open(tmp_path / "b.tar", "w") as tar:
        member(tar, "x/k1.cls", b" 7\n")  # label before its image, and in a folder
        member(tar, "x/k1.png", png(1))
        member(tar, "x/k1.seg.png", png(9))  # same key, not an image of its own
        member(tar, "k2.JPG.json", b"{}")
        member(tar, "k2.png", png(2))
    with tarfile.open(tmp_path / "a.tar", "w") as tar:
        member(tar, "k0.png", png(0))
    dataset = TarShards([tmp_path / "b.tar", tmp_path / "a.tar"], image_size=SIZE)
    assert len(dataset) == 3  # a.tar first: sorted by name
    assert dataset.labels.tolist() == [-1, 7, -1] and dataset.classes == [str(i) for i in range(8)]
    expected = torch.from_numpy(np.array(Image.open(io.BytesIO(png(1))))).permute(2, 0, 1)
    assert torch.equal(dataset[1], expected)

    (tmp_path / "bad").mkdir()
    with tarfile.open(tmp_path / "bad" / "c.tar", "w") as tar:
        member(tar, "k.png", png(0))
        member(tar, "k.cls", b"cat")
    with pytest.raises(SelfsupError, match="integer class"):
        TarShards(tmp_path / "bad")
    with tarfile.open(tmp_path / "d.tar.gz", "w:gz") as tar:
        member(tar, "k.png", png(0))
    with pytest.raises(SelfsupError, match="uncompressed"):
        TarShards(tmp_path / "d.tar.gz")
    (tmp_path / "bad" / "empty").mkdir()
    with pytest.raises(SelfsupError, match=r"no \.tar shards"):
        TarShards(tmp_path / "bad" / "empty")


@pytest.mark.parametrize("kind", ["files", "shards"])
def test_dataloader_workers_and_pickling(labelled: Path, tmp_path: Path, kind: str) -> None:
    if kind == "files":
        dataset = ImageFiles(labelled, image_size=SIZE)
    else:
        dataset = shards_of(labelled, tmp_path / "shards")
    expected = stacked(dataset)  # reading here opens shard files that forked workers inherit
    clone = pickle.loads(pickle.dumps(dataset))
    assert torch.equal(stacked(clone), expected)

    order = [[4, 0], [2, 3], [1]]
    loader = DataLoader(dataset, batch_sampler=order, num_workers=2)
    batches = list(loader)
    assert [tuple(b.shape) for b in batches] == [(2, 3, SIZE, SIZE)] * 2 + [(1, 3, SIZE, SIZE)]
    assert torch.equal(torch.cat(batches), expected[[4, 0, 2, 3, 1]])


def test_sample_stats(labelled: Path) -> None:
    dataset = ImageFiles(labelled, image_size=SIZE)
    reference, _ = load_folder(labelled, image_size=SIZE)
    mean, std = sample_stats(dataset, count=len(dataset))
    expected = dataset_stats(reference.images)
    assert (mean, std) == expected
    assert sample_stats(dataset, count=100) == expected
    assert sample_stats(reference, count=100) == expected  # an in-memory dataset works too
    sampled = sample_stats(dataset, count=3, seed=1)
    assert sampled == sample_stats(dataset, count=3, seed=1)
    assert len(sampled[0]) == len(sampled[1]) == 3 and sampled != expected
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing in this folder is broken
        sample_stats(dataset, count=2, seed=5)
