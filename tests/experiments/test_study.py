"""`selfsup study`: a tiny RandBit sweep on scikit-learn's digits writes its table, plot and
cells' commands, resumes finished cells, and refuses unknown studies, axes and cells; grids,
cell configs and the supervised reference behave as documented."""

from __future__ import annotations

import json

import pytest

from selfsup.config import load_config, recipe_path
from selfsup.errors import SelfsupError
from selfsup.experiments.study import STUDIES, cell_config, grid, parse_axes, run_study

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_tiny_randbit_sweep_writes_its_study_and_resumes(tmp_path, tiny) -> None:
    axes = {"bits": [0, 4], "method.temperature": [0.2]}
    messages: list[str] = []
    summary = run_study("randbit", "small", tiny, tmp_path, axes=axes, announce=messages.append)
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
    again = run_study("randbit", "small", tiny, tmp_path, axes=axes, announce=messages.append)
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


def test_a_study_of_several_grids_runs_each_once_and_overrides_each() -> None:
    study = STUDIES["digits-on-images"]
    cells = grid(study, "small", {"unique": [1, 10], "method.temperature": [0.1]})
    assert cells == [
        {"unique": 1, "method.temperature": 0.1},
        {"unique": 10, "method.temperature": 0.1},
        {"unique": 1, "learner": "supervised"},
        {"unique": 10, "learner": "supervised"},
    ]
    barlow = STUDIES["barlow-projector"]
    shared = grid(barlow, "small", {"projector": [2048], "train.batch_size": [256]})
    assert shared == [{"projector": 2048, "train.batch_size": 256}]  # both grids' one cell


def test_cell_configs_take_axes_settings_and_a_fresh_method_section(tmp_path) -> None:
    base = load_config(recipe_path("ablations-fashion-mnist"))
    byol = cell_config(base, {"method.name": "byol"}, tmp_path, {"method.momentum": 0.9})
    assert byol.method.name == "byol" and byol.method.momentum == 0.9
    assert not hasattr(byol.method, "temperature") and byol.run_dir == str(tmp_path)
    headless = cell_config(base, {"head": "none"}, tmp_path, {"model.head_widths": []})
    assert tuple(headless.model.head_widths) == () and headless.method.name == "simclr"
    assert base.model.head_widths != headless.model.head_widths  # the base is left alone
