"""What a study's cell usually does: pre-train a method (or the supervised reference) and score
linear probes of its frozen encoder, and the trivial baselines those scores are read against.

`baselines` gives the floors under the same linear probe on the same images: the raw pixels, a
seeded random-init encoder of the cells' architecture and the majority class. A study that
declares `baselines` prints them above its table, so that no cell is read without them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from selfsup.augment import LabelledViews
from selfsup.config import RunConfig
from selfsup.data import ImageDataset
from selfsup.eval import extract_features, linear_probe, make_preprocess
from selfsup.eval.suite import majority_scores, pixel_features
from selfsup.methods import build_method, build_views
from selfsup.methods.supervised import Supervised
from selfsup.models import build_encoder
from selfsup.pipeline import encoder_architecture, load_split
from selfsup.train import TrainSummary, resolve_device, train


def pretrain(
    config: RunConfig,
    folder: Path,
    resume: bool,
    train_set: ImageDataset,
    views: Callable[..., Any] | None = None,
    extra_channels: int = 0,
    supervised: bool = False,
) -> tuple[torch.nn.Module, TrainSummary, Callable[[torch.Tensor], torch.Tensor]]:
    """Train the configured method (or the supervised reference) on `train_set` into
    `folder`; returns it (its `.encoder` is the trained network), the training summary and
    the evaluation preprocess. The arguments are `train_and_probe`'s."""
    architecture = encoder_architecture(config, train_set)
    mean, std = architecture["mean"], architecture["std"]
    kwargs = {**architecture["kwargs"], "in_channels": train_set.channels + extra_channels}
    torch.manual_seed(config.train.seed)
    encoder = build_encoder(architecture["name"], **kwargs)
    make_views = build_views(config, train_set.images, mean, std)
    if views is not None:
        make_views = views(make_views, mean, std, train_set.image_size)
    if supervised:
        method: torch.nn.Module = Supervised(encoder, int(train_set.labels.max()) + 1)
        make_views = LabelledViews(make_views, train_set.labels)
    else:
        method = build_method(encoder, config)
    summary = train(method, train_set.images, make_views, config, folder, resume=resume)
    return method, summary, make_preprocess(mean, std)


def train_and_probe(
    config: RunConfig,
    folder: Path,
    resume: bool,
    views: Callable[..., Any] | None = None,
    extra_channels: int = 0,
    preprocess: Callable[[Any], Any] | None = None,
    datasets: tuple[ImageDataset, ImageDataset] | None = None,
    targets: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    supervised: bool = False,
    probe_head: bool = False,
) -> dict[str, Any]:
    """A cell's usual work: pre-train the configured method on a training set into `folder`
    and score linear probes of its frozen encoder on a test set.

    Args:
        config: the cell's config.
        folder: its run folder (checkpoints, metrics).
        resume: continue from the folder's checkpoint.
        views: wraps or replaces the method's view maker: given it, the normalisation's mean
            and std and the images' side, returns the maker to train on.
        extra_channels: input channels the views add to the images' own (RandBit's bits).
        preprocess: wraps the evaluation preprocess the same way.
        datasets: (train, test) images (default: the config's dataset's two splits).
        targets: what the probes predict, {name: (train labels, test labels)}; each gives
            `linear_<name>` (None for a target of one class). Default: the datasets' own
            labels, as `linear`.
        supervised: train the encoder with a linear classifier on the training set's labels
            (cross-entropy on the same views; `selfsup.methods.supervised`) instead of the
            configured method: the studies' supervised reference.
        probe_head: probe the projection head's output z as well, as `<name>_z` (SimCLR
            Fig. 8: h against z).
    """
    train_set, test_set = datasets or (load_split(config, "train"), load_split(config, "test"))
    method, summary, prepare = pretrain(
        config, folder, resume, train_set, views, extra_channels, supervised
    )
    device = resolve_device(config.train.device)
    prepare = preprocess(prepare) if preprocess else prepare
    networks = {"": method.encoder}
    if probe_head:
        networks["_z"] = torch.nn.Sequential(method.encoder, method.projection_head)
    named = {f"linear_{name}": labels for name, labels in (targets or {}).items()}
    named = named or {"linear": (train_set.labels, test_set.labels)}
    result: dict[str, Any] = {}
    for suffix, network in networks.items():
        train_features, test_features = (
            extract_features(network, split.images, prepare, device=device)
            for split in (train_set, test_set)
        )
        for name, (train_labels, test_labels) in named.items():
            result[name + suffix] = probe_top1(
                train_features, train_labels, test_features, test_labels, config, device
            )
    return {
        **result,
        "final_loss": summary.final_loss,
        "steps": summary.steps,
        "train_seconds": round(summary.seconds, 1),
    }


def probe_top1(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    config: RunConfig,
    device: torch.device,
) -> float | None:
    """A linear probe's test top-1 (%); None for labels of one class (nothing to probe)."""
    if len(train_labels.unique()) < 2:
        return None
    probe = linear_probe(
        train_features,
        train_labels,
        test_features,
        test_labels,
        int(max(train_labels.max(), test_labels.max())) + 1,
        max_iter=config.eval.linear_max_iter,
        seed=config.eval.seed,
        device=device,
    )
    return probe["top1"]


def baselines(config: RunConfig) -> dict[str, float | None]:
    """Linear-probe top-1 (%) of the raw pixels and of a random-init encoder (built as the
    cells build theirs, with the config's seed), and the majority class's top-1, on the
    config's train and test splits: the floors a study's cells are read against."""
    train_set, test_set = load_split(config, "train"), load_split(config, "test")
    device = resolve_device(config.train.device)
    architecture = encoder_architecture(config, train_set)
    torch.manual_seed(config.train.seed)
    encoder = build_encoder(architecture["name"], **architecture["kwargs"])
    prepare = make_preprocess(architecture["mean"], architecture["std"])
    random_features = [
        extract_features(encoder, split.images, prepare, device=device)
        for split in (train_set, test_set)
    ]
    labels = (train_set.labels, test_set.labels)
    num_classes = int(max(labels[0].max(), labels[1].max())) + 1
    majority = majority_scores(labels[0], labels[1], num_classes)["top1"]
    pixels = [pixel_features(split.images) for split in (train_set, test_set)]
    return {
        "raw pixels": probe_top1(pixels[0], labels[0], pixels[1], labels[1], config, device),
        "random init": probe_top1(
            random_features[0], labels[0], random_features[1], labels[1], config, device
        ),
        "majority class": round(float(majority), 2),
    }


__all__ = ["baselines", "pretrain", "probe_top1", "train_and_probe"]
