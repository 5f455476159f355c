"""The steps behind the CLI verbs, usable from Python: pretrain a run directory, evaluate it."""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from selfsup.augment import ViewAugment, save_view_grid
from selfsup.config import (
    RunConfig,
    apply_overrides,
    config_from_dict,
    save_config,
)
from selfsup.data import (
    ImageDataset,
    ImageFiles,
    TarShards,
    folder_image_sizes,
    load_dataset,
    open_stream,
    sample_stats,
)
from selfsup.data.stats import dataset_stats
from selfsup.dist.launch import barrier, init_from_env, is_main_process
from selfsup.errors import SelfsupError
from selfsup.eval import evaluate, make_preprocess, write_results
from selfsup.methods import build_method, build_views
from selfsup.models import (
    ProjectionHead,
    build_encoder,
    build_from_architecture,
    load_encoder,
    save_encoder,
    save_head,
)
from selfsup.models.timm_encoder import PREFIX as TIMM_PREFIX
from selfsup.train import has_checkpoint, plot_metrics, resolve_device, train
from selfsup.version import __version__


def load_split(config: RunConfig, split: str) -> ImageDataset:
    """The configured dataset's split, with the optional seeded training subset."""
    data = config.data
    dataset = load_dataset(
        data.dataset,
        split,
        data.data_dir,
        image_size=data.image_size,
        seed=config.train.seed,
        download=data.download,
    )
    if split == "train" and data.train_subset and data.train_subset < len(dataset):
        generator = torch.Generator().manual_seed(config.train.seed)
        dataset = dataset.subset(
            torch.randperm(len(dataset), generator=generator)[: data.train_subset]
        )
    return dataset


def training_images(config: RunConfig) -> ImageDataset | ImageFiles | TarShards:
    """The pre-training images: the in-memory training split, or with `data.stream` (always
    for shards) a dataset that decodes each image when the loop's DataLoader workers ask."""
    data = config.data
    if not (data.stream or data.dataset == "shards"):
        return load_split(config, "train")
    if data.train_subset:
        raise SelfsupError("data.train_subset applies to in-memory datasets; drop it to stream")
    return open_stream(data.dataset, "train", data.data_dir, data.image_size)


def encoder_kwargs(
    config: RunConfig, channels: int, image_size: int | None = None
) -> dict[str, Any]:
    """`build_encoder` keyword arguments for `config.model` and `channels`-channel images of
    side `image_size` (a timm ViT is built for the training views' size)."""
    model = config.model
    if model.encoder.startswith(TIMM_PREFIX):
        size = config.augment.size or image_size
        return {"in_channels": channels, "image_size": size, "patch_size": model.patch_size}
    return {
        "in_channels": channels,
        "stem": model.stem,
        "base_width": model.base_width,
        "width_multiplier": model.width_multiplier,
        "zero_init_residual": model.zero_init_residual,
        "norm": model.norm,
        "selective_kernel": model.selective_kernel,
        "pool_grid": model.pool_grid,
    }


def encoder_architecture(
    config: RunConfig, dataset: ImageDataset | ImageFiles | TarShards
) -> dict[str, Any]:
    """What `encoder.json` records: how to rebuild the encoder and how to feed it."""
    model = config.model
    if isinstance(dataset, ImageDataset):
        mean, std = dataset_stats(dataset.images)
    else:  # streamed: estimated from a seeded sample rather than by reading everything
        mean, std = sample_stats(dataset, seed=config.train.seed)
    std = [max(value, 1e-2) for value in std]  # a constant channel must not divide by zero
    return {
        "name": model.encoder,
        "kwargs": encoder_kwargs(config, dataset.channels, dataset.image_size),
        "mean": mean,
        "std": std,
        "image_size": dataset.image_size,
        "dataset": getattr(dataset, "name", "") or config.data.dataset,
    }


def run_metadata() -> dict[str, Any]:
    return {
        "command": " ".join(sys.argv),
        "selfsup": __version__,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
    }


def run_config(config: RunConfig, overrides: dict[str, Any] | None = None) -> RunConfig:
    """The config saved in `config.run_dir` (if any) with command-line `overrides` on top.

    Evaluating, exporting or resuming a run uses the data and model it was trained with, not
    whatever the default recipe says.
    """
    saved = Path(config.run_dir) / "config.yaml"
    if not saved.is_file():
        return config
    import yaml

    return apply_overrides(config_from_dict(yaml.safe_load(saved.read_text())), overrides or {})


def prepare_run_dir(
    config: RunConfig, resume: bool, overrides: dict[str, Any] | None = None
) -> RunConfig:
    """Refuse to overwrite a finished or running directory; on resume, reload its saved config."""
    run_dir = Path(config.run_dir)
    checkpoints = run_dir / "checkpoints"
    saved = run_dir / "config.yaml"
    if resume:
        if not has_checkpoint(checkpoints) or not saved.is_file():
            raise SelfsupError(
                f"nothing to resume in {run_dir}: no checkpoints/last.pt; drop --resume"
            )
        return run_config(config, overrides)
    if has_checkpoint(checkpoints):
        raise SelfsupError(
            f"{run_dir} already holds a run; add --resume to continue it or pass another --run-dir"
        )
    return config


MAIN_JOB_IMAGES_SEEN = 240_000
"""Views of 28 px the main job trains on (4 epochs of Fashion-MNIST); a folder run without
`train.epochs` gets the same compute, scaled by its image area."""


def folder_defaults(
    config: RunConfig, overrides: dict[str, Any], announce: Callable[[str], None] = print
) -> RunConfig:
    """For `data.dataset folder`, pick what the user did not give and say what was picked:
    the image size from the images (the median shorter side, to 32 or 64 px; 96 on CUDA for
    large images), the recipe's view size scaled to it, and the epochs that give the main
    job's compute at that size."""
    if config.data.dataset != "folder":
        return config
    count, side = folder_image_sizes(config.data.data_dir, seed=config.train.seed)
    picked = {}
    if "data.image_size" not in overrides and config.data.image_size is None:
        size = 32 if side < 64 else 64
        if side >= 96 and resolve_device(config.train.device).type == "cuda":
            size = 96
        picked["data.image_size"] = size
        announce(f"picked --data.image_size {size} (median shorter side of the images: {side} px)")
    size = picked.get("data.image_size", config.data.image_size or 64)
    if "augment.size" not in overrides and config.augment.size is not None:
        # The recipe's view size is for the main job's 28 px images: keep its ratio.
        view = max(8, round(config.augment.size * size / 28))
        picked["augment.size"] = view
        announce(
            f"picked --augment.size {view} (the recipe's {config.augment.size} px views of 28 px "
            f"images, scaled to {size} px)"
        )
    if "train.epochs" not in overrides and "train.time_budget" not in overrides:
        images = MAIN_JOB_IMAGES_SEEN * (28 / size) ** 2
        epochs = int(min(300, max(5, round(images / count))))
        picked["train.epochs"] = epochs
        announce(
            f"picked --train.epochs {epochs} for {count:,} images at {size} px (the main job's "
            "compute; give --train.epochs or --train.time_budget to choose)"
        )
    if "train.batch_size" not in overrides and config.train.batch_size > count // 2:
        picked["train.batch_size"] = max(2, count // 4)
        announce(f"picked --train.batch_size {picked['train.batch_size']} for {count} images")
    return apply_overrides(config, picked)


def pretrain(config: RunConfig, resume: bool = False) -> Path:
    """Self-supervised pre-training into `config.run_dir`; returns the run directory.

    Under torchrun every process calls this; rank 0 alone writes the run directory's files.
    """
    run_dir = Path(config.run_dir)
    init_from_env(resolve_device(config.train.device))
    main_process = is_main_process()
    dataset = training_images(config)
    streamed = not isinstance(dataset, ImageDataset)
    images = dataset if streamed else dataset.images
    if main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml", extra=run_metadata())
    augment = ViewAugment(config.augment)
    architecture = encoder_architecture(config, dataset)
    if not resume and main_process:
        first = range(min(8, len(dataset)))
        preview = torch.stack([dataset[i] for i in first]) if streamed else images[first]
        save_view_grid(
            preview, augment, run_dir / "views.png", generator=torch.Generator().manual_seed(0)
        )
    torch.manual_seed(config.train.seed)  # the same initial weights in every process
    encoder = build_encoder(architecture["name"], **architecture["kwargs"])
    method = build_method(encoder, config)
    make_views = build_views(config, images, architecture["mean"], architecture["std"])
    summary = train(method, images, make_views, config, run_dir, resume=resume)
    if main_process:
        save_encoder(method.encoder, architecture, run_dir)
        if isinstance(getattr(method, "projection_head", None), ProjectionHead):
            save_head(method.projection_head, run_dir)  # SimCLRv2 fine-tunes from its middle
        plot_metrics(run_dir / "metrics.jsonl", run_dir / "loss.png")
        (run_dir / "train_summary.json").write_text(json.dumps(summary.__dict__, indent=2))
    barrier()  # the run directory is complete when any process returns
    return run_dir


def evaluate_run(run_dir: str | Path, config: RunConfig) -> list[dict[str, Any]]:
    """Evaluate the encoder saved in `run_dir` with every protocol of `config.eval`."""
    run_dir = Path(run_dir)
    encoder, architecture = load_encoder(run_dir)
    train_set, test_set = load_split(config, "train"), load_split(config, "test")
    if train_set.labels is None or test_set.labels is None:
        raise SelfsupError(f"dataset {config.data.dataset!r} has no labels to evaluate with")
    if train_set.channels != architecture["kwargs"]["in_channels"]:
        raise SelfsupError(
            f"the encoder in {run_dir} takes {architecture['kwargs']['in_channels']}-channel "
            f"images but {train_set.name} has {train_set.channels}; evaluate on the data it was "
            "trained for"
        )
    device = resolve_device(config.train.device)
    preprocess = make_preprocess(architecture["mean"], architecture["std"])

    def build_random_encoder() -> torch.nn.Module:
        torch.manual_seed(config.eval.seed)
        return build_from_architecture(architecture)  # the same model, patch grid included

    label = f"{config.method.name} ({architecture['name']})"
    rows = evaluate(
        {label: encoder},
        train_set,
        test_set,
        preprocess,
        config.eval,
        build_random_encoder=build_random_encoder,
        device=device,
        progress=config.train.progress,
    )
    write_results(rows, run_dir)
    return rows


__all__ = [
    "evaluate_run",
    "folder_defaults",
    "load_split",
    "prepare_run_dir",
    "pretrain",
    "run_config",
]
