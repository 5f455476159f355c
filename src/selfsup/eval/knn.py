"""Weighted k-nearest-neighbour classification on frozen features.

The protocol of InstDisc [0], used by most self-supervised papers as a cheap monitor: cosine
similarity to every training feature, the k most similar vote with weight exp(s / τ).

[0] Unsupervised Feature Learning via Non-Parametric Instance Discrimination, Wu et al. 2018,
    arXiv:1805.01978.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from selfsup.eval.metrics import accuracy_report


def knn_predict(
    train_features: Tensor,
    train_labels: Tensor,
    query_features: Tensor,
    num_classes: int,
    k: int = 200,
    temperature: float = 0.1,
    chunk_size: int = 1024,
) -> Tensor:
    """Class scores for each query: the sum of exp(cos / τ) over its k nearest training samples.

    Computed on `train_features`' device, `chunk_size` queries at a time so the (chunk, N)
    similarity matrix stays small. With k >= N every training sample votes. Weights are the
    literal exp(s / τ), so τ below ~0.012 overflows float32.

    Args:
        train_features: (N, D) features of the labelled bank; need not be normalised.
        train_labels: (N,) integer labels in [0, num_classes).
        query_features: (Q, D) features to classify.
        num_classes: C, the width of the returned scores.
        k: neighbours that vote.
        temperature: τ; smaller makes the nearest neighbours dominate.
        chunk_size: queries per similarity matrix.

    Returns:
        (Q, C) float scores on `train_features`' device.

    >>> bank = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> knn_predict(bank, torch.tensor([0, 1]), torch.tensor([[2.0, 0.1]]), 2, k=1).argmax(1)
    tensor([0])
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if train_features.ndim != 2 or query_features.ndim != 2:
        raise ValueError("train_features and query_features must be (N, D) and (Q, D)")
    if train_features.shape[1] != query_features.shape[1]:
        raise ValueError(
            f"feature widths differ: train {train_features.shape[1]}, "
            f"query {query_features.shape[1]}"
        )
    if train_labels.shape != train_features.shape[:1]:
        raise ValueError(f"{len(train_labels)} labels for {len(train_features)} train features")
    if len(train_features) == 0:
        raise ValueError("the kNN bank is empty")

    device = train_features.device
    bank = F.normalize(train_features.float(), dim=1)  # N x D
    bank_labels = train_labels.to(device=device, dtype=torch.long)
    k = min(k, len(bank))
    scores = []
    for start in range(0, len(query_features), chunk_size):
        query = F.normalize(query_features[start : start + chunk_size].to(device).float(), dim=1)
        sim = query @ bank.T  # chunk x N cosine similarities
        top_sim, top_idx = sim.topk(k, dim=1)  # chunk x k
        weights = (top_sim / temperature).exp()
        votes = torch.zeros(len(query), num_classes, device=device)
        votes.scatter_add_(1, bank_labels[top_idx], weights)  # chunk x C
        scores.append(votes)
    if not scores:
        return torch.zeros(0, num_classes, device=device)
    return torch.cat(scores)


def knn_accuracy(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    num_classes: int,
    k: int = 200,
    temperature: float = 0.1,
    chunk_size: int = 1024,
) -> dict[str, float | None]:
    """Weighted kNN accuracy (percent) of test features against a labelled bank.

    See `knn_predict` for the arguments; `test_labels` is (Q,).

    Returns:
        `accuracy_report`: top-1, top-3/top-5 where below the class count, balanced accuracy.
    """
    scores = knn_predict(
        train_features, train_labels, test_features, num_classes, k, temperature, chunk_size
    )
    return accuracy_report(scores, test_labels.to(scores.device))
