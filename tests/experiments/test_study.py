"""`selfsup study`: a tiny RandBit sweep on scikit-learn's digits writes its table, plot and
cells' commands, resumes finished cells, and refuses unknown studies, axes and cells."""

from __future__ import annotations

import json

import pytest

from selfsup.errors import SelfsupError
from selfsup.experiments.study import parse_axes, run_study

TINY = {
    "data.dataset": "digits",
    "data.train_subset": None,
    "model.base_width": 4,
    "model.head_widths": [16, 8],
    "augment.size": 8,
    "train.time_budget": None,
    "train.epochs": 1,
    "train.batch_size": 64,
    "train.device": "cpu",
    "train.progress": False,
    "eval.linear_max_iter": 20,
}

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_tiny_randbit_sweep_writes_its_study_and_resumes(tmp_path) -> None:
    axes = {"bits": [0, 4], "method.temperature": [0.2]}
    messages: list[str] = []
    summary = run_study("randbit", "small", TINY, tmp_path, axes=axes, announce=messages.append)
    assert [cell["cell"] for cell in summary["cells"]] == [
        "bits=0,method.temperature=0.2",
        "bits=4,method.temperature=0.2",
    ]
    for cell in summary["cells"]:
        assert 0.0 <= cell["linear"] <= 100.0 and cell["steps"] > 0
        assert "--cell" in cell["command"] and "--grid bits=0,4" in cell["command"]
    assert isinstance(summary["finding"]["reproduced"], bool)
    assert (tmp_path / "randbit.png").stat().st_size > 0
    table = (tmp_path / "study.md").read_text()
    assert "| bits | method.temperature | linear |" in table and "selfsup study randbit" in table
    assert json.loads((tmp_path / "study.json").read_text())["study"] == "randbit"
    first = tmp_path / "cells" / "bits=0,method.temperature=0.2" / "result.json"
    second = tmp_path / "cells" / "bits=4,method.temperature=0.2" / "result.json"
    kept = second.read_text()
    first.unlink()  # as if the study had stopped before its first cell finished
    messages.clear()
    again = run_study("randbit", "small", TINY, tmp_path, axes=axes, announce=messages.append)
    assert messages[0].endswith("2 cells, 1 done") and len(messages) == 2
    assert second.read_text() == kept and first.is_file()
    assert [c["cell"] for c in again["cells"]] == [c["cell"] for c in summary["cells"]]


def test_unknown_names_fail_with_the_choices() -> None:
    with pytest.raises(SelfsupError, match=r"unknown study 'nope'; choose one of .*randbit"):
        run_study("nope")
    with pytest.raises(SelfsupError, match="no axis 'width'"):
        run_study("randbit", axes={"width": [1]})
    with pytest.raises(SelfsupError, match="budget"):
        run_study("randbit", "huge")
    with pytest.raises(SelfsupError, match="AXIS=VALUE"):
        parse_axes(["bits"])


def test_tiny_feature_suppression_studies_probe_both_features(tmp_path) -> None:
    multidigits = run_study(
        "multidigits",
        "small",
        {**TINY, "augment.size": 12},
        tmp_path / "multidigits",
        axes={
            "large_side": [6, 12],
            "method.temperature": [0.2],
            "canvas": [24],
            "small_side": [6],
            "train_images": [200],
            "test_images": [100],
        },
        announce=lambda message: None,
    )
    for cell in multidigits["cells"]:
        assert 0.0 <= cell["linear_small"] <= 100.0 and 0.0 <= cell["linear_large"] <= 100.0
    assert (tmp_path / "multidigits" / "multidigits.png").stat().st_size > 0
    digits = run_study(
        "digits-on-images",
        "small",
        TINY,
        tmp_path / "digits",
        axes={"unique": [1, 5], "method.temperature": [0.2]},
        announce=lambda message: None,
    )
    first, second = digits["cells"]
    assert first["unique"] == 1 and second["unique"] == 5
    assert 0.0 <= first["linear_image"] <= 100.0 and 0.0 <= second["linear_digit"] <= 100.0
    assert "linear_image" in (tmp_path / "digits" / "study.md").read_text()
