"""Embeddings in use: embed a collection, search it, cluster it, find its near-duplicates.

The array-level steps (`build_index`, `cluster`, `find_duplicates`) take any (N, D) array; the
folder-level ones read and write an embeddings folder (`EmbeddingStore`).
"""

from selfsup.embeddings.build import build_index, search
from selfsup.embeddings.cluster import Clusters, cluster, label_agreement, sweep_k
from selfsup.embeddings.duplicates import find_duplicates, group_pairs
from selfsup.embeddings.embed import embed
from selfsup.embeddings.exact import exact_neighbours
from selfsup.embeddings.index import IndexSpec, SearchIndex
from selfsup.embeddings.store import EmbeddingsMeta, EmbeddingStore

__all__ = [
    "Clusters",
    "EmbeddingStore",
    "EmbeddingsMeta",
    "IndexSpec",
    "SearchIndex",
    "build_index",
    "cluster",
    "embed",
    "exact_neighbours",
    "find_duplicates",
    "group_pairs",
    "label_agreement",
    "search",
    "sweep_k",
]
