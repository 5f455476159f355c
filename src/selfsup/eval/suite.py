"""The full evaluation table: kNN, linear probe and fine-tuning per encoder, plus baselines."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from selfsup.checks import check_float, check_int
from selfsup.data.base import ImageDataset
from selfsup.eval.features import Preprocess, extract_features
from selfsup.eval.finetune import _check_labelled, count_classes, finetune, seeded
from selfsup.eval.knn import knn_accuracy
from selfsup.eval.linear import linear_probe

RANDOM_INIT = "random init"


def _label_budget(text: str) -> dict[str, Any]:
    """Parse a label budget with the one grammar in `selfsup.data` ("1%", "25-per-class")."""
    from selfsup.data import parse_label_fraction

    return parse_label_fraction(text)


@dataclass
class EvalConfig:
    """Which protocols run, and their hyper-parameters (the one source of evaluation defaults).

    Fine-tuning costs epochs * ceil(N * fraction / finetune_batch_size) steps (at least
    `finetune_min_steps`) per label fraction, once for each encoder and once more for the
    supervised baseline.
    """

    k: int = 200
    knn_temperature: float = 0.1
    linear_epochs: int = 100
    linear_lr: float = 1e-3
    linear_weight_decay: float = 5e-4
    linear_batch_size: int = 1024
    label_fractions: tuple[str, ...] = ("1%", "10%")
    finetune_epochs: int = 30
    finetune_lr: float = 0.05
    finetune_batch_size: int = 256
    finetune_weight_decay: float = 5e-4
    finetune_min_steps: int = 200
    finetune_augment: bool = True
    baselines: bool = True
    batch_size: int = 512  # images per forward pass when extracting features
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("k", self.k, 1)  # k at or above the bank size lets every sample vote
        # exp(cos / τ) overflows float32 below τ ≈ 0.012 (see knn_predict)
        check_float("knn_temperature", self.knn_temperature, 0.02, 100)
        check_int("linear_epochs", self.linear_epochs, 1, 100_000)
        check_float("linear_lr", self.linear_lr, 0, 1e4, low_open=True)
        check_float("linear_weight_decay", self.linear_weight_decay, 0, 1)
        check_int("linear_batch_size", self.linear_batch_size, 1)
        check_int("finetune_epochs", self.finetune_epochs, 1, 100_000)
        check_float("finetune_lr", self.finetune_lr, 0, 1e4, low_open=True)
        check_int("finetune_batch_size", self.finetune_batch_size, 2)  # batch norm needs two
        check_float("finetune_weight_decay", self.finetune_weight_decay, 0, 1)
        check_int("finetune_min_steps", self.finetune_min_steps, 0)
        check_int("batch_size", self.batch_size, 1, 65_536)
        check_int("seed", self.seed, 0, 2**63 - 1)
        for text in self.label_fractions:
            _label_budget(text)  # a SelfsupError naming the bad budget

    def linear_settings(self) -> dict[str, Any]:
        """The keyword arguments of `linear_probe` this config sets."""
        return {
            "epochs": self.linear_epochs,
            "lr": self.linear_lr,
            "weight_decay": self.linear_weight_decay,
            "batch_size": self.linear_batch_size,
            "seed": self.seed,
        }

    def finetune_settings(self) -> dict[str, Any]:
        """The fine-tuning keyword arguments of `fit_classifier` / `finetune` this config sets."""
        return {
            "epochs": self.finetune_epochs,
            "lr": self.finetune_lr,
            "batch_size": self.finetune_batch_size,
            "weight_decay": self.finetune_weight_decay,
            "seed": self.seed,
            "augment": self.finetune_augment,
            "min_steps": self.finetune_min_steps,
        }


def _label_subset(train: ImageDataset, text: str, seed: int) -> ImageDataset:
    from selfsup.data import label_fraction_indices

    indices = label_fraction_indices(train.labels, **_label_budget(text), seed=seed)
    return train.subset(indices)


def result_row(
    encoder: str, protocol: str, labels: str, scores: Mapping[str, float], **extra: Any
) -> dict[str, Any]:
    """One row of a results table (`format_table`): who, how, with which labels, and scores."""
    return {
        "encoder": encoder,
        "protocol": protocol,
        "labels": labels,
        "top1": scores["top1"],
        "top3": scores.get("top3"),
        "top5": scores.get("top5"),
        **extra,
    }


def evaluate(
    encoders: Mapping[str, nn.Module],
    train: ImageDataset,
    test: ImageDataset,
    preprocess: Preprocess | None = None,
    config: EvalConfig | None = None,
    build_random_encoder: Callable[[], nn.Module] | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Run every protocol of `config` on each encoder and return the rows of the results table.

    For each named encoder: weighted kNN and a linear probe on frozen features with all train
    labels, then fine-tuning on each of `config.label_fractions`. With `config.baselines` and a
    `build_random_encoder`, the same for a seeded random encoder ("random init": kNN, linear)
    and supervised training from scratch on each label fraction. Label subsets come from
    `selfsup.data.label_fraction_indices` with `config.seed` and are shared by all encoders.
    Encoders are moved to `device`; their train/eval flags are left as they were.

    Args:
        encoders: display name -> encoder mapping float images (B, C, H, W) to (B, D).
        train: labelled training split.
        test: labelled test split.
        preprocess: uint8 batch on `device` -> the encoders' float input.
        config: protocols and hyper-parameters; default `EvalConfig()`.
        build_random_encoder: returns a fresh encoder of the evaluated architecture.
        device: where everything runs.
        progress: show tqdm progress bars.

    Returns:
        Rows {"encoder", "protocol", "labels", "top1", "top3", "top5"} plus "dataset",
        "train_images" and "seconds", for `write_results` / `format_table`.
    """
    config = config or EvalConfig()
    _check_labelled(train, test)
    num_classes = count_classes(train, test)
    subsets = {text: _label_subset(train, text, config.seed) for text in config.label_fractions}
    knn_name = f"kNN (k={config.k})"
    rows: list[dict[str, Any]] = []

    def timed(
        encoder_name: str,
        protocol: str,
        labels: str,
        run: Callable[[], dict[str, float]],
        train_images: int = len(train),
    ) -> None:
        start = time.perf_counter()
        scores = run()
        rows.append(
            result_row(
                encoder_name,
                protocol,
                labels,
                scores,
                dataset=train.name,
                train_images=train_images,
                seconds=round(time.perf_counter() - start, 2),
            )
        )

    def features(encoder: nn.Module, images: Tensor) -> Tensor:
        return extract_features(encoder, images, preprocess, config.batch_size, device, progress)

    def frozen_protocols(name: str, encoder: nn.Module) -> None:
        train_features, test_features = (
            features(encoder, train.images),
            features(encoder, test.images),
        )
        timed(
            name,
            knn_name,
            "100%",
            lambda: knn_accuracy(
                train_features.to(device),
                train.labels,
                test_features.to(device),
                test.labels,
                num_classes,
                k=config.k,
                temperature=config.knn_temperature,
            ),
        )
        timed(
            name,
            "linear",
            "100%",
            lambda: linear_probe(
                train_features,
                train.labels,
                test_features,
                test.labels,
                num_classes,
                device=device,
                **config.linear_settings(),
            ),
        )

    finetune_kwargs: dict[str, Any] = dict(
        preprocess=preprocess,
        num_classes=num_classes,
        device=device,
        progress=progress,
        **config.finetune_settings(),
    )

    for name, encoder in encoders.items():
        frozen_protocols(name, encoder)
        for text, subset in subsets.items():
            timed(
                name,
                "fine-tune",
                text,
                lambda s=subset, e=encoder: finetune(e, s, test, **finetune_kwargs),
                len(subset),
            )

    if config.baselines and build_random_encoder is not None:
        with seeded(config.seed):
            random_encoder = build_random_encoder()
        frozen_protocols(RANDOM_INIT, random_encoder)
        for text, subset in subsets.items():
            # a fresh copy per fraction, identical to `random_encoder`, trained with labels only
            timed(
                RANDOM_INIT,
                "supervised",
                text,
                lambda s=subset: finetune(random_encoder, s, test, **finetune_kwargs),
                len(subset),
            )
    return rows
