"""Class-balanced label subsets and the label-budget parser."""

from __future__ import annotations

import math

import pytest
import torch

from selfsup.data import label_fraction_indices, parse_label_fraction
from selfsup.errors import SelfsupError


def make_labels() -> torch.Tensor:
    counts = [100, 37, 5, 1, 250]  # unbalanced on purpose
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    labels = torch.cat([labels, torch.full((20,), -1)])  # unlabeled samples
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))]


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.25, 1.0])
def test_fraction_is_class_balanced(fraction: float) -> None:
    labels = make_labels()
    indices = label_fraction_indices(labels, fraction=fraction, seed=0)
    assert indices.dtype == torch.int64
    assert torch.equal(indices, indices.sort().values)
    assert len(indices.unique()) == len(indices)
    chosen = labels[indices]
    assert (chosen >= 0).all()
    for c in range(5):
        n_c = int((labels == c).sum())
        assert int((chosen == c).sum()) == max(1, math.floor(fraction * n_c + 0.5))


def test_seed_reproducible_and_different() -> None:
    labels = make_labels()
    a = label_fraction_indices(labels, fraction=0.1, seed=3)
    assert torch.equal(a, label_fraction_indices(labels, fraction=0.1, seed=3))
    assert not torch.equal(a, label_fraction_indices(labels, fraction=0.1, seed=4))


def test_per_class() -> None:
    labels = make_labels()
    chosen = labels[label_fraction_indices(labels, per_class=1, seed=0)]
    assert torch.equal(chosen.sort().values, torch.arange(5))
    with pytest.raises(SelfsupError, match="only 1 labelled"):
        label_fraction_indices(labels, per_class=2)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"fraction": 0.1, "per_class": 2}, {"fraction": 0.0}, {"fraction": 1.5}, {"per_class": 0}],
)
def test_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(SelfsupError):
        label_fraction_indices(make_labels(), **kwargs)


def test_no_labelled_samples() -> None:
    with pytest.raises(SelfsupError, match="no labelled"):
        label_fraction_indices(torch.full((5,), -1), fraction=0.5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1%", {"fraction": 0.01}),
        ("10%", {"fraction": 0.1}),
        ("100%", {"fraction": 1.0}),
        ("0.01", {"fraction": 0.01}),
        (" 0.5 ", {"fraction": 0.5}),
        ("25-per-class", {"per_class": 25}),
        ("4 per class", {"per_class": 4}),
    ],
)
def test_parse_label_fraction(text: str, expected: dict) -> None:
    assert parse_label_fraction(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "abc", "0%", "150%", "5", "-0.1", "nan", "0-per-class", "x%"])
def test_parse_label_fraction_rejects(text: str) -> None:
    with pytest.raises(SelfsupError):
        parse_label_fraction(text)
