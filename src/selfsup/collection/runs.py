"""A run's encoder over a collection: the embeddings folder it writes, and opening it again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from selfsup.config import RunConfig, config_from_dict
from selfsup.data import ImageDataset, open_stream
from selfsup.data.datasets import STREAMABLE
from selfsup.data.files import DecodedImages
from selfsup.dist.gather import rank, world_size
from selfsup.dist.launch import barrier, init_from_env, is_main_process
from selfsup.embeddings import (
    EmbeddingStore,
    embed,
)
from selfsup.errors import SelfsupError
from selfsup.eval import make_preprocess
from selfsup.models import load_encoder, load_head
from selfsup.models.heads import EncoderWithHead
from selfsup.pipeline import load_split
from selfsup.train import resolve_device


def encoder_fingerprint(run_dir: str | Path) -> str:
    """SHA-256 (first 16 hex digits) of a run's encoder.safetensors: which weights embedded."""
    digest = hashlib.sha256()
    with open(Path(run_dir) / "encoder.safetensors", "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def feature_model(run_dir: str | Path, features: str) -> tuple[nn.Module, dict[str, Any]]:
    """The network whose outputs are embedded: "encoder", or "head:K" (the encoder and the
    projection head's first K layers)."""
    encoder, architecture = load_encoder(run_dir)
    if features == "encoder":
        return encoder, architecture
    name, _, depth = features.partition(":")
    if name != "head" or not depth.isdigit() or int(depth) < 1:
        raise SelfsupError(f"--features is 'encoder' or 'head:K' (K >= 1), got {features!r}")
    head = load_head(run_dir)
    if int(depth) > len(head.layers):
        raise SelfsupError(f"the projection head has {len(head.layers)} layers, not {depth}")
    return EncoderWithHead(encoder, head, int(depth)), architecture


def _collection(
    config: RunConfig, split: str, image_size: int | None
) -> ImageDataset | DecodedImages:
    data = config.data
    if data.dataset in STREAMABLE:
        return open_stream(data.dataset, split, data.data_dir, data.image_size or image_size)
    return load_split(config, split)


def embed_run(
    config: RunConfig,
    split: str,
    out: str | Path,
    features: str = "encoder",
    normalize: bool = True,
    dtype: str = "float16",
    chunk_rows: int = 65_536,
    resume: bool = False,
) -> EmbeddingStore:
    """Embed a split of the configured dataset with the encoder in `config.run_dir`.

    Under `torchrun` every process embeds its share of the chunks; rank 0 writes the tables.
    """
    run_dir = Path(config.run_dir)
    device = init_from_env(resolve_device(config.train.device))
    model, architecture = feature_model(run_dir, features)
    images = _collection(config, split, architecture.get("image_size"))
    if len(images) == 0:
        raise SelfsupError(f"the {split} split of {config.data.dataset} holds no images")
    channels = architecture["kwargs"]["in_channels"]
    if images.channels != channels:
        raise SelfsupError(
            f"the encoder in {run_dir} takes {channels}-channel images but the collection has "
            f"{images.channels}; embed the kind of images it was trained on"
        )
    source = {
        "data": asdict(config.data),
        "split": split,
        "seed": config.train.seed,
        "classes": list(images.classes or []),
    }
    info = {
        "fingerprint": encoder_fingerprint(run_dir),
        "run_dir": str(run_dir.resolve()),
        "name": architecture["name"],
    }
    store = EmbeddingStore(out)
    if is_main_process():
        _check_fresh(store, resume)
    barrier()
    store = embed(
        model,
        images,
        out,
        make_preprocess(architecture["mean"], architecture["std"]),
        features=features,
        normalize=normalize,
        dtype=dtype,
        chunk_rows=chunk_rows,
        workers=config.train.workers,
        device=device,
        encoder_info=info,
        source=source,
        resume=True,
        rank=rank(),
        world=world_size(),
        synchronize=barrier,
    )
    barrier()
    if world_size() > 1 and is_main_process():
        store.finish()
    return store


def _check_fresh(store: EmbeddingStore, resume: bool) -> None:
    if store.exists() and not resume:
        raise SelfsupError(
            f"{store.directory} already holds embeddings; add --resume to continue them or "
            "choose another --out"
        )
    if not store.exists() and store.directory.is_dir() and any(store.directory.iterdir()):
        raise SelfsupError(
            f"{store.directory} is not empty and holds no embeddings; choose another --out"
        )


def open_store(directory: str | Path) -> EmbeddingStore:
    """A complete embeddings folder, or a one-line error saying what is wrong with it."""
    store = EmbeddingStore(directory)
    store.meta()  # not an embeddings folder: SelfsupError
    if not store.complete():
        raise SelfsupError(
            f"{directory} is incomplete; finish it with `selfsup embed ... --out {directory} "
            "--resume`"
        )
    return store


def collection_images(store: EmbeddingStore) -> ImageDataset | DecodedImages:
    """The images the folder's rows were made from (for galleries and grids)."""
    meta = store.meta()
    source = meta.source
    config = config_from_dict({"data": source["data"], "train": {"seed": source["seed"]}})
    model_dir = Path(meta.encoder.get("run_dir", ""))
    size = None
    if (model_dir / "encoder.json").is_file():
        size = json.loads((model_dir / "encoder.json").read_text()).get("image_size")
    return _collection(config, source["split"], size)


def images_by_id(images: ImageDataset | DecodedImages, ids: Sequence[int]) -> list[torch.Tensor]:
    """uint8 (C, H, W) images of rows `ids` (zeros for a file that no longer decodes)."""
    if isinstance(images, ImageDataset):
        return [images.images[int(i)] for i in ids]
    side = images.image_size
    blank = torch.zeros(images.channels, side, side, dtype=torch.uint8)
    return [image if (image := images.decode(int(i))) is not None else blank for i in ids]
