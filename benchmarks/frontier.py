"""Accuracy per training second: kNN and linear-probe accuracy against wall-clock training time.

Each recipe (a name and `selfsup pretrain` flags) trains once per time budget with
`--train.time_budget`, in its own process, then its frozen encoder is scored on Fashion-MNIST's
10k test images by the weighted kNN (k=200, τ=0.1, the 60k training images as bank) and by the
linear probe (L-BFGS logistic regression, λ chosen on a train split). The raw pixels under the
same two protocols are drawn as horizontal lines, and with `--lightly-epochs` lightly's SimCLR
(via compare_lightly.py, kNN only) is drawn on the same axes.

    python benchmarks/frontier.py --budgets 120 300 600 --out frontier     # 2 CPU cores: ~1 h
    python benchmarks/frontier.py --recipe "simclr w32=--method simclr --model.base_width 32"

Writes OUT.json (one row per run, with what was measured) and OUT.png.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from selfsup.config import load_config
from selfsup.eval import extract_features, knn_accuracy, linear_probe, make_preprocess
from selfsup.eval.linear import standardise
from selfsup.eval.suite import pixel_features
from selfsup.models import load_encoder
from selfsup.pipeline import load_split, run_config

DEFAULT_RECIPES = [
    "simclr w16=--method simclr --model.base_width 16",
    "simclr w32=--method simclr --model.base_width 32",
    "byol w16=--method byol --model.base_width 16",
]


def _score(train_features, train_labels, test_features, test_labels) -> dict:
    """kNN and the linear probe on features standardised with train statistics, as
    `selfsup.eval.evaluate` scores every row."""
    bank, queries = standardise(train_features, test_features)
    knn = knn_accuracy(bank, train_labels, queries, test_labels, 10)
    linear = linear_probe(train_features, train_labels, test_features, test_labels, 10)
    return {"knn": round(knn["top1"], 2), "linear": round(linear["top1"], 2)}


def pixel_rows(image_size: int | None) -> dict:
    """The raw pixels under the same protocols."""
    config = load_config(None, {"data.image_size": image_size})
    train_set, test_set = load_split(config, "train"), load_split(config, "test")
    bank, queries = pixel_features(train_set.images), pixel_features(test_set.images)
    return _score(bank, train_set.labels, queries, test_set.labels)


def run_recipe(name: str, flags: str, budget: float, workdir: Path) -> dict:
    """Pre-train one recipe for `budget` seconds in a child process, then score its encoder."""
    run_dir = workdir / f"{name.replace(' ', '-')}-{budget:g}s"
    command = [
        sys.executable, "-m", "selfsup", "pretrain", "--run-dir", str(run_dir),
        *shlex.split(flags), "--train.time_budget", f"{budget:g}s", "--train.epochs", "1000",
        "--train.progress", "false",
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    summary = json.loads((run_dir / "train_summary.json").read_text())
    saved = run_config(load_config(None, {"run_dir": str(run_dir)}))
    encoder, architecture = load_encoder(run_dir)
    train_set, test_set = load_split(saved, "train"), load_split(saved, "test")
    preprocess = make_preprocess(architecture["mean"], architecture["std"])
    start_eval = time.perf_counter()
    train_features = extract_features(encoder, train_set.images, preprocess)
    test_features = extract_features(encoder, test_set.images, preprocess)
    scores = _score(train_features, train_set.labels, test_features, test_set.labels)
    return {
        "recipe": name,
        "flags": flags,
        "budget_s": budget,
        "train_s": round(summary["seconds"], 1),
        "steps": summary["steps"],
        "epochs": round(summary["steps"] * saved.train.batch_size / len(train_set), 2),
        "command_s": round(wall, 1),
        "eval_s": round(time.perf_counter() - start_eval, 1),
        "feature_dim": train_features.shape[1],
        **scores,
    }


def lightly_rows(epochs: list[int]) -> list[dict]:
    """lightly's SimCLR on the same encoder and recipe (compare_lightly.py), kNN only."""
    rows = []
    script = Path(__file__).with_name("compare_lightly.py")
    for count in epochs:
        out = subprocess.run(
            [sys.executable, str(script), "--methods", "simclr", "--libraries", "lightly",
             "--epochs", str(count)],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        line = next(line for line in out.splitlines() if line.startswith("| simclr | lightly"))
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows.append({"recipe": "lightly simclr w16", "epochs": count,
                     "train_s": float(cells[3]), "knn": float(cells[5])})  # fmt: skip
    return rows


def plot(rows: list[dict], pixels: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 5), sharex=True)
    panels = (("knn", "kNN (k=200)"), ("linear", "linear probe"))
    colours, markers = plt.get_cmap("tab20").colors, "osD^v<>Pp*X"
    for axis, (metric, title) in zip(axes, panels, strict=True):
        recipes = dict.fromkeys(row["recipe"] for row in rows if metric in row)
        for index, recipe in enumerate(recipes):
            points = sorted((r["train_s"], r[metric]) for r in rows if r["recipe"] == recipe)
            seconds, scores = zip(*points, strict=True)
            style = {"color": colours[index % 20], "marker": markers[index % len(markers)]}
            axis.plot(seconds, scores, label=recipe, **style)
        axis.axhline(pixels[metric], color="black", linestyle="--", label="raw pixels")
        axis.axhline(pixels[metric] + 3, color="grey", linestyle=":", label="pixels + 3")
        axis.set_xscale("log")
        axis.set_xlabel("training seconds (2 CPU cores)" if not torch.cuda.is_available() else
                        "training seconds")  # fmt: skip
        axis.set_ylabel("Fashion-MNIST test top-1 (%)")
        axis.set_title(title)
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=float, nargs="*", default=[120, 300, 600],
                        help="training seconds per run")  # fmt: skip
    parser.add_argument("--recipe", action="append", default=None,
                        help='"NAME=FLAGS" for selfsup pretrain (repeatable)')  # fmt: skip
    parser.add_argument("--lightly-epochs", type=int, nargs="*", default=[],
                        help="also train lightly's SimCLR for these epoch counts")  # fmt: skip
    parser.add_argument("--include", nargs="*", default=[],
                        help="earlier OUT.json files whose rows join the table")  # fmt: skip
    parser.add_argument("--out", default="frontier", help="writes OUT.json and OUT.png")
    parser.add_argument("--workdir", default=None, help="keep the run directories here")
    args = parser.parse_args()
    recipes = [spec.split("=", 1) for spec in (args.recipe or DEFAULT_RECIPES)]
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="frontier-"))
    out = Path(args.out)
    rows: list[dict] = []
    for earlier in args.include:
        rows += json.loads(Path(earlier).read_text())["rows"]
    pixels = pixel_rows(None)
    print(f"raw pixels: kNN {pixels['knn']:.2f}, linear {pixels['linear']:.2f}", flush=True)
    for name, flags in recipes if args.budgets else []:
        for budget in args.budgets:
            rows.append(run_recipe(name.strip(), flags.strip(), budget, workdir))
            print(json.dumps(rows[-1]), flush=True)
            out.with_suffix(".json").write_text(json.dumps({"pixels": pixels, "rows": rows}))
    rows += lightly_rows(args.lightly_epochs)
    machine = f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"
    document = {"pixels": pixels, "rows": rows, "machine": machine, "torch": torch.__version__}
    out.with_suffix(".json").write_text(json.dumps(document, indent=1))
    plot(rows, pixels, out.with_suffix(".png"))
    print(f"Fashion-MNIST, {machine}, torch {torch.__version__}")
    print("| recipe | budget s | train s | epochs | feature dim | kNN | linear |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| raw pixels | - | - | - | 784 | {pixels['knn']:.2f} | {pixels['linear']:.2f} |")
    for row in rows:
        print(
            f"| {row['recipe']} | {row.get('budget_s', '-')} | {row['train_s']} | "
            f"{row['epochs']} | {row.get('feature_dim', '-')} | {row['knn']:.2f} | "
            f"{row.get('linear', '-')} |"
        )
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
