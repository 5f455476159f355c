"""A 2-D map of embeddings: UMAP (umap-learn) or t-SNE (scikit-learn) of a seeded sample,
coloured by label or cluster, optionally with thumbnails of some of the images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from selfsup.embeddings.grids import save_figure
from selfsup.errors import SelfsupError

PROJECTIONS = ("umap", "tsne")


def project_2d(vectors: np.ndarray, method: str = "umap", seed: int = 0) -> np.ndarray:
    """(N, 2) coordinates of (N, D) embeddings, with cosine distances as the neighbourhoods.

    UMAP [McInnes et al. 2018] keeps more of the global layout and scales to millions; t-SNE
    [van der Maaten & Hinton 2008] is the classic, from scikit-learn, for smaller samples.
    """
    if method not in PROJECTIONS:
        raise SelfsupError(f"map method must be one of {', '.join(PROJECTIONS)}, got {method!r}")
    if len(vectors) < 5:
        raise SelfsupError(f"a 2-D map needs at least 5 embeddings, got {len(vectors)}")
    vectors = np.asarray(vectors, dtype=np.float32)
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise SelfsupError(
                "UMAP needs umap-learn: pip install 'selfsup[map]' (or use --method tsne)"
            ) from None
        reducer = umap.UMAP(
            n_components=2,
            metric="cosine",
            n_neighbors=min(15, len(vectors) - 1),
            random_state=seed,
            n_jobs=1,
        )
        return reducer.fit_transform(vectors).astype(np.float32)
    from sklearn.manifold import TSNE

    perplexity = float(min(30, (len(vectors) - 1) / 3))
    tsne = TSNE(2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed)
    return tsne.fit_transform(vectors).astype(np.float32)


def save_map(
    points: np.ndarray,
    groups: np.ndarray,
    names: Sequence[str],
    output: str | Path,
    title: str = "",
    thumbnails: Sequence[tuple[int, torch.Tensor]] = (),
) -> Path:
    """Scatter `points` coloured by `groups` (index into `names`; -1 grey), with uint8
    (C, H, W) `thumbnails` drawn at the points they belong to."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    figure, axis = plt.subplots(figsize=(8, 8))
    palette = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
    unknown = groups < 0
    if unknown.any():
        axis.scatter(*points[unknown].T, s=3, c="lightgrey", label="unknown")
    for group, name in enumerate(names):
        chosen = groups == group
        if chosen.any():
            colour = palette(group % palette.N)
            axis.scatter(*points[chosen].T, s=3, color=colour, label=name)
    for position, image in thumbnails:
        array = image.permute(1, 2, 0).numpy()
        box = OffsetImage(array[:, :, 0] if array.shape[2] == 1 else array, zoom=1.0, cmap="gray")
        axis.add_artist(AnnotationBbox(box, points[position], frameon=False))
    if 0 < len(names) <= 20:
        axis.legend(markerscale=4, fontsize=7, loc="best")
    axis.set_title(title)
    axis.set_xticks([])
    axis.set_yticks([])
    return save_figure(figure, output)


__all__ = ["PROJECTIONS", "project_2d", "save_map"]
