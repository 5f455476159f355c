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
    k=5, linear_epochs=3, label_fractions=("50%", "4-per-class"), finetune_epochs=1,
    finetune_batch_size=8, finetune_min_steps=2, batch_size=16,
)  # fmt: skip


def test_evaluate_returns_every_row(make_encoder, make_bright_dark) -> None:
    train, test = make_bright_dark(24, seed=0), make_bright_dark(10, seed=1)
    encoders = {"a": make_encoder(seed=0), "b": make_encoder(seed=1)}
    rows = evaluate(encoders, train, test, None, TINY, build_random_encoder=make_encoder)

    expected = []
    for name in ("a", "b"):
        expected += [(name, "kNN (k=5)", "100%"), (name, "linear", "100%")]
        expected += [(name, "fine-tune", "50%"), (name, "fine-tune", "4-per-class")]
    expected += [("random init", "kNN (k=5)", "100%"), ("random init", "linear", "100%")]
    expected += [("random init", "supervised", "50%"), ("random init", "supervised", "4-per-class")]
    assert [(r["encoder"], r["protocol"], r["labels"]) for r in rows] == expected
    for row in rows:
        assert 0.0 <= row["top1"] <= row["top3"] <= row["top5"] == 100.0  # 2 classes
        assert row["dataset"] == "bright-dark"
    assert [r["train_images"] for r in rows[:4]] == [24, 24, 12, 8]


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
