"""Sweep recipe settings at a fixed budget and print the kNN top-1 each reaches.

Each setting is a space-separated list of `section.field=value` overrides on top of a recipe;
every setting pre-trains from the same seed and is scored by the same weighted kNN (k=200,
τ=0.1) on the dataset's test split.

    python benchmarks/knn_sweep.py --epochs 1 "method.temperature=0.5" "method.temperature=0.2"
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
import yaml

from selfsup import pipeline
from selfsup.config import load_config, recipe_path
from selfsup.eval import extract_features, knn_accuracy, make_preprocess
from selfsup.models import build_encoder, load_encoder


def run_setting(recipe: str, epochs: int, setting: str, train_subset: int | None) -> dict:
    """Pre-train one setting into a temporary run directory and score it."""
    overrides = {
        key: yaml.safe_load(value) for key, value in (p.split("=", 1) for p in setting.split())
    }
    with tempfile.TemporaryDirectory() as run_dir:
        config = load_config(
            recipe_path(recipe),
            {"run_dir": run_dir, "train.epochs": epochs, "train.progress": False,
             "data.train_subset": train_subset, **overrides},
        )  # fmt: skip
        started = time.perf_counter()
        if epochs > 0:
            pipeline.pretrain(config)
            encoder, architecture = load_encoder(run_dir)
        else:
            train_set = pipeline.load_split(config, "train")
            architecture = pipeline.encoder_architecture(config, train_set)
            torch.manual_seed(config.train.seed)
            encoder = build_encoder(architecture["name"], **architecture["kwargs"])
        seconds = time.perf_counter() - started
        train_set, test_set = (
            pipeline.load_split(config, "train"),
            pipeline.load_split(config, "test"),
        )
        preprocess = make_preprocess(architecture["mean"], architecture["std"])
        train_features = extract_features(encoder, train_set.images, preprocess)
        test_features = extract_features(encoder, test_set.images, preprocess)
        knn = knn_accuracy(
            train_features, train_set.labels, test_features, test_set.labels, train_set.num_classes
        )
    return {"setting": setting or "(recipe)", "train_s": seconds, "knn_top1": knn["top1"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="*", default=[""], help='e.g. "method.temperature=0.2"')
    parser.add_argument("--recipe", default="simclr-fashion-mnist")
    parser.add_argument("--epochs", type=int, default=1, help="0 scores the random-init encoder")
    parser.add_argument("--train-subset", type=int, default=None)
    args = parser.parse_args()
    print(f"recipe {args.recipe}, {args.epochs} epoch(s), torch {torch.__version__}")
    print("| setting | train s | kNN top-1 |\n|---|---:|---:|")
    for setting in args.settings:
        row = run_setting(args.recipe, args.epochs, setting, args.train_subset)
        print(f"| {row['setting']} | {row['train_s']:.0f} | {row['knn_top1']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
