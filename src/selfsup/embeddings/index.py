"""Nearest-neighbour search over embeddings with faiss, the index kind chosen for the size.

- up to `EXACT_UP_TO` vectors: exact inner-product search (`IndexFlatIP`), which on
  L2-normalised rows is cosine similarity;
- above: an inverted file with product quantisation (IVF-PQ). Vectors are projected on the
  top `REDUCE_DIM` eigenvectors of their second moment E[x xᵀ] (no centring, so inner products
  survive) and randomly rotated, so that every sub-quantiser gets a like share of the variance;
  about √N lists hold 4-bit codes, one per projected dimension (faiss's SIMD "fast-scan" PQ:
  128 bytes a vector). Each query's `rerank`·k best candidates are re-ranked by exact inner
  products read from the embeddings folder's memory-mapped chunks. Memory holds only the codes,
  while the re-ranking recovers what the projection and quantisation lose;
- `hnsw` on request: a graph over the full vectors (fast queries, 4·D bytes per vector).

The search breadth is raised until recall@k against exact search on a sample of queries
reaches `recall_target`: `efSearch` (HNSW), or `nprobe` (IVF) and, once more lists stop
helping, the re-rank depth. The values and the recall they measured are saved with the index.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from selfsup.errors import SelfsupError

EXACT_UP_TO = 1_000_000
"""Exact search up to this many vectors (`kind="auto"`)."""

REDUCE_DIM = 256
"""IVF-PQ projects wider vectors to this many dimensions before quantising them."""

RERANK_DEPTHS = (10, 20, 40)
"""Candidates re-ranked exactly per neighbour asked for, tried in turn when tuning IVF-PQ."""

KINDS = ("auto", "flat", "ivfpq", "hnsw")
INDEX_FILE, INDEX_META, INDEX_IDS = "index.faiss", "index.json", "index-ids.npy"

CHUNK_BYTES = 2**28
"""Rows are read, added and searched in float32 blocks of at most this many bytes."""

RowReader = Callable[[np.ndarray], np.ndarray]
"""Maps an array of row ids to their (len, D) float32 vectors (for exact re-ranking)."""


def import_faiss() -> Any:
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        raise SelfsupError("search needs faiss: pip install faiss-cpu") from None
    return faiss


@dataclass
class IndexSpec:
    """How an index was built and is searched (saved as index.json).

    Attributes:
        kind: flat, ivfpq or hnsw.
        dim: D.
        count: vectors in the index.
        nlist: IVF lists; reduce_dim: dimensions after the projection (IVF-PQ); pq_m: 4-bit
            sub-quantisers (pq_m / 2 bytes per vector); hnsw_m: HNSW graph degree.
        nprobe: IVF lists visited per query; ef_search: HNSW search breadth.
        rerank: candidates re-ranked exactly per neighbour asked for (IVF-PQ).
        recall: recall@k against exact search measured at build time (None: exact).
        recall_k: the k of that measurement.
        tuned_on: the queries it was measured on (sampled indexed rows, or given queries).
        encoder: the fingerprint of the encoder whose embeddings it holds.
    """

    kind: str
    dim: int
    count: int
    nlist: int = 0
    reduce_dim: int = 0
    pq_m: int = 0
    hnsw_m: int = 32
    nprobe: int = 1
    ef_search: int = 64
    rerank: int = RERANK_DEPTHS[0]
    recall: float | None = None
    recall_k: int = 10
    tuned_on: str = ""
    encoder: str = ""


def choose_spec(count: int, dim: int, kind: str = "auto") -> IndexSpec:
    """The index for `count` vectors of width `dim`: exact up to `EXACT_UP_TO`, else IVF-PQ."""
    if kind not in KINDS:
        raise SelfsupError(f"index kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "auto":
        kind = "flat" if count <= EXACT_UP_TO else "ivfpq"
    spec = IndexSpec(kind=kind, dim=dim, count=count)
    if kind == "ivfpq":
        if dim < 2:
            raise SelfsupError("IVF-PQ needs embeddings of at least 2 dimensions")
        spec.nlist = int(2 ** round(math.log2(max(16.0, math.sqrt(count)))))
        spec.nlist = max(1, min(spec.nlist, count // 39))  # faiss wants ~39 points per list
        spec.reduce_dim = min(REDUCE_DIM, dim - dim % 2)  # fast-scan packs codes in pairs
        spec.pq_m = spec.reduce_dim
    return spec


def chunk_rows(dim: int) -> int:
    """Rows of width `dim` in one float32 block of `CHUNK_BYTES`."""
    return max(1, CHUNK_BYTES // (4 * dim))


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


class SearchIndex:
    """A faiss index over some rows of an embeddings folder, searched by vectors.

    Args:
        index: the faiss index; position i holds row `ids[i]`.
        spec: how it was built.
        ids: (count,) row ids of the indexed vectors.
        rows: reads exact vectors by row id, for IVF-PQ re-ranking (None: no re-ranking).
    """

    def __init__(
        self, index: Any, spec: IndexSpec, ids: np.ndarray, rows: RowReader | None = None
    ) -> None:
        self.index, self.spec, self.ids, self.rows = index, spec, ids, rows
        self._configure()

    def _configure(self) -> None:
        if self.spec.kind == "ivfpq":
            import_faiss().extract_index_ivf(self.index).nprobe = self.spec.nprobe
        elif self.spec.kind == "hnsw":
            self.index.hnsw.efSearch = self.spec.ef_search

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k most similar indexed rows of each query: (scores, row ids), both (Q, k),
        best first. Scores are inner products (cosine similarities for normalised rows)."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.spec.dim:
            raise SelfsupError(
                f"queries have {queries.shape[1]} dimensions but the index holds "
                f"{self.spec.dim}-dimensional embeddings"
            )
        if not 1 <= k <= len(self):
            raise SelfsupError(f"k must be between 1 and the {len(self)} indexed images, got {k}")
        rerank = self.spec.kind == "ivfpq" and self.rows is not None
        wide = min(len(self), k * self.spec.rerank) if rerank else k
        scores, positions = self.index.search(queries, wide)
        if rerank:
            scores, positions = self._rerank(queries, positions, k)
        found = positions >= 0
        ids = np.where(found, self.ids[np.clip(positions, 0, None)], -1)
        return np.where(found, scores, -np.inf).astype(np.float32), ids

    def _rerank(
        self, queries: np.ndarray, positions: np.ndarray, k: int, block: int = 64
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner products of each query with its candidates, `block` queries at a time
        (bounded memory); the best k of them."""
        exact = np.empty(positions.shape, dtype=np.float32)
        for start in range(0, len(queries), block):
            part = positions[start : start + block]
            wanted = self.ids[np.clip(part, 0, None)].reshape(-1)
            candidates = self.rows(wanted).reshape(*part.shape, self.spec.dim)  # type: ignore[misc]
            exact[start : start + block] = np.matmul(
                candidates, queries[start : start + block, :, None]
            )[..., 0]
        exact[positions < 0] = -np.inf
        best = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(exact, best, 1), np.take_along_axis(positions, best, 1)

    # -- persistence ---------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write index.faiss, index-ids.npy and index.json into `directory`, atomically each."""
        faiss = import_faiss()
        directory = Path(directory)
        partial = directory / (INDEX_FILE + ".partial")
        faiss.write_index(self.index, str(partial))
        os.replace(partial, directory / INDEX_FILE)
        partial_ids = directory / "index-ids.partial.npy"
        np.save(partial_ids, self.ids)
        os.replace(partial_ids, directory / INDEX_IDS)
        partial_meta = directory / (INDEX_META + ".partial")
        partial_meta.write_text(json.dumps(asdict(self.spec), indent=2))
        os.replace(partial_meta, directory / INDEX_META)
        return directory / INDEX_FILE

    @staticmethod
    def exists(directory: str | Path) -> bool:
        """Whether `save` wrote an index into `directory` (it may still be corrupt)."""
        return (Path(directory) / INDEX_FILE).is_file()

    @classmethod
    def load(cls, directory: str | Path, rows: RowReader | None = None) -> SearchIndex:
        """Read what `save` wrote; a missing or corrupt file is a one-line SelfsupError."""
        faiss = import_faiss()
        directory = Path(directory)
        if not (directory / INDEX_FILE).is_file():
            raise SelfsupError(
                f"no index in {directory}; build one with `selfsup index {directory}`"
            )
        try:
            spec = IndexSpec(**json.loads((directory / INDEX_META).read_text()))
            ids = np.load(directory / INDEX_IDS)
            index = faiss.read_index(str(directory / INDEX_FILE))
        except Exception as error:
            raise SelfsupError(
                f"the index in {directory} is corrupt ({type(error).__name__}); rebuild it with "
                f"`selfsup index {directory}`"
            ) from None
        if index.ntotal != len(ids) or index.d != spec.dim:
            raise SelfsupError(f"the index in {directory} does not match its ids; rebuild it")
        return cls(index, spec, ids, rows)


def exact_neighbours(
    vectors: np.ndarray, queries: np.ndarray, k: int, block: int | None = None
) -> np.ndarray:
    """Positions of the k largest inner products of each query over `vectors`, streamed
    `block` rows at a time (the ground truth that recall is measured against)."""
    faiss = import_faiss()
    block = block or chunk_rows(vectors.shape[1])
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), block):
        part = np.ascontiguousarray(vectors[start : start + block], dtype=np.float32)
        scores, ids = faiss.knn(queries, part, min(k, len(part)), metric=faiss.METRIC_INNER_PRODUCT)
        best_scores = np.concatenate([best_scores, scores], 1)
        best_ids = np.concatenate([best_ids, ids + start], 1)
        keep = np.argsort(-best_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(best_scores, keep, 1)
        best_ids = np.take_along_axis(best_ids, keep, 1)
    return best_ids


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over queries of |found ∩ truth| / k."""
    hits = [len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / truth.shape[1]


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


__all__ = [
    "EXACT_UP_TO",
    "IndexSpec",
    "SearchIndex",
    "build_index",
    "choose_spec",
    "exact_neighbours",
    "projection",
    "recall_at_k",
    "search",
]
