"""Image collections too large for memory: decoded one at a time in DataLoader workers.

Small datasets live on the device as one uint8 tensor (`ImageDataset`). A folder of millions
of JPEGs, or webdataset-style tar shards, cannot: these map-style datasets decode each image
on request to a FIXED-SIZE uint8 (C, S, S) tensor (shorter side resized to S, centre crop,
exactly as `load_folder`), so a `DataLoader` with workers and `pin_memory=True` can feed the
device, where the random views are still made in batches.

Both datasets keep their per-image index (paths, tar offsets) in numpy arrays rather than in
Python lists: forked DataLoader workers touch the reference count of every Python object they
read, which copies the pages and makes each worker's memory grow to the size of the index
(pytorch/pytorch#13246); numpy arrays are single objects and stay shared.
"""

from __future__ import annotations

import io
import operator
import os
import tarfile
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch.utils.data import Dataset

from selfsup.data.base import ImageDataset
from selfsup.data.folder import GRAYSCALE_MODES, IMAGE_EXTENSIONS, _decode, _list_folder
from selfsup.errors import SelfsupError

# How many files decide `channels` when it is not given: opening only their headers keeps the
# constructor cheap on millions of files.
CHANNEL_PROBE = 64
# Open shard files kept per process; a bound well under the usual limit of 1024 descriptors.
_MAX_OPEN_SHARDS = 128
_TAR_IMAGE_EXTENSIONS = frozenset(ext.lstrip(".") for ext in IMAGE_EXTENSIONS)


class _Strings:
    """Many strings as one byte buffer plus offsets: two numpy arrays, shared by workers."""

    def __init__(self, strings: Iterable[str]) -> None:
        # surrogateescape round-trips file names that are not valid UTF-8, as os.fsencode does.
        encoded = [s.encode("utf-8", "surrogateescape") for s in strings]
        self._offsets = np.cumsum([0, *map(len, encoded)], dtype=np.int64)
        self._buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, index: int) -> str:
        start, end = self._offsets[index], self._offsets[index + 1]
        return self._buffer[start:end].tobytes().decode("utf-8", "surrogateescape")


def _is_grayscale_header(source: Path | BinaryIO) -> bool | None:
    """Whether an image is single-channel, from its header only; None if it cannot be opened."""
    from PIL import Image

    try:
        with Image.open(source) as image:  # lazy: reads the header, not the pixels
            return image.mode in GRAYSCALE_MODES
    except Exception:
        return None


def _check_sizes(image_size: int, channels: int | None) -> None:
    if image_size < 1:
        raise SelfsupError(f"image_size must be a positive integer, got {image_size}")
    if channels not in (None, 1, 3):
        raise SelfsupError(f"channels must be 1, 3 or None, got {channels}")


class _DecodedImages(Dataset):
    """What both datasets share: decode on request, and step over files that fail to decode.

    Subclasses build their index, then call `__init__`, and say how to reach an image
    (`_source`) and how to name it in a warning (`_describe`).
    """

    def __init__(
        self,
        image_size: int,
        channels: int | None,
        labels: torch.Tensor | None,
        classes: list[str],
    ) -> None:
        self.image_size = image_size
        self.labels = labels
        self.classes = classes
        # Indices that failed to decode in this process: neither retried nor warned about again.
        self._bad: set[int] = set()
        self.channels = self._decide_channels(channels)

    def __len__(self) -> int:
        raise NotImplementedError

    def _source(self, index: int) -> Path | BinaryIO:
        raise NotImplementedError

    def _describe(self, index: int) -> str:
        raise NotImplementedError

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def _decide_channels(self, channels: int | None) -> int:
        """`channels`, or 1 if every readable one of the first `CHANNEL_PROBE` is grayscale."""
        if channels is not None:
            return channels
        probe = []
        for index in range(min(len(self), CHANNEL_PROBE)):
            try:
                probe.append(_is_grayscale_header(self._source(index)))
            except OSError:
                probe.append(None)
        readable = [gray for gray in probe if gray is not None]
        return 1 if readable and all(readable) else 3

    def __getitem__(self, index: int) -> torch.Tensor:
        """Image `index` as uint8 (C, S, S); if it fails to decode, the next one that does."""
        n = len(self)
        index = operator.index(index)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} images")
        for step in range(n):
            current = (index + step) % n
            if current in self._bad:
                continue
            try:
                array, _ = _decode(self._source(current), self.image_size)
            # PIL raises many types for broken files (OSError, SyntaxError, ValueError, ...):
            # one bad file in millions must not end a long run, so it is replaced instead.
            except Exception as error:
                self._bad.add(current)
                warnings.warn(
                    f"cannot decode {self._describe(current)} ({error!r}); "
                    "using the next image in its place",
                    stacklevel=2,
                )
                continue
            return _to_tensor(array, self.channels)
        raise SelfsupError(f"none of the {n} images could be decoded")


def _to_tensor(array: np.ndarray, channels: int) -> torch.Tensor:
    """(S, S, 3) uint8 RGB to (channels, S, S); one channel is PIL's ITU-R 601 luma.

    For a grayscale source the three channels are equal and luma gives back that value exactly,
    so a grayscale folder matches `load_folder`, which keeps the first of three equal channels.
    """
    if channels == 1:
        from PIL import Image

        array = np.asarray(Image.fromarray(array).convert("L"))[:, :, None]
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


class ImageFiles(_DecodedImages):
    """Every image under a folder, decoded on request: `load_folder` for data that won't fit.

    Lists files, classes and labels exactly as `load_folder` (sorted, hidden files left out,
    classes from sub-folders that hold images), but opens no image until it is asked for one.
    A file that fails to decode is replaced by the next index that decodes (wrapping around),
    with one warning per bad file per process; `labels[i]` stays the label of file `i`, not of
    its stand-in (for pre-training that does not matter; an evaluation should skip bad files).

    Args:
        root: the directory.
        image_size: output side S; the shorter side is resized to S, then centre-cropped.
        channels: 1 or 3. By default 1 if each of the first `CHANNEL_PROBE` (64) files that
            can be opened has a single-channel header, else 3; unlike `load_folder`, which
            decodes everything first, a colour image after those becomes grayscale (ITU-R 601
            luma). Give `channels` when the collection is mixed.
        classes: class names to label with (e.g. the train split's); by default the sorted
            sub-folder names.

    Attributes:
        labels: int64 (N,), or None when `root` has no class sub-folders.
        classes: class names, index = label; [] when unlabelled.
        channels: C of every item, 1 or 3.
        image_size: S of every item.

    Raises:
        SelfsupError: `root` is missing, holds no image file, or has a class not in `classes`.

    >>> dataset = ImageFiles("photos/train", image_size=96)  # doctest: +SKIP
    >>> dataset[0].shape, dataset[0].dtype  # doctest: +SKIP
    (torch.Size([3, 96, 96]), torch.uint8)
    """

    def __init__(
        self,
        root: str | Path,
        image_size: int = 64,
        channels: int | None = None,
        classes: list[str] | None = None,
    ) -> None:
        _check_sizes(image_size, channels)
        self.root = Path(root).expanduser()
        listing = _list_folder(self.root, classes)
        files, labels = listing.images()
        if not files:
            raise SelfsupError(
                f"no image files found in {self.root} (looked for {'/'.join(IMAGE_EXTENSIONS)})"
            )
        self._paths = _Strings(str(path.relative_to(self.root)) for path in files)
        label_tensor = torch.tensor(labels, dtype=torch.int64) if listing.labelled else None
        super().__init__(image_size, channels, label_tensor, listing.classes)

    def __len__(self) -> int:
        return len(self._paths)

    def path(self, index: int) -> Path:
        """The file behind index `index`."""
        return self.root / self._paths[index]

    def _source(self, index: int) -> Path:
        return self.path(index)

    def _describe(self, index: int) -> str:
        return str(self.path(index))


def _split_key(name: str) -> tuple[str, str]:
    """webdataset's rule: the key runs to the first dot of the base name, the rest is the
    extension (`a/b.seg.png` is key `a/b`, extension `seg.png`)."""
    folder, _, base = name.rpartition("/")
    stem, _, extension = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), extension.lower()


def _index_shard(path: Path) -> list[tuple[str, int, int, int | None]]:
    """(image member name, data offset, size, label or None) per key, in tar order."""
    try:
        # "r:" refuses compressed tars, whose offsets could not be read at random.
        with tarfile.open(path, "r:") as tar:
            return _index_members(tar, path)
    except (tarfile.TarError, OSError) as error:
        raise SelfsupError(
            f"cannot index {path} as an uncompressed tar shard ({error}); "
            "compressed shards (.tar.gz) cannot be read at random"
        ) from error


def _index_members(tar: tarfile.TarFile, path: Path) -> list[tuple[str, int, int, int | None]]:
    images: dict[str, tarfile.TarInfo] = {}
    labels: dict[str, int] = {}
    for member in tar:
        if not member.isfile():
            continue
        key, extension = _split_key(member.name)
        if extension in _TAR_IMAGE_EXTENSIONS:
            images.setdefault(key, member)
        elif extension == "cls":
            text = tar.extractfile(member).read().decode("utf-8", "replace").strip()
            try:
                labels[key] = int(text)
            except ValueError:
                raise SelfsupError(
                    f"{path}:{member.name} should hold an integer class, got {text[:40]!r}"
                ) from None
    return [
        (member.name, member.offset_data, member.size, labels.get(key))
        for key, member in images.items()
    ]


def _shard_paths(paths_or_dir: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    if isinstance(paths_or_dir, (str, os.PathLike)):
        path = Path(paths_or_dir).expanduser()
        paths = sorted(path.glob("*.tar")) if path.is_dir() else [path]
    else:
        paths = sorted(Path(p).expanduser() for p in paths_or_dir)
    if not paths:
        raise SelfsupError(f"no .tar shards in {paths_or_dir}")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SelfsupError(f"tar shards not found: {missing[:3]}")
    return paths


class TarShards(_DecodedImages):
    """Images in webdataset-style tar shards, read at random by index without extraction.

    Each shard is indexed once, on construction, with the stdlib `tarfile` (member name, data
    offset, size); an item is then one seek and one read in an uncompressed tar, so a sampler
    may ask for any order. Members are grouped by key (webdataset's rule: the name up to the
    first dot of its base name); a key's image is its `.jpg/.jpeg/.png/.webp/...` member and
    its label the integer text in `key.cls`. Order: shards sorted by path, keys in tar order.

    Each process keeps its own open file per shard (up to 128, least recently used closed
    first) and reopens them after a fork, so DataLoader workers never share a file offset;
    pickling leaves the files behind. A member that fails to decode is replaced by the next
    that does, as in `ImageFiles`.

    Args:
        paths_or_dir: a folder (its `*.tar` files), one shard, or a list of shards.
        image_size: output side S; the shorter side is resized to S, then centre-cropped.
        channels: 1 or 3; by default decided from the first 64 images' headers, as in
            `ImageFiles`.

    Attributes:
        labels: int64 (N,) with -1 where a key has no `.cls`, or None if no shard has any.
        classes: `str(i)` for i in 0..max label when there are labels, else [].

    Raises:
        SelfsupError: no shard, a compressed or unreadable shard, a non-integer `.cls`, or no
            image member at all.

    >>> shards = write_shards("photos/train", "shards/train")  # doctest: +SKIP
    >>> dataset = TarShards("shards/train", image_size=96)  # doctest: +SKIP
    """

    def __init__(
        self,
        paths_or_dir: str | os.PathLike | Sequence[str | os.PathLike],
        image_size: int = 64,
        channels: int | None = None,
    ) -> None:
        _check_sizes(image_size, channels)
        self.shards = _shard_paths(paths_or_dir)
        shard_ids: list[int] = []
        rows: list[tuple[str, int, int, int | None]] = []
        for shard_id, path in enumerate(self.shards):
            entries = _index_shard(path)
            rows.extend(entries)
            shard_ids.extend([shard_id] * len(entries))
        if not rows:
            raise SelfsupError(
                f"no image members in the {len(self.shards)} shards of {paths_or_dir}"
            )
        self._names = _Strings(row[0] for row in rows)
        self._shard = np.array(shard_ids, dtype=np.int32)
        self._offset = np.array([row[1] for row in rows], dtype=np.int64)
        self._size = np.array([row[2] for row in rows], dtype=np.int64)
        self._files: OrderedDict[int, BinaryIO] = OrderedDict()
        self._pid = os.getpid()
        found = [row[3] for row in rows]
        labels, classes = None, []
        if any(label is not None for label in found):
            labels = torch.tensor([-1 if x is None else x for x in found], dtype=torch.int64)
            classes = [str(i) for i in range(int(labels.max()) + 1)]
        super().__init__(image_size, channels, labels, classes)

    def __len__(self) -> int:
        return len(self._shard)

    def _source(self, index: int) -> BinaryIO:
        if self._pid != os.getpid():
            # Forked: the inherited files share their offset with the parent's; let them go
            # (closing only this process's descriptors) and open new ones.
            self.close()
            self._pid = os.getpid()
        shard = int(self._shard[index])
        file = self._files.get(shard)
        if file is None:
            if len(self._files) >= _MAX_OPEN_SHARDS:
                self._files.popitem(last=False)[1].close()
            # Unbuffered: every read seeks first, and a buffer would only copy the bytes again.
            file = self._files[shard] = open(self.shards[shard], "rb", buffering=0)  # noqa: SIM115
        self._files.move_to_end(shard)
        size = int(self._size[index])
        file.seek(int(self._offset[index]))
        data = file.read(size)
        if len(data) != size:
            raise OSError(f"{self.shards[shard]} is shorter than when it was indexed")
        return io.BytesIO(data)

    def _describe(self, index: int) -> str:
        return f"{self.shards[int(self._shard[index])]}:{self._names[index]}"

    def close(self) -> None:
        """Close this process's open shard files (they reopen on the next read)."""
        files = self.__dict__.get("_files", {})
        while files:
            files.popitem()[1].close()

    def __del__(self) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_files"] = OrderedDict()
        return state


def write_shards(
    root: str | Path,
    out_dir: str | Path,
    images_per_shard: int = 10_000,
    image_size: int | None = None,
) -> list[Path]:
    """Pack an image folder into tar shards that `TarShards` reads: one big file per 10k images.

    Millions of small files are slow to list and copy; a few large sequential files are not.
    Files are listed as `ImageFiles` lists them; key `i` (zero-padded, so names sort in order)
    holds `{i}.{ext}` and, for a folder with class sub-folders, `{i}.cls`. Shards are
    byte-for-byte reproducible (fixed mtime and owner) and each appears only when complete.

    Args:
        root: the image folder.
        out_dir: where `shard-000000.tar`, `shard-000001.tar`, ... go; created if missing.
        images_per_shard: files per shard.
        image_size: None keeps each file's original bytes (no re-encoding; broken files are
            packed as they are and skipped when read). Otherwise each image is stored as a PNG
            already resized and centre-cropped to `image_size` (grayscale kept single-channel),
            so reading decodes less; files that fail to decode are left out, with a warning.

    Returns:
        The shard paths written, in order.

    Raises:
        SelfsupError: `root` is missing or holds no image file, `out_dir` already holds
            shards, or a size is not positive.

    >>> write_shards("photos/train", "shards/train", image_size=128)  # doctest: +SKIP
    [PosixPath('shards/train/shard-000000.tar'), ...]
    """
    if images_per_shard < 1:
        raise SelfsupError(f"images_per_shard must be positive, got {images_per_shard}")
    if image_size is not None and image_size < 1:
        raise SelfsupError(f"image_size must be a positive integer, got {image_size}")
    root, out_dir = Path(root).expanduser(), Path(out_dir).expanduser()
    listing = _list_folder(root)
    files, labels = listing.images()
    if not files:
        raise SelfsupError(f"no image files found in {root}")
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = sorted(out_dir.glob("shard-*.tar"))
    if existing:
        # Mixing with an older run's shards would silently change the dataset.
        raise SelfsupError(f"{out_dir} already holds shards ({existing[0].name}, ...)")
    width = max(6, len(str(len(files) - 1)))
    written: list[Path] = []
    skipped: list[str] = []
    for start in range(0, len(files), images_per_shard):
        path = out_dir / f"shard-{len(written):06d}.tar"
        partial = path.with_name(path.name + ".partial")
        with tarfile.open(partial, "w") as tar:
            for i in range(start, min(start + images_per_shard, len(files))):
                key = f"{i:0{width}d}"
                if image_size is None:
                    data = files[i].read_bytes()
                    extension = files[i].suffix.lower().lstrip(".")
                else:
                    try:
                        data = _encode_png(files[i], image_size)
                    except Exception:  # PIL's many error types, as in load_folder
                        skipped.append(str(files[i]))
                        continue
                    extension = "png"
                _add_member(tar, f"{key}.{extension}", data)
                if listing.labelled:
                    _add_member(tar, f"{key}.cls", str(labels[i]).encode())
        os.replace(partial, path)
        written.append(path)
    if skipped:
        warnings.warn(
            f"left out {len(skipped)} unreadable files of {root} (first: {skipped[0]})",
            stacklevel=2,
        )
    return written


def _encode_png(path: Path, image_size: int) -> bytes:
    from PIL import Image

    array, grayscale = _decode(path, image_size)
    image = Image.fromarray(array)
    if grayscale:
        image = image.convert("L")  # equal channels: exact, and keeps `channels` decided as 1
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def sample_stats(
    dataset: Dataset | ImageDataset, count: int = 1024, seed: int = 0
) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] units from a seeded random sample of the dataset.

    Normalisation statistics without reading a whole collection: `count` items drawn without
    replacement (all of them, in order, when `count >= len(dataset)`), stacked and passed to
    `selfsup.augment.dataset_stats`, so the convention (population std) is the same.

    Args:
        dataset: a map-style dataset whose items are uint8 (C, S, S) tensors (`ImageFiles`,
            `TarShards`), or an `ImageDataset`.
        count: how many items to read.
        seed: seeds the draw, so the statistics are reproducible.

    Returns:
        (mean, std), each a list of C floats.

    >>> mean, std = sample_stats(ImageFiles("photos/train"), count=512)  # doctest: +SKIP
    """
    # Imported here so that importing selfsup.data does not pull in the augmentation package.
    from selfsup.augment.views import dataset_stats

    if count < 1:
        raise SelfsupError(f"count must be positive, got {count}")
    n = len(dataset)
    if n == 0:
        raise SelfsupError("cannot compute statistics of an empty dataset")
    if count >= n:
        indices = torch.arange(n)
    else:
        generator = torch.Generator().manual_seed(seed)
        # Sorted: neighbouring reads stay in the same shard and in file order.
        indices = torch.randperm(n, generator=generator)[:count].sort().values
    if isinstance(dataset, ImageDataset):
        images = dataset.images[indices]
    else:
        images = torch.stack([dataset[int(i)] for i in indices])
    return dataset_stats(images)
