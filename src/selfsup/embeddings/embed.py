"""Embed a whole collection into an embeddings folder, chunk by chunk, resumably.

In-memory datasets are cut into batches directly; streamed ones (folders, tar shards) are
decoded by DataLoader workers, one chunk's images at a time. Under `torchrun` each process
embeds every world-th missing chunk, so N processes share the work and the folder is the same
as one process writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from selfsup.data.base import ImageDataset
from selfsup.data.files import DecodedImages
from selfsup.embeddings.store import EmbeddingsMeta, EmbeddingStore
from selfsup.eval.features import Preprocess, eval_mode, infer_feature_dim, make_preprocess


class _StrictRows(Dataset):
    """Rows `start..stop` of a streamed dataset as (image, decoded?) pairs: a file that does not
    decode yields zeros and False instead of another file's image."""

    def __init__(self, images: DecodedImages, rows: range) -> None:
        self.images, self.rows = images, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, position: int) -> tuple[Tensor, bool]:
        image = self.images.decode(self.rows[position])
        if image is None:
            side = self.images.image_size
            return torch.zeros(self.images.channels, side, side, dtype=torch.uint8), False
        return image, True


def _batches(
    images: ImageDataset | DecodedImages, rows: range, batch_size: int, workers: int
) -> Iterator[tuple[Tensor, Tensor]]:
    """(uint8 batch, decoded mask) for `rows`, in order."""
    if isinstance(images, ImageDataset):
        for start in range(rows.start, rows.stop, batch_size):
            batch = images.images[start : min(rows.stop, start + batch_size)]
            yield batch, torch.ones(len(batch), dtype=torch.bool)
        return
    loader = DataLoader(
        _StrictRows(images, rows),
        batch_size=batch_size,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
    )
    for batch, decoded in loader:
        yield batch, decoded.bool()


def collection_items(images: ImageDataset | DecodedImages) -> tuple[list[str], list[int] | None]:
    """What items.csv lists for a dataset: a path (or `name[index]`) per image, and labels."""
    if isinstance(images, DecodedImages):
        paths = [images.describe(index) for index in range(len(images))]
    else:
        paths = [f"{images.name or 'images'}[{index}]" for index in range(len(images))]
    labels = None if images.labels is None else images.labels.tolist()
    return paths, labels


def embed(
    model: nn.Module,
    images: ImageDataset | DecodedImages,
    out: str | Path,
    preprocess: Preprocess | None = None,
    features: str = "encoder",
    normalize: bool = True,
    dtype: str = "float16",
    chunk_rows: int = 65_536,
    batch_size: int = 512,
    workers: int = 2,
    device: str | torch.device = "cpu",
    encoder_info: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
    resume: bool = True,
    rank: int = 0,
    world: int = 1,
    progress: Callable[[int], None] | None = None,
    synchronize: Callable[[], None] | None = None,
) -> EmbeddingStore:
    """Write `model`'s features of every image in `images` to the embeddings folder `out`.

    Args:
        model: maps preprocessed float images (B, C, H, W) to (B, D) features (an encoder, or
            an encoder followed by head layers).
        images: an in-memory `ImageDataset` or a streamed folder / shards dataset.
        out: the embeddings folder (see `selfsup.embeddings.store`).
        preprocess: uint8 batch on `device` -> the model's input; default scales to [0, 1].
        features: what the rows are, for the record ("encoder", "head:K").
        normalize: L2-normalise each row (cosine search then is inner-product search).
        dtype: float16 (half the disk) or float32.
        chunk_rows: rows per chunk file: the unit of resume and of sharing among processes.
        batch_size: images per forward pass.
        workers: DataLoader processes decoding streamed images.
        device: where the model runs.
        encoder_info: identifies the encoder (fingerprint, name): a folder is only resumed
            with the same one, and an index only searched with queries from it.
        source: what was embedded, for the record.
        resume: continue a folder this same encoder started; False refuses an existing one.
        rank, world: this process and the number of processes sharing the chunks.
        progress: called with the number of rows done after each batch.
        synchronize: with several processes, a barrier among them (rank 0 creates the folder
            before the others write into it).

    Returns:
        The store; complete when every process has returned.
    """
    preprocess = preprocess or make_preprocess()
    store = EmbeddingStore(out)
    probe = next(iter(_batches(images, range(min(2, len(images))), 2, 0)))[0]
    model.to(device)
    dim = infer_feature_dim(model, probe.to(device), preprocess)
    meta = EmbeddingsMeta(
        dim=dim,
        rows=len(images),
        chunk_rows=chunk_rows,
        dtype=dtype,
        features=features,
        normalized=normalize,
        encoder=encoder_info or {},
        source=source or {},
    )
    paths, labels = collection_items(images)
    if rank == 0:
        store.create(meta, paths, labels, resume=resume)
    if synchronize is not None:
        synchronize()
    if not store.exists():
        raise RuntimeError("rank 0 creates the embeddings folder before the others embed")
    mine = [chunk for chunk in store.missing_chunks() if chunk % world == rank]
    with eval_mode(model), torch.no_grad():
        for chunk in mine:
            rows = meta.chunk_range(chunk)
            parts, failed, start = [], [], rows.start
            for batch, decoded in _batches(images, rows, batch_size, workers):
                output = model(preprocess(batch.to(device))).flatten(1).float()
                if normalize:
                    output = F.normalize(output, dim=1)
                output[~decoded.to(output.device)] = 0.0
                parts.append(output.cpu().numpy())
                failed.extend((start + np.flatnonzero(~decoded.numpy())).tolist())
                start += len(batch)
                if progress is not None:
                    progress(len(batch))
            store.write_chunk(chunk, np.concatenate(parts), failed)
    if world == 1 and store.complete():
        store.finish()
    return store


__all__ = ["collection_items", "embed"]
