"""RandBit feature suppression (Chen, Luo & Li 2021, *Intriguing Properties of Contrastive
Losses*, Sec. 4.1, Fig. 5): k random bits per image, the same in both views, are an easy
feature that tells images apart; the more bits, the less of the images' content SimCLR learns.

Each cell pre-trains SimCLR at one (bits, τ) with the bits appended as constant channels
(`selfsup.data.suppression`), then scores a linear probe on the frozen encoder's features (the
bits appended as in training) against the images' own labels. The paper, on MNIST with a
3-layer conv encoder, Adam, batch 1000 and 10 epochs, reports 89.9 / 70.6 / 33.0 / 14.3 / 9.9%
at 0 / 5 / 10 / 15 / 20 bits and τ = 0.05.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from selfsup.augment.makers import WithBitViews
from selfsup.config import RunConfig
from selfsup.data.suppression import WithBits
from selfsup.experiments.cells import train_and_probe
from selfsup.experiments.plots import line_panels
from selfsup.experiments.study import (
    Study,
    lines_by,
    register_study,
)

PAPER_MNIST_TAU_005 = {0: 89.9, 5: 70.6, 10: 33.0, 15: 14.3, 20: 9.9}
"""The paper's linear accuracy (%) on MNIST at τ = 0.05, by number of bits (Fig. 5)."""

PAPER_LABEL = "paper, MNIST, τ = 0.05"

BITS = (0, 5, 10, 15, 20)
TEMPERATURES = (0.05, 0.1, 0.2)


def run_cell(
    config: RunConfig, values: Mapping[str, Any], folder: Path, resume: bool
) -> dict[str, Any]:
    """Pre-train SimCLR with `values["bits"]` bits per image and probe the content."""
    bits, seed = int(values["bits"]), config.train.seed
    return train_and_probe(
        config,
        folder,
        resume,
        views=lambda views, *_: WithBitViews(views, bits, seed),
        extra_channels=bits,
        preprocess=lambda preprocess: WithBits(preprocess, bits, seed),
    )


def report(rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Linear accuracy against bits, one line per τ (and the paper's MNIST line), and whether
    accuracy falls as bits grow at every τ."""
    lines = lines_by(rows, "method.temperature", "bits", "linear")
    drawn: dict[str, Any] = {f"τ = {temperature:g}": line for temperature, line in lines.items()}
    drawn[PAPER_LABEL] = sorted(PAPER_MNIST_TAU_005.items())
    plot = line_panels(
        {"linear accuracy on the content (%)": drawn},
        out,
        "randbit",
        "RandBit: an easy shared feature suppresses the content",
        "random bits per image",
        dashed={PAPER_LABEL},
        chance=100.0 / 10,
    )
    most = max(row["bits"] for row in rows)
    reproduced = all(line[0][1] - line[-1][1] >= 5.0 for line in lines.values())
    evidence = "; ".join(
        f"τ {temperature:g}: {line[0][1]:.1f}% with no bits, {line[-1][1]:.1f}% with {most}"
        for temperature, line in lines.items()
    )
    return {
        "claim": "adding random bits shared by both views lowers the linear accuracy on the "
        "images' content, towards chance as the bits grow (at least 5 points lost at every τ)",
        "reproduced": reproduced,
        "evidence": evidence,
        "plots": [str(plot)],
    }


register_study(
    Study(
        name="randbit",
        summary="RandBit feature suppression (Intriguing Properties, Fig. 5): linear accuracy "
        "on the content as random bits shared by both views are added, per temperature",
        recipe="randbit-fashion-mnist",
        budgets={
            "small": {},
            "paper": {
                "data.dataset": "mnist",
                "data.train_subset": None,
                "augment.size": None,
                "train.time_budget": None,
                "train.epochs": 10,
                "train.batch_size": 1000,
            },
        },
        axes={
            "small": {"bits": BITS, "method.temperature": TEMPERATURES},
            "paper": {"bits": BITS, "method.temperature": TEMPERATURES},
        },
        run_cell=run_cell,
        report=report,
        columns=("linear", "final_loss", "steps", "train_seconds"),
    )
)
