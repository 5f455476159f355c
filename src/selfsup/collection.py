"""The steps behind `selfsup embed | index | search | cluster | dedup`: a run's encoder over a
collection of images, and what users do with the embeddings folder it writes.

Folders and tar shards are always streamed, each file decoded on its own, so that every file
gets its row and one that cannot be decoded is listed rather than replaced or dropped.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from selfsup.config import RunConfig, config_from_dict
from selfsup.data import ImageDataset, open_stream
from selfsup.data.datasets import STREAMABLE
from selfsup.data.files import DecodedImages, is_grayscale_header, to_tensor
from selfsup.data.folder import decode_image
from selfsup.dist.gather import rank, world_size
from selfsup.dist.launch import barrier, init_from_env, is_main_process
from selfsup.embeddings import (
    Clusters,
    EmbeddingStore,
    SearchIndex,
    build_index,
    cluster,
    embed,
    find_duplicates,
    label_agreement,
    sweep_k,
)
from selfsup.embeddings.grids import neighbour_grid, save_rows
from selfsup.embeddings.maps import project_2d, save_map
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


# -- opening a folder again ------------------------------------------------------------------


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


def row_reader(store: EmbeddingStore):
    """Exact float32 rows by id, read from the memory-mapped chunks (IVF-PQ re-ranking)."""
    meta = store.meta()
    chunks = [np.load(store.chunk_path(c), mmap_mode="r") for c in range(meta.num_chunks)]

    def read(ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        out = np.empty((len(ids), meta.dim), dtype=np.float32)
        chunk_of, offset = np.divmod(ids, meta.chunk_rows)
        for chunk in np.unique(chunk_of):
            where = np.flatnonzero(chunk_of == chunk)
            order = np.argsort(offset[where])  # sorted reads from the memory map
            out[where[order]] = chunks[chunk][offset[where[order]]]
        return out

    return read


def index_collection(
    directory: str | Path, kind: str = "auto", recall_target: float = 0.95
) -> SearchIndex:
    """Build and save the search index of an embeddings folder (rows that decoded only)."""
    store = open_store(directory)
    meta = store.meta()
    ok = store.items()["ok"]
    ids = np.flatnonzero(ok)
    vectors = store.vectors()
    index = build_index(
        vectors[ids] if len(ids) < len(vectors) else vectors,
        ids,
        kind=kind,
        recall_target=recall_target,
        rows=row_reader(store),
        encoder=meta.encoder.get("fingerprint", ""),
    )
    index.save(store.directory)
    return index


def open_index(directory: str | Path) -> tuple[EmbeddingStore, SearchIndex]:
    """The folder and its saved index, refusing an index built from another encoder's rows."""
    store = open_store(directory)
    index = SearchIndex.load(store.directory, row_reader(store))
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
        queries.append(row_reader(store)(np.asarray(ids)))
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
    items = store.items()
    report = {
        "queries": captions,
        "neighbours": [
            [
                {
                    "id": int(i),
                    "score": float(s),
                    "path": items["path"][i],
                    "label": int(items["label"][i]),
                }
                for s, i in zip(r["scores"], r["ids"], strict=True)
            ]
            for r in results
        ],
    }
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


def cluster_collection(
    directory: str | Path,
    k: int,
    out: str | Path,
    sweep: Sequence[int] = (),
    gallery: int = 8,
    seed: int = 0,
) -> dict[str, Any]:
    """k-means over a folder's rows: clusters.csv (id, cluster), clusters.json (sizes, label
    agreement when labelled, the sweep), and a gallery PNG of each cluster's central members."""
    store = open_store(directory)
    items = store.items()
    ok = np.flatnonzero(items["ok"])
    vectors = store.vectors()[ok]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"k": k, "rows": len(ok)}
    if sweep:
        summary["silhouette"] = {
            str(key): value for key, value in sweep_k(vectors, sweep, seed=seed).items()
        }
    clusters = cluster(vectors, k, seed=seed)
    summary["sizes"] = clusters.sizes.tolist()
    labels = items["label"][ok]
    if (labels >= 0).any():
        summary["labels"] = label_agreement(clusters.assignments, labels)
    with open(out / "clusters.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "path", "cluster", "similarity"])
        for position, row in enumerate(ok):
            writer.writerow(
                [int(row), items["path"][row], int(clusters.assignments[position]),
                 f"{clusters.similarity[position]:.4f}"]
            )  # fmt: skip
    summary["galleries"] = _galleries(store, clusters, ok, out, gallery, seed)
    (out / "clusters.json").write_text(json.dumps(summary, indent=2))
    return summary


def _galleries(
    store: EmbeddingStore, clusters: Clusters, ok: np.ndarray, out: Path, count: int, seed: int
) -> list[str]:
    """Per cluster one PNG row pair: its `count` most central members, then random members."""
    images = collection_images(store)
    rng = np.random.default_rng(seed)
    written = []
    order = np.argsort(-clusters.sizes, kind="stable")
    for start in range(0, len(order), 10):  # ten clusters per PNG
        rows, titles = [], []
        for c in order[start : start + 10]:
            central = ok[clusters.nearest_members(int(c), count)]
            members = ok[np.flatnonzero(clusters.assignments == c)]
            sample = rng.choice(members, size=min(count, len(members)), replace=False)
            row = [
                (image, f"c{c} ({clusters.sizes[c]})" if n == 0 else "")
                for n, image in enumerate(images_by_id(images, central))
            ]
            row += [
                (image, "random" if n == 0 else "")
                for n, image in enumerate(images_by_id(images, sample))
            ]
            rows.append(row)
            titles.append(f"cluster {c}")
        path = save_rows(rows, out / f"clusters-{start // 10:03d}.png", titles)
        written.append(path.name)
    return written


def dedup_collection(directory: str | Path, threshold: float, out: str | Path) -> list[np.ndarray]:
    """Near-duplicate groups of a folder's rows (its saved index if any), written as a CSV of
    group, id, path."""
    store = open_store(directory)
    items = store.items()
    try:
        _, index = open_index(directory)
        ids = index.ids
    except SelfsupError:
        index, ids = None, np.flatnonzero(items["ok"])
    vectors = store.vectors()[ids]
    groups = find_duplicates(vectors, threshold, index, ids)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with open(partial, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["group", "id", "path"])
        for number, group in enumerate(groups):
            for row in group:
                writer.writerow([number, int(row), items["path"][row]])
    partial.replace(out)
    return groups


def map_collection(
    directory: str | Path,
    out: str | Path,
    method: str = "umap",
    colour: str = "label",
    sample: int = 10_000,
    clusters: int = 20,
    thumbnails: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """A 2-D map PNG of a seeded sample of the folder's rows, coloured by label (or, for
    unlabelled rows or `colour="cluster"`, by k-means cluster), with `thumbnails` images drawn
    on it; the coordinates go to a CSV beside the PNG."""
    store = open_store(directory)
    items = store.items()
    ok = np.flatnonzero(items["ok"])
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(ok, size=min(sample, len(ok)), replace=False))
    vectors = store.vectors()[chosen]
    points = project_2d(vectors, method, seed)
    labels = items["label"][chosen]
    if colour not in ("label", "cluster"):
        raise SelfsupError(f"colour the map by 'label' or 'cluster', got {colour!r}")
    if colour == "label" and (labels >= 0).any():
        groups = labels
        classes = store.meta().source.get("classes") or []
        names = [classes[i] if i < len(classes) else str(i) for i in range(labels.max() + 1)]
    else:
        colour = "cluster"
        groups = cluster(vectors, min(clusters, len(vectors)), seed=seed).assignments
        names = [f"cluster {c}" for c in range(groups.max() + 1)]
    drawn = []
    if thumbnails:
        picks = rng.choice(len(chosen), size=min(thumbnails, len(chosen)), replace=False)
        images = images_by_id(collection_images(store), chosen[picks])
        drawn = list(zip(picks.tolist(), images, strict=True))
    title = f"{method.upper() if method == 'umap' else 't-SNE'} of {len(chosen)} embeddings"
    output = save_map(points, groups, names, out, f"{title}, by {colour}", drawn)
    table = Path(output).with_suffix(".csv")
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "x", "y", colour])
        for row, point, group in zip(chosen, points, groups, strict=True):
            writer.writerow([int(row), f"{point[0]:.4f}", f"{point[1]:.4f}", int(group)])
    return {"output": str(output), "coordinates": str(table), "points": len(chosen)}


__all__ = [
    "cluster_collection",
    "collection_images",
    "dedup_collection",
    "embed_run",
    "encoder_fingerprint",
    "index_collection",
    "map_collection",
    "open_index",
    "open_store",
    "search_collection",
]
