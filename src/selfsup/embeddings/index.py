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

from selfsup.embeddings.exact import import_faiss
from selfsup.errors import SelfsupError

EXACT_UP_TO = 1_000_000
"""Exact search up to this many vectors (`kind="auto"`)."""

REDUCE_DIM = 256
"""IVF-PQ projects wider vectors to this many dimensions before quantising them."""

RERANK_DEPTHS = (10, 20, 40)
"""Candidates re-ranked exactly per neighbour asked for, tried in turn when tuning IVF-PQ."""

KINDS = ("auto", "flat", "ivfpq", "hnsw")
INDEX_FILE, INDEX_META, INDEX_IDS = "index.faiss", "index.json", "index-ids.npy"

RowReader = Callable[[np.ndarray], np.ndarray]
"""Maps an array of row ids to their (len, D) float32 vectors (for exact re-ranking)."""


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


__all__ = ["EXACT_UP_TO", "IndexSpec", "RowReader", "SearchIndex", "choose_spec"]
