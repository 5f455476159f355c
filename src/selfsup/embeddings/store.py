"""An embeddings folder: fixed-size .npy chunks, a table of items, and one JSON of what made them.

```
emb/
  embeddings.json   dim, dtype, rows, chunk_rows, which features, the encoder's fingerprint
  items.csv         id, path, label, ok: one row per input image, in input order
  chunks/00000.npy  rows [0, chunk_rows), then [chunk_rows, 2 chunk_rows), ...
  index.faiss       (after `selfsup index`) the search index, + index.json
```

Chunks are written whole and renamed into place, so an interrupted `embed` leaves only complete
chunks and resumes at the first missing one: no row is written twice or lost. Every input image
has a row; one that cannot be decoded gets a zero vector, `ok = 0` in items.csv and a line in
failed.csv, and is left out of the index.
"""

from __future__ import annotations

import csv
import json
import mmap
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from selfsup.errors import SelfsupError

META = "embeddings.json"
ITEMS = "items.csv"
FAILED = "failed.csv"
CHUNKS = "chunks"
DTYPES = ("float16", "float32")


@dataclass
class EmbeddingsMeta:
    """What `embeddings.json` records.

    Attributes:
        dim: D, the width of every row.
        rows: N, the number of input images (and of rows once complete).
        chunk_rows: rows per chunk file (the last may hold fewer).
        dtype: float16 or float32 on disk.
        features: "encoder", or "head:K" for the projection head's K-th layer.
        normalized: whether rows were L2-normalised before they were written.
        encoder: identifies the encoder: its fingerprint (SHA-256 of its weights) and name.
        source: what was embedded (dataset, data_dir, split, image_size).
    """

    dim: int
    rows: int
    chunk_rows: int = 65_536
    dtype: str = "float16"
    features: str = "encoder"
    normalized: bool = True
    encoder: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise SelfsupError(f"embeddings dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.dim < 1 or self.rows < 0 or self.chunk_rows < 1:
            raise SelfsupError(
                f"bad embeddings shape: dim {self.dim}, rows {self.rows}, chunk {self.chunk_rows}"
            )

    @property
    def num_chunks(self) -> int:
        return -(-self.rows // self.chunk_rows)

    def chunk_range(self, chunk: int) -> range:
        """The rows chunk number `chunk` holds."""
        return range(chunk * self.chunk_rows, min(self.rows, (chunk + 1) * self.chunk_rows))


def _atomic_write_text(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


class EmbeddingStore:
    """Read and write an embeddings folder (see the module docstring for its layout)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    @property
    def meta_path(self) -> Path:
        return self.directory / META

    def exists(self) -> bool:
        return self.meta_path.is_file()

    def chunk_path(self, chunk: int) -> Path:
        return self.directory / CHUNKS / f"{chunk:05d}.npy"

    # -- writing -----------------------------------------------------------------------------

    def create(
        self,
        meta: EmbeddingsMeta,
        paths: Sequence[str],
        labels: Sequence[int] | None,
        resume: bool = True,
    ) -> EmbeddingsMeta:
        """Start (or, with `resume`, continue) a folder for `meta.rows` inputs.

        Continuing needs the same encoder, features, dtype and rows as the folder holds; a
        folder from something else is an error, never silently mixed.
        """
        if len(paths) != meta.rows or (labels is not None and len(labels) != meta.rows):
            raise SelfsupError(f"{len(paths)} paths / labels for {meta.rows} rows")
        if self.exists():
            if not resume:
                raise SelfsupError(
                    f"{self.directory} already holds embeddings; pass --resume to continue "
                    "them or choose another --out"
                )
            old = self.meta()
            same = ("dim", "rows", "chunk_rows", "dtype", "features", "normalized", "encoder")
            changed = [name for name in same if getattr(old, name) != getattr(meta, name)]
            if changed:
                raise SelfsupError(
                    f"{self.directory} holds embeddings of another run ({', '.join(changed)} "
                    "differ); choose another --out"
                )
            return old
        (self.directory / CHUNKS).mkdir(parents=True, exist_ok=True)
        with open(self.directory / (ITEMS + ".partial"), "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "path", "label", "ok"])
            for index, path in enumerate(paths):
                label = -1 if labels is None else int(labels[index])
                writer.writerow([index, path, label, 1])
        os.replace(self.directory / (ITEMS + ".partial"), self.directory / ITEMS)
        _atomic_write_text(self.meta_path, json.dumps(asdict(meta), indent=2))
        return meta

    def missing_chunks(self) -> list[int]:
        """Chunk numbers not yet written, in order."""
        meta = self.meta()
        return [chunk for chunk in range(meta.num_chunks) if not self.chunk_path(chunk).is_file()]

    def write_chunk(self, chunk: int, rows: np.ndarray, failed: Sequence[int] = ()) -> None:
        """Write chunk number `chunk` whole (`failed`: global ids in it that did not decode)."""
        meta = self.meta()
        expected = len(meta.chunk_range(chunk))
        if rows.shape != (expected, meta.dim):
            raise ValueError(f"chunk {chunk} needs shape {(expected, meta.dim)}, got {rows.shape}")
        if failed:
            self._record_failed(chunk, failed)
        path = self.chunk_path(chunk)
        partial = path.with_name(path.name + ".partial.npy")
        np.save(partial, rows.astype(meta.dtype, copy=False))
        os.replace(partial, path)

    def _record_failed(self, chunk: int, failed: Sequence[int]) -> None:
        """One file per chunk of failures, so that a resumed chunk rewrites its own list."""
        lines = "".join(f"{index}\n" for index in failed)
        _atomic_write_text(self.directory / CHUNKS / f"{chunk:05d}.failed", lines)

    # -- reading -----------------------------------------------------------------------------

    def meta(self) -> EmbeddingsMeta:
        if not self.exists():
            raise SelfsupError(
                f"{self.directory} is not an embeddings folder (no {META}); make one with "
                "`selfsup embed`"
            )
        try:
            return EmbeddingsMeta(**json.loads(self.meta_path.read_text()))
        except (ValueError, TypeError) as error:
            raise SelfsupError(f"{self.meta_path} is not readable: {error}") from None

    def complete(self) -> bool:
        return self.exists() and not self.missing_chunks()

    def failed_ids(self) -> np.ndarray:
        """Ids of the inputs that could not be decoded (their rows are zero)."""
        ids = []
        for path in sorted((self.directory / CHUNKS).glob("*.failed")):
            ids.extend(int(line) for line in path.read_text().split())
        return np.array(sorted(ids), dtype=np.int64)

    def finish(self) -> None:
        """After the last chunk: mark failed rows in items.csv and list them in failed.csv."""
        failed = set(self.failed_ids().tolist())
        items = self.items()
        with open(self.directory / (ITEMS + ".partial"), "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "path", "label", "ok"])
            for index, (path, label) in enumerate(zip(items["path"], items["label"], strict=True)):
                writer.writerow([index, path, int(label), int(index not in failed)])
        os.replace(self.directory / (ITEMS + ".partial"), self.directory / ITEMS)
        listing = "".join(f"{items['path'][index]}\n" for index in sorted(failed))
        _atomic_write_text(self.directory / FAILED, "path\n" + listing)

    def ok_ids(self) -> np.ndarray:
        """Ids of the rows whose image decoded, in order (from the failure lists: no table read)."""
        return np.setdiff1d(np.arange(self.meta().rows, dtype=np.int64), self.failed_ids())

    def labels(self) -> np.ndarray:
        """(N,) int64 label of each row, -1 where unknown, read without keeping the paths."""
        with open(self.directory / ITEMS, newline="") as handle:
            reader = csv.reader(handle)
            column = next(reader).index("label")
            return np.fromiter((int(row[column]) for row in reader), dtype=np.int64)

    def items(self, ids: Sequence[int] | np.ndarray | None = None) -> dict[str, Any]:
        """The items table, of all rows or of rows `ids` in the order given: {"path": [str],
        "label": int64 array (-1 unknown), "ok": bool array}. With `ids`, the table is read
        once and only their paths are kept, so a few rows of millions cost little memory."""
        wanted = None if ids is None else dict.fromkeys(int(i) for i in ids)
        paths, labels, ok, numbers = [], [], [], []
        with open(self.directory / ITEMS, newline="") as handle:
            for number, row in enumerate(csv.DictReader(handle)):
                if wanted is None or number in wanted:
                    paths.append(row["path"])
                    labels.append(int(row["label"]))
                    ok.append(row["ok"] == "1")
                    numbers.append(number)
        table = {
            "path": paths,
            "label": np.array(labels, dtype=np.int64),
            "ok": np.array(ok, dtype=bool),
        }
        if ids is None:
            return table
        where = {number: position for position, number in enumerate(numbers)}
        missing = [int(i) for i in ids if int(i) not in where]
        if missing:
            raise SelfsupError(f"row ids {missing[:5]} are not in {self.directory / ITEMS}")
        order = [where[int(i)] for i in ids]
        return {
            "path": [paths[p] for p in order],
            "label": table["label"][order],
            "ok": table["ok"][order],
        }

    def rows(self, ids: np.ndarray | None = None) -> StoredRows:
        """Rows `ids` (default: all) as a lazy (len, D) float32 array over the memory-mapped
        chunks: slicing or indexing it reads only the rows asked for."""
        meta = self.meta()
        missing = self.missing_chunks()
        if missing:
            raise SelfsupError(
                f"{self.directory} is incomplete ({len(missing)} of {meta.num_chunks} chunks "
                "missing); finish it with `selfsup embed ... --resume`"
            )
        runs, scattered = [], []
        for chunk in range(meta.num_chunks):
            part = _map_chunk(self.chunk_path(chunk))
            if part.shape != (len(meta.chunk_range(chunk)), meta.dim):
                raise SelfsupError(f"{self.chunk_path(chunk)} has shape {part.shape}; re-embed")
            runs.append(part)
            scattered.append(_map_chunk(self.chunk_path(chunk), random_access=True))
        return StoredRows(runs, meta.chunk_rows, meta.dim, ids, scattered)

    def vectors(self, dtype: str = "float32") -> np.ndarray:
        """All rows as one (N, D) array in memory."""
        return self.rows()[:].astype(dtype, copy=False)


READ_THREADS = 32
"""Threads reading scattered rows from different chunks at once (I/O-bound: many page faults
in flight read a cold disk several times faster than one)."""

_pool: ThreadPoolExecutor | None = None


def _readers() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="selfsup-rows")
    return _pool


def _forget_readers() -> None:  # a forked child has the pool object but none of its threads
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_readers)


def _map_chunk(path: Path, random_access: bool = False) -> np.ndarray:
    """A read-only array over a .npy chunk's memory map. With `random_access` the kernel is
    told not to read ahead (`MADV_RANDOM`): a row of 2048 float16 is one 4 KB page, and the
    default read-ahead around a fault (often several MB) would make each scattered row cost
    megabytes of disk reads."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        offset = handle.tell()
        if fortran or dtype.hasobject:
            raise SelfsupError(f"{path} is not a C-ordered numeric chunk; re-embed")
        if int(np.prod(shape)) == 0:
            return np.zeros(shape, dtype=dtype)
        memory = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    if random_access and hasattr(memory, "madvise") and hasattr(mmap, "MADV_RANDOM"):
        memory.madvise(mmap.MADV_RANDOM)
    return np.ndarray(shape, dtype=dtype, buffer=memory, offset=offset)


class StoredRows:
    """A read-only (len, D) float32 view of chosen rows of an embeddings folder's chunks.

    Position p holds row `ids[p]` (all rows in order when `ids` is None). Indexing with a slice
    or an integer array reads those rows, each chunk's in ascending order from its memory map,
    so a search index can be built, or candidates re-ranked, without loading N x D floats.
    """

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(
        self,
        chunks: Sequence[np.ndarray],
        chunk_rows: int,
        dim: int,
        ids: np.ndarray | None,
        scattered: Sequence[np.ndarray] | None = None,
    ) -> None:
        self.chunks, self.chunk_rows, self.dim = list(chunks), chunk_rows, dim
        self.scattered = self.chunks if scattered is None else list(scattered)
        total = sum(len(chunk) for chunk in self.chunks)
        self.ids = None if ids is None else np.asarray(ids, dtype=np.int64)
        picked = self.ids if self.ids is not None and len(self.ids) else np.zeros(0)
        if len(picked) and (picked.min() < 0 or picked.max() >= total):
            raise SelfsupError(f"row ids outside 0..{total - 1}")
        self.shape = (total if self.ids is None else len(self.ids), dim)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: slice | np.ndarray | Sequence[int]) -> np.ndarray:
        positions = (
            np.arange(*key.indices(len(self))) if isinstance(key, slice) else np.asarray(key)
        )
        rows = positions if self.ids is None else self.ids[positions]
        return self.read(rows)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), D) float32 vectors of the folder's row ids `rows`."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        chunk_of, offset = np.divmod(rows, self.chunk_rows)
        scattered = []
        for chunk in np.unique(chunk_of):
            where = np.flatnonzero(chunk_of == chunk)
            where = where[np.argsort(offset[where], kind="stable")]
            wanted = offset[where]
            if len(wanted) > 1 and (np.diff(wanted) == 1).all():  # a run: read it as a block
                out[where] = self.chunks[chunk][wanted[0] : wanted[-1] + 1]
            else:
                scattered.append((where, chunk, wanted))

        # scattered rows come through the maps that do not read ahead, a chunk per thread:
        # numpy copies without the GIL, so the page faults of many chunks wait on disk at once
        def pick(item: tuple[np.ndarray, int, np.ndarray]) -> np.ndarray:
            _, chunk, wanted = item
            return self.scattered[chunk][wanted]

        values = _readers().map(pick, scattered) if len(scattered) > 1 else map(pick, scattered)
        for (where, _, _), rows_read in zip(scattered, values, strict=True):
            out[where] = rows_read
        return out


__all__ = ["EmbeddingStore", "EmbeddingsMeta", "StoredRows"]
