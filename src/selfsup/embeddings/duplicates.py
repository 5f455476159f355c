"""Near-duplicate groups: images whose embeddings are at least `threshold` cosine-similar,
joined transitively (if a ~ b and b ~ c, all three are one group).

Pairs come from a range search on an exact index, a batch of queries at a time, so memory
grows with the number of pairs found, never with N²; on an approximate index (IVF-PQ, HNSW)
from each row's `neighbours` nearest neighbours, re-ranked exactly, above the threshold.
"""

from __future__ import annotations

import numpy as np

from selfsup.embeddings.build import build_index
from selfsup.embeddings.index import SearchIndex
from selfsup.errors import SelfsupError


def similar_pairs(
    index: SearchIndex,
    vectors: np.ndarray,
    threshold: float,
    batch: int = 4096,
    neighbours: int = 32,
) -> np.ndarray:
    """(P, 2) row ids (first < second) of every indexed pair with similarity >= threshold."""
    pairs = []
    for start in range(0, len(index), batch):
        positions = np.arange(start, min(len(index), start + batch))
        queries = np.ascontiguousarray(vectors[positions], dtype=np.float32)
        query_ids = index.ids[positions]
        if index.spec.kind == "flat":
            limits, _, found = index.index.range_search(queries, float(threshold))
            counts = np.diff(limits.astype(np.int64))
            first = np.repeat(query_ids, counts)
            second = index.ids[found]
        else:
            scores, found_ids = index.search(queries, min(neighbours, len(index)))
            keep = scores >= threshold
            first = np.repeat(query_ids, keep.sum(1))
            second = found_ids[keep]
        ordered = first < second  # each pair once, and no self-matches
        pairs.append(np.stack([first[ordered], second[ordered]], 1))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)


def group_pairs(pairs: np.ndarray) -> list[np.ndarray]:
    """Connected components of the pair graph with two or more members, largest first, each
    a sorted array of row ids."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(pairs) == 0:
        return []
    nodes, inverse = np.unique(pairs.reshape(-1), return_inverse=True)
    inverse = inverse.reshape(-1, 2)
    graph = coo_matrix(
        (np.ones(len(pairs), dtype=np.int8), (inverse[:, 0], inverse[:, 1])),
        shape=(len(nodes), len(nodes)),
    )
    _, component = connected_components(graph, directed=False)
    order = np.argsort(component, kind="stable")
    groups = np.split(nodes[order], np.flatnonzero(np.diff(component[order])) + 1)
    return sorted((np.sort(group) for group in groups), key=lambda g: (-len(g), int(g[0])))


def find_duplicates(
    vectors: np.ndarray,
    threshold: float = 0.95,
    index: SearchIndex | None = None,
    ids: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Groups of near-duplicates among L2-normalised `vectors` (rows `ids`, default 0..N-1),
    cosine similarity >= `threshold`; builds an index when none is given.

    >>> rows = np.array([[1, 0], [0.999, 0.0447], [0, 1]], dtype=np.float32)
    >>> [group.tolist() for group in find_duplicates(rows, 0.99)]
    [[0, 1]]
    """
    if not -1.0 <= threshold <= 1.0:
        raise SelfsupError(f"a cosine threshold lies in [-1, 1], got {threshold}")
    if index is None:
        index = build_index(vectors, ids)
    elif len(index) != len(vectors):
        raise SelfsupError(f"the index holds {len(index)} rows but {len(vectors)} were given")
    return group_pairs(similar_pairs(index, vectors, threshold))


__all__ = ["find_duplicates", "group_pairs", "similar_pairs"]
