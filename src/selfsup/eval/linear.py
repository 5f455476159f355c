"""Linear probe: a single linear layer trained on frozen, precomputed features.

The standard measure of representation quality (SimCLR [0], Sec. 4 and App. B.6): the
encoder is frozen and only a linear classifier on its features is trained. Here the features
are computed once, standardised with the training set's statistics, and the layer is trained
with AdamW under a cosine schedule. The problem is convex, so Adam's per-weight step sizes
make one default learning rate work across encoders whose feature scales differ, where SGD
would need a sweep.

[0] A Simple Framework for Contrastive Learning of Visual Representations, Chen et al. 2020,
    arXiv:2002.05709.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from selfsup.eval.metrics import topk_accuracy


def linear_probe(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    num_classes: int,
    epochs: int = 100,
    lr: float = 1e-3,
    weight_decay: float = 5e-4,
    batch_size: int = 1024,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Train a linear classifier on frozen features and report its test accuracy.

    Features are standardised with the train mean and std (computed once, then fixed); the
    layer starts at zero, so with the seeded shuffling the result is a function of `seed`.

    Args:
        train_features: (N, D) frozen features of the training set.
        train_labels: (N,) integer labels in [0, num_classes).
        test_features: (M, D) features of the test set.
        test_labels: (M,) labels.
        num_classes: C.
        epochs: passes over the training features.
        lr: peak AdamW learning rate, decayed to zero by a cosine over all steps.
        weight_decay: AdamW decoupled weight decay on the weight matrix (not the bias).
        batch_size: features per step.
        seed: seeds the shuffling.
        device: where training runs.

    Returns:
        `{"top1": ..., "top3": ..., "top5": ...}` test accuracy in percent.

    >>> x = torch.cat([torch.randn(50, 4) - 3, torch.randn(50, 4) + 3])
    >>> y = torch.arange(2).repeat_interleave(50)
    >>> linear_probe(x, y, x, y, num_classes=2, epochs=20)["top1"]
    100.0
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    if train_features.ndim != 2 or train_labels.shape != train_features.shape[:1]:
        raise ValueError("expected train_features (N, D) and train_labels (N,)")
    if len(train_features) == 0:
        raise ValueError("no training features")

    x_train = train_features.to(device, torch.float32)
    y_train = train_labels.to(device, torch.long)
    mean = x_train.mean(dim=0)
    std = x_train.std(dim=0).clamp_min(1e-6) if len(x_train) > 1 else torch.ones_like(mean)
    x_train = (x_train - mean) / std
    x_test = (test_features.to(device, torch.float32) - mean) / std

    classifier = nn.Linear(x_train.shape[1], num_classes).to(device)
    nn.init.zeros_(classifier.weight)
    nn.init.zeros_(classifier.bias)
    optimizer = torch.optim.AdamW(
        [
            {"params": [classifier.weight], "weight_decay": weight_decay},
            {"params": [classifier.bias], "weight_decay": 0.0},
        ],
        lr=lr,
    )

    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    total_steps = epochs * steps_per_epoch
    step = 0
    for _ in range(epochs):
        order = torch.randperm(len(x_train), generator=generator).to(device)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
            loss = F.cross_entropy(classifier(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1

    with torch.no_grad():
        logits = classifier(x_test)  # M x C
    return topk_accuracy(logits, test_labels.to(device), ks=(1, 3, 5))
