"""Feature suppression between two features of one image (Chen, Luo & Li 2021, *Intriguing
Properties of Contrastive Losses*, Sec. 4.2): when one feature is easy, the contrastive loss
learns it and little of the other.

- `multidigits`: a canvas with a digit of fixed side and one of a side that grows; the larger
  the second digit, the less a linear probe reads of the first.
- `digits-on-images`: one of a pool of n digit images tiled over every image; as n grows, the
  digit gets easier to tell images apart by and the image's own class is learnt less.

Each cell pre-trains SimCLR at one setting and τ and scores a linear probe for each feature;
digits-on-images adds a supervised encoder per pool size, trained on the image's class.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from selfsup.config import RunConfig
from selfsup.data import ImageDataset
from selfsup.data.suppression import digit_images, digits_on_images, multi_digits
from selfsup.experiments.cells import train_and_probe
from selfsup.experiments.plots import line_panels
from selfsup.experiments.study import (
    Study,
    lines_by,
    register_study,
)
from selfsup.pipeline import load_split

TEMPERATURES = (0.05, 0.1, 0.2)
UNIQUE_DIGITS = (1, 10, 100, 1000)


def run_multidigits(
    config: RunConfig, values: Mapping[str, Any], folder: Path, resume: bool
) -> dict[str, Any]:
    """Canvases with a small digit and one of side `values["large_side"]`; probe both."""
    canvas, small, large = (int(values[key]) for key in ("canvas", "small_side", "large_side"))
    seed = config.train.seed
    made = {}
    for split, count in (("train", values["train_images"]), ("test", values["test_images"])):
        digits = digit_images(split, config.data.data_dir)
        made[split] = multi_digits(digits, int(count), canvas, small, (large, large), seed)
        seed += 1  # another draw for the test canvases
    train_set, test_set = (
        ImageDataset(made[split].images, made[split].small_labels, [], f"multidigits-{split}")
        for split in ("train", "test")
    )
    targets = {
        "small": (made["train"].small_labels, made["test"].small_labels),
        "large": (made["train"].large_labels, made["test"].large_labels),
    }
    return train_and_probe(config, folder, resume, datasets=(train_set, test_set), targets=targets)


def run_digits_on_images(
    config: RunConfig, values: Mapping[str, Any], folder: Path, resume: bool
) -> dict[str, Any]:
    """The config's images with one of `values["unique"]` digits tiled over each; probe the
    image's class and the digit's. A `learner: supervised` cell trains the encoder on the
    image's class instead (the paper's supervised line)."""
    unique, seed = int(values["unique"]), config.train.seed
    digits = digit_images("train", None)
    train_set, train_digits = digits_on_images(load_split(config, "train"), digits, unique, seed)
    test_set, test_digits = digits_on_images(load_split(config, "test"), digits, unique, seed)
    targets = {
        "image": (train_set.labels, test_set.labels),
        "digit": (train_digits, test_digits),
    }
    supervised = values.get("learner") == "supervised"
    return train_and_probe(
        config,
        folder,
        resume,
        datasets=(train_set, test_set),
        targets=targets,
        supervised=supervised,
    )


def _lines(
    rows: list[dict[str, Any]],
    axis: str,
    measures: Mapping[str, str],
    out: Path,
    name: str,
    title: str,
) -> Path:
    panels = {}
    for measure, label in measures.items():
        lines = {
            f"τ = {temperature:g}": line
            for temperature, line in lines_by(rows, "method.temperature", axis, measure).items()
        }
        lines.update(lines_by(rows, "learner", axis, measure))
        panels[f"linear accuracy on {label} (%)"] = lines
    xlabel = axis.replace("_", " ")
    return line_panels(
        panels, out, name, title, xlabel, log_x=axis == "unique", dashed={"supervised"}
    )


def _finding(
    rows: list[dict[str, Any]],
    out: Path,
    axis: str,
    measures: Mapping[str, str],
    name: str,
    title: str,
    claim: str,
) -> dict[str, Any]:
    """Plot both probes against `axis` and judge the first measure's fall (5 points or more
    at every τ)."""
    plot = _lines(rows, axis, measures, out, name, title)
    suppressed, label = next(iter(measures.items()))
    lines = lines_by(rows, "method.temperature", axis, suppressed)
    drops = {temperature: line[0][1] - line[-1][1] for temperature, line in lines.items()}
    evidence = [f"τ {t:g}: {label} {d:.1f} points lower" for t, d in drops.items()]
    for learner, line in lines_by(rows, "learner", axis, suppressed).items():
        evidence.append(f"{learner}: {label} {line[0][1]:.1f}% → {line[-1][1]:.1f}%")
    return {
        "claim": f"{claim} (at least 5 points at every τ)",
        "reproduced": all(drop >= 5.0 for drop in drops.values()),
        "evidence": "; ".join(evidence),
        "plots": [str(plot)],
    }


def report_multidigits(rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    return _finding(
        rows,
        out,
        "large_side",
        {"linear_small": "the small digit", "linear_large": "the large digit"},
        "multidigits",
        "MultiDigits: a growing digit suppresses the fixed small one",
        "as the second digit grows, the linear accuracy on the fixed-size digit falls",
    )


def report_digits_on_images(rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    return _finding(
        rows,
        out,
        "unique",
        {"linear_image": "the image's class", "linear_digit": "the digit"},
        "digits-on-images",
        "Digits on images: more unique digits suppress the image's own class",
        "as the pool of unique digits grows, the linear accuracy on the image's own class falls",
    )


_COLUMNS = ("final_loss", "steps", "train_seconds")

register_study(
    Study(
        name="multidigits",
        summary="MultiDigits (Intriguing Properties, Sec. 4.2): linear accuracy on a fixed-size "
        "digit and on a second digit as the second one grows, per temperature",
        recipe="suppression-fashion-mnist",
        budgets={
            "small": {"augment.size": 28},
            "paper": {"augment.size": None, "train.time_budget": None, "train.epochs": 100},
        },
        axes={
            "small": {
                "large_side": (10, 20, 30, 40),
                "method.temperature": TEMPERATURES,
                "canvas": (56,),
                "small_side": (10,),
                "train_images": (10_000,),
                "test_images": (2_000,),
            },
            "paper": {
                "large_side": (20, 40, 60, 80),
                "method.temperature": TEMPERATURES,
                "canvas": (112,),
                "small_side": (20,),
                "train_images": (60_000,),
                "test_images": (10_000,),
            },
        },
        run_cell=run_multidigits,
        report=report_multidigits,
        columns=("linear_small", "linear_large", *_COLUMNS),
    )
)

register_study(
    Study(
        name="digits-on-images",
        summary="digits on images (Intriguing Properties, Sec. 4.2): linear accuracy on the "
        "image's class and on a tiled digit as the pool of unique digits grows, per temperature, "
        "with a supervised line",
        recipe="suppression-fashion-mnist",
        budgets={
            "small": {},
            "paper": {"data.train_subset": None, "train.time_budget": None, "train.epochs": 100},
        },
        axes={
            budget: (
                {"unique": UNIQUE_DIGITS, "method.temperature": TEMPERATURES},
                {"unique": UNIQUE_DIGITS, "learner": ("supervised",)},
            )
            for budget in ("small", "paper")
        },
        run_cell=run_digits_on_images,
        report=report_digits_on_images,
        columns=("linear_image", "linear_digit", *_COLUMNS),
    )
)
