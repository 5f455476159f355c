"""The studies' figures: panels of lines (a measure against an axis, one line per setting)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

Line = Sequence[tuple[Any, float]]


def line_panels(
    panels: Mapping[str, Mapping[str, Line]],
    out: Path,
    name: str,
    title: str,
    xlabel: str | Sequence[str],
    log_x: bool = False,
    dashed: Collection[str] = (),
    chance: float | None = None,
) -> Path:
    """Draw one panel per y-label, each with its labelled lines of (x, y) points, into
    `out/NAME.png`.

    Args:
        panels: y-label -> {line label: points}.
        out: the study's folder.
        name: the PNG's stem.
        title: the figure's title.
        xlabel: the x-axis label, shared or one per panel.
        log_x: a logarithmic x axis (batch sizes, pool sizes, temperatures).
        dashed: labels of reference lines (a paper's, a supervised one), drawn dashed in black.
        chance: draw chance accuracy as a dotted horizontal line.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = len(panels)
    figure, axes = plt.subplots(1, count, figsize=(5 * count, 4), squeeze=False)
    xlabels = [xlabel] * count if isinstance(xlabel, str) else list(xlabel)
    for panel, label_x, (ylabel, lines) in zip(axes[0], xlabels, panels.items(), strict=True):
        for label, points in lines.items():
            style = {"color": "black", "ls": "--", "alpha": 0.6} if label in dashed else {}
            panel.plot(*zip(*points, strict=True), marker="o", label=label, **style)
        if chance is not None:
            panel.axhline(chance, color="grey", lw=0.8, ls=":", label="chance")
        panel.set_xlabel(label_x)
        panel.set_ylabel(ylabel)
        if log_x:
            panel.set_xscale("log")
        panel.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    plot = out / f"{name}.png"
    figure.savefig(plot, dpi=120)
    plt.close(figure)
    return plot


__all__ = ["line_panels"]
