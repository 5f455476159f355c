"""Nearest-neighbour search over embeddings with faiss, the index kind chosen for the size.

- up to `EXACT_UP_TO` vectors: exact inner-product search (`IndexFlatIP`), which on
  L2-normalised rows is cosine similarity;
- above: an inverted file with product quantisation (IVF-PQ: 4·√N lists, codes of at most 64
  bytes per vector), whose `rerank`·k candidates are re-ranked by exact inner products read
  from the embeddings folder's memory-mapped chunks. Memory holds only the codes, while the
  re-ranking recovers most of what the quantisation loses;
- `hnsw` on request: a graph over the full vectors (fast queries, 4·D bytes per vector).

`nprobe` (IVF) or `efSearch` (HNSW) is raised until recall@k against exact search on a sample
of queries reaches `recall_target`; the value and the recall it measured are saved with the
index.
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

KINDS = ("auto", "flat", "ivfpq", "hnsw")
INDEX_FILE, INDEX_META, INDEX_IDS = "index.faiss", "index.json", "index-ids.npy"

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
        nlist: IVF lists; pq_bytes: PQ bytes per vector; hnsw_m: HNSW graph degree.
        nprobe: IVF lists visited per query; ef_search: HNSW search breadth.
        rerank: candidates re-ranked exactly per neighbour asked for (IVF-PQ).
        recall: recall@k against exact search measured at build time (None: exact).
        recall_k: the k of that measurement.
        encoder: the fingerprint of the encoder whose embeddings it holds.
    """

    kind: str
    dim: int
    count: int
    nlist: int = 0
    pq_bytes: int = 0
    hnsw_m: int = 32
    nprobe: int = 1
    ef_search: int = 64
    rerank: int = 10
    recall: float | None = None
    recall_k: int = 10
    encoder: str = ""


def choose_spec(count: int, dim: int, kind: str = "auto") -> IndexSpec:
    """The index for `count` vectors of width `dim`: exact up to `EXACT_UP_TO`, else IVF-PQ."""
    if kind not in KINDS:
        raise SelfsupError(f"index kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "auto":
        kind = "flat" if count <= EXACT_UP_TO else "ivfpq"
    spec = IndexSpec(kind=kind, dim=dim, count=count)
    if kind == "ivfpq":
        spec.nlist = int(2 ** round(math.log2(max(16.0, 4 * math.sqrt(count)))))
        spec.nlist = min(spec.nlist, max(1, count // 39))  # faiss wants ~39 points per list
        # sub-quantisers must divide D; at most 64 bytes and 4 dimensions per byte
        spec.pq_bytes = max(m for m in range(1, max(1, min(64, dim // 4)) + 1) if dim % m == 0)
    return spec


def _build_faiss(spec: IndexSpec, vectors: np.ndarray, seed: int) -> Any:
    faiss = import_faiss()
    if spec.kind == "flat":
        index = faiss.IndexFlatIP(spec.dim)
    elif spec.kind == "hnsw":
        index = faiss.IndexHNSWFlat(spec.dim, spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    else:
        quantizer = faiss.IndexFlatIP(spec.dim)
        index = faiss.IndexIVFPQ(
            quantizer, spec.dim, spec.nlist, spec.pq_bytes, 8, faiss.METRIC_INNER_PRODUCT
        )
        index.cp.seed = seed
        rng = np.random.default_rng(seed)
        sample = min(len(vectors), max(256 * spec.nlist, 65_536))
        chosen = np.sort(rng.choice(len(vectors), size=sample, replace=False))
        index.train(np.ascontiguousarray(vectors[chosen], dtype=np.float32))
        index.quantizer_trains_alone = 0
    for start in range(0, len(vectors), 262_144):  # bounded float32 copies of fp16 chunks
        index.add(np.ascontiguousarray(vectors[start : start + 262_144], dtype=np.float32))
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
            self.index.nprobe = self.spec.nprobe
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
        self, queries: np.ndarray, positions: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner products of each query with its candidates; the best k of them."""
        valid = positions >= 0
        candidates = self.rows(self.ids[np.clip(positions, 0, None)].reshape(-1))  # type: ignore[misc]
        candidates = candidates.reshape(*positions.shape, self.spec.dim)
        exact = np.einsum("qd,qcd->qc", queries, candidates.astype(np.float32))
        exact[~valid] = -np.inf
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
    vectors: np.ndarray, queries: np.ndarray, k: int, chunk_rows: int = 262_144
) -> np.ndarray:
    """Positions of the k largest inner products of each query over `vectors`, streamed in
    chunks (the ground truth that recall is measured against)."""
    faiss = import_faiss()
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), chunk_rows):
        part = np.ascontiguousarray(vectors[start : start + chunk_rows], dtype=np.float32)
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
    queries: int = 200,
    rows: RowReader | None = None,
    seed: int = 0,
    encoder: str = "",
) -> SearchIndex:
    """Build a search index over (N, D) `vectors` (rows `ids`, default 0..N-1) and tune its
    search breadth until recall@`recall_k` on `queries` sampled rows reaches `recall_target`.

    `rows` reads exact vectors by id for IVF-PQ re-ranking; without it, `vectors` is used.
    """
    if vectors.ndim != 2 or len(vectors) == 0:
        raise SelfsupError(f"need a non-empty (N, D) array of embeddings, got {vectors.shape}")
    ids = np.arange(len(vectors), dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
    if len(ids) != len(vectors):
        raise SelfsupError(f"{len(ids)} ids for {len(vectors)} vectors")
    spec = choose_spec(len(vectors), vectors.shape[1], kind)
    spec.encoder = encoder
    if rows is None:
        position_of = {int(row): position for position, row in enumerate(ids)}

        def rows(wanted: np.ndarray) -> np.ndarray:
            positions = np.fromiter((position_of[int(r)] for r in wanted), np.int64, len(wanted))
            return np.asarray(vectors[positions], dtype=np.float32)

    index = SearchIndex(_build_faiss(spec, vectors, seed), spec, ids, rows)
    if spec.kind == "flat":
        return index
    # Queries are indexed rows, each left out of its own neighbours (a row always finds
    # itself, which would flatter the recall).
    k = min(recall_k, len(vectors) - 1)
    rng = np.random.default_rng(seed + 1)
    sample = np.sort(rng.choice(len(vectors), size=min(queries, len(vectors)), replace=False))
    probe = np.asarray(vectors[sample], dtype=np.float32)
    truth = _without_self(ids[exact_neighbours(vectors, probe, k + 1)], ids[sample], k)
    spec.recall_k = k
    knob = "nprobe" if spec.kind == "ivfpq" else "ef_search"
    limit = spec.nlist if spec.kind == "ivfpq" else 4096
    value = 1 if spec.kind == "ivfpq" else max(16, k)
    while True:
        setattr(spec, knob, value)
        index._configure()
        found = _without_self(index.search(probe, k + 1)[1], ids[sample], k)
        spec.recall = recall_at_k(found, truth)
        if spec.recall >= recall_target or value >= limit:
            return index
        value = min(limit, value * 2)


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
    "recall_at_k",
    "search",
]
