"""Save networks as safetensors + a small JSON of their architecture, and load them back: the
encoder, its projection head, and classifiers built on them (SimCLRv2's fine-tuned teachers and
distilled students)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from selfsup.errors import SelfsupError
from selfsup.models.heads import Classifier, EncoderWithHead, ProjectionHead
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
    return _write(encoder, architecture, Path(directory) / "encoder.safetensors")


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
    if not path.exists():
        raise SelfsupError(
            f"no run directory at {path}; pass one written by `selfsup pretrain --run-dir DIR` "
            "(or an encoder.safetensors file)"
        )
    weights = path / "encoder.safetensors" if path.is_dir() else path
    state, architecture = _read(weights, "pass a run directory written by `selfsup pretrain`")
    encoder = build_from_architecture(architecture)
    _load_into(encoder.encoder if isinstance(encoder, PatchGrid) else encoder, state, weights)
    return encoder, architecture


def _write(module: nn.Module, spec: dict[str, Any], weights: Path) -> Path:
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    save_file(tensors, str(weights))
    weights.with_suffix(".json").write_text(json.dumps(spec, indent=2))
    return weights


def _read(weights: Path, what: str) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = weights.with_suffix(".json")
    if not weights.is_file() or not spec.is_file():
        raise SelfsupError(f"no {weights.name} + {spec.name} at {weights.parent}; {what}")
    return load_file(str(weights)), json.loads(spec.read_text())


def _load_into(module: nn.Module, state: dict[str, Any], weights: Path) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError:
        raise SelfsupError(
            f"{weights} does not match the architecture in {weights.with_suffix('.json')}"
        ) from None


def save_head(head: ProjectionHead, directory: str | Path) -> Path:
    """Write the projection head next to the encoder: `head.safetensors` + `head.json`."""
    return _write(head, head.spec(), Path(directory) / "head.safetensors")


def load_head(directory: str | Path) -> ProjectionHead:
    """The projection head saved by `save_head` (SimCLRv2 fine-tunes from its middle)."""
    weights = Path(directory) / "head.safetensors"
    state, spec = _read(weights, "pre-train with a method that has a projection head")
    head = ProjectionHead.from_spec(spec)
    _load_into(head, state, weights)
    return head


def save_classifier(model: Classifier, spec: dict[str, Any], directory: str | Path) -> Path:
    """Write `classifier.safetensors` + `classifier.json` to `directory`.

    `spec` holds "encoder" (the encoder's architecture, as in `encoder.json`), "head"
    (the head's `spec()` plus "depth" when the classifier sits on the first `depth` layers of a
    projection head, else None) and "num_classes"; anything else is kept for the reader.
    """
    missing = {"encoder", "head", "num_classes"} - set(spec)
    if missing:
        raise ValueError(f"classifier spec lacks {sorted(missing)}")
    return _write(model, spec, Path(directory) / "classifier.safetensors")


def build_classifier(spec: dict[str, Any]) -> Classifier:
    """A freshly initialised classifier as `classifier.json` describes it."""
    trunk = build_from_architecture(spec["encoder"])
    dim = trunk.feature_dim
    head = spec["head"]
    if head is not None:
        trunk = EncoderWithHead(trunk, ProjectionHead.from_spec(head), head["depth"])
        dim = trunk.feature_dim
    return Classifier(trunk, dim, spec["num_classes"])


def load_classifier(directory: str | Path) -> tuple[Classifier, dict[str, Any]]:
    """Rebuild a classifier saved by `save_classifier`, in eval mode; returns it and its spec."""
    weights = Path(directory) / "classifier.safetensors"
    state, spec = _read(weights, "pass a stage directory written by `selfsup semisup`")
    model = build_classifier(spec)
    _load_into(model, state, weights)
    return model.eval(), spec
