"""faiss search: exact index = brute force, approximate kinds reach their recall target,
persistence round-trips, and bad queries fail with one clear line."""

from __future__ import annotations

import numpy as np
import pytest

from selfsup.embeddings import SearchIndex, build_index, exact_neighbours
from selfsup.embeddings.build import projection
from selfsup.embeddings.exact import recall_at_k
from selfsup.embeddings.index import choose_spec
from selfsup.errors import SelfsupError


def _unit_rows(count: int, dim: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _clustered(count: int, dim: int, seed: int = 0) -> np.ndarray:
    """Unit rows around 50 centres: neighbourhoods as real embeddings have them."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, dim))
    rows = centres[rng.integers(0, 50, count)] + 0.5 * rng.standard_normal((count, dim))
    rows = rows.astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_exact_index_matches_brute_force_and_maps_ids() -> None:
    vectors, queries = _unit_rows(500, 16), _unit_rows(7, 16, seed=1)
    ids = np.arange(1000, 1500)
    index = build_index(vectors, ids)
    scores, found = index.search(queries, 5)
    brute = queries.astype(np.float64) @ vectors.astype(np.float64).T
    expected = np.argsort(-brute, axis=1)[:, :5]
    assert index.spec.kind == "flat"
    np.testing.assert_array_equal(found, ids[expected])
    np.testing.assert_allclose(scores, np.take_along_axis(brute, expected, 1), atol=1e-5)


def test_exact_neighbours_streams_chunks_to_the_same_answer() -> None:
    vectors, queries = _unit_rows(300, 8), _unit_rows(5, 8, seed=2)
    whole = exact_neighbours(vectors, queries, 4)
    np.testing.assert_array_equal(exact_neighbours(vectors, queries, 4, block=7), whole)


@pytest.mark.parametrize("kind", ["ivfpq", "hnsw"])
def test_approximate_kinds_tune_their_search_to_the_recall_target(kind: str) -> None:
    vectors = _clustered(12_000, 32)
    index = build_index(vectors, kind=kind, recall_target=0.9, queries=100)
    assert index.spec.kind == kind and index.spec.recall is not None
    assert index.spec.recall >= 0.9
    # measured again on fresh queries near the data, against brute force
    noise = np.random.default_rng(5).standard_normal((50, 32)).astype(np.float32)
    queries = vectors[-50:] + 0.2 * noise
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    truth = exact_neighbours(vectors, queries, 10)
    assert recall_at_k(index.search(queries, 10)[1], truth) >= 0.8


def test_auto_picks_exact_up_to_a_million_then_ivfpq() -> None:
    assert choose_spec(1_000_000, 512).kind == "flat"
    spec = choose_spec(10_000_000, 2048)
    assert spec.kind == "ivfpq" and spec.nlist == 4096  # about sqrt(N) lists
    assert spec.reduce_dim == spec.pq_m == 256  # 128 bytes of 4-bit codes per vector
    assert choose_spec(2_000_000, 33).reduce_dim == 32  # fast-scan wants an even width
    assert choose_spec(1000, 16, kind="ivfpq").nlist == 1000 // 39  # enough rows per list


def test_projection_keeps_inner_products_of_rows_in_its_span() -> None:
    rng = np.random.default_rng(3)
    rows = (rng.standard_normal((400, 6)) @ rng.standard_normal((6, 40))).astype(np.float32)
    matrix = projection(rows, 8, seed=1)
    assert matrix.shape == (8, 40)
    np.testing.assert_allclose(matrix @ matrix.T, np.eye(8), atol=1e-5)  # orthonormal rows
    projected = rows @ matrix.T
    np.testing.assert_allclose(projected @ projected.T, rows @ rows.T, rtol=1e-3, atol=1e-2)


def test_ivfpq_on_wide_rows_projects_then_reranks_to_the_target(tmp_path) -> None:
    vectors = _clustered(8000, 320)  # wider than REDUCE_DIM, so the projection is used
    ids = np.random.default_rng(0).permutation(8000) + 10  # unsorted, offset ids
    index = build_index(vectors, ids, kind="ivfpq", recall_target=0.9, queries=100)
    assert index.spec.reduce_dim == 256 and index.spec.recall >= 0.9
    queries = vectors[:40]
    truth = ids[exact_neighbours(vectors, queries, 10)]
    scores, found = index.search(queries, 10)
    assert recall_at_k(found, truth) >= 0.8
    assert (found[:, 0] == ids[:40]).mean() >= 0.95  # a row finds itself first
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)  # re-ranked: exact similarities
    index.save(tmp_path)
    order = np.argsort(ids)
    loaded = SearchIndex.load(
        tmp_path, rows=lambda wanted: vectors[order[np.searchsorted(ids[order], wanted)]]
    )
    assert loaded.spec == index.spec
    np.testing.assert_array_equal(loaded.search(queries, 10)[1], found)


def test_saved_index_loads_back_and_a_corrupt_one_is_refused(tmp_path) -> None:
    vectors = _unit_rows(200, 8)
    index = build_index(vectors, np.arange(200) * 2, kind="hnsw", recall_target=0.5)
    index.save(tmp_path)
    loaded = SearchIndex.load(tmp_path, rows=lambda ids: vectors[ids // 2])
    queries = vectors[:3]
    np.testing.assert_array_equal(loaded.search(queries, 3)[1], index.search(queries, 3)[1])
    (tmp_path / "index.faiss").write_bytes(b"not an index")
    with pytest.raises(SelfsupError, match="corrupt"):
        SearchIndex.load(tmp_path)


def test_bad_queries_fail_clearly() -> None:
    index = build_index(_unit_rows(20, 8))
    with pytest.raises(SelfsupError, match="dimensions"):
        index.search(_unit_rows(1, 9), 3)
    with pytest.raises(SelfsupError, match="k must be between 1 and the 20"):
        index.search(_unit_rows(1, 8), 21)


def test_recall_can_be_tuned_on_queries_from_outside_the_index() -> None:
    vectors = _clustered(6000, 32)
    noise = np.random.default_rng(9).standard_normal((80, 32)).astype(np.float32)
    outside = vectors[:80] + 0.3 * noise
    outside /= np.linalg.norm(outside, axis=1, keepdims=True)
    index = build_index(vectors, kind="ivfpq", recall_target=0.95, queries=outside[:40])
    assert index.spec.tuned_on == "40 given queries" and index.spec.recall >= 0.95
    truth = exact_neighbours(vectors, outside[40:], 10)
    assert recall_at_k(index.search(outside[40:], 10)[1], truth) >= 0.85
