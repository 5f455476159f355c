"""SimCLR's ablations (Chen et al. 2020, arXiv:2002.05709) as studies.

- `simclr-head` (Sec. 4.2, Fig. 8): no projection head, a linear one or a non-linear one,
  each probed at the encoder's features h and at the head's output z.
- `simclr-batch-epochs` (Sec. 5.2, Fig. 9): batch size against training epochs.
- `simclr-temperature` (Sec. 5.1, Table 5; Appendix B.9): the NT-Xent temperature at two
  batch sizes.
- `colour-strength` (Sec. 3, Table 1): the colour-distortion strength, for SimCLR and for a
  supervised encoder trained on the same views.

The small budget runs each on a Fashion-MNIST subset in a few minutes on 2 CPU cores
(`ablations-fashion-mnist`); the paper budget is CIFAR-10 with a ResNet-50, as the paper's
Appendix B.9, for GPUs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from statistics import mean
from typing import Any

from selfsup.config import RunConfig
from selfsup.experiments.cells import train_and_probe
from selfsup.experiments.plots import line_panels
from selfsup.experiments.study import Study, lines_by, register_study

RECIPE = "ablations-fashion-mnist"
COLUMNS = ("linear", "final_loss", "steps", "train_seconds")
CIFAR_RESNET50 = {
    "data.dataset": "cifar10",
    "data.train_subset": None,
    "model.encoder": "resnet50",
    "model.base_width": 64,
    "model.head_widths": [2048, 128],
    "augment.size": 32,
    "augment.crop_scale": [0.08, 1.0],
    "augment.jitter_strength": 0.5,
    "optim.weight_decay": 1.0e-6,
}
"""The paper budget's common ground: SimCLR's CIFAR-10 setting (Appendix B.9)."""

HEADS = {"none": [], "linear": [128], "nonlinear": [512, 128]}
"""The projection heads of Fig. 8 (output 128-d; the non-linear one has a 512-d hidden layer)."""


def run_learner(
    config: RunConfig, values: Mapping[str, Any], folder: Path, resume: bool
) -> dict[str, Any]:
    """Pre-train the cell's method (or, for `learner: supervised`, a supervised encoder on the
    same views) and probe its encoder."""
    supervised = values.get("learner") == "supervised"
    return train_and_probe(config, folder, resume, supervised=supervised)


def run_head(
    config: RunConfig, values: Mapping[str, Any], folder: Path, resume: bool
) -> dict[str, Any]:
    """Pre-train with the cell's head and probe both h (`linear`) and z (`linear_z`)."""
    return train_and_probe(config, folder, resume, probe_head=True)


def _means(rows: list[dict[str, Any]], axis: str, measure: str) -> dict[Any, float]:
    """The mean of `measure` over the cells (seeds) that share each value of `axis`."""
    values = dict.fromkeys(row[axis] for row in rows)
    return {
        value: mean(row[measure] for row in rows if row[axis] == value and row[measure] is not None)
        for value in values
    }


def report_head(rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Bars of h and z per head, averaged over seeds; the claim: a non-linear head gives the
    best h, and h beats z."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    at_h, at_z = _means(rows, "head", "linear"), _means(rows, "head", "linear_z")
    heads = [head for head in HEADS if head in at_h]
    figure, axes = plt.subplots(figsize=(5.5, 4))
    positions = range(len(heads))
    axes.bar([p - 0.2 for p in positions], [at_h[h] for h in heads], 0.4, label="h (encoder)")
    axes.bar([p + 0.2 for p in positions], [at_z[h] for h in heads], 0.4, label="z = g(h)")
    axes.set_xticks(list(positions), heads)
    low = min(min(at_h.values()), min(at_z.values()))
    axes.set_ylim(max(0.0, low - 10), None)
    axes.set_ylabel("linear accuracy (%)")
    axes.set_title("SimCLR: projection head, probed at h and at z")
    axes.legend(fontsize=8)
    figure.tight_layout()
    plot = out / "simclr-head.png"
    figure.savefig(plot, dpi=120)
    plt.close(figure)
    seeds = len({row.get("train.seed") for row in rows})
    reproduced = "nonlinear" in at_h and (
        at_h["nonlinear"] > max(value for head, value in at_h.items() if head != "nonlinear")
        and at_h["nonlinear"] > at_z["nonlinear"]
    )
    evidence = "; ".join(f"{h}: h {at_h[h]:.1f}%, z {at_z[h]:.1f}%" for h in heads)
    return {
        "claim": "the encoder's features h are best with a non-linear projection head (better "
        "than a linear head or none), and better than the head's output z",
        "reproduced": reproduced,
        "evidence": f"{evidence} (mean of {seeds} seed(s))",
        "plots": [str(plot)],
    }


def report_batch_epochs(rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Accuracy against epochs per batch size; the claim: with few epochs the biggest batch is
    best, and its lead shrinks as training gets longer."""
    lines = lines_by(rows, "train.batch_size", "train.epochs", "linear")
    plot = line_panels(
        {"linear accuracy (%)": {f"batch {size}": line for size, line in lines.items()}},
        out,
        "simclr-batch-epochs",
        "SimCLR: batch size and training epochs",
        "training epochs",
        log_x=True,
    )
    smallest, largest = lines[min(lines)], lines[max(lines)]
    first_gap = largest[0][1] - smallest[0][1]
    last_gap = largest[-1][1] - smallest[-1][1]
    fewest, most = smallest[0][0], smallest[-1][0]
    return {
        "claim": "with few epochs the largest batch beats the smallest, and the lead shrinks as "
        "training gets longer",
        "reproduced": first_gap > 0 and last_gap < first_gap,
        "evidence": f"batch {max(lines)} minus batch {min(lines)}: {first_gap:+.1f} points at "
        f"{fewest} epochs, {last_gap:+.1f} at {most}",
        "plots": [str(plot)],
    }


def report_temperature(rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Accuracy against τ per batch size; the claim: the best τ below 1 beats τ = 1 clearly (by
    2 points or more) at every batch size."""
    lines = lines_by(rows, "train.batch_size", "method.temperature", "linear")
    plot = line_panels(
        {"linear accuracy (%)": {f"batch {size}": line for size, line in lines.items()}},
        out,
        "simclr-temperature",
        "SimCLR: temperature at two batch sizes",
        "temperature τ",
        log_x=True,
    )
    evidence, margins = [], []
    for size, line in lines.items():
        hottest_tau, hottest = line[-1]
        best_tau, best = max(line[:-1], key=lambda point: point[1])
        margins.append(best - hottest)
        evidence.append(
            f"batch {size}: best τ {best_tau:g} ({best:.1f}%), τ {hottest_tau:g}: {hottest:.1f}%"
        )
    return {
        "claim": "with normalised embeddings the best temperature below 1 beats τ = 1 by 2 "
        "points or more at every batch size",
        "reproduced": all(margin >= 2.0 for margin in margins),
        "evidence": "; ".join(evidence),
        "plots": [str(plot)],
    }


def report_colour(rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Accuracy against colour-distortion strength for SimCLR and the supervised encoder; the
    claim: stronger distortion helps SimCLR and helps supervised learning less (or hurts it)."""
    lines = lines_by(rows, "learner", "augment.jitter_strength", "linear")
    plot = line_panels(
        {"linear accuracy (%)": dict(lines)},
        out,
        "colour-strength",
        "Colour-distortion strength: SimCLR and supervised",
        "colour-jitter strength s",
        dashed={"supervised"},
    )
    gains = {learner: line[-1][1] - line[0][1] for learner, line in lines.items()}
    weakest, strongest = lines["simclr"][0][0], lines["simclr"][-1][0]
    simclr, supervised = gains.get("simclr", 0.0), gains.get("supervised", 0.0)
    return {
        "claim": "going from the weakest to the strongest colour distortion raises SimCLR's "
        "accuracy, and raises the supervised encoder's less (or lowers it)",
        "reproduced": simclr > 0 and simclr > supervised,
        "evidence": "; ".join(
            f"{learner}: {gain:+.1f} points from s {weakest:g} to {strongest:g}"
            for learner, gain in gains.items()
        ),
        "plots": [str(plot)],
    }


register_study(
    Study(
        name="simclr-head",
        summary="SimCLR's projection head (Fig. 8): none, linear or non-linear, each probed at "
        "the encoder's features h and at the head's output z",
        recipe=RECIPE,
        budgets={"small": {}, "paper": {**CIFAR_RESNET50, "train.epochs": 100}},
        axes={
            "small": {"head": tuple(HEADS), "train.seed": (0, 1)},
            "paper": {"head": tuple(HEADS), "train.seed": (0,)},
        },
        run_cell=run_head,
        baselines=True,
        report=report_head,
        columns=("linear", "linear_z", "final_loss", "steps", "train_seconds"),
        settings=lambda values: {"model.head_widths": HEADS[values["head"]]},
    )
)

register_study(
    Study(
        name="simclr-batch-epochs",
        summary="SimCLR's batch size against training epochs (Fig. 9)",
        recipe=RECIPE,
        budgets={"small": {}, "paper": CIFAR_RESNET50},
        axes={
            "small": {"train.batch_size": (64, 256, 1024), "train.epochs": (2, 5, 10, 20)},
            "paper": {
                "train.batch_size": (256, 512, 1024, 2048, 4096),
                "train.epochs": (100, 200, 400, 800),
            },
        },
        run_cell=run_learner,
        baselines=True,
        report=report_batch_epochs,
        columns=COLUMNS,
    )
)

register_study(
    Study(
        name="simclr-temperature",
        summary="SimCLR's NT-Xent temperature at two batch sizes (Table 5, Appendix B.9)",
        recipe=RECIPE,
        budgets={"small": {}, "paper": {**CIFAR_RESNET50, "train.epochs": 100}},
        axes={
            "small": {
                "train.batch_size": (128, 512),
                "method.temperature": (0.05, 0.1, 0.2, 0.5, 1.0),
            },
            "paper": {
                "train.batch_size": (256, 1024, 4096),
                "method.temperature": (0.05, 0.1, 0.2, 0.5, 1.0),
            },
        },
        run_cell=run_learner,
        baselines=True,
        report=report_temperature,
        columns=COLUMNS,
    )
)

register_study(
    Study(
        name="colour-strength",
        summary="colour-distortion strength for SimCLR and for a supervised encoder on the same "
        "views (Table 1)",
        recipe=RECIPE,
        budgets={"small": {}, "paper": {**CIFAR_RESNET50, "train.epochs": 100}},
        axes={
            budget: {
                "learner": ("simclr", "supervised"),
                "augment.jitter_strength": (0.125, 0.25, 0.5, 1.0),
            }
            for budget in ("small", "paper")
        },
        run_cell=run_learner,
        baselines=True,
        report=report_colour,
        columns=COLUMNS,
    )
)
