"""Image files too many for memory: a folder decoded one image at a time in DataLoader workers.

Small datasets live on the device as one uint8 tensor (`ImageDataset`). A folder of millions
of JPEGs, or webdataset-style tar shards (`selfsup.data.shards`), cannot: these map-style
datasets decode each image
on request to a FIXED-SIZE uint8 (C, S, S) tensor (shorter side resized to S, centre crop,
exactly as `load_folder`), so a `DataLoader` with workers and `pin_memory=True` can feed the
device, where the random views are still made in batches.

Both datasets keep their per-image index (paths, tar offsets) in numpy arrays rather than in
Python lists: forked DataLoader workers touch the reference count of every Python object they
read, which copies the pages and makes each worker's memory grow to the size of the index
(pytorch/pytorch#13246); numpy arrays are single objects and stay shared.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch.utils.data import Dataset

from selfsup.data.folder import GRAYSCALE_MODES, IMAGE_EXTENSIONS, decode_image, list_folder
from selfsup.errors import SelfsupError

# How many files decide `channels` when it is not given: opening only their headers keeps the
# constructor cheap on millions of files.
CHANNEL_PROBE = 64


class Strings:
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


def is_grayscale_header(source: Path | BinaryIO) -> bool | None:
    """Whether an image is single-channel, from its header only; None if it cannot be opened."""
    from PIL import Image

    try:
        with Image.open(source) as image:  # lazy: reads the header, not the pixels
            return image.mode in GRAYSCALE_MODES
    except Exception:
        return None


def check_sizes(image_size: int, channels: int | None) -> None:
    if image_size < 1:
        raise SelfsupError(f"image_size must be a positive integer, got {image_size}")
    if channels not in (None, 1, 3):
        raise SelfsupError(f"channels must be 1, 3 or None, got {channels}")


class DecodedImages(Dataset):
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
                probe.append(is_grayscale_header(self._source(index)))
            except OSError:
                probe.append(None)
        readable = [gray for gray in probe if gray is not None]
        return 1 if readable and all(readable) else 3

    def describe(self, index: int) -> str:
        """Where image `index` comes from: a path, or shard:member."""
        return self._describe(index)

    def decode(self, index: int) -> torch.Tensor | None:
        """Image `index` as uint8 (C, S, S), or None if it cannot be decoded (no stand-in:
        for embedding, where every row must be the image of its own file)."""
        try:
            array, _ = decode_image(self._source(index), self.image_size)
        except Exception:  # PIL raises many types for broken files
            return None
        return to_tensor(array, self.channels)

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
                array, _ = decode_image(self._source(current), self.image_size)
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
            return to_tensor(array, self.channels)
        raise SelfsupError(f"none of the {n} images could be decoded")


def to_tensor(array: np.ndarray, channels: int) -> torch.Tensor:
    """(S, S, 3) uint8 RGB to (channels, S, S); one channel is PIL's ITU-R 601 luma.

    For a grayscale source the three channels are equal and luma gives back that value exactly,
    so a grayscale folder matches `load_folder`, which keeps the first of three equal channels.
    """
    if channels == 1:
        from PIL import Image

        array = np.asarray(Image.fromarray(array).convert("L"))[:, :, None]
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


class ImageFiles(DecodedImages):
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
        check_sizes(image_size, channels)
        self.root = Path(root).expanduser()
        listing = list_folder(self.root, classes)
        files, labels = listing.images()
        if not files:
            raise SelfsupError(
                f"no image files found in {self.root} (looked for {'/'.join(IMAGE_EXTENSIONS)})"
            )
        self._paths = Strings(str(path.relative_to(self.root)) for path in files)
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
