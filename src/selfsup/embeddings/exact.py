"""Exact inner-product search streamed over blocks of rows: the ground truth that approximate
indexes are tuned and measured against, and the block size every streamed pass reads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from selfsup.errors import SelfsupError

CHUNK_BYTES = 2**28
"""Rows are read, added and searched in float32 blocks of at most this many bytes."""


def import_faiss() -> Any:
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        raise SelfsupError("search needs faiss: pip install faiss-cpu") from None
    return faiss


def chunk_rows(dim: int) -> int:
    """Rows of width `dim` in one float32 block of `CHUNK_BYTES`."""
    return max(1, CHUNK_BYTES // (4 * dim))


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


__all__ = ["CHUNK_BYTES", "chunk_rows", "exact_neighbours", "import_faiss", "recall_at_k"]
