"""Top-k accuracy from class scores, the one number every evaluation protocol reports."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def topk_accuracy(
    scores: Tensor, labels: Tensor, ks: Sequence[int] = (1, 3, 5)
) -> dict[str, float]:
    """Percentage of samples whose label is among their k highest-scoring classes.

    k is capped at the number of classes, so with 2 classes "top5" is 100%. Keys keep the
    requested k (`"top5"`) so tables line up across datasets.

    Args:
        scores: (N, C) class scores or logits; higher means more likely.
        labels: (N,) integer labels in [0, C).
        ks: the k values to report.

    Returns:
        `{"top1": ..., "top3": ..., ...}` in percent, as Python floats.

    >>> topk_accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1]), ks=(1, 2))
    {'top1': 50.0, 'top2': 100.0}
    """
    if scores.ndim != 2 or labels.shape != scores.shape[:1]:
        raise ValueError(
            f"expected scores (N, C) and labels (N,), got {tuple(scores.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if len(labels) == 0:
        raise ValueError("cannot compute accuracy on zero samples")
    if any(k < 1 for k in ks):
        raise ValueError(f"every k must be >= 1, got {tuple(ks)}")
    num_classes = scores.shape[1]
    top = scores.topk(min(max(ks), num_classes), dim=1).indices  # N x kmax, best first
    hits = top == labels.to(top.device).view(-1, 1)  # N x kmax, at most one True per row
    n = len(labels)
    return {
        f"top{k}": 100.0 * int(torch.count_nonzero(hits[:, : min(k, num_classes)])) / n for k in ks
    }


def balanced_accuracy(predicted: Tensor, labels: Tensor) -> float:
    """Mean per-class recall, in percent, over the classes present in `labels`.

    Equals top-1 on balanced data; on imbalanced data it does not reward predicting the
    majority class (which scores 100 / number of classes).

    >>> balanced_accuracy(torch.tensor([0, 0, 0, 0]), torch.tensor([0, 0, 0, 1]))
    50.0
    """
    if predicted.shape != labels.shape or labels.ndim != 1 or len(labels) == 0:
        raise ValueError("expected predictions and labels of the same (N,) shape, N >= 1")
    labels = labels.to(predicted.device)
    recalls = [(predicted[labels == label] == label).float().mean() for label in labels.unique()]
    return 100.0 * torch.stack(recalls).mean().item()


def accuracy_report(scores: Tensor, labels: Tensor, ks: Sequence[int] = (3, 5)) -> dict:
    """Top-1, top-k for each k below the number of classes C (None otherwise: top-C is always
    100%), and balanced accuracy, all in percent: what every protocol's row reports.

    >>> report = accuracy_report(torch.tensor([[0.2, 0.8], [0.9, 0.1]]), torch.tensor([1, 1]))
    >>> report["top1"], report["top3"], report["balanced"]
    (50.0, None, 50.0)
    """
    num_classes = scores.shape[1] if scores.ndim == 2 else 0
    useful = [k for k in ks if k < num_classes]
    report: dict[str, float | None] = dict(topk_accuracy(scores, labels, ks=(1, *useful)))
    for k in ks:
        report.setdefault(f"top{k}", None)
    report["balanced"] = balanced_accuracy(scores.argmax(1), labels.to(scores.device))
    return report
