"""SimCLR's augmentation-composition heat-map (Chen et al. 2020, Sec. 3.1, Fig. 5): which pair of
transformations makes the best views?

Every image is cropped and resized in both branches; one branch then gets the row
transformation followed by the column one (the diagonal: that one alone), the other branch
nothing more (`selfsup.augment.composition`). Each cell is the linear-probe accuracy of a SimCLR
encoder trained on such views. On ImageNet the paper's strongest pair is crop + colour
distortion, and no single transformation is enough.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from selfsup.augment.composition import TRANSFORMS, CompositionViews
from selfsup.config import RunConfig
from selfsup.experiments.cells import train_and_probe
from selfsup.experiments.study import Study, register_study


def run_cell(
    config: RunConfig, values: Mapping[str, Any], folder: Path, resume: bool
) -> dict[str, Any]:
    """Pre-train SimCLR on (row, column) composition views and probe the encoder."""
    augment = config.augment

    def views(_: Any, mean: list[float], std: list[float], side: int) -> CompositionViews:
        size = augment.size or side
        first, second = values["first"], values["second"]
        return CompositionViews(first, second, size, mean, std, augment.crop_scale)

    return train_and_probe(config, folder, resume, views=views)


def report(rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """The heat-map (rows: first transformation, columns: second) with row averages, and
    whether crop + colour is the best pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    firsts = [name for name in TRANSFORMS if any(row["first"] == name for row in rows)]
    seconds = [name for name in TRANSFORMS if any(row["second"] == name for row in rows)]
    grid = np.full((len(firsts), len(seconds)), np.nan)
    for row in rows:
        grid[firsts.index(row["first"]), seconds.index(row["second"])] = row["linear"]
    averages = np.nanmean(grid, axis=1)
    figure, axes = plt.subplots(figsize=(1.1 * len(seconds) + 2.5, 0.8 * len(firsts) + 1.5))
    image = axes.imshow(grid, cmap="viridis")
    for (i, j), value in np.ndenumerate(grid):
        if not np.isnan(value):
            axes.text(j, i, f"{value:.1f}", ha="center", va="center", color="w", fontsize=8)
    axes.set_xticks(range(len(seconds)), seconds, rotation=45, ha="right")
    labels = [f"{name} ({mean:.1f})" for name, mean in zip(firsts, averages, strict=True)]
    axes.set_yticks(range(len(firsts)), labels)
    axes.set_xlabel("second transformation")
    axes.set_ylabel("first transformation (row average)")
    axes.set_title("Linear accuracy (%) by augmentation pair")
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    plot = out / "augment-pairs.png"
    figure.savefig(plot, dpi=120)
    plt.close(figure)
    pairs = [row for row in rows if row["first"] != row["second"]]
    best = max(pairs or rows, key=lambda row: row["linear"])
    singles = [row for row in rows if row["first"] == row["second"]]
    best_single = max(singles, key=lambda row: row["linear"]) if singles else None
    reproduced = {best["first"], best["second"]} == {"crop", "colour"}
    evidence = f"The best pair is {best['first']} + {best['second']} ({best['linear']:.1f}%)"
    crop_colour = [r for r in pairs if {r["first"], r["second"]} == {"crop", "colour"}]
    if crop_colour:
        evidence += "; crop + colour: " + ", ".join(
            f"{r['first']} then {r['second']} {r['linear']:.1f}%" for r in crop_colour
        )
    if best_single:
        single = f"{best_single['first']} ({best_single['linear']:.1f}%)"
        evidence += f"; the best single transformation is {single}"
    return {
        "claim": "of all pairs of transformations, crop + colour distortion gives the best "
        "linear accuracy (SimCLR, Fig. 5, on ImageNet)",
        "reproduced": reproduced,
        "evidence": evidence,
        "plots": [str(plot)],
    }


register_study(
    Study(
        name="augment-pairs",
        summary="SimCLR's augmentation heat-map (Fig. 5): linear accuracy for every ordered "
        "pair of crop, cutout, colour, sobel, noise, blur and rotate on one branch",
        recipe="augment-pairs-fashion-mnist",
        budgets={
            "small": {},
            "paper": {
                "data.train_subset": None,
                "augment.size": None,
                "train.time_budget": None,
                "train.epochs": 100,
                "train.batch_size": 512,
            },
        },
        axes={
            "small": {"first": TRANSFORMS, "second": TRANSFORMS},
            "paper": {"first": TRANSFORMS, "second": TRANSFORMS},
        },
        run_cell=run_cell,
        baselines=True,
        report=report,
        columns=("linear", "final_loss", "steps", "train_seconds"),
    )
)
