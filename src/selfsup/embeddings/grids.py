"""PNG grids of images: each query beside its neighbours, each cluster's most central members."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch


def _show(axis, image: torch.Tensor, title: str, colour: str = "black") -> None:
    array = image.permute(1, 2, 0).numpy()
    if array.shape[2] == 1:
        axis.imshow(array[:, :, 0], cmap="gray", vmin=0, vmax=255)
    else:
        axis.imshow(array)
    axis.set_title(title, fontsize=7, color=colour)
    axis.set_xticks([])
    axis.set_yticks([])


def save_rows(
    rows: Sequence[Sequence[tuple[torch.Tensor, str]]],
    output: str | Path,
    row_titles: Sequence[str] | None = None,
    first_column_colour: str = "tab:blue",
) -> Path:
    """One row of uint8 (C, H, W) images per entry, each image with a caption, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = max(len(row) for row in rows)
    figure, axes = plt.subplots(
        len(rows), columns, figsize=(1.1 * columns, 1.25 * len(rows)), squeeze=False
    )
    for r, row in enumerate(rows):
        for c in range(columns):
            axis = axes[r, c]
            if c >= len(row):
                axis.axis("off")
                continue
            image, caption = row[c]
            _show(axis, image, caption, first_column_colour if c == 0 else "black")
        if row_titles is not None:
            axes[r, 0].set_ylabel(row_titles[r], fontsize=7)
    return save_figure(figure, output)


def save_figure(figure, output: str | Path) -> Path:
    """Lay out, write as a 120 dpi PNG (creating the folder), and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=120)
    plt.close(figure)
    return output


def neighbour_grid(
    queries: Sequence[torch.Tensor],
    query_captions: Sequence[str],
    neighbours: Sequence[Sequence[torch.Tensor]],
    scores: np.ndarray,
    output: str | Path,
    neighbour_captions: Sequence[Sequence[str]] | None = None,
) -> Path:
    """Each query (first column) followed by its neighbours captioned with their similarity."""
    rows = []
    for q, (query, images) in enumerate(zip(queries, neighbours, strict=True)):
        row = [(query, query_captions[q])]
        for n, image in enumerate(images):
            caption = f"{scores[q, n]:.3f}"
            if neighbour_captions is not None:
                caption = f"{caption} {neighbour_captions[q][n]}"
            row.append((image, caption))
        rows.append(row)
    return save_rows(rows, output)


__all__ = ["neighbour_grid", "save_figure", "save_rows"]
