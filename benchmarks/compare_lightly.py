"""SimCLR side by side: selfsup vs lightly on the identical network, data, budget and recipe.

Each library trains in its own subprocess (so peak memory is its own), then both encoders are
scored by the same weighted kNN (k=200, τ=0.1) on the 10k Fashion-MNIST test images. lightly runs
its recommended pipeline: `SimCLRTransform` on PIL images in DataLoader workers, its projection
head, `NTXentLoss` and `LARS`. The encoder (CIFAR-stem ResNet-18 at `--base-width`), optimiser
settings, learning-rate schedule and augmentation strengths are the same for both.

    pip install -e ".[bench]"
    python benchmarks/compare_lightly.py --epochs 2            # 2 CPU cores: ~25 minutes
    python benchmarks/compare_lightly.py --epochs 20 --base-width 64 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import torch

from selfsup.augment import dataset_stats
from selfsup.config import load_config
from selfsup.data import load_dataset
from selfsup.eval import extract_features, knn_accuracy, make_preprocess
from selfsup.methods import build_method, build_views
from selfsup.models import build_encoder
from selfsup.optim import param_groups, scaled_learning_rate, warmup_cosine
from selfsup.train import resolve_device, train

RECIPE = "simclr-fashion-mnist"


def _config(args: argparse.Namespace):
    from selfsup.cli import recipe_path

    return load_config(
        recipe_path(RECIPE),
        {
            "model.base_width": args.base_width,
            "model.head_widths": [8 * args.base_width, 128],
            "train.epochs": args.epochs,
            "train.batch_size": args.batch_size,
            "train.device": args.device,
            "train.progress": False,
            "train.seed": args.seed,
        },
    )


def _encoder(config, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_encoder(
        "resnet18", in_channels=1, stem="cifar", base_width=config.model.base_width
    )


def _train_selfsup(config, images: torch.Tensor, mean, std) -> torch.nn.Module:
    method = build_method(_encoder(config, config.train.seed), config)
    with tempfile.TemporaryDirectory() as run_dir:
        train(method, images, build_views(config, images, mean, std), config, run_dir)
    return method.encoder


def _train_lightly(config, images: torch.Tensor, mean, std, workers: int) -> torch.nn.Module:
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead
    from lightly.transforms import SimCLRTransform
    from lightly.utils.lars import LARS
    from PIL import Image

    augment, optim, train_config = config.augment, config.optim, config.train
    transform = SimCLRTransform(
        input_size=images.shape[-1],
        cj_prob=augment.jitter_p,
        cj_strength=augment.jitter_strength,
        min_scale=augment.crop_scale[0],
        random_gray_scale=augment.grayscale_p,
        gaussian_blur=augment.blur_p,
        hf_prob=augment.flip_p,
        normalize={"mean": list(mean), "std": list(std)},
    )
    pixels = images[:, 0].numpy()

    class Views(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(pixels)

        def __getitem__(self, index: int):
            return transform(Image.fromarray(pixels[index], mode="L"))

    device = resolve_device(train_config.device)
    generator = torch.Generator().manual_seed(train_config.seed)
    loader = torch.utils.data.DataLoader(
        Views(),
        batch_size=train_config.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        generator=generator,
        pin_memory=device.type == "cuda",
    )
    encoder = _encoder(config, train_config.seed)
    head = SimCLRProjectionHead(encoder.feature_dim, config.model.head_widths[0], 128)
    model = torch.nn.Sequential(encoder, head).to(device)
    criterion = NTXentLoss(temperature=config.method.temperature)
    lr = scaled_learning_rate(optim.lr, train_config.batch_size, optim.lr_scaling)
    optimizer = LARS(param_groups(model, optim.weight_decay), lr=lr, momentum=optim.momentum)
    steps_per_epoch = len(loader)
    total = steps_per_epoch * train_config.epochs
    warmup = round(optim.warmup_epochs * steps_per_epoch)
    step = 0
    use_bf16 = device.type == "cuda"
    for _ in range(train_config.epochs):
        model.train()
        for view_a, view_b in loader:
            for group in optimizer.param_groups:
                group["lr"] = lr * warmup_cosine(step, total, warmup, 1.0)
            view_a = view_a.to(device, non_blocking=True)
            view_b = view_b.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss = criterion(model(view_a), model(view_b))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
    return encoder


def _peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + workers) / 1024  # ru_maxrss is KiB on Linux


def run_one(args: argparse.Namespace) -> dict:
    """Train one library, then score its encoder; prints one JSON line."""
    config = _config(args)
    device = resolve_device(args.device)
    train_set = load_dataset("fashion-mnist", "train", args.data_dir)
    test_set = load_dataset("fashion-mnist", "test", args.data_dir)
    mean, std = dataset_stats(train_set.images)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    if args.library == "selfsup":
        encoder = _train_selfsup(config, train_set.images, mean, std)
    elif args.library == "lightly":
        encoder = _train_lightly(config, train_set.images, mean, std, args.workers)
    else:
        encoder = _encoder(config, args.seed)  # random init: no training
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    images_seen = (len(train_set) // args.batch_size) * args.batch_size * args.epochs
    peak = _peak_memory_mib(device)
    preprocess = make_preprocess(mean, std)
    train_features = extract_features(encoder, train_set.images, preprocess, device=device)
    test_features = extract_features(encoder, test_set.images, preprocess, device=device)
    knn = knn_accuracy(train_features, train_set.labels, test_features, test_set.labels, 10)
    return {
        "library": args.library,
        "train_seconds": round(seconds, 1),
        "images_per_second": round(images_seen / seconds, 1) if args.library != "random" else None,
        "peak_memory_mib": round(peak),
        "knn_top1": round(knn["top1"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--base-width", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--libraries", nargs="+", default=["random", "lightly", "selfsup"])
    parser.add_argument("--library", help=argparse.SUPPRESS)  # set in the child process
    args = parser.parse_args()
    if args.library:
        print(json.dumps(run_one(args)), flush=True)
        return
    rows = []
    for library in args.libraries:
        child = [sys.executable, __file__, *sys.argv[1:], "--library", library]
        output = subprocess.run(child, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        print(f"finished {library}: {rows[-1]}", file=sys.stderr, flush=True)
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    print(
        f"SimCLR, Fashion-MNIST 60k, CIFAR-stem ResNet-18 base width {args.base_width}, "
        f"batch {args.batch_size}, {args.epochs} epochs, device {device} ({name}, "
        f"{torch.get_num_threads()} threads), torch {torch.__version__}"
    )
    print("| library | img/s | train s | peak MiB | kNN top-1 |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        rate = "—" if row["images_per_second"] is None else f"{row['images_per_second']:.0f}"
        print(
            f"| {row['library']} | {rate} | {row['train_seconds']} | {row['peak_memory_mib']} | "
            f"{row['knn_top1']:.2f} |"
        )


if __name__ == "__main__":
    main()
