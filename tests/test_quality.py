"""Label-free embedding quality against slow float64 references and known extremes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from selfsup.quality import (
    alignment,
    collapse_level,
    effective_rank,
    embedding_quality,
    uniformity,
)


def _unit_rows(array: np.ndarray) -> np.ndarray:
    return array / np.sqrt((array**2).sum(1, keepdims=True))


def test_effective_rank_matches_the_entropy_of_singular_values() -> None:
    embeddings = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    singular = np.linalg.svd(embeddings.double().numpy(), compute_uv=False)
    p = singular / singular.sum() + 1e-7
    expected = math.exp(-sum(value * math.log(value) for value in p))
    assert effective_rank(embeddings) == pytest.approx(expected, rel=1e-9)


def test_effective_rank_counts_equal_directions_and_sees_collapse() -> None:
    basis = torch.eye(6)[:3] * 5  # three orthogonal directions of equal length
    assert effective_rank(basis.repeat(4, 1)) == pytest.approx(3.0, rel=1e-5)
    collapsed = torch.ones(100, 32) + 1e-9 * torch.randn(100, 32)
    assert effective_rank(collapsed) < 1.01


def test_alignment_and_uniformity_match_pairwise_loops() -> None:
    generator = torch.Generator().manual_seed(1)
    a, b = torch.randn(12, 5, generator=generator), torch.randn(12, 5, generator=generator)
    ua, ub = _unit_rows(a.double().numpy()), _unit_rows(b.double().numpy())
    expected_alignment = np.mean([((ua[i] - ub[i]) ** 2).sum() for i in range(12)])
    pair_terms = [
        math.exp(-2 * ((ua[i] - ua[j]) ** 2).sum()) for i in range(12) for j in range(i + 1, 12)
    ]
    expected_uniformity = math.log(sum(pair_terms) / len(pair_terms))
    assert alignment(a, b) == pytest.approx(expected_alignment, rel=1e-9)
    assert uniformity(a) == pytest.approx(expected_uniformity, rel=1e-9)
    assert alignment(a, 3 * a) == pytest.approx(0.0, abs=1e-12)  # scale does not matter


def test_collapse_level_is_one_when_spread_and_zero_when_collapsed() -> None:
    spread = torch.randn(4000, 16, generator=torch.Generator().manual_seed(2))
    assert collapse_level(spread) == pytest.approx(1.0, abs=0.05)
    assert collapse_level(torch.ones(64, 16)) == pytest.approx(0.0, abs=1e-9)
    report = embedding_quality(spread[:200], spread[:200] + 0.01)
    assert set(report) == {"effective_rank", "uniformity", "collapse_level", "alignment"}
    assert report["alignment"] < 1e-3


def test_quality_rejects_what_it_cannot_measure() -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        effective_rank(torch.randn(1, 4))
    with pytest.raises(ValueError, match="differ"):
        alignment(torch.randn(3, 4), torch.randn(3, 5))
