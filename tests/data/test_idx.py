"""IDX reader: header-driven shapes and dtypes, gzip or raw, loud on damaged files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from selfsup.data import read_idx
from selfsup.errors import SelfsupError

CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D}


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write `array` as an IDX file (gzip when the name ends in .gz), big-endian like the spec."""
    header = struct.pack(">BBBB", 0, 0, CODES[array.dtype.type], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path


@pytest.mark.parametrize("name", ["x-idx3-ubyte", "x-idx3-ubyte.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32])
def test_round_trip(tmp_path: Path, name: str, dtype: type) -> None:
    array = (np.arange(2 * 3 * 5) * 7 % 251).astype(dtype).reshape(2, 3, 5)
    out = read_idx(write_idx(tmp_path / name, array))
    assert out.shape == (2, 3, 5) and out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, array)


def test_one_dimensional_labels(tmp_path: Path) -> None:
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "l-idx1-ubyte", labels)), labels)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_truncated_file_raises(tmp_path: Path, suffix: str) -> None:
    path = write_idx(tmp_path / f"x-idx3-ubyte{suffix}", np.zeros((4, 6, 6), np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])
    with pytest.raises(SelfsupError, match="truncated"):
        read_idx(path)


def test_bad_magic_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "junk").write_bytes(b"hello world, not idx")
    with pytest.raises(SelfsupError, match="not an IDX file"):
        read_idx(tmp_path / "junk")
    with pytest.raises(SelfsupError, match="cannot read"):
        read_idx(tmp_path / "absent-idx1-ubyte")
