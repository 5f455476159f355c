"""Every registered study end to end at a tiny size on scikit-learn's digits: each cell's
measurements are accuracies in range, the finding is judged, the plots, table and commands are
written, and a second run resumes every cell instead of training again."""

from __future__ import annotations

import json

import pytest

from selfsup.experiments.study import STUDIES, run_study

AXES = {
    "randbit": {"bits": [0, 4], "method.temperature": [0.2]},
    "augment-pairs": {"first": ["crop", "rotate"], "second": ["colour"]},
    "multidigits": {
        "large_side": [6, 12],
        "method.temperature": [0.2],
        "canvas": [24],
        "small_side": [6],
        "train_images": [200],
        "test_images": [100],
    },
    "digits-on-images": {"unique": [1, 5], "method.temperature": [0.2]},
    "local-features": {"learner": ["simclr", "random-init"], "clusters": [3], "images": [16]},
    "simclr-head": {"head": ["none", "nonlinear"], "train.seed": [0]},
    "simclr-batch-epochs": {"train.batch_size": [32, 64], "train.epochs": [1, 2]},
    "simclr-temperature": {"train.batch_size": [64], "method.temperature": [0.2, 1.0]},
    "colour-strength": {"learner": ["simclr", "supervised"], "augment.jitter_strength": [0.25, 1]},
    "byol-vs-simclr-batch": {"method.name": ["simclr", "byol"], "train.batch_size": [32, 64]},
    "barlow-projector": {"projector": [16, 32], "train.batch_size": [32, 64]},
    "moco-momentum": {"method.momentum": [0.0, 0.99]},
}
"""Each study's tiny grid: two to four cells that still let its report judge the claim."""

OVERRIDES = {
    "multidigits": {"augment.size": 12},
    "byol-vs-simclr-batch": {"model.head_widths": [16, 128]},  # BYOL's predictor ends at 128
    "moco-momentum": {"method.queue_size": 128},
}

pytestmark = pytest.mark.usefixtures("one_thread")


def test_every_study_has_a_tiny_grid_here() -> None:
    assert set(AXES) == set(STUDIES)


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_a_tiny_study_runs_reports_and_resumes(name, tmp_path, tiny) -> None:
    study, overrides = STUDIES[name], {**tiny, **OVERRIDES.get(name, {})}
    quiet = {"announce": lambda message: None}
    summary = run_study(name, "small", overrides, tmp_path, axes=AXES[name], **quiet)
    assert len(summary["cells"]) >= 2
    for cell in summary["cells"]:
        scores = [cell[column] for column in study.columns if column.startswith(("linear", "nmi"))]
        assert scores and all(score is None or 0.0 <= score <= 100.0 for score in scores)
        assert any(score is not None for score in scores)
        assert f"selfsup study {name} --budget small" in cell["command"]
    finding = summary["finding"]
    assert isinstance(finding["reproduced"], bool) and finding["evidence"] and finding["claim"]
    assert finding["plots"] and all((tmp_path / p).stat().st_size > 0 for p in finding["plots"])
    table = (tmp_path / "study.md").read_text()
    assert f"# Study {name} (small budget)" in table and "| " + study.columns[0] in table
    assert json.loads((tmp_path / "study.json").read_text())["study"] == name
    if study.baselines:  # the floors are printed above the cells, under the same probe
        floors = summary["baselines"]
        assert set(floors) == {"raw pixels", "random init", "majority class"}
        assert all(0.0 < top1 <= 100.0 for top1 in floors.values())
        assert f"raw pixels {floors['raw pixels']:.2f}" in table
    else:
        assert summary["baselines"] is None and "**Baselines**" not in table
    messages: list[str] = []
    again = run_study(name, "small", overrides, tmp_path, axes=AXES[name], announce=messages.append)
    assert messages == [
        f"study {name} (small): {len(summary['cells'])} cells, {len(summary['cells'])} done"
    ]
    assert again["finding"]["evidence"] == finding["evidence"]
    assert again["baselines"] == summary["baselines"]
