"""kNN against a float64 loop written straight from InstDisc's weighted vote, and top-k."""

from __future__ import annotations

import math

import pytest
import torch

from selfsup.eval import knn_accuracy, knn_predict, topk_accuracy


def knn_reference(train, labels, queries, num_classes, k, temperature):
    """For each query: the k most cosine-similar train samples add exp(s / τ) to their class."""
    train, queries = train.double(), queries.double()
    out = torch.zeros(len(queries), num_classes, dtype=torch.float64)
    for q in range(len(queries)):
        sims = []
        for i in range(len(train)):
            cos = torch.dot(queries[q], train[i]) / (queries[q].norm() * train[i].norm())
            sims.append((cos.item(), i))
        sims.sort(reverse=True)
        for sim, i in sims[:k]:
            out[q, labels[i]] += math.exp(sim / temperature)
    return out


@pytest.mark.parametrize("k", [1, 5, 30, 100])  # 30 = N and 100 > N: every sample votes
def test_knn_predict_matches_loop_reference(k: int) -> None:
    g = torch.Generator().manual_seed(0)
    train = torch.randn(30, 6, generator=g) * 3
    labels = torch.randint(0, 4, (30,), generator=g)
    queries = torch.randn(11, 6, generator=g)
    scores = knn_predict(train, labels, queries, 4, k=k, temperature=0.2, chunk_size=4)
    expected = knn_reference(train, labels, queries, 4, k, 0.2)
    assert scores.shape == (11, 4)
    torch.testing.assert_close(scores.double(), expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(scores.argmax(1), expected.argmax(1))


def test_knn_accuracy_on_separated_clusters_is_perfect() -> None:
    g = torch.Generator().manual_seed(1)
    centers = torch.eye(5, 16) * 10
    labels = torch.arange(100) % 5
    train = centers[labels] + 0.1 * torch.randn(100, 16, generator=g)
    test_labels = torch.arange(25) % 5
    test = centers[test_labels] + 0.1 * torch.randn(25, 16, generator=g)
    acc = knn_accuracy(train, labels, test, test_labels, 5, k=10)
    assert acc == {"top1": 100.0, "top3": 100.0, "top5": None, "balanced": 100.0}  # 5 classes


def test_knn_rejects_bad_arguments() -> None:
    x, y = torch.randn(4, 3), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="k must be"):
        knn_predict(x, y, x, 2, k=0)
    with pytest.raises(ValueError, match="widths differ"):
        knn_predict(x, y, torch.randn(2, 5), 2)


def test_topk_accuracy_exact_values() -> None:
    scores = torch.tensor(
        [
            [0.9, 0.05, 0.03, 0.02],  # label 0: rank 1
            [0.1, 0.2, 0.3, 0.4],  # label 2: rank 2
            [0.4, 0.3, 0.2, 0.1],  # label 2: rank 3
            [0.4, 0.3, 0.2, 0.1],  # label 3: rank 4
        ]
    )
    labels = torch.tensor([0, 2, 2, 3])
    acc = topk_accuracy(scores, labels, ks=(1, 2, 3, 5))
    assert acc == {"top1": 25.0, "top2": 50.0, "top3": 75.0, "top5": 100.0}  # k=5 capped at 4
    assert all(isinstance(v, float) for v in acc.values())
    with pytest.raises(ValueError):
        topk_accuracy(scores, labels[:2])
