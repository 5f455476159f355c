"""2-D maps: both projections keep planted clusters apart; bad requests fail clearly."""

from __future__ import annotations

import numpy as np
import pytest

from selfsup.embeddings.maps import project_2d
from selfsup.errors import SelfsupError


def _two_blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], 40)
    centres = np.stack([np.eye(16)[0], np.eye(16)[1]]) * 4
    rows = centres[labels] + 0.3 * rng.standard_normal((80, 16))
    return rows.astype(np.float32), labels


@pytest.mark.parametrize("method", ["umap", "tsne"])
def test_projection_keeps_planted_clusters_apart(method: str) -> None:
    rows, labels = _two_blobs()
    points = project_2d(rows, method, seed=0)
    assert points.shape == (80, 2) and np.isfinite(points).all()
    centre = [points[labels == c].mean(0) for c in (0, 1)]
    spread = max(np.linalg.norm(points[labels == c] - centre[c], axis=1).mean() for c in (0, 1))
    assert np.linalg.norm(centre[0] - centre[1]) > 2 * spread


def test_projection_refuses_what_it_cannot_draw() -> None:
    with pytest.raises(SelfsupError, match="one of umap, tsne"):
        project_2d(np.zeros((10, 2)), "pca")
    with pytest.raises(SelfsupError, match="at least 5"):
        project_2d(np.zeros((3, 2)), "tsne")
