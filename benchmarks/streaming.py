"""Streamed data against in-memory data: training and embedding throughput on the same images.

Writes `--images` Fashion-MNIST training images as PNGs in class folders (a real folder of
files), packs them into tar shards with `selfsup shards`, then runs each configuration in its
own process, one after another:

- `selfsup pretrain` for `--epochs` epochs at `--image-size` px, from memory (`folder`), from
  the files (`folder --data.stream true`) and from the shards, with `--train.workers W`;
- `selfsup embed` of the same images from the files and from the shards, in memory for
  reference.

Training throughput is the loop's own (train_summary.json: images per second over the run);
embedding throughput is rows / wall seconds of the command, start-up included.

    python benchmarks/streaming.py --images 2000 --epochs 2 --workers 1 2
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from selfsup.config import load_config
from selfsup.pipeline import load_split

IN_MEMORY_EMBED = """
import sys
from selfsup.data import load_dataset
from selfsup.embeddings import embed
from selfsup.eval import make_preprocess
from selfsup.models import load_encoder
run_dir, folder, size, out = sys.argv[1:]
encoder, architecture = load_encoder(run_dir)
images = load_dataset("folder", "train", folder, image_size=int(size))
embed(encoder, images, out, make_preprocess(architecture["mean"], architecture["std"]))
"""
"""The in-memory reference: the folder decoded into one tensor, then embedded from it."""


def write_folder(root: Path, count: int, seed: int = 0) -> Path:
    config = load_config(None, {})
    train = load_split(config, "train")
    chosen = np.sort(np.random.default_rng(seed).choice(len(train), count, replace=False))
    for number, index in enumerate(chosen):
        label = int(train.labels[index])
        folder = root / f"{label}-{train.classes[label].replace('/', '-')}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(train.images[index, 0].numpy()).save(folder / f"{number:06d}.png")
    return root


def run(command: list[str]) -> float:
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="images in the folder")
    parser.add_argument("--image-size", type=int, default=32, help="decode and train at this side")
    parser.add_argument("--epochs", type=int, default=2, help="pre-training epochs per run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="loader processes")
    parser.add_argument("--batch-size", type=int, default=128, help="pre-training batch size")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        folder = write_folder(scratch / "photos", args.images)
        shards = scratch / "shards"
        run([sys.executable, "-m", "selfsup", "shards", str(folder), str(shards)])
        common = [
            "--data.image_size", str(args.image_size), "--train.epochs", str(args.epochs),
            "--train.batch_size", str(args.batch_size), "--train.progress", "false",
            "--train.device", "cpu", "--train.time_budget", "null",
            "--augment.size", str(args.image_size),
        ]  # fmt: skip
        sources = {
            "in memory (folder)": ["--data.dataset", "folder", "--data.data_dir", str(folder)],
            "files (folder, streamed)": [
                "--data.dataset", "folder", "--data.data_dir", str(folder), "--data.stream", "true",
            ],
            "tar shards": ["--data.dataset", "shards", "--data.data_dir", str(shards)],
        }  # fmt: skip
        first_run = None
        for name, flags in sources.items():
            for workers in [0] if name.startswith("in memory") else args.workers:
                run_dir = scratch / f"run-{len(rows)}"
                command = [
                    sys.executable, "-m", "selfsup", "pretrain", "--run-dir", str(run_dir),
                    *flags, *common, "--train.workers", str(workers),
                ]  # fmt: skip
                wall = run(command)
                summary = json.loads((run_dir / "train_summary.json").read_text())
                row = {
                    "what": "train",
                    "source": name,
                    "workers": workers,
                    "img_per_s": round(summary["images_per_second"], 1),
                    "wall_s": round(wall, 1),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
                first_run = first_run or run_dir
        for name, flags in sources.items():
            for workers in [0] if name.startswith("in memory") else args.workers[-1:]:
                out = scratch / f"emb-{len(rows)}"
                if name.startswith("in memory"):
                    command = [sys.executable, "-c", IN_MEMORY_EMBED, str(first_run), str(folder),
                               str(args.image_size), str(out)]  # fmt: skip
                else:
                    command = [
                        sys.executable, "-m", "selfsup", "embed", "--run-dir", str(first_run),
                        *flags, "--data.image_size", str(args.image_size), "--split", "train",
                        "--train.workers", str(workers), "--train.device", "cpu",
                        "--out", str(out),
                    ]  # fmt: skip
                wall = run(command)
                row = {
                    "what": "embed",
                    "source": name,
                    "workers": workers,
                    "img_per_s": round(args.images / wall, 1),
                    "wall_s": round(wall, 1),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(
        f"\n{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.images} images at {args.image_size} px, {torch.get_num_threads()} threads\n"
    )
    print("| what | source | workers | img/s | wall s |\n|---|---|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['what']} | {row['source']} | {row['workers']} | {row['img_per_s']} | "
            f"{row['wall_s']} |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
