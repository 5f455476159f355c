"""Webdataset-style tar shards: written from a folder, read one member at a time by offset."""

from __future__ import annotations

import io
import os
import tarfile
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from selfsup.data.files import DecodedImages, Strings, check_sizes
from selfsup.data.folder import IMAGE_EXTENSIONS, decode_image, list_folder
from selfsup.errors import SelfsupError

# Open shard files kept per process; a bound well under the usual limit of 1024 descriptors.
_MAX_OPEN_SHARDS = 128
_TAR_IMAGE_EXTENSIONS = frozenset(ext.lstrip(".") for ext in IMAGE_EXTENSIONS)


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


class TarShards(DecodedImages):
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
        check_sizes(image_size, channels)
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
        self._names = Strings(row[0] for row in rows)
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
    listing = list_folder(root)
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

    array, grayscale = decode_image(path, image_size)
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
