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
from selfsup.eval.finetune import check_labelled, count_classes, finetune, seeded
from selfsup.eval.knn import knn_accuracy
from selfsup.eval.linear import WEIGHT_DECAYS, linear_probe, standardise
from selfsup.eval.metrics import accuracy_report

RANDOM_INIT = "random init"
RAW_PIXELS = "raw pixels"
MAJORITY = "majority class"


FINETUNE_LRS = (0.05, 0.01, 0.002)
"""Fine-tuning's default learning rates: a network trained from scratch tends to want the
largest, a pre-trained one a smaller one."""


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

    Attributes:
        k: neighbours that vote in the weighted kNN (200, as in InstDisc and lightly).
        knn_temperature: τ of the kNN's exp(cos / τ) vote weights.
        linear_max_iter: L-BFGS iterations of the linear probe's logistic regression.
        linear_weight_decays: the probe's λ grid, chosen on a split of the training set.
        linear_val_fraction: the share of the training set held out to choose λ.
        label_fractions: labelled budgets: "1%", "10%", or "N-per-class".
        finetune_epochs: passes over the labelled subset when fine-tuning.
        finetune_lrs: fine-tuning's SGD learning rates; given several, the one that scores
            best on a validation split of the labelled subset is used.
        finetune_val_fraction: the share of the labelled subset held out to choose the rate.
        finetune_batch_size: fine-tuning's batch size.
        finetune_weight_decay: fine-tuning's weight decay.
        finetune_min_steps: fine-tune for at least this many steps (tiny label budgets).
        finetune_augment: fine-tune on random crops and flips of the labelled images.
        baselines: add the random-init, supervised, raw-pixel and majority-class rows.
        batch_size: images per forward pass when extracting features.
        seed: seeds the labelled subsets, the probe's split and fine-tuning.
    """

    k: int = 200
    knn_temperature: float = 0.1
    linear_max_iter: int = 100
    linear_weight_decays: tuple[float, ...] = WEIGHT_DECAYS
    linear_val_fraction: float = 0.1
    label_fractions: tuple[str, ...] = ("1%", "10%")
    finetune_epochs: int = 30
    finetune_lrs: tuple[float, ...] = FINETUNE_LRS
    finetune_val_fraction: float = 0.2
    finetune_batch_size: int = 256
    finetune_weight_decay: float = 5e-4
    finetune_min_steps: int = 200
    finetune_augment: bool = True
    baselines: bool = True
    batch_size: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("k", self.k, 1)  # k at or above the bank size lets every sample vote
        # exp(cos / τ) overflows float32 below τ ≈ 0.012 (see knn_predict)
        check_float("knn_temperature", self.knn_temperature, 0.02, 100)
        check_int("linear_max_iter", self.linear_max_iter, 1, 100_000)
        if not self.linear_weight_decays:
            raise ValueError("linear_weight_decays must list at least one λ")
        for value in self.linear_weight_decays:
            check_float("linear_weight_decays entries", value, 0, 1e3)
        check_float("linear_val_fraction", self.linear_val_fraction, 0, 0.5, low_open=True)
        check_int("finetune_epochs", self.finetune_epochs, 1, 100_000)
        if not self.finetune_lrs:
            raise ValueError("finetune_lrs must list at least one learning rate")
        for value in self.finetune_lrs:
            check_float("finetune_lrs entries", value, 0, 1e4, low_open=True)
        check_float("finetune_val_fraction", self.finetune_val_fraction, 0, 0.5, low_open=True)
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
            "max_iter": self.linear_max_iter,
            "weight_decays": self.linear_weight_decays,
            "val_fraction": self.linear_val_fraction,
            "seed": self.seed,
        }

    def finetune_settings(self) -> dict[str, Any]:
        """The fine-tuning keyword arguments of `fit_classifier` / `finetune` this config sets."""
        return {
            "epochs": self.finetune_epochs,
            "lr": self.finetune_lrs,
            "val_fraction": self.finetune_val_fraction,
            "batch_size": self.finetune_batch_size,
            "weight_decay": self.finetune_weight_decay,
            "seed": self.seed,
            "augment": self.finetune_augment,
            "min_steps": self.finetune_min_steps,
        }


def _label_subset_indices(train: ImageDataset, text: str, seed: int) -> Tensor:
    from selfsup.data import label_fraction_indices

    return label_fraction_indices(train.labels, **_label_budget(text), seed=seed)


def result_row(
    encoder: str, protocol: str, labels: str, scores: Mapping[str, Any], **extra: Any
) -> dict[str, Any]:
    """One row of a results table (`format_table`): who, how, with which labels, and scores
    (top-1, top-3/top-5 where below the class count, balanced accuracy when given), plus the
    hyper-parameter a protocol chose on validation data (the probe's λ, fine-tuning's lr)."""
    chosen = {key: scores[key] for key in ("weight_decay", "lr") if key in scores}
    return {
        "encoder": encoder,
        "protocol": protocol,
        "labels": labels,
        "top1": scores["top1"],
        "top3": scores.get("top3"),
        "top5": scores.get("top5"),
        "balanced": scores.get("balanced"),
        **chosen,
        **extra,
    }


def is_imbalanced(labels: Tensor, ratio: float = 1.1) -> bool:
    """Whether the largest class has more than `ratio` times the samples of the smallest."""
    counts = torch.bincount(labels[labels >= 0].long())
    counts = counts[counts > 0]
    return bool(counts.max() > ratio * counts.min())


def majority_scores(train_labels: Tensor, test_labels: Tensor, num_classes: int) -> dict:
    """Scores of ranking the classes by their training frequency: top-1 is always predicting
    the most frequent class, the floor any encoder must clear (balanced accuracy 100 / C)."""
    counts = torch.bincount(train_labels.long().cpu(), minlength=num_classes).float()
    return accuracy_report(counts.expand(len(test_labels), num_classes), test_labels.cpu())


def pixel_features(images: Tensor) -> Tensor:
    """The raw pixels at the evaluation resolution, flattened to (N, C·H·W) floats in [0, 1]."""
    return images.flatten(1).float().div_(255.0)


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

    Every feature (an encoder's or the raw pixels) is standardised with the training split's
    statistics before kNN and the linear probe, so that no row wins by its features' scale.
    For each named encoder: weighted kNN and a linear probe on frozen features with all train
    labels, then, on each of `config.label_fractions`, a linear probe and fine-tuning. With
    `config.baselines`, the trivial baselines under the same protocols and label subsets: the
    raw pixels at the evaluation resolution, the majority class, and with a `build_random_encoder` a
    seeded random encoder (kNN, linear) and supervised training from scratch on each fraction.
    Label subsets come from `selfsup.data.label_fraction_indices` with `config.seed` and are
    shared by all rows. Encoders are moved to `device`; their train/eval flags are left as
    they were.

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
        Rows {"encoder", "protocol", "labels", "top1", "top3", "top5", "balanced"} plus
        "dataset", "train_images" and "seconds", for `write_results` / `format_table`;
        "balanced" is None unless the classes are imbalanced (`is_imbalanced`).
    """
    config = config or EvalConfig()
    check_labelled(train, test)
    num_classes = count_classes(train, test)
    subsets = {
        text: _label_subset_indices(train, text, config.seed) for text in config.label_fractions
    }
    budgets = {"100%": None, **subsets}  # label budget -> train indices (None: all)
    imbalanced = is_imbalanced(train.labels) or is_imbalanced(test.labels)
    knn_name = f"kNN (k={config.k})"
    rows: list[dict[str, Any]] = []

    def timed(
        encoder_name: str,
        protocol: str,
        labels: str,
        run: Callable[[], Mapping[str, Any]],
        train_images: int = len(train),
    ) -> None:
        start = time.perf_counter()
        scores = dict(run())
        if not imbalanced:
            scores["balanced"] = None
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

    def frozen_protocols(name: str, train_features: Tensor, test_features: Tensor) -> None:
        """kNN with all labels; the linear probe with all labels and on each fraction. Both see
        the features standardised with train statistics, pixels and encoders alike."""
        bank, queries = standardise(train_features, test_features)
        timed(
            name,
            knn_name,
            "100%",
            lambda: knn_accuracy(
                bank.to(device),
                train.labels,
                queries.to(device),
                test.labels,
                num_classes,
                k=config.k,
                temperature=config.knn_temperature,
            ),
        )
        for text, indices in budgets.items():
            chosen = slice(None) if indices is None else indices
            timed(
                name,
                "linear",
                text,
                lambda chosen=chosen: linear_probe(
                    train_features[chosen],
                    train.labels[chosen],
                    test_features,
                    test.labels,
                    num_classes,
                    device=device,
                    **config.linear_settings(),
                ),
                len(train) if indices is None else len(indices),
            )

    finetune_kwargs: dict[str, Any] = dict(
        preprocess=preprocess,
        num_classes=num_classes,
        device=device,
        progress=progress,
        **config.finetune_settings(),
    )

    for name, encoder in encoders.items():
        frozen_protocols(name, features(encoder, train.images), features(encoder, test.images))
        for text, indices in subsets.items():
            timed(
                name,
                "fine-tune",
                text,
                lambda i=indices, e=encoder: finetune(e, train.subset(i), test, **finetune_kwargs),
                len(indices),
            )

    if not config.baselines:
        return rows
    if build_random_encoder is not None:
        with seeded(config.seed):
            random_encoder = build_random_encoder()
        frozen_protocols(
            RANDOM_INIT, *(features(random_encoder, x) for x in (train.images, test.images))
        )
        for text, indices in subsets.items():
            # a fresh copy per fraction, identical to `random_encoder`, trained with labels only
            timed(
                RANDOM_INIT,
                "supervised",
                text,
                lambda i=indices: finetune(
                    random_encoder, train.subset(i), test, **finetune_kwargs
                ),
                len(indices),
            )
    frozen_protocols(RAW_PIXELS, pixel_features(train.images), pixel_features(test.images))
    for text, indices in budgets.items():
        labels = train.labels if indices is None else train.labels[indices]
        timed(
            MAJORITY,
            "majority class",
            text,
            lambda labels=labels: majority_scores(labels, test.labels, num_classes),
            len(labels),
        )
    return rows
