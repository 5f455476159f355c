"""Fine-tuning on labelled subsets, and the supervised-from-scratch baseline it doubles as.

SimCLR [0] (Sec. 6, App. B.5) fine-tunes the whole pre-trained network with a new linear
classifier on 1% and 10% of the labels; the same loop started from a random encoder is the
supervised baseline. We use SGD with Nesterov momentum 0.9 and a cosine schedule, as SimCLR
and the standard supervised ResNet recipes do: with one optimiser for both rows, the table
compares initialisations, not optimisers, and SGD's plain steps generalise at least as well
as Adam's for batch-normalised convnets trained from scratch.

[0] A Simple Framework for Contrastive Learning of Visual Representations, Chen et al. 2020,
    arXiv:2002.05709.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from selfsup.data.base import ImageDataset
from selfsup.errors import SelfsupError
from selfsup.eval.features import Preprocess, extract_features, infer_feature_dim, make_preprocess
from selfsup.eval.linear import stratified_split
from selfsup.eval.metrics import accuracy_report
from selfsup.models.heads import Classifier
from selfsup.optim import param_groups, warmup_cosine


@contextmanager
def seeded(seed: int, device: str | torch.device = "cpu") -> Iterator[None]:
    """Seed torch's global RNG (CPU, and `device` if CUDA) inside the block, restoring it after.

    For code we do not control that draws from the global RNG: a user's encoder builder, its
    dropout layers.
    """
    device = torch.device(device)
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def random_crop_flip(images: Tensor, padding: int, generator: torch.Generator) -> Tensor:
    """Pad with reflection, crop back to size at a random offset, and flip half the images.

    Each sample gets its own offset and flip, drawn from `generator` (on the CPU) and applied
    batched on the images' device, so a batch costs a few tensor ops and no PIL.

    Args:
        images: (B, C, H, W) tensor of any dtype, on any device.
        padding: pixels added on each side; offsets range over [0, 2 * padding].
        generator: CPU generator for the per-sample offsets and flips.

    Returns:
        (B, C, H, W) augmented images, same dtype and device.
    """
    b, c, h, w = images.shape
    if padding > 0:
        padded = F.pad(images, (padding, padding, padding, padding), mode="reflect")
        offsets = torch.randint(0, 2 * padding + 1, (2, b), generator=generator)
        offsets = offsets.to(images.device)
        rows = offsets[0, :, None] + torch.arange(h, device=images.device)  # B x H
        cols = offsets[1, :, None] + torch.arange(w, device=images.device)  # B x W
        padded = padded.gather(2, rows[:, None, :, None].expand(b, c, h, padded.shape[3]))
        images = padded.gather(3, cols[:, None, None, :].expand(b, c, h, w))
    flip = (torch.rand(b, generator=generator) < 0.5).to(images.device)
    return torch.where(flip[:, None, None, None], images.flip(3), images)


def count_classes(*datasets: ImageDataset) -> int:
    """The first dataset's `num_classes`, else the largest label of all of them + 1."""
    if datasets[0].num_classes:
        return datasets[0].num_classes
    labels = torch.cat([dataset.labels for dataset in datasets])  # type: ignore[misc]
    return int(labels.max()) + 1


def check_labelled(*datasets: ImageDataset) -> None:
    for dataset in datasets:
        if dataset.labels is None or (dataset.labels < 0).any():
            raise SelfsupError(
                f"dataset {dataset.name or '(unnamed)'} has missing labels; evaluation needs a "
                "fully labelled train and test split"
            )


class IndexStream:
    """Batches of sample indices cut from a stream of seeded permutations of range(count), so
    every batch is full-size and every sample is seen once per pass.

    >>> stream = IndexStream(3, torch.Generator().manual_seed(0))
    >>> sorted(torch.cat([stream.take(2), stream.take(1)]).tolist())
    [0, 1, 2]
    """

    def __init__(self, count: int, generator: torch.Generator) -> None:
        self.count = count
        self.generator = generator
        self.pending = torch.empty(0, dtype=torch.long)

    def take(self, size: int) -> Tensor:
        while len(self.pending) < size:
            self.pending = torch.cat(
                [self.pending, torch.randperm(self.count, generator=self.generator)]
            )
        batch, self.pending = self.pending[:size], self.pending[size:]
        return batch


def sgd_train(
    model: nn.Module,
    batch_loss: Callable[[Tensor], Tensor],
    num_samples: int,
    total_steps: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
    progress: bool = False,
    description: str = "fine-tune",
) -> None:
    """The supervised loop shared by fine-tuning and distillation: SGD with Nesterov momentum
    0.9, a cosine schedule to zero, and full batches from a stream of seeded permutations.

    `batch_loss(indices)` gets the step's sample indices (on `device`) and returns the loss;
    `generator` draws the permutations (and whatever `batch_loss` draws from it). Trains `model`
    in place, in train mode.
    """
    optimizer = torch.optim.SGD(
        param_groups(model, weight_decay), lr=lr, momentum=0.9, nesterov=True
    )
    steps = range(total_steps)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=description, unit="step", leave=False)
    model.train()
    stream = IndexStream(num_samples, generator)
    for step in steps:
        loss = batch_loss(stream.take(batch_size).to(device))
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine(step, total_steps, 0, lr)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress:
            steps.set_postfix(loss=f"{loss.item():.3f}")  # type: ignore[attr-defined]
    optimizer.zero_grad(set_to_none=True)  # the trained model carries no stale gradients


def augment_padding(images: Tensor) -> int:
    """Random-crop padding for images of this size: 2-4 px, an eighth of the side."""
    side = min(images.shape[-2:])
    return min(4, max(2, side // 8), side - 1)  # reflection needs padding < side


def fit_classifier(
    encoder: nn.Module,
    train: ImageDataset,
    preprocess: Preprocess | None = None,
    num_classes: int | None = None,
    epochs: int = 30,
    lr: float | Sequence[float] = 0.05,
    batch_size: int = 256,
    weight_decay: float = 5e-4,
    seed: int = 0,
    device: str | torch.device = "cpu",
    augment: bool = True,
    min_steps: int = 200,
    progress: bool = False,
    val_fraction: float = 0.2,
) -> Classifier:
    """Train a copy of `encoder` plus a new linear classifier end to end; return the pair.

    The caller's encoder is never modified: a deep copy is trained. Each epoch is
    ceil(N / batch_size) steps, and at least `min_steps` steps are taken in total, so a 1%
    subset of a few hundred images still trains the classifier. Batches are drawn from a
    stream of seeded permutations; augmentation is a reflect-padded random crop (2-4 px, an
    eighth of the image side) and a horizontal flip. On the CPU the result depends only on
    `seed`.

    Args:
        encoder: maps float images (B, C, H, W) to features (B, D).
        train: labelled images to train on (often a label-fraction subset).
        preprocess: maps a uint8 batch on `device` to the encoder's float input; default scales
            to [0, 1].
        num_classes: C; default `train.num_classes`, else the largest label + 1.
        epochs: passes over `train`.
        lr: peak SGD learning rate, decayed to zero by a cosine; given several, the one
            `choose_finetune_lr` picks on a validation split of `train`.
        batch_size: images per step (capped at len(train)).
        weight_decay: on weights with ndim >= 2 only (see `selfsup.optim.param_groups`).
        seed: seeds the batch order, the augmentation and any global-RNG use inside the
            network (dropout); the classifier starts at zero.
        device: where training runs.
        augment: apply the crop and flip to training batches.
        min_steps: lower bound on the number of optimisation steps.
        progress: show a tqdm progress bar.
        val_fraction: share of each class held out to choose among several `lr`.

    Returns:
        The trained `Classifier` (its `encoder` the trained copy, its `linear` the new layer).
    """
    settings = dict(
        epochs=epochs, batch_size=batch_size, weight_decay=weight_decay, seed=seed,
        device=device, augment=augment, min_steps=min_steps, progress=progress,
    )  # fmt: skip
    if not isinstance(lr, (int, float)):
        lr = choose_finetune_lr(
            encoder, train, lr, preprocess, num_classes, val_fraction, **settings
        )["lr"]
    check_labelled(train)
    if len(train) == 0:
        raise SelfsupError("fine-tuning needs at least one labelled training image")
    if epochs < 1 or batch_size < 1 or min_steps < 0:
        raise ValueError(
            f"need epochs >= 1, batch_size >= 1, min_steps >= 0; got {epochs}, {batch_size}, "
            f"{min_steps}"
        )
    preprocess = preprocess or make_preprocess()
    num_classes = num_classes or count_classes(train)
    batch_size = min(batch_size, len(train))
    total_steps = max(epochs * math.ceil(len(train) / batch_size), min_steps)
    padding = augment_padding(train.images)

    backbone = copy.deepcopy(encoder).to(device).requires_grad_(True)
    dim = infer_feature_dim(backbone, train.images[:2].to(device), preprocess)
    model = Classifier(backbone, dim, num_classes).to(device)
    generator = torch.Generator().manual_seed(seed)
    images = train.images.to(device)
    labels = train.labels.to(device)  # type: ignore[union-attr]

    def batch_loss(indices: Tensor) -> Tensor:
        batch = images[indices]
        if augment:
            batch = random_crop_flip(batch, padding, generator)
        return F.cross_entropy(model(preprocess(batch)), labels[indices])

    with seeded(seed, device):
        sgd_train(
            model, batch_loss, len(train), total_steps, batch_size, lr, weight_decay,
            generator, device, progress,
        )  # fmt: skip
    return model


def choose_finetune_lr(
    encoder: nn.Module,
    train: ImageDataset,
    lrs: Sequence[float],
    preprocess: Preprocess | None = None,
    num_classes: int | None = None,
    val_fraction: float = 0.2,
    **settings: Any,
) -> dict[str, Any]:
    """The fine-tuning learning rate that scores best on a held-out part of the labelled set.

    Fine-tunes on a stratified `1 - val_fraction` of `train` at each of `lrs` (with the rest of
    `fit_classifier`'s `settings`) and counts correct predictions on the held-out part, never on
    a test set. A pre-trained encoder usually wants a smaller rate than one trained from
    scratch, so one fixed rate undersells one of the two rows it compares. Ties keep the
    earlier rate; a single rate is returned without training.

    Returns:
        {"lr": the chosen rate, "validation_top1": {lr: held-out accuracy in percent}}.
    """
    lrs = [float(lr) for lr in lrs]
    if not lrs or any(not 0 < lr < float("inf") for lr in lrs):
        raise ValueError(f"fine-tuning rates must be finite and > 0, got {lrs}")
    if len(lrs) == 1:
        return {"lr": lrs[0], "validation_top1": {}}
    check_labelled(train)
    num_classes = num_classes or count_classes(train)
    labels: Tensor = train.labels  # type: ignore[assignment]
    fit, validation = stratified_split(labels, val_fraction, settings.get("seed", 0))
    if len(validation) == 0:
        return {"lr": lrs[0], "validation_top1": {}}
    held_out, device = train.subset(validation), settings.get("device", "cpu")
    scores = {}
    for lr in lrs:
        model = fit_classifier(
            encoder, train.subset(fit), preprocess, num_classes, lr=lr, **settings
        )
        scores[lr] = classifier_accuracy(model, held_out, preprocess, device=device)["top1"]
    return {"lr": max(lrs, key=lambda lr: scores[lr]), "validation_top1": scores}


def classifier_accuracy(
    model: nn.Module,
    test: ImageDataset,
    preprocess: Preprocess | None = None,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """`accuracy_report` (top-1, top-k below the class count, balanced) of a model mapping
    images to class logits."""
    logits = extract_features(model, test.images, preprocess, batch_size, device)  # M x C
    return accuracy_report(logits, test.labels)  # type: ignore[arg-type]


def finetune(
    encoder: nn.Module,
    train: ImageDataset,
    test: ImageDataset,
    preprocess: Preprocess | None = None,
    num_classes: int | None = None,
    device: str | torch.device = "cpu",
    **settings: Any,
) -> dict[str, float]:
    """Fine-tune a copy of `encoder` with a linear classifier on `train` (`fit_classifier`, whose
    keyword arguments `settings` are: epochs, lr, batch_size, weight_decay, seed, augment,
    min_steps, progress, val_fraction), then score it on `test`.

    Returns:
        `accuracy_report` of the test set in percent, plus "lr", the learning rate used (chosen
        on a validation split of `train` when `lr` lists several).
    """
    check_labelled(train, test)
    if len(test) == 0:
        raise SelfsupError("fine-tuning needs at least one train and one test image")
    num_classes = num_classes or count_classes(train, test)
    lr = settings.pop("lr", 0.05)
    val_fraction = settings.pop("val_fraction", 0.2)
    if not isinstance(lr, (int, float)):
        lr = choose_finetune_lr(
            encoder, train, lr, preprocess, num_classes, val_fraction, device=device, **settings
        )["lr"]
    model = fit_classifier(
        encoder, train, preprocess, num_classes, lr=lr, device=device, **settings
    )
    return {**classifier_accuracy(model, test, preprocess, device=device), "lr": lr}


def supervised_baseline(
    build_encoder: Callable[[], nn.Module],
    train: ImageDataset,
    test: ImageDataset,
    preprocess: Preprocess | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    **finetune_kwargs: Any,
) -> dict[str, float]:
    """Supervised training from scratch: `finetune` on a freshly built, seeded encoder.

    The reference a pre-trained encoder must beat on the same label fraction (SimCLR [0],
    Table 7's "supervised baseline").

    Args:
        build_encoder: returns a new, randomly initialised encoder; it is called under
            `torch.manual_seed(seed)`, so the initialisation is reproducible.
        train: labelled training images.
        test: labelled test images.
        preprocess: as in `finetune`.
        seed: seeds the initialisation and the training.
        device: where training runs.
        **finetune_kwargs: the rest of `finetune`'s arguments (epochs, lr, batch_size, ...).

    Returns:
        `{"top1": ..., "top3": ..., "top5": ...}` test accuracy in percent.
    """
    with seeded(seed):
        encoder = build_encoder()
    return finetune(encoder, train, test, preprocess, seed=seed, device=device, **finetune_kwargs)
