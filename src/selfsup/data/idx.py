"""Reader for the IDX format that MNIST and Fashion-MNIST ship in, raw or gzip-compressed.

The header is parsed rather than assumed: two zero bytes, a dtype code, the number of
dimensions, then one big-endian uint32 per dimension, then the values (big-endian).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from selfsup.errors import SelfsupError

# IDX dtype code -> numpy dtype (multi-byte types are stored big-endian).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    """All bytes of `path`, decompressed when it is gzip (detected by its magic, not its name)."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise SelfsupError(f"cannot read IDX file {path}: {error.strerror or error}") from error
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise SelfsupError(
            f"IDX file {path} is a corrupt or truncated gzip ({error}); delete it and fetch it "
            "again"
        ) from error


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw or `.gz`) into an array whose shape and dtype come from its header.

    Args:
        path: the file, e.g. `train-images-idx3-ubyte.gz`.

    Returns:
        An array in native byte order, e.g. uint8 (60000, 28, 28) for Fashion-MNIST images.

    Raises:
        SelfsupError: the file is missing, not IDX, or shorter/longer than its header says.

    >>> read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").shape
    (10000,)
    """
    path = Path(path)
    data = _read_bytes(path)
    hint = "delete it and fetch it again"
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise SelfsupError(f"{path} is not an IDX file (bad magic number); {hint}")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise SelfsupError(f"{path} has unknown IDX dtype code 0x{code:02x}; {hint}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise SelfsupError(f"{path} is truncated inside its IDX header; {hint}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise SelfsupError(
            f"{path} holds {len(data) - header} data bytes but its header {shape} needs "
            f"{expected}: the file is truncated or corrupt; {hint}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)
