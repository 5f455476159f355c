"""Save an encoder as safetensors + a small JSON of its architecture, and load it back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from selfsup.errors import SelfsupError
from selfsup.models.patches import PatchGrid
from selfsup.models.registry import build_encoder


def save_encoder(encoder: nn.Module, architecture: dict[str, Any], directory: str | Path) -> Path:
    """Write `encoder.safetensors` and `encoder.json` ({"name", "kwargs", ...extra}) to `directory`.

    `architecture` must hold `name` and `kwargs` for `build_encoder`; anything else (input
    normalisation, image size, dataset) is kept for whoever loads it. A `PatchGrid` is saved as
    its inner encoder's weights plus a `"patches": {"size", "stride"}` entry, which
    `load_encoder` reads to wrap the encoder again; the weights alone still load into the plain
    encoder.
    """
    if isinstance(encoder, PatchGrid):
        patches = {"size": encoder.patch_size, "stride": encoder.stride}
        if architecture.get("patches", patches) != patches:
            raise ValueError(
                f"architecture says patches {architecture['patches']} but the PatchGrid cuts "
                f"{patches}"
            )
        architecture = {**architecture, "patches": patches}
        encoder = encoder.encoder
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    save_file(tensors, str(directory / "encoder.safetensors"))
    (directory / "encoder.json").write_text(json.dumps(architecture, indent=2))
    return directory / "encoder.safetensors"


def build_from_architecture(architecture: dict[str, Any]) -> nn.Module:
    """A freshly initialised encoder as `encoder.json` describes it (wrapped in `PatchGrid` when
    it has a `"patches"` entry): what `load_encoder` fills, and a random-init baseline."""
    encoder = build_encoder(architecture["name"], **architecture["kwargs"])
    patches = architecture.get("patches")
    if patches is None:
        return encoder
    return PatchGrid(encoder, patches["size"], patches["stride"])


def load_encoder(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild an encoder from a run directory or an `encoder.safetensors` path."""
    path = Path(path)
    weights = path / "encoder.safetensors" if path.is_dir() else path
    spec = weights.with_suffix(".json")
    if not weights.is_file() or not spec.is_file():
        raise SelfsupError(
            f"no encoder.safetensors + encoder.json at {path}; pass a run directory written by "
            "`selfsup pretrain`"
        )
    architecture = json.loads(spec.read_text())
    encoder = build_from_architecture(architecture)
    inner = encoder.encoder if isinstance(encoder, PatchGrid) else encoder
    try:
        inner.load_state_dict(load_file(str(weights)))
    except RuntimeError:
        raise SelfsupError(
            f"{weights} does not match the architecture in {spec}; "
            "the files come from different runs"
        ) from None
    return encoder, architecture
