"""`selfsup cluster`, `dedup` and `map`: what the folder's rows look like together."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selfsup.collection.runs import collection_images, images_by_id, open_store
from selfsup.collection.search import open_index
from selfsup.embeddings import (
    Clusters,
    EmbeddingStore,
    SearchIndex,
    cluster,
    find_duplicates,
    label_agreement,
    sweep_k,
)
from selfsup.embeddings.grids import save_rows
from selfsup.embeddings.maps import project_2d, save_map
from selfsup.embeddings.store import ITEMS
from selfsup.errors import SelfsupError


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
    ok = store.ok_ids()
    vectors = store.rows(ok)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"k": k, "rows": len(ok)}
    if sweep:
        summary["silhouette"] = {
            str(key): value for key, value in sweep_k(vectors, sweep, seed=seed).items()
        }
    clusters = cluster(vectors, k, seed=seed)
    summary["sizes"] = clusters.sizes.tolist()
    labels = store.labels()[ok]
    if (labels >= 0).any():
        summary["labels"] = label_agreement(clusters.assignments, labels)
    _write_assignments(store, ok, clusters, out / "clusters.csv")
    summary["galleries"] = _galleries(store, clusters, ok, out, gallery, seed)
    (out / "clusters.json").write_text(json.dumps(summary, indent=2))
    return summary


def _write_assignments(
    store: EmbeddingStore, ok: np.ndarray, clusters: Clusters, path: Path
) -> None:
    """clusters.csv: id, path, cluster and similarity of each clustered row, streamed beside
    the items table (no list of all paths in memory)."""
    clustered = np.zeros(store.meta().rows, dtype=bool)
    clustered[ok] = True
    with open(store.directory / ITEMS, newline="") as items, open(path, "w", newline="") as handle:
        reader, writer = csv.reader(items), csv.writer(handle)
        column = next(reader).index("path")
        writer.writerow(["id", "path", "cluster", "similarity"])
        n = 0  # position of this row among the clustered ones (`ok` is in row order)
        for row, item in enumerate(reader):
            if clustered[row]:
                cluster_id, similarity = clusters.assignments[n], clusters.similarity[n]
                writer.writerow([row, item[column], int(cluster_id), f"{similarity:.4f}"])
                n += 1


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
    index, ids = None, store.ok_ids()
    if SearchIndex.exists(directory):  # a corrupt or foreign index is an error, not skipped
        _, index = open_index(directory)
        ids = index.ids
    vectors = store.rows(ids)
    groups = find_duplicates(vectors, threshold, index, ids)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with open(partial, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["group", "id", "path"])
        members = np.concatenate(groups) if groups else np.zeros(0, dtype=np.int64)
        paths = iter(store.items(members)["path"])
        for number, group in enumerate(groups):
            for row in group:
                writer.writerow([number, int(row), next(paths)])
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
    ok = store.ok_ids()
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(ok, size=min(sample, len(ok)), replace=False))
    vectors = store.rows()[chosen]
    points = project_2d(vectors, method, seed)
    labels = store.labels()[chosen]
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
