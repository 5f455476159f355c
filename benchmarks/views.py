"""Making views: selfsup's hand-written batched ops vs kornia's, same recipe, same batch.

Both take a uint8 (B, C, H, W) batch on the device and return SimCLR views at the recipe's
strengths: random resized crop (scale 0.2-1), horizontal flip, colour jitter (p 0.8, strength
0.5), grayscale (p 0.2), Gaussian blur (p 0.5); each sample with its own random parameters.
Prints milliseconds per batch (median of the timed repeats) and images/s for one view.

    pip install kornia
    python benchmarks/views.py                      # CPU
    python benchmarks/views.py --device cuda --batch-size 512 --size 32
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import time

import torch

from selfsup.augment import ViewAugment, ViewConfig, blur_kernel_size
from selfsup.train import resolve_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _kornia_augment(config: ViewConfig, size: int) -> torch.nn.Module:
    import kornia.augmentation as K

    s = config.jitter_strength
    kernel = blur_kernel_size(size, config.blur_kernel_fraction)
    return K.AugmentationSequential(
        K.RandomResizedCrop((size, size), scale=config.crop_scale, ratio=config.crop_ratio),
        K.RandomHorizontalFlip(p=config.flip_p),
        K.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s, p=config.jitter_p),
        K.RandomGrayscale(p=config.grayscale_p),
        K.RandomGaussianBlur((kernel, kernel), config.blur_sigma, p=config.blur_p),
    )


def _time(make_view, images: torch.Tensor, device: torch.device, repeats: int) -> float:
    for _ in range(2):  # warm-up: allocations, kernels
        make_view(images)
    _sync(device)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        make_view(images)
        _sync(device)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    device = resolve_device(args.device)
    config = ViewConfig(crop_scale=(0.2, 1.0), jitter_strength=0.5, blur_p=0.5)
    generator = torch.Generator().manual_seed(0)
    shape = (args.batch_size, args.channels, args.size, args.size)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator).to(device)
    ours = ViewAugment(config)
    kornia_augment = _kornia_augment(config, args.size).to(device)
    rows = {
        "selfsup ViewAugment": lambda batch: ours(batch, generator),
        "kornia AugmentationSequential": lambda batch: kornia_augment(batch.float() / 255),
    }
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    import kornia

    print(
        f"{device} ({name}, {torch.get_num_threads()} threads), torch {torch.__version__}, "
        f"kornia {kornia.__version__}, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d}; "
        f"one view of {args.batch_size} uint8 {args.channels}×{args.size}×{args.size} images, "
        f"median of {args.repeats}"
    )
    print("| views | ms per batch | images/s |")
    print("|---|---:|---:|")
    for label, make_view in rows.items():
        seconds = _time(make_view, images, device, args.repeats)
        print(f"| {label} | {1000 * seconds:.1f} | {args.batch_size / seconds:,.0f} |")


if __name__ == "__main__":
    main()
