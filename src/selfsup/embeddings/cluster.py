"""Clusters of a collection: spherical k-means (faiss), a sweep over k, and label agreement.

Spherical k-means keeps centroids on the unit sphere and assigns each embedding to the most
similar centroid by inner product, so on L2-normalised embeddings it clusters by cosine
similarity, the geometry contrastive methods train. With labels, clusters are scored by
purity, normalised mutual information and the adjusted Rand index (scikit-learn's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from selfsup.embeddings.exact import chunk_rows, import_faiss
from selfsup.errors import SelfsupError


@dataclass
class Clusters:
    """A k-means result over N embeddings.

    Attributes:
        centroids: (k, D) float32, unit length.
        assignments: (N,) cluster of each embedding.
        similarity: (N,) inner product of each embedding with its centroid.
    """

    centroids: np.ndarray
    assignments: np.ndarray
    similarity: np.ndarray

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.assignments, minlength=len(self.centroids))

    def nearest_members(self, cluster: int, count: int) -> np.ndarray:
        """Ids of the `count` members most similar to the centroid, most similar first."""
        members = np.flatnonzero(self.assignments == cluster)
        order = np.argsort(-self.similarity[members], kind="stable")
        return members[order[:count]]


def _checked(vectors: np.ndarray) -> None:
    if vectors.ndim != 2 or len(vectors) == 0:
        raise SelfsupError(f"need a non-empty (N, D) array of embeddings, got {vectors.shape}")


def _sample(vectors: np.ndarray, count: int, seed: int) -> np.ndarray:
    """A seeded sample of at most `count` rows as float32, read in row order (so a folder's
    chunks are read forwards), or all rows when there are no more."""
    if count >= len(vectors):
        return np.ascontiguousarray(vectors[:], dtype=np.float32)
    chosen = np.sort(np.random.default_rng(seed).choice(len(vectors), size=count, replace=False))
    return np.ascontiguousarray(vectors[chosen], dtype=np.float32)


def cluster(
    vectors: np.ndarray,
    k: int,
    iterations: int = 25,
    seed: int = 0,
    train_sample: int = 256,
    block: int | None = None,
) -> Clusters:
    """Spherical k-means with `k` clusters, trained on a seeded sample of at most
    `train_sample`·k embeddings; then every embedding is assigned, a block at a time.

    `vectors` may be any array-like that slices and fancy-indexes to float rows (such as an
    embeddings folder's `StoredRows`): only the sample and one `block` of rows (default: 256 MB
    of float32) are in memory at once.

    >>> points = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    >>> labels = cluster(points, 2).assignments
    >>> bool(labels[0] == labels[1] and labels[2] == labels[3] and labels[0] != labels[2])
    True
    """
    faiss = import_faiss()
    _checked(vectors)
    if not 1 <= k <= len(vectors):
        raise SelfsupError(f"k must be between 1 and the {len(vectors)} embeddings, got {k}")
    kmeans = faiss.Kmeans(
        vectors.shape[1],
        k,
        niter=iterations,
        spherical=True,
        seed=seed,
        max_points_per_centroid=train_sample,
        min_points_per_centroid=1,  # small collections cluster without faiss' warning
        verbose=False,
    )
    kmeans.train(_sample(vectors, train_sample * k, seed))
    assignments = np.empty(len(vectors), dtype=np.int64)
    similarity = np.empty(len(vectors), dtype=np.float32)
    block = block or chunk_rows(vectors.shape[1])
    for start in range(0, len(vectors), block):
        part = np.ascontiguousarray(vectors[start : start + block], dtype=np.float32)
        scores, nearest = kmeans.index.search(part, 1)
        assignments[start : start + len(part)] = nearest[:, 0]
        similarity[start : start + len(part)] = scores[:, 0]
    return Clusters(kmeans.centroids.copy(), assignments, similarity)


def label_agreement(assignments: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Purity (share of each cluster's majority label, weighted by size), NMI and ARI of
    `assignments` against known `labels`; rows with label < 0 are left out."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    known = labels >= 0
    assignments, labels = assignments[known], labels[known]
    if len(labels) == 0:
        raise SelfsupError("no labelled embeddings to score the clusters against")
    table = np.zeros((assignments.max() + 1, labels.max() + 1), dtype=np.int64)
    np.add.at(table, (assignments, labels), 1)
    return {
        "purity": float(table.max(1).sum() / len(labels)),
        "nmi": float(normalized_mutual_info_score(labels, assignments)),
        "ari": float(adjusted_rand_score(labels, assignments)),
    }


def sweep_k(
    vectors: np.ndarray, ks: Sequence[int], sample: int = 5000, seed: int = 0
) -> dict[int, float]:
    """Silhouette score (cosine) of k-means at each k, on a seeded sample of the embeddings:
    higher is better separated; a way to choose k without labels."""
    from sklearn.metrics import silhouette_score

    _checked(vectors)
    subset = _sample(vectors, sample, seed)
    scores = {}
    for k in ks:
        if not 2 <= k < len(subset):
            raise SelfsupError(f"a silhouette needs 2 <= k < {len(subset)} sampled points, got {k}")
        assignments = cluster(subset, k, seed=seed).assignments
        if len(np.unique(assignments)) < 2:
            scores[k] = -1.0
            continue
        scores[k] = float(silhouette_score(subset, assignments, metric="cosine"))
    return scores


__all__ = ["Clusters", "cluster", "label_agreement", "sweep_k"]
