"""Building a search index over any (N, D) array-like, a block at a time, and tuning its
search breadth until recall@k against exact search reaches a target (the kinds and their
settings are described in `selfsup.embeddings.index`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from selfsup.embeddings.exact import chunk_rows, exact_neighbours, import_faiss, recall_at_k
from selfsup.embeddings.index import (
    RERANK_DEPTHS,
    IndexSpec,
    RowReader,
    SearchIndex,
    choose_spec,
)
from selfsup.errors import SelfsupError


def projection(sample: np.ndarray, reduce_dim: int, seed: int = 0) -> np.ndarray:
    """(reduce_dim, D): the top eigenvectors of the sample's second moment E[x xᵀ], then a
    seeded random rotation among them (PQ wants variance spread evenly over its sub-spaces)."""
    moment = np.zeros((sample.shape[1],) * 2)
    for start in range(0, len(sample), 4096):  # float64 a block at a time
        block = np.asarray(sample[start : start + 4096], dtype=np.float64)
        moment += block.T @ block
    _, eigenvectors = np.linalg.eigh(moment / len(sample))
    top = eigenvectors[:, ::-1][:, :reduce_dim].T
    rotation, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((reduce_dim,) * 2))
    return np.ascontiguousarray(rotation @ top, dtype=np.float32)


def _build_faiss(spec: IndexSpec, vectors: np.ndarray, seed: int) -> Any:
    faiss = import_faiss()
    if spec.kind == "flat":
        index = faiss.IndexFlatIP(spec.dim)
    elif spec.kind == "hnsw":
        index = faiss.IndexHNSWFlat(spec.dim, spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    else:
        rng = np.random.default_rng(seed)
        step = chunk_rows(spec.dim)
        sample = np.sort(rng.choice(len(vectors), min(len(vectors), step), replace=False))
        matrix = projection(vectors[sample], spec.reduce_dim, seed)
        transform = faiss.LinearTransform(spec.dim, spec.reduce_dim, False)
        faiss.copy_array_to_vector(matrix.ravel(), transform.A)
        transform.is_trained = True
        inner = faiss.index_factory(
            spec.reduce_dim, f"IVF{spec.nlist},PQ{spec.pq_m}x4fs", faiss.METRIC_INNER_PRODUCT
        )
        faiss.extract_index_ivf(inner).cp.seed = seed
        # k-means and PQ learn from up to 64 rows per list, projected a bounded chunk at a time
        train = np.sort(rng.choice(len(vectors), min(len(vectors), 64 * spec.nlist), False))
        projected = [
            np.asarray(vectors[train[start : start + step]], dtype=np.float32) @ matrix.T
            for start in range(0, len(train), step)
        ]
        inner.train(np.ascontiguousarray(np.concatenate(projected)))
        index = faiss.IndexPreTransform(transform, inner)
    for start in range(0, len(vectors), step := chunk_rows(spec.dim)):
        index.add(np.ascontiguousarray(vectors[start : start + step], dtype=np.float32))
    return index


def build_index(
    vectors: np.ndarray,
    ids: np.ndarray | None = None,
    kind: str = "auto",
    recall_target: float = 0.95,
    recall_k: int = 10,
    queries: int | np.ndarray = 200,
    rows: RowReader | None = None,
    seed: int = 0,
    encoder: str = "",
) -> SearchIndex:
    """Build a search index over (N, D) `vectors` (rows `ids`, default 0..N-1) and tune its
    search breadth until recall@`recall_k` reaches `recall_target` on `queries`: that many
    sampled indexed rows (each left out of its own neighbours), or a (Q, D) array of sample
    queries from outside the index, the better guide when there are near-copies in it.

    `vectors` may be any array-like that slices and fancy-indexes to float arrays (such as an
    embeddings folder's `StoredRows`); it is read a chunk at a time. `rows` reads exact vectors
    by id for IVF-PQ re-ranking; without it, `vectors` is used.
    """
    if vectors.ndim != 2 or len(vectors) == 0:
        raise SelfsupError(f"need a non-empty (N, D) array of embeddings, got {vectors.shape}")
    ids = np.arange(len(vectors), dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
    if len(ids) != len(vectors):
        raise SelfsupError(f"{len(ids)} ids for {len(vectors)} vectors")
    spec = choose_spec(len(vectors), vectors.shape[1], kind)
    spec.encoder = encoder
    if rows is None:
        rows = _reader_by_id(vectors, ids)
    index = SearchIndex(_build_faiss(spec, vectors, seed), spec, ids, rows)
    if spec.kind != "flat":
        _tune(index, vectors, recall_target, recall_k, queries, seed)
    return index


def _reader_by_id(vectors: np.ndarray, ids: np.ndarray) -> RowReader:
    """Reads rows of `vectors` by their ids (position i holds `ids[i]`)."""
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]

    def read(wanted: np.ndarray) -> np.ndarray:
        where = np.clip(np.searchsorted(sorted_ids, wanted), 0, len(ids) - 1)
        return np.asarray(vectors[order[where]], dtype=np.float32)

    return read


def _tune(
    index: SearchIndex,
    vectors: np.ndarray,
    recall_target: float,
    recall_k: int,
    queries: int | np.ndarray,
    seed: int,
) -> None:
    """Widen the search until recall@k on the tuning queries reaches the target: double
    efSearch (HNSW) or nprobe (IVF-PQ); once doubling nprobe gains under half a point, go to
    the next re-rank depth. Settles on the first setting that reaches the target, else on the
    best one seen."""
    spec, ids = index.spec, index.ids
    if isinstance(queries, (int, np.integer)):
        k = min(recall_k, len(vectors) - 1)
        rng = np.random.default_rng(seed + 1)
        sample = np.sort(rng.choice(len(vectors), size=min(queries, len(vectors)), replace=False))
        probe = np.asarray(vectors[sample], dtype=np.float32)
        # each query is an indexed row, left out of its own neighbours (it always finds itself)
        truth = _without_self(ids[exact_neighbours(vectors, probe, k + 1)], ids[sample], k)

        def neighbours() -> np.ndarray:
            return _without_self(index.search(probe, k + 1)[1], ids[sample], k)

        spec.tuned_on = f"{len(sample)} indexed rows"
    else:
        k = min(recall_k, len(vectors))
        probe = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        truth = ids[exact_neighbours(vectors, probe, k)]

        def neighbours() -> np.ndarray:
            return index.search(probe, k)[1]

        spec.tuned_on = f"{len(probe)} given queries"
    spec.recall_k = k
    ivf = spec.kind == "ivfpq"
    knob, limit = ("nprobe", spec.nlist) if ivf else ("ef_search", 4096)
    best = (-1.0, spec.rerank, getattr(spec, knob))
    for depth in RERANK_DEPTHS if ivf else (spec.rerank,):
        value, previous = (1 if ivf else max(16, k)), -1.0
        while True:
            spec.rerank = depth
            setattr(spec, knob, value)
            index._configure()
            spec.recall = recall_at_k(neighbours(), truth)
            if spec.recall >= recall_target:
                return
            if spec.recall > best[0]:
                best = (spec.recall, depth, value)
            if value >= limit or (ivf and spec.recall - previous < 0.005):
                break
            previous, value = spec.recall, min(limit, value * 2)
    spec.recall, spec.rerank, chosen = best
    setattr(spec, knob, chosen)
    index._configure()


def search(
    index: SearchIndex | np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The k most similar rows of each query: (scores, ids), best first; `index` is a
    `SearchIndex` or an (N, D) array, searched exactly.

    >>> rows = np.eye(3, dtype=np.float32)
    >>> search(rows, rows[:1], 1)[1].tolist()
    [[0]]
    """
    if not isinstance(index, SearchIndex):
        index = build_index(np.asarray(index), kind="flat")
    return index.search(queries, k)


def _without_self(found: np.ndarray, own: np.ndarray, k: int) -> np.ndarray:
    """Each row's first k ids other than its own."""
    return np.stack([row[row != query][:k] for row, query in zip(found, own, strict=True)])


__all__ = ["build_index", "projection", "search"]
