"""Checkpoints that survive a full disk, a half-copied file and a crash mid-write, and that can
be loaded from someone else without running their code.

A checkpoint file is one header line, `selfsup-checkpoint <bytes> <sha256>\\n`, then the bytes of
`torch.save(state)`. The header tells a truncated file ("2.9 of 5.9 MB") from one whose bytes
changed (checksum), before anything is unpickled; the state is then read with
`torch.load(weights_only=True)`, which builds tensors and plain values only and refuses any other
object. So a state must hold tensors, numbers, strings, lists and dicts: no classes.

The loop keeps two: `last.pt`, the newest, and `previous.pt`, the one before. A new checkpoint is
written to `last.pt.tmp` and synced, then `last.pt` is renamed to `previous.pt` and the temporary
file to `last.pt`: at every moment at least one complete checkpoint is on disk, and resuming takes
the newest that loads.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from selfsup.errors import SelfsupError

MAGIC = b"selfsup-checkpoint"
LAST, PREVIOUS = "last.pt", "previous.pt"


def _fsync_directory(directory: Path) -> None:
    """Make the renames in `directory` durable (a no-op where directories cannot be opened)."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _write_synced(state: dict[str, Any], path: Path) -> None:
    """Write `state` to `path` as header + torch.save bytes, and fsync it."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    header = b"%s %d %s\n" % (MAGIC, len(payload), hashlib.sha256(payload).hexdigest().encode())
    with open(path, "wb") as handle:
        handle.write(header)
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())


def save_atomic(state: dict[str, Any], path: str | Path) -> Path:
    """Write `state` to `path` as a checksummed checkpoint: to `path.tmp`, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    _write_synced(state, temporary)
    os.replace(temporary, path)
    _fsync_directory(path.parent)
    return path


def save_checkpoint(state: dict[str, Any], directory: str | Path) -> Path:
    """Write `state` as `directory/last.pt`, keeping the checkpoint it replaces as previous.pt."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    last = directory / LAST
    temporary = directory / (LAST + ".tmp")
    _write_synced(state, temporary)
    if last.is_file():
        os.replace(last, directory / PREVIOUS)
    os.replace(temporary, last)
    _fsync_directory(directory)
    return last


def _sizes(part: int, whole: int) -> str:
    """ "2.9 of 5.9 MB" (or bytes, for small files)."""
    if whole >= 100_000:
        return f"{part / 1e6:.1f} of {whole / 1e6:.1f} MB"
    return f"{part:,} of {whole:,} bytes"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load one checkpoint on CPU, tensors and plain values only.

    Raises:
        SelfsupError: one line saying what is wrong: missing, truncated ("2.9 of 5.9 MB"),
            changed bytes, not a checkpoint, or holding objects that would run code.
    """
    path = Path(path)
    if not path.is_file():
        raise SelfsupError(f"no checkpoint at {path}")
    data = path.read_bytes()
    if data.startswith(MAGIC + b" "):
        end = data.find(b"\n")
        fields = data[:end].split() if end > 0 else []
        if len(fields) != 3 or not fields[1].isdigit():
            raise SelfsupError(f"{path}: damaged header")
        expected, digest = int(fields[1]), fields[2].decode("ascii", "replace")
        payload = data[end + 1 :]
        if len(payload) < expected:
            raise SelfsupError(f"{path}: truncated: {_sizes(len(payload), expected)}")
        if len(payload) > expected or hashlib.sha256(payload).hexdigest() != digest:
            raise SelfsupError(f"{path}: corrupt: its bytes changed since it was written")
    elif data.startswith(b"PK\x03\x04"):  # a plain torch.save file (a zip), e.g. from a peer
        payload = data
    else:
        raise SelfsupError(f"{path}: not a checkpoint (neither selfsup's nor torch.save's format)")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as error:
        refused = re.search(r"weights[ _]only", str(error), re.IGNORECASE)
        if isinstance(error, pickle.UnpicklingError) and refused:
            raise SelfsupError(
                f"{path}: holds Python objects other than tensors and plain values; refused "
                "(loading it could run code)"
            ) from None
        raise SelfsupError(f"{path}: not a readable checkpoint ({type(error).__name__})") from None
    if not isinstance(state, dict):
        raise SelfsupError(f"{path}: not a checkpoint (holds a {type(state).__name__})")
    return state


def has_checkpoint(directory: str | Path) -> bool:
    """Whether `directory` holds a last.pt or previous.pt (readable or not)."""
    directory = Path(directory)
    return any((directory / name).is_file() for name in (LAST, PREVIOUS))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The newest checkpoint that loads: `path` (a checkpoints/ folder or its last.pt), else
    previous.pt beside it, with a warning that says which one and why.

    Raises:
        SelfsupError: when neither loads, with what is wrong with each.
    """
    path = Path(path)
    directory = path if path.is_dir() or path.suffix != ".pt" else path.parent
    candidates = [path] if path.suffix == ".pt" else [directory / LAST]
    candidates.append(directory / PREVIOUS)
    problems = []
    for candidate in dict.fromkeys(candidates):
        if not candidate.is_file():
            problems.append(f"no {candidate.name}")
            continue
        try:
            state = read_checkpoint(candidate)
        except SelfsupError as error:
            problems.append(str(error).replace(f"{candidate}: ", f"{candidate.name} "))
            continue
        if problems:
            warnings.warn(
                f"resuming from {candidate} (epoch {state.get('epoch', '?')}): "
                + "; ".join(problems),
                stacklevel=2,
            )
        return state
    raise SelfsupError(f"cannot resume from {directory}: " + "; ".join(problems))


def load_model_state(model: torch.nn.Module, state: dict[str, Any], source: str | Path) -> None:
    """load_state_dict that explains an architecture mismatch instead of printing a wall."""
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        detail = str(error).split("\n")
        first = next((line.strip() for line in detail[1:] if line.strip()), detail[0])
        raise SelfsupError(
            f"checkpoint {source} was written for a different architecture ({first[:160]}); "
            "use the config it was trained with or a fresh --run-dir"
        ) from None
