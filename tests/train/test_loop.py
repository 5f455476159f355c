"""The training loop: exact resume, NaN stop that keeps the last good checkpoint, bad batch size,
training for a time budget."""

import pytest
import torch
from torch import nn

from selfsup.augment.makers import AugmentedViews
from selfsup.config import load_config
from selfsup.data import load_dataset
from selfsup.errors import SelfsupError
from selfsup.methods import build_method
from selfsup.models import build_encoder
from selfsup.train import load_checkpoint, read_metrics, train
from selfsup.train.budget import parse_duration, steps_within_budget

MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]


def _config(run_dir, epochs: int, **overrides):
    return load_config(
        None,
        {
            "run_dir": str(run_dir),
            "model.base_width": 4,
            "model.head_widths": [16, 8],
            "train.epochs": epochs,
            "train.batch_size": 16,
            "train.progress": False,
            "train.log_every": 2,
            "train.device": "cpu",
            "augment.crop_scale": [0.3, 1.0],
            "train.quality_sample": 0,  # its views would count as batches in views_until_killed
            **overrides,
        },
    )


def _images() -> torch.Tensor:
    return load_dataset("synthetic", "train", synthetic_size=48, image_size=16).images


def _fresh_method(config) -> nn.Module:
    torch.manual_seed(config.train.seed)
    encoder = build_encoder("resnet18", in_channels=3, base_width=config.model.base_width)
    return build_method(encoder, config)


class _Killed(Exception):
    """Stands for the process dying mid-run."""


def _train_fresh(
    run_dir,
    epochs: int,
    resume: bool = False,
    killed_after: int | None = None,
    dtype: torch.dtype = torch.float32,
    **overrides,
) -> nn.Module:
    """Build the method from scratch (as a new process would) and train it into `run_dir` in
    `dtype`; with `killed_after`, the run dies when it asks for that many plus one batches of
    views."""
    config = _config(run_dir, epochs, **overrides)
    method = _fresh_method(config).to(dtype)
    make_views = AugmentedViews.from_config(config.augment, 2, MEAN, STD, dtype)
    calls = 0

    def views_until_killed(batch, indices, draws):
        nonlocal calls
        calls += 1
        if killed_after is not None and calls > killed_after:
            raise _Killed
        return make_views(batch, indices, draws)

    try:
        train(method, _images(), views_until_killed, config, run_dir, resume=resume)
    except _Killed:
        assert killed_after is not None
    return method


def test_resume_gives_identical_weights(tmp_path) -> None:
    straight = _train_fresh(tmp_path / "straight", epochs=2)
    _train_fresh(tmp_path / "resumed", epochs=2, killed_after=4)  # dies in epoch 2 (3 steps each)
    second = _train_fresh(tmp_path / "resumed", epochs=2, resume=True)
    expected, resumed = straight.state_dict(), second.state_dict()
    assert expected.keys() == resumed.keys()
    for name in expected:
        assert torch.equal(expected[name], resumed[name]), name
    assert load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")["epoch"] == 2
    records = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    assert {"loss", "lr", "img_per_s"} <= records[0].keys()
    assert any("epoch_loss" in r for r in records)


class _LossBecomesNaN(nn.Module):
    """A method whose loss turns NaN after `good_steps` steps."""

    def __init__(self, good_steps: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3))
        self.good_steps = good_steps
        self.steps = 0

    def forward(self, views):
        self.steps += 1
        loss = (views[0].mean((0, 2, 3)) * self.weight).sum()
        return loss * float("nan") if self.steps > self.good_steps else loss


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path) -> None:
    images = _images()  # 48 images, batch 16 -> 3 steps per epoch
    config = _config(tmp_path, epochs=3, **{"optim.optimizer": "sgd", "optim.lr": 0.01})
    method = _LossBecomesNaN(good_steps=4)
    with pytest.raises(SelfsupError, match=r"NaN/inf at epoch 2.*last good checkpoint is kept"):
        make_views = AugmentedViews.from_config(config.augment, 1, MEAN, STD)
        train(method, images, make_views, config, tmp_path)
    kept = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert kept["epoch"] == 1
    assert torch.isfinite(kept["method"]["weight"]).all()


def test_batch_larger_than_dataset_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(SelfsupError, match="larger than the dataset"):
        _train_fresh(tmp_path, epochs=1, **{"train.batch_size": 100})


def test_checkpoint_from_other_architecture_is_refused(tmp_path) -> None:
    _train_fresh(tmp_path, epochs=1)
    with pytest.raises(SelfsupError, match="different architecture"):
        _train_fresh(tmp_path, epochs=2, resume=True, **{"model.base_width": 8})
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["epoch"] == 1


def test_compiled_step_trains_like_the_eager_one(tmp_path, one_thread) -> None:
    """`train.compile` changes how the step runs, not what it computes, and keeps the
    state_dict keys, so checkpoints and exported encoders are unchanged.

    Compared in float64: a compiled graph may fuse and reorder sums, which in float32 changes
    the weights by up to 1.7e-2 after 3 steps of this tiny net (torch 2.4's inductor; 1.7e-6 on
    2.14),
    so a float32 comparison cannot tell a wrong graph from rounding. In float64 the measured gap
    after 3 steps is under 8e-15 absolute and 1.5e-12 relative on torch 2.4 and 2.14; the bounds
    below sit ~100x over that and ~10^6x under a single float32 rounding."""
    eager = _train_fresh(tmp_path / "eager", epochs=1, dtype=torch.float64)
    compiled = _train_fresh(
        tmp_path / "compiled", epochs=1, dtype=torch.float64, **{"train.compile": True}
    )
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    for name, value in eager.state_dict().items():
        if value.is_floating_point():
            assert value.dtype == torch.float64, name
            assert torch.allclose(compiled.state_dict()[name], value, rtol=1e-10, atol=1e-12), name


def test_quality_is_logged_every_epoch_and_leaves_the_run_unchanged(tmp_path) -> None:
    plain = _train_fresh(tmp_path / "plain", epochs=2)
    probed = _train_fresh(tmp_path / "probed", epochs=2, **{"train.quality_sample": 32})
    for name, value in plain.state_dict().items():
        assert torch.equal(probed.state_dict()[name], value), name  # own generator, eval mode
    records = read_metrics(tmp_path / "probed" / "metrics.jsonl")
    quality = [r for r in records if "quality/effective_rank" in r]
    assert [r["step"] for r in quality] == [3, 6]  # after each 3-step epoch
    for record in quality:
        assert 1.0 <= record["quality/effective_rank"] <= 32
        assert 0.0 <= record["quality/alignment"] <= 4.0
        assert record["quality/uniformity"] <= 0.0
    assert not any(
        "quality/effective_rank" in r for r in read_metrics(tmp_path / "plain" / "metrics.jsonl")
    )


def test_time_budget_parsing_and_planning() -> None:
    assert parse_duration("15m") == 900.0 and parse_duration("90s") == 90.0
    assert parse_duration("1.5h") == 5400.0 and parse_duration("40") == 40.0
    for bad in ("", "-1", "0", "nan", "soon", "15 parsecs"):
        with pytest.raises(ValueError, match="time_budget"):
            parse_duration(bad)
    # 13 steps took 10 s of a 100 s budget at 0.5 s/step: 180 more fit.
    assert steps_within_budget(100.0, 10.0, 13, 0.5, cap=1000) == 193
    assert steps_within_budget(100.0, 10.0, 13, 0.5, cap=50) == 50  # train.epochs caps it
    assert steps_within_budget(100.0, 120.0, 13, 0.5, cap=50) == 14  # over budget: one more


def test_time_budget_plans_again_from_a_longer_window(tmp_path, monkeypatch) -> None:
    """The first plan (at step 13) is replaced after a tenth of the steps left (at least
    MEASURE_STEPS), and again halfway through what is left then; the run ends on the third."""
    import selfsup.train.budget as budget

    plans = iter([30, 50, 45])  # a later plan may also grow the run (up to the epochs cap)
    calls = []

    def plan(budget, elapsed, steps_done, step_seconds, cap):
        calls.append(steps_done)
        return next(plans)

    monkeypatch.setattr(budget, "steps_within_budget", plan)
    _train_fresh(tmp_path, epochs=30, **{"train.time_budget": "1h", "train.log_every": 1})
    # 10% of the 17 steps left is below MEASURE_STEPS; then half of the 27 left is 14
    assert calls == [13, 13 + 10, 23 + 14]
    state = load_checkpoint(tmp_path / "checkpoints")
    assert state["step"] == state["total_steps"] == 45 and state["budget_final"]


def test_time_budget_sets_the_schedule_and_resumes_exactly(tmp_path, monkeypatch) -> None:
    """With the planned step count pinned (the step time is the only thing measured), a budget
    run trains exactly that many steps on a schedule ending there, and a run killed after the
    plan resumes on the same schedule to the same weights."""
    import selfsup.train.budget as budget

    planned = 20  # of a 30-step cap (10 epochs of 3 steps); planned at step 13
    monkeypatch.setattr(budget, "steps_within_budget", lambda *args, **kwargs: planned)
    budget = {"train.time_budget": "1h", "train.log_every": 1}
    straight = _train_fresh(tmp_path / "straight", epochs=10, **budget)
    _train_fresh(tmp_path / "resumed", epochs=10, killed_after=16, **budget)  # dies in epoch 6
    assert load_checkpoint(tmp_path / "resumed" / "checkpoints")["total_steps"] == planned
    resumed = _train_fresh(tmp_path / "resumed", epochs=10, resume=True, **budget)
    for name, value in straight.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name
    state = load_checkpoint(tmp_path / "straight" / "checkpoints")
    assert state["step"] == planned and state["epoch"] == 7  # the 7th epoch stops after 2 steps
    records = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    lrs = {r["step"]: r["lr"] for r in records if "lr" in r}
    assert max(lrs) == planned and lrs[planned] == pytest.approx(0.0, abs=1e-12)  # cosine's end


def test_time_budget_stops_a_long_run_early(tmp_path) -> None:
    model = _train_fresh(tmp_path, epochs=10_000, **{"train.time_budget": "2s"})
    state = load_checkpoint(tmp_path / "checkpoints")
    assert 13 < state["step"] < 30_000 and state["total_steps"] == state["step"]
    assert model is not None
