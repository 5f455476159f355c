"""evaluate(): the expected rows for every encoder, protocol, label fraction and baseline."""

from __future__ import annotations

import math

import pytest
import torch

from selfsup.errors import SelfsupError
from selfsup.eval import EvalConfig, evaluate


def label_fraction_indices(labels, fraction=None, per_class=None, seed=0):
    """Stand-in for selfsup.data.label_fraction_indices: a seeded class-balanced pick."""
    g = torch.Generator().manual_seed(seed)
    picked = []
    for c in labels.unique():
        members = (labels == c).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=g)]
        count = per_class if per_class is not None else math.ceil(fraction * len(members))
        picked.append(members[:count])
    return torch.cat(picked).sort().values


@pytest.fixture(autouse=True)
def stand_in_subsets(monkeypatch) -> None:
    monkeypatch.setattr(
        "selfsup.data.label_fraction_indices", label_fraction_indices, raising=False
    )


TINY = EvalConfig(
    k=5, label_fractions=("50%", "4-per-class"), finetune_epochs=1,
    finetune_batch_size=8, finetune_min_steps=2, batch_size=16,
)  # fmt: skip


def test_evaluate_returns_every_row(make_encoder, make_bright_dark) -> None:
    train, test = make_bright_dark(24, seed=0), make_bright_dark(10, seed=1)
    encoders = {"a": make_encoder(seed=0), "b": make_encoder(seed=1)}
    rows = evaluate(encoders, train, test, None, TINY, build_random_encoder=make_encoder)

    fractions = ("50%", "4-per-class")

    def frozen(name):
        rows = [(name, "kNN (k=5)", "100%"), (name, "linear", "100%")]
        return rows + [(name, "linear", text) for text in fractions]

    expected = []
    for name in ("a", "b"):
        expected += frozen(name) + [(name, "fine-tune", text) for text in fractions]
    expected += frozen("random init") + [("random init", "supervised", t) for t in fractions]
    expected += frozen("raw pixels")
    expected += [("majority class", "majority class", t) for t in ("100%", *fractions)]
    assert [(r["encoder"], r["protocol"], r["labels"]) for r in rows] == expected
    for row in rows:
        assert 0.0 <= row["top1"] <= 100.0
        assert row["top3"] is None and row["top5"] is None  # 2 classes: top-k says nothing
        assert row["balanced"] is None  # balanced classes: no separate column
        assert row["dataset"] == "bright-dark"
    majority = [r for r in rows if r["encoder"] == "majority class"]
    assert all(r["top1"] == 50.0 for r in majority)  # 5 of each class in the test set
    assert [r["train_images"] for r in rows[:6]] == [24, 24, 12, 8, 12, 8]


def test_evaluate_without_baselines(make_encoder, make_bright_dark) -> None:
    train, test = make_bright_dark(24, seed=0), make_bright_dark(10, seed=1)
    config = EvalConfig(**{**TINY.__dict__, "baselines": False, "label_fractions": ()})
    rows = evaluate(
        {"a": make_encoder()}, train, test, config=config, build_random_encoder=make_encoder
    )
    assert [r["protocol"] for r in rows] == ["kNN (k=5)", "linear"]


def test_eval_config_rejects_bad_values() -> None:
    with pytest.raises(SelfsupError, match="half"):
        EvalConfig(label_fractions=("1%", "half"))
    with pytest.raises(ValueError, match="k must be"):
        EvalConfig(k=0)
