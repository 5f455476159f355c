"""The other methods' ablations as studies.

- `byol-vs-simclr-batch` (BYOL, Grill et al. 2020, Fig. 3a): SimCLR needs its negatives from
  the batch, BYOL has none, so BYOL should lose less as the batch shrinks.
- `barlow-projector` (Barlow Twins, Zbontar et al. 2021, Fig. 4 and Table 5): accuracy keeps
  rising with the projector's width, and the batch size matters little.
- `moco-momentum` (MoCo, He et al. 2020, Sec. 4.1): the key encoder's momentum; the paper
  reports 55.2 / 57.8 / 59.0% at m = 0.9 / 0.99 / 0.999 and no convergence at m = 0.

Each starts from its method's bundled recipe made small (a 10,000-image subset, a
base-width-8 ResNet-18 on 14 px views, a few epochs); the paper budget is CIFAR-10 with a
ResNet-50, for GPUs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from selfsup.experiments.plots import line_panels
from selfsup.experiments.simclr_ablations import CIFAR_RESNET50, COLUMNS, RECIPE, run_learner
from selfsup.experiments.study import Study, lines_by, register_study

SMALL = {
    "data.train_subset": 10_000,
    "model.base_width": 8,
    "augment.size": 14,
    "train.epochs": 10,
}
"""A bundled recipe made small enough for a few minutes a cell on 2 CPU cores."""

PAPER_MOCO = {0.9: 55.2, 0.99: 57.8, 0.999: 59.0}
"""MoCo's ImageNet linear accuracy (%) by momentum (Sec. 4.1; m = 0 did not converge)."""


def byol_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """BYOL's cells take the bundled recipe's target momentum (0.99, for short runs)."""
    return {"method.momentum": 0.99} if values["method.name"] == "byol" else {}


def projector_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """A `projector` of width w is Barlow Twins' 3-layer head w-w-w."""
    width = int(values["projector"])
    return {"model.head_widths": [width, width, width]}


def report_byol_simclr(rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Accuracy against batch size per method; the claim: BYOL loses fewer points than SimCLR
    from the largest batch to the smallest."""
    lines = lines_by(rows, "method.name", "train.batch_size", "linear")
    plot = line_panels(
        {"linear accuracy (%)": dict(lines)},
        out,
        "byol-vs-simclr-batch",
        "BYOL and SimCLR as the batch shrinks",
        "batch size",
        log_x=True,
    )
    drops = {method: line[-1][1] - line[0][1] for method, line in lines.items()}
    smallest, largest = lines["simclr"][0][0], lines["simclr"][-1][0]
    return {
        "claim": "from the largest batch to the smallest, BYOL loses fewer points than SimCLR",
        "reproduced": drops["byol"] < drops["simclr"],
        "evidence": "; ".join(
            f"{method}: {line[-1][1]:.1f}% at batch {largest}, {line[0][1]:.1f}% at {smallest} "
            f"({-drops[method]:+.1f})"
            for method, line in lines.items()
        ),
        "plots": [str(plot)],
    }


def report_projector(rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Accuracy against projector width (at the study's main batch size) and against batch
    size (at the width that was run at several); the claim: accuracy rises with the width."""
    by_batch = lines_by(rows, "train.batch_size", "projector", "linear")
    by_width = lines_by(rows, "projector", "train.batch_size", "linear")
    widths = {size: line for size, line in by_batch.items() if len(line) > 1}
    batches = {width: line for width, line in by_width.items() if len(line) > 1}
    plot = line_panels(
        {
            "linear accuracy (%), by projector width": {
                f"batch {size}": line for size, line in widths.items()
            },
            "linear accuracy (%), by batch size": {
                f"projector {width}": [(size, accuracy) for size, accuracy in line]
                for width, line in batches.items()
            },
        },
        out,
        "barlow-projector",
        "Barlow Twins: projector width and batch size",
        ("projector width", "batch size"),
        log_x=True,
    )
    evidence, rises = [], []
    for size, line in widths.items():
        rises.append(line[-1][1] - line[0][1])
        evidence.append(
            f"batch {size}: " + ", ".join(f"width {width} {acc:.1f}%" for width, acc in line)
        )
    for width, line in batches.items():
        evidence.append(
            f"width {width}: " + ", ".join(f"batch {size} {acc:.1f}%" for size, acc in line)
        )
    return {
        "claim": "linear accuracy rises with the projector's width (widest against narrowest)",
        "reproduced": bool(rises) and all(rise > 0 for rise in rises),
        "evidence": "; ".join(evidence),
        "plots": [str(plot)],
    }


def report_moco(rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Accuracy against momentum, with the paper's line; the claim: a large momentum (0.99 or
    0.999) beats none by 2 points or more."""
    line = sorted((row["method.momentum"], row["linear"]) for row in rows)
    paper = sorted((1 - m, accuracy) for m, accuracy in PAPER_MOCO.items())
    plot = line_panels(  # against 1 − m on a log axis: 0.9, 0.99 and 0.999 spread out
        {"linear accuracy (%)": {"here": [(1 - m, a) for m, a in line], "paper, ImageNet": paper}},
        out,
        "moco-momentum",
        "MoCo: the key encoder's momentum",
        "1 − m (m = 0 at the right)",
        log_x=True,
        dashed={"paper, ImageNet"},
    )
    accuracy = dict(line)
    large = max(accuracy.get(0.99, float("-inf")), accuracy.get(0.999, float("-inf")))
    none = accuracy.get(0.0, float("nan"))
    return {
        "claim": "a large key-encoder momentum (0.99 or 0.999) beats m = 0 by 2 points or more",
        "reproduced": large - none >= 2.0,
        "evidence": ", ".join(f"m {m:g}: {acc:.1f}%" for m, acc in line),
        "plots": [str(plot)],
    }


register_study(
    Study(
        name="byol-vs-simclr-batch",
        summary="BYOL against SimCLR as the batch shrinks (BYOL Fig. 3a)",
        recipe=RECIPE,
        budgets={"small": {}, "paper": {**CIFAR_RESNET50, "train.epochs": 300}},
        axes={
            "small": {"method.name": ("simclr", "byol"), "train.batch_size": (32, 64, 128, 256)},
            "paper": {
                "method.name": ("simclr", "byol"),
                "train.batch_size": (256, 512, 1024, 2048, 4096),
            },
        },
        run_cell=run_learner,
        baselines=True,
        report=report_byol_simclr,
        columns=COLUMNS,
        settings=byol_settings,
    )
)

register_study(
    Study(
        name="barlow-projector",
        summary="Barlow Twins' projector width (up to 8192) and batch size (Barlow Fig. 4, "
        "Table 5)",
        recipe="barlow-twins-fashion-mnist",
        budgets={
            "small": {**SMALL, "train.epochs": 4},
            "paper": {**CIFAR_RESNET50, "optim.lr": 0.2, "train.epochs": 300},
        },
        axes={
            "small": (
                {"projector": (128, 512, 2048, 8192), "train.batch_size": (256,)},
                {"projector": (2048,), "train.batch_size": (64, 1024)},
            ),
            "paper": (
                {"projector": (512, 2048, 8192, 16384), "train.batch_size": (1024,)},
                {"projector": (8192,), "train.batch_size": (256, 512, 2048)},
            ),
        },
        run_cell=run_learner,
        baselines=True,
        report=report_projector,
        columns=COLUMNS,
        settings=projector_settings,
    )
)

register_study(
    Study(
        name="moco-momentum",
        summary="MoCo v2's key-encoder momentum (MoCo Sec. 4.1)",
        recipe="moco-v2-fashion-mnist",
        budgets={"small": SMALL, "paper": {**CIFAR_RESNET50, "train.epochs": 200}},
        axes={
            budget: {"method.momentum": (0.0, 0.9, 0.99, 0.999)} for budget in ("small", "paper")
        },
        run_cell=run_learner,
        baselines=True,
        report=report_moco,
        columns=COLUMNS,
    )
)
