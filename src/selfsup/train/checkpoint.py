"""Checkpoints written atomically (temp file + rename), so a crash never leaves a torn file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from selfsup.errors import SelfsupError


def save_atomic(state: dict[str, Any], path: str | Path) -> Path:
    """torch.save to `path.tmp`, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    with open(temporary, "wb") as handle:
        torch.save(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint on CPU; a missing or unreadable file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise SelfsupError(f"no checkpoint at {path}; run without --resume to start fresh")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # a truncated or foreign file
        raise SelfsupError(f"cannot read checkpoint {path}: {type(error).__name__}") from None


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
