"""Training throughput: selfsup vs lightly's recommended SimCLR pipeline, in one process.

Both libraries train SimCLR with the same CIFAR-stem ResNet-18, 32×32 images, batch, head
widths, temperature, optimiser (LARS) and schedule, one after the other on the same machine:

- selfsup: the bundled recipe (`configs/simclr-fashion-mnist.yaml`) run by the real
  `selfsup.train.train` loop (uint8 images on the device, batched views, channels-last, bf16
  autocast on GPU); step times are read back from its metrics.jsonl.
- lightly: its recommended pipeline as in `compare_lightly.py`: `SimCLRTransform` on PIL images
  in pinned-memory DataLoader workers, `SimCLRProjectionHead` + `NTXentLoss`, lightly's LARS,
  bf16 autocast on GPU (what its Lightning examples get from `precision="bf16-mixed"`).

It prints images/s, step time (mean ± std over the measured steps), peak memory and the
achieved model FLOP rate (FLOPs of one training step counted by `torch.utils.flop_counter`);
on a GPU with a known bf16 peak also the model FLOPs utilisation (MFU). Targets from the issue:
on a GPU selfsup ≥3× lightly's img/s and ≥25% MFU; on CPU ≥1.3× lightly's img/s at base width 16.

    pip install -e ".[bench]"
    python benchmarks/throughput.py                                   # CPU: base width 16
    python benchmarks/throughput.py --device cuda --json throughput.json
    python benchmarks/throughput.py --data fashion-mnist --libraries selfsup
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import re
import resource
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

# benchmarks/ is not a package: this import works because Python puts the running script's
# directory on sys.path.
from compare_lightly import _lightly_transform, _LightlyModel, lightly_step

from selfsup.config import TrainConfig, apply_overrides, load_config, recipe_path
from selfsup.data.stats import dataset_stats
from selfsup.methods import build_method, build_views
from selfsup.models import build_encoder
from selfsup.optim import param_groups, scaled_learning_rate, warmup_cosine
from selfsup.pipeline import encoder_kwargs, load_split
from selfsup.train import resolve_device, train
from selfsup.train.metrics import read_metrics
from selfsup.train.setup import autocast_context

IMAGE_SIZE = 32
# lightly runs first: selfsup's loop changes process-wide state that lightly's users do not get
# (on CPU, glibc's malloc keeps freed memory: `selfsup.train.allocator`), which must not help it.
LIBRARIES = ("lightly", "selfsup")

# Dense bf16 tensor-core peaks (no sparsity), TFLOP/s, from the vendors' datasheets. Matched as
# whole words against the CUDA device name, most specific first ("A10" must not match "A100",
# "L4" not "L40S").
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100", 989.4),  # SXM
    ("H200", 989.4),
    ("A100", 312.0),
    ("L4", 121.0),
    ("A10", 125.0),
)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("synthetic", "fashion-mnist"), default="synthetic")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST files (default: system)")
    parser.add_argument("--images", type=int, default=10240, help="dataset size (both --data)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--base-width", type=int, default=None, help="default: 16 CPU, 64 GPU")
    parser.add_argument("--steps", type=int, default=None, help="measured steps (10 CPU, 100 GPU)")
    parser.add_argument(
        "--warmup-steps", type=int, default=None, help="untimed steps first (3 CPU, 20 GPU)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true", help="selfsup's train.compile")
    parser.add_argument(
        "--workers",
        type=int,
        default=min(8, os.cpu_count() or 1),
        help="lightly's DataLoader workers",
    )
    parser.add_argument("--libraries", nargs="+", choices=LIBRARIES, default=list(LIBRARIES))
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's bf16 peak")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args()
    args.library_order = list(dict.fromkeys(args.libraries))
    if args.compile and "compile" not in {f.name for f in dataclasses.fields(TrainConfig)}:
        parser.error(
            "--compile sets selfsup's train.compile, which this selfsup's TrainConfig does not "
            "have yet; update selfsup or drop --compile"
        )
    for name in ("images", "batch_size", "steps", "base_width"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {value}")
    for name in ("warmup_steps", "workers"):
        value = getattr(args, name)
        if value is not None and value < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0, got {value}")
    return args


def _machine(device: torch.device) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        cpuinfo = Path("/proc/cpuinfo")
        if cpuinfo.is_file():
            found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
            name = found.group(1).strip() if found else name
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{device.type}: {name}; {cores} CPU cores, {torch.get_num_threads()} torch threads"


def _peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override is not None:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, tflops in PEAK_BF16_TFLOPS:
        if re.search(rf"\b{re.escape(key)}\b", name):
            return tflops
    return None


def _encoder(config, channels: int) -> torch.nn.Module:
    """The encoder both libraries train, built as `selfsup.pipeline.pretrain` builds it."""
    torch.manual_seed(config.train.seed)
    return build_encoder(config.model.encoder, **encoder_kwargs(config, channels))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step_flops(forward: Callable[[], torch.Tensor], config, device: torch.device) -> int:
    """FLOPs of one training step's model work: forward and backward, at the loop's autocast."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        with autocast_context(config.train.precision, device):
            loss = forward()
        loss.backward()
    _sync(device)
    return counter.get_total_flops()


def _count_flops(config, images, mean, std, device, library: str) -> int:
    """One step's FLOPs of `library`'s model, on a fresh copy fed the loop's own views."""
    channels = images.shape[1]
    memory_format = torch.channels_last if config.train.channels_last else torch.contiguous_format
    batch = images[: config.train.batch_size].to(device)
    indices = torch.arange(config.train.batch_size)
    views = build_views(config, images, mean, std)(
        batch, indices, torch.Generator().manual_seed(config.train.seed)
    )
    if library == "selfsup":
        method = build_method(_encoder(config, channels), config)
        method.to(device, memory_format=memory_format)
        inputs = [view.contiguous(memory_format=memory_format) for view in views]
        return _step_flops(lambda: method(inputs), config, device)
    model = _LightlyModel(config, _encoder(config, channels)).to(device)
    view_a, view_b = (view.contiguous() for view in views)
    return _step_flops(lambda: model(view_a, view_b), config, device)


def _time_selfsup(config, images, mean, std, warmup: int, steps: int) -> list[float]:
    """Seconds of each measured step of the real selfsup loop, from its metrics.jsonl."""
    method = build_method(_encoder(config, images.shape[1]), config)
    with tempfile.TemporaryDirectory() as run_dir:
        train(method, images, build_views(config, images, mean, std), config, run_dir)
        records = read_metrics(Path(run_dir) / "metrics.jsonl")
    # With log_every = 1 every step is its own window, and the loop's `.item()` of the loss at
    # each log is a host sync: a window ends when the step's GPU work has finished, not when it
    # was queued. The windows skip the per-epoch checkpoint (each epoch's first starts after it).
    batch = config.train.batch_size
    return [
        batch / record["img_per_s"]
        for record in records
        if "img_per_s" in record and warmup < record["step"] <= warmup + steps
    ]


class _PILImages(torch.utils.data.Dataset):
    """uint8 (N, C, H, W) images as PIL images through lightly's transform, as its examples do."""

    def __init__(self, images: torch.Tensor, transform: Callable) -> None:
        pixels = images.permute(0, 2, 3, 1).numpy()  # N x H x W x C
        self.pixels = pixels[..., 0] if pixels.shape[-1] == 1 else pixels  # "L" or "RGB"
        self.transform = transform

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, index: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.pixels[index]))


def _time_lightly(config, images, mean, std, warmup: int, steps: int, workers: int) -> list[float]:
    """Seconds of each measured step of lightly's recommended pipeline."""
    from lightly.utils.lars import LARS

    optim, train_config = config.optim, config.train
    device = resolve_device(train_config.device)
    batch, total = train_config.batch_size, warmup + steps
    dataset = _PILImages(images, _lightly_transform(config, images.shape[-1], mean, std))
    # Shuffled like `shuffle=True`, but one pass of exactly `total` batches: no epoch boundary
    # (worker restart) inside the timing, as selfsup's windows skip its epoch ends.
    sampler = torch.utils.data.RandomSampler(
        dataset,
        num_samples=total * batch,
        generator=torch.Generator().manual_seed(train_config.seed),
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch,
        sampler=sampler,
        drop_last=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )
    model = _LightlyModel(config, _encoder(config, images.shape[1])).to(device)
    lr = scaled_learning_rate(optim.lr, batch, optim.lr_scaling)
    optimizer = LARS(param_groups(model, optim.weight_decay), lr=lr, momentum=optim.momentum)
    warmup_lr = round(optim.warmup_epochs * (len(images) // batch))
    model.train()
    seconds = []
    last = time.perf_counter()
    for step, (view_a, view_b) in enumerate(loader):
        for group in optimizer.param_groups:
            group["lr"] = lr * warmup_cosine(step, total, warmup_lr, 1.0)
        lightly_step(model, optimizer, view_a, view_b, step, total, device)
        _sync(device)  # the counterpart of selfsup's per-step `loss.item()`
        now = time.perf_counter()
        seconds.append(now - last)  # includes waiting for the workers' next batch
        last = now
    # The loop ran the loader dry, so its workers have exited and been reaped: RUSAGE_CHILDREN
    # now holds their high-water mark.
    return seconds[warmup:]


def _rss_mib(children: bool) -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if children:
        peak += resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak / 1024  # ru_maxrss is KiB on Linux


def _load_images(args: argparse.Namespace, config) -> torch.Tensor:
    if args.data == "synthetic":
        # Throughput only: uniform noise costs both pipelines what real images do.
        generator = torch.Generator().manual_seed(args.seed)
        shape = (args.images, 3, IMAGE_SIZE, IMAGE_SIZE)
        return torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    return load_split(config, "train").images


def main() -> None:
    args = _parse_args()
    device = resolve_device(args.device)
    on_cpu = device.type == "cpu"
    width_note = "" if args.base_width is not None else f" (default on {device.type})"
    base_width = args.base_width or (16 if on_cpu else 64)
    warmup = args.warmup_steps if args.warmup_steps is not None else (3 if on_cpu else 20)
    steps = args.steps or (10 if on_cpu else 100)

    overrides = {
        "data.image_size": IMAGE_SIZE,
        "data.data_dir": args.data_dir,
        "data.train_subset": args.images,
        "model.base_width": base_width,
        "train.batch_size": args.batch_size,
        "train.device": str(device),
        "train.progress": False,
        "train.log_every": 1,
        "train.channels_last": True,
        "train.seed": args.seed,
    }
    if args.compile:
        overrides["train.compile"] = True
    config = load_config(recipe_path("simclr-fashion-mnist"), overrides)
    images = _load_images(args, config)
    if args.batch_size > len(images):
        sys.exit(f"--batch-size {args.batch_size} is larger than the {len(images)} images")
    mean, std = dataset_stats(images)
    std = [max(value, 1e-2) for value in std]  # as selfsup's pipeline: no division by zero

    # The loop runs whole epochs: within one epoch, train on just enough images for the steps
    # wanted; otherwise the surplus steps of the last epoch run untimed.
    per_epoch = len(images) // args.batch_size
    selfsup_images = images
    if warmup + steps <= per_epoch:
        selfsup_images, epochs = images[: (warmup + steps) * args.batch_size], 1
    else:
        epochs = math.ceil((warmup + steps) / per_epoch)
    apply_overrides(config, {"train.epochs": epochs})

    started_at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    from selfsup import __version__

    try:
        from lightly import __version__ as lightly_version
    except ImportError:  # a selfsup-only run does not need it
        lightly_version = "not installed"

    command = shlex.join([Path(sys.executable).name, *sys.argv])
    threads_env = os.environ.get("OMP_NUM_THREADS")
    print(
        f"{_machine(device)}; torch {torch.__version__}, lightly {lightly_version}, "
        f"selfsup {__version__}; {started_at}"
        + (f"; OMP_NUM_THREADS={threads_env}" if threads_env else "")
    )
    print(f"command: {command}")
    print(
        f"SimCLR, {config.model.encoder} {config.model.stem} stem, base width {base_width}"
        f"{width_note}, {images.shape[1]}×{IMAGE_SIZE}×{IMAGE_SIZE} {args.data} images "
        f"({len(images)}), batch {args.batch_size} (2 views each), {warmup} warmup + {steps} "
        f"measured steps, selfsup compile {'on' if args.compile else 'off'}, lightly workers "
        f"{args.workers}",
        flush=True,
    )

    rss_before = _rss_mib(children=False)
    peak_tflops = _peak_tflops(device, args.peak_tflops)
    flops, seconds, peaks = {}, {}, {}
    for library in args.library_order:
        # Counted on a fresh model just before the library's timing: in none of its time and,
        # on CUDA, in none of its peak memory; on CPU its one step of activations is no bigger
        # than a training step's, so the RSS high-water mark stays the library's own.
        flops[library] = _count_flops(config, images, mean, std, device, library)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        if library == "selfsup":
            timed = _time_selfsup(config, selfsup_images, mean, std, warmup, steps)
        else:
            timed = _time_lightly(config, images, mean, std, warmup, steps, args.workers)
        if len(timed) != steps:
            raise RuntimeError(f"{library}: timed {len(timed)} steps, expected {steps}")
        seconds[library] = timed
        if device.type == "cuda":
            peaks[library] = torch.cuda.max_memory_allocated(device) / 2**20
        else:
            peaks[library] = _rss_mib(children=library == "lightly")
        rate = steps * args.batch_size / sum(timed)
        print(f"finished {library}: {rate:.1f} img/s", file=sys.stderr, flush=True)

    # Both libraries train the same network on the same inputs, so both rates use one count:
    # selfsup's model's when it ran (lightly's own count is printed as a check).
    flops_per_step = flops.get("selfsup", flops.get("lightly"))
    rows = []
    for library, timed in seconds.items():
        measured = sum(timed)
        achieved = flops_per_step * steps / measured
        if device.type == "cuda":
            memory_kind = "cuda max_memory_allocated"
        elif library == "lightly":
            memory_kind = "process RSS high-water (ru_maxrss) + largest worker's"
        else:
            memory_kind = "process RSS high-water (ru_maxrss)"
        rows.append(
            {
                "library": library,
                "images_per_second": round(steps * args.batch_size / measured, 1),
                "step_ms_mean": round(1e3 * statistics.mean(timed), 2),
                "step_ms_std": round(1e3 * statistics.stdev(timed), 2) if steps > 1 else 0.0,
                "peak_memory_mib": round(peaks[library]),
                "peak_memory_kind": memory_kind,
                "model_flops_per_step": flops_per_step,
                "own_model_flops_per_step": flops[library],
                "achieved_tflops": achieved / 1e12,
                "mfu": achieved / (peak_tflops * 1e12) if peak_tflops else None,
            }
        )

    print()
    unit, scale = ("GFLOP/s", 1e9) if on_cpu else ("TFLOP/s", 1e12)
    print(f"| library | img/s | step ms | peak memory | achieved {unit} | MFU |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        mfu = "n/a" if row["mfu"] is None else f"{100 * row['mfu']:.1f}%"
        print(
            f"| {row['library']} | {row['images_per_second']:.0f} | {row['step_ms_mean']:.1f} ± "
            f"{row['step_ms_std']:.1f} | {row['peak_memory_mib']} MiB | "
            f"{row['achieved_tflops'] * 1e12 / scale:.3g} | {mfu} |"
        )
    print()
    counted = "; ".join(f"{name}'s model {count / 1e9:.1f} GFLOP" for name, count in flops.items())
    print(
        f"model FLOPs per step (forward + backward of 2×{args.batch_size} views at the loop's "
        f"autocast, torch.utils.flop_counter): {counted}; the achieved rates of every row use "
        f"{flops_per_step / 1e9:.1f} GFLOP"
    )
    if peak_tflops is None:
        where = "this CPU" if on_cpu else "this device"
        print(f"MFU: n/a (no bf16 peak for {where}; pass --peak-tflops)")
    else:
        source = "--peak-tflops" if args.peak_tflops is not None else "dense bf16 datasheet peak"
        print(f"MFU: achieved model FLOP/s over {peak_tflops:g} TFLOP/s ({source})")
    if device.type == "cuda":
        print("peak memory: torch.cuda.max_memory_allocated, reset before each library")
    else:
        workers_note = (
            "; lightly's adds its largest DataLoader worker's, which counts pages shared with "
            "the main process"
            if "lightly" in seconds
            else ""
        )
        print(
            "peak memory: the process's RSS high-water mark (ru_maxrss) read after each library; "
            "it only grows, so a row also covers every library run before it (order: "
            f"{', '.join(args.library_order)}; after imports and data: {rss_before:.0f} MiB)"
            f"{workers_note}"
        )

    by_library = {row["library"]: row for row in rows}
    targets = []
    if "selfsup" in by_library and "lightly" in by_library:
        ratio = sum(seconds["lightly"]) / sum(seconds["selfsup"])  # same images per step
        print(f"selfsup / lightly img/s: {ratio:.2f}×")
        if on_cpu:
            stated = "" if base_width == 16 else f" (stated for base width 16; ran {base_width})"
            targets.append((f"≥1.3× lightly img/s on CPU{stated}", ratio >= 1.3))
        elif device.type == "cuda":
            targets.append(("≥3× lightly img/s on GPU", ratio >= 3.0))
    if device.type == "cuda" and "selfsup" in by_library:
        mfu = by_library["selfsup"]["mfu"]
        targets.append(("≥25% MFU on GPU", None if mfu is None else mfu >= 0.25))
    for name, met in targets:
        verdict = "unknown (no bf16 peak)" if met is None else ("met" if met else "not met")
        print(f"target {name}: {verdict}")

    if args.json:
        document = {
            "machine": _machine(device),
            "torch": str(torch.__version__),
            "lightly": lightly_version,
            "selfsup": __version__,
            "date": started_at,
            "command": command,
            "base_width": base_width,
            "batch_size": args.batch_size,
            "warmup_steps": warmup,
            "steps": steps,
            "peak_tflops": peak_tflops,
            "rows": rows,
            "targets": {name: met for name, met in targets},
        }
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
