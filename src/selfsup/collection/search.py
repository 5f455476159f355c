"""`selfsup index` and `selfsup search`: the folder's faiss index, queried by files or ids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfsup.collection.runs import (
    collection_images,
    feature_model,
    images_by_id,
    open_store,
)
from selfsup.data.files import is_grayscale_header, to_tensor
from selfsup.data.folder import decode_image
from selfsup.embeddings import (
    EmbeddingStore,
    SearchIndex,
    build_index,
)
from selfsup.embeddings.grids import neighbour_grid
from selfsup.errors import SelfsupError
from selfsup.eval import make_preprocess


def index_collection(
    directory: str | Path,
    kind: str = "auto",
    recall_target: float = 0.95,
    tune_queries: str | Path | None = None,
) -> SearchIndex:
    """Build and save the search index of an embeddings folder (rows that decoded only),
    its recall tuned on sampled rows or on the rows of the `tune_queries` folder (sample
    queries embedded by the same encoder)."""
    store = open_store(directory)
    meta = store.meta()
    ids = store.ok_ids()
    queries: int | np.ndarray = 200
    if tune_queries is not None:
        sample = open_store(tune_queries)
        if sample.meta().encoder.get("fingerprint") != meta.encoder.get("fingerprint"):
            raise SelfsupError(
                f"the queries in {tune_queries} come from another encoder than {directory}"
            )
        queries = sample.rows(sample.ok_ids())[:]
    index = build_index(
        store.rows(ids),
        ids,
        kind=kind,
        recall_target=recall_target,
        queries=queries,
        rows=store.rows().read,
        encoder=meta.encoder.get("fingerprint", ""),
    )
    index.save(store.directory)
    return index


def open_index(directory: str | Path) -> tuple[EmbeddingStore, SearchIndex]:
    """The folder and its saved index, refusing an index built from another encoder's rows."""
    store = open_store(directory)
    index = SearchIndex.load(store.directory, store.rows().read)
    meta = store.meta()
    if index.spec.encoder != meta.encoder.get("fingerprint", "") or index.spec.dim != meta.dim:
        raise SelfsupError(
            f"the index in {directory} was built from another encoder's embeddings than the "
            f"folder now holds; rebuild it with `selfsup index {directory}`"
        )
    return store, index


def embed_files(
    store: EmbeddingStore, paths: Sequence[str | Path]
) -> tuple[np.ndarray, list[torch.Tensor]]:
    """Query images from files, embedded as the folder's rows were (same encoder, features,
    size and normalisation); an image of another channel count than the encoder's is an error."""
    meta = store.meta()
    model, architecture = feature_model(meta.encoder["run_dir"], meta.features)
    channels = architecture["kwargs"]["in_channels"]
    size = architecture.get("image_size") or meta.source["data"].get("image_size") or 64
    images = []
    for path in paths:
        grayscale = is_grayscale_header(Path(path))
        if grayscale is None:
            raise SelfsupError(f"cannot read the query image {path}")
        if (channels == 1) != grayscale:
            kind = "grayscale" if grayscale else "colour"
            raise SelfsupError(
                f"{path} is a {kind} image but the encoder takes {channels}-channel images"
            )
        array, _ = decode_image(Path(path), size)
        images.append(to_tensor(array, channels))
    preprocess = make_preprocess(architecture["mean"], architecture["std"])
    model.eval()
    with torch.no_grad():
        vectors = model(preprocess(torch.stack(images))).flatten(1).float()
    if meta.normalized:
        vectors = torch.nn.functional.normalize(vectors, dim=1)
    return vectors.numpy(), images


def search_collection(
    directory: str | Path,
    image_paths: Sequence[str | Path] = (),
    ids: Sequence[int] = (),
    k: int = 8,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """The k nearest rows of each query (files and/or row ids), optionally drawn as a PNG grid.

    A query given by id does not count itself among its neighbours."""
    store, index = open_index(directory)
    if not image_paths and not ids:
        raise SelfsupError("give query images (--image) or row ids (--id)")
    if not 1 <= k < len(index):
        raise SelfsupError(f"k must be between 1 and {len(index) - 1} for this index, got {k}")
    meta = store.meta()
    queries, query_images, captions = [], [], []
    if image_paths:
        vectors, pictures = embed_files(store, image_paths)
        queries.append(vectors)
        query_images.extend(pictures)
        captions.extend(Path(p).name for p in image_paths)
    images = None
    if ids:
        bad = [i for i in ids if not 0 <= i < meta.rows]
        if bad:
            raise SelfsupError(f"row ids {bad} are outside 0..{meta.rows - 1}")
        queries.append(store.rows().read(np.asarray(ids)))
        images = collection_images(store)
        query_images.extend(images_by_id(images, ids))
        captions.extend(f"id {i}" for i in ids)
    vectors = np.concatenate(queries)
    scores, found = index.search(vectors, k + 1)
    own = [-1] * len(image_paths) + list(ids)
    results = []
    for q, query_id in enumerate(own):
        keep = [n for n in range(k + 1) if found[q, n] != query_id][:k]
        results.append({"scores": scores[q, keep], "ids": found[q, keep]})
    items = store.items(np.concatenate([r["ids"] for r in results]))
    neighbours, n = [], 0
    for r in results:
        found_here = []
        for score, row in zip(r["scores"], r["ids"], strict=True):
            path, label = items["path"][n], int(items["label"][n])
            found_here.append({"id": int(row), "score": float(score), "path": path, "label": label})
            n += 1
        neighbours.append(found_here)
    report = {"queries": captions, "neighbours": neighbours}
    if out is not None:
        images = images or collection_images(store)
        neighbour_grid(
            query_images,
            captions,
            [images_by_id(images, r["ids"]) for r in results],
            np.stack([r["scores"] for r in results]),
            out,
        )
        report["output"] = str(out)
    return report
