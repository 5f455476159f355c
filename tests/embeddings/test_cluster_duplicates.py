"""k-means finds planted clusters and scores them like scikit-learn; near-duplicate groups are
the connected components of the above-threshold pairs, from exact and approximate indexes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from selfsup.embeddings import build_index, cluster, find_duplicates, group_pairs, label_agreement
from selfsup.embeddings.cluster import sweep_k
from selfsup.errors import SelfsupError


def _planted(per_cluster: int = 60, clusters: int = 4, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)) * 3
    labels = np.repeat(np.arange(clusters), per_cluster)
    rows = centres[labels] + 0.3 * rng.standard_normal((len(labels), dim))
    rows = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    return rows, labels


def test_spherical_kmeans_recovers_planted_clusters() -> None:
    rows, labels = _planted()
    result = cluster(rows, 4, seed=1)
    scores = label_agreement(result.assignments, labels)
    assert scores["purity"] == pytest.approx(1.0) and scores["nmi"] == pytest.approx(1.0)
    np.testing.assert_allclose(np.linalg.norm(result.centroids, axis=1), 1.0, atol=1e-5)
    assert sorted(result.sizes.tolist()) == [60, 60, 60, 60]
    central = result.nearest_members(int(result.assignments[0]), 5)
    assert (result.assignments[central] == result.assignments[0]).all()


def test_label_agreement_matches_a_counting_reference() -> None:
    rng = np.random.default_rng(3)
    assignments, labels = rng.integers(0, 5, 200), rng.integers(0, 3, 200)
    labels[:10] = -1  # unknown labels are left out
    scores = label_agreement(assignments, labels)
    known = labels >= 0
    majority = sum(
        np.bincount(labels[known][assignments[known] == c]).max()
        for c in np.unique(assignments[known])
    )
    assert scores["purity"] == pytest.approx(majority / known.sum())
    assert scores["nmi"] == pytest.approx(
        normalized_mutual_info_score(labels[known], assignments[known])
    )
    assert scores["ari"] == pytest.approx(adjusted_rand_score(labels[known], assignments[known]))


def test_silhouette_sweep_prefers_the_planted_k() -> None:
    rows, _ = _planted(per_cluster=40)
    scores = sweep_k(rows, [2, 4, 8])
    assert max(scores, key=scores.get) == 4
    with pytest.raises(SelfsupError, match="silhouette"):
        sweep_k(rows, [1])


def _with_duplicates(seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((400, 32)).astype(np.float32)
    rows[10] = rows[3] + 0.05 * rng.standard_normal(32)  # 3 ~ 10 ~ 250: one group of three
    rows[250] = rows[10] + 0.05 * rng.standard_normal(32)
    rows[77] = rows[300] + 0.05 * rng.standard_normal(32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_duplicate_groups_from_an_exact_range_search() -> None:
    rows = _with_duplicates()
    groups = find_duplicates(rows, threshold=0.99)
    assert [group.tolist() for group in groups] == [[3, 10, 250], [77, 300]]
    assert find_duplicates(rows, threshold=0.9999) == []  # nothing that close


def test_duplicate_groups_from_an_approximate_index_agree() -> None:
    rows = _with_duplicates()
    index = build_index(rows, kind="hnsw", recall_target=0.99)
    groups = find_duplicates(rows, threshold=0.99, index=index)
    assert [group.tolist() for group in groups] == [[3, 10, 250], [77, 300]]


def test_group_pairs_joins_transitively() -> None:
    pairs = np.array([[5, 9], [1, 2], [2, 3], [9, 7]])
    assert [g.tolist() for g in group_pairs(pairs)] == [[1, 2, 3], [5, 7, 9]]
    assert group_pairs(np.zeros((0, 2), dtype=np.int64)) == []


class _ReadCounting:
    """An (N, D) array-like over `rows` that remembers the most rows any one read asked for."""

    ndim = 2

    def __init__(self, rows: np.ndarray) -> None:
        self.rows, self.shape, self.largest_read = rows, rows.shape, 0

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key):
        part = self.rows[key]
        self.largest_read = max(self.largest_read, len(part))
        return part


def test_kmeans_streams_a_large_collection_and_matches_the_array_result() -> None:
    rows, _ = _planted(per_cluster=500)
    streamed = _ReadCounting(rows)
    result = cluster(streamed, 4, seed=2, train_sample=50, block=128)
    # trained on 50 x 4 sampled rows, assigned 128 rows at a time: never all 2,000 at once
    assert streamed.largest_read == 200
    whole = cluster(rows, 4, seed=2, train_sample=50)
    np.testing.assert_array_equal(result.assignments, whole.assignments)
    np.testing.assert_allclose(result.similarity, whole.similarity, rtol=1e-6)
    # each row goes to its most similar centroid, and its similarity is that inner product
    expected = np.einsum("nd,nd->n", rows, result.centroids[result.assignments])
    np.testing.assert_allclose(result.similarity, expected, rtol=1e-5, atol=1e-6)
    assert (result.similarity >= (rows @ result.centroids.T).max(1) - 1e-6).all()
