"""The linear probe learns separable blobs and is a function of its seed."""

from __future__ import annotations

import torch

from selfsup.eval import linear_probe


def blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(4, 16, generator=torch.Generator().manual_seed(99)) * 4
    labels = torch.arange(n) % 4
    # a large offset and scale, which the train-statistics standardisation must undo
    features = (centers[labels] + torch.randn(n, 16, generator=g)) * 50 + 1000
    return features, labels


def test_linear_probe_separates_blobs_deterministically() -> None:
    x_train, y_train = blobs(240, seed=0)
    x_test, y_test = blobs(120, seed=1)
    kwargs = dict(num_classes=4, epochs=30, lr=1e-2, batch_size=64, seed=3)
    first = linear_probe(x_train, y_train, x_test, y_test, **kwargs)
    second = linear_probe(x_train, y_train, x_test, y_test, **kwargs)
    assert first["top1"] > 95.0
    assert first["top5"] == 100.0
    assert first == second
