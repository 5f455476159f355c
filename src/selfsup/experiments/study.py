"""`selfsup study NAME`: a paper's claim re-run as a grid of cells, with its table and plot.

A study declares the recipe its cells start from, the config overrides of each budget
(`small`: 2 CPU cores in about half an hour; `paper`: the paper's setting, for GPUs), the axes
of its grid, how one cell is run and measured, and how the rows become plots and a finding. The
runner gives every cell its own folder under the study's, so that an interrupted study resumes:
finished cells (their `result.json`) are read back, an unfinished one resumes from its last
checkpoint. Cells run one after another, or `jobs` at a time as separate processes, each started
with the exact command recorded for it in `study.json` and `study.md`.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfsup.config import RunConfig, load_config, recipe_path, save_config
from selfsup.errors import SelfsupError
from selfsup.experiments.cells import baselines
from selfsup.pipeline import run_metadata

BUDGETS = ("small", "paper")
RESULT = "result.json"
BASELINES = "baselines.json"

CellRunner = Callable[[RunConfig, Mapping[str, Any], Path, bool], dict[str, Any]]
"""(the cell's config, its axis values, its folder, resume) -> its measurements."""

Reporter = Callable[[list[dict[str, Any]], Path], dict[str, Any]]
"""(every cell's row, the study folder) -> the finding: {"claim", "reproduced", "evidence",
"plots"}; it writes the plots."""


@dataclass(frozen=True)
class Study:
    """A study as the registry sees it.

    Attributes:
        name: what `selfsup study NAME` calls it.
        summary: one line for `--help`.
        recipe: the bundled recipe every cell starts from.
        budgets: config overrides per budget (small, paper).
        axes: per budget, the grid: axis -> values, or a list of such grids whose cells are
            all run (a supervised line beside a sweep over τ). An axis named like a config
            field ("method.temperature") overrides it ("method.name" starts the method section
            afresh from that method's defaults); other axes are the cell runner's own.
        run_cell: trains and measures one cell.
        report: plots the rows and states the finding.
        columns: the measurements shown in study.md, in order.
        settings: the config overrides a cell's own axes stand for ({"head": "none"} ->
            {"model.head_widths": []}), applied before the cell's config is saved.
        baselines: its cells are linear probes on the recipe's dataset, so study.md prints the
            raw-pixel, random-init and majority-class floors (`cells.baselines`) above them.
    """

    name: str
    summary: str
    recipe: str
    budgets: Mapping[str, Mapping[str, Any]]
    axes: Mapping[str, Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Sequence[Any]]]]
    run_cell: CellRunner
    report: Reporter
    columns: Sequence[str] = field(default_factory=tuple)
    settings: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None
    baselines: bool = False

    def grids(self, budget: str) -> list[dict[str, Sequence[Any]]]:
        """The budget's grids, each axis -> values."""
        axes = self.axes[budget]
        return [dict(axes)] if isinstance(axes, Mapping) else [dict(grid) for grid in axes]

    def axis_names(self, budget: str) -> list[str]:
        """Every axis of the budget's grids, in order of first appearance."""
        return list(dict.fromkeys(axis for grid in self.grids(budget) for axis in grid))


STUDIES: dict[str, Study] = {}


def register_study(study: Study) -> Study:
    missing = [budget for budget in BUDGETS if budget not in study.budgets]
    if missing or set(study.axes) != set(study.budgets):
        raise ValueError(f"study {study.name!r} needs budgets and axes for {', '.join(BUDGETS)}")
    STUDIES[study.name] = study
    return study


def cell_name(values: Mapping[str, Any]) -> str:
    """A cell's folder name and --cell value: "bits=5,method.temperature=0.1"."""
    return ",".join(f"{axis}={value}" for axis, value in values.items())


def grid(
    study: Study, budget: str, values: Mapping[str, Sequence[Any]] | None = None
) -> list[dict[str, Any]]:
    """Every combination of each of the budget's grids' axis values (those in `values`
    replacing an axis's own, in every grid that has it), the first axis slowest."""
    names = study.axis_names(budget)
    unknown = sorted(set(values or {}) - set(names))
    if unknown:
        raise SelfsupError(f"{study.name} has no axis {unknown[0]!r}; its axes: {', '.join(names)}")
    cells: list[dict[str, Any]] = []
    for axes in study.grids(budget):
        axes.update({axis: list(values[axis]) for axis in axes if axis in (values or {})})
        if not all(axes.values()):
            raise SelfsupError("every axis needs at least one value")
        product = itertools.product(*axes.values())
        cells += [dict(zip(axes, chosen, strict=True)) for chosen in product]
    unique = {cell_name(cell): cell for cell in cells}  # grids may share cells
    return list(unique.values())


def cell_config(
    base: RunConfig,
    values: Mapping[str, Any],
    directory: Path,
    settings: Mapping[str, Any] | None = None,
) -> RunConfig:
    """The study's config with the cell's config-field axes and `settings` (dotted config
    overrides) applied, and its own run folder. A `method.name` axis starts the method
    section from that method's defaults."""
    from selfsup.config import config_from_dict, config_to_dict

    raw = config_to_dict(base)
    dotted = {axis: value for axis, value in values.items() if "." in axis}
    dotted.update(settings or {})
    if "method.name" in dotted and dotted["method.name"] != raw["method"]["name"]:
        raw["method"] = {}
    for axis, value in dotted.items():
        section, name = axis.split(".", 1)
        raw.setdefault(section, {})[name] = value
    raw["run_dir"] = str(directory)
    return config_from_dict(raw)


def parse_axes(texts: Sequence[str]) -> dict[str, list[Any]]:
    """`--grid AXIS=V1,V2` values as {axis: [values]} (each value read as YAML: 5, 0.1, true).

    >>> parse_axes(["bits=0,20", "method.temperature=0.1"])
    {'bits': [0, 20], 'method.temperature': [0.1]}
    """
    import yaml

    axes: dict[str, list[Any]] = {}
    for text in texts:
        axis, _, values = text.partition("=")
        if not axis or not values:
            raise SelfsupError(f"--grid takes AXIS=VALUE[,VALUE...], got {text!r}")
        axes[axis.strip()] = [yaml.safe_load(value) for value in values.split(",")]
    return axes


def _cell_command(
    name: str,
    budget: str,
    out: Path,
    overrides: Mapping[str, Any],
    axes: Mapping[str, Sequence[Any]],
    cell: str,
) -> list[str]:
    command = ["selfsup", "study", name, "--budget", budget, "--out", str(out), "--cell", cell]
    for axis, values in axes.items():
        command += ["--grid", f"{axis}={','.join(str(value) for value in values)}"]
    for key, value in overrides.items():
        command += [f"--{key}", json.dumps(value) if not isinstance(value, str) else value]
    return command


def run_study(
    name: str,
    budget: str = "small",
    overrides: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    jobs: int = 1,
    only_cell: str | None = None,
    announce: Callable[[str], None] = print,
    axes: Mapping[str, Sequence[Any]] | None = None,
) -> dict[str, Any]:
    """Run (or resume) study `name` and write study.json, study.md and its plots into `out`
    (default runs/study-NAME-BUDGET). `axes` replaces some axes' values (a smaller or larger
    sweep). With `only_cell`, run just that cell and return its row."""
    if name not in STUDIES:
        raise SelfsupError(f"unknown study {name!r}; choose one of {', '.join(sorted(STUDIES))}")
    if budget not in BUDGETS:
        raise SelfsupError(f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    if jobs < 1:
        raise SelfsupError(f"jobs must be at least 1, got {jobs}")
    study, overrides = STUDIES[name], dict(overrides or {})
    out = Path(out or f"runs/study-{name}-{budget}")
    base = load_config(recipe_path(study.recipe), {**study.budgets[budget], **overrides})
    cells = grid(study, budget, axes)
    names = [cell_name(values) for values in cells]
    if only_cell is not None:
        if only_cell not in names:
            raise SelfsupError(f"no cell {only_cell!r} in {name}; its cells: {', '.join(names)}")
        values = cells[names.index(only_cell)]
        return _run_cell(study, base, values, out / "cells" / only_cell)
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    commands = {
        cell: _cell_command(name, budget, out, overrides, axes or {}, cell) for cell in names
    }
    todo = [cell for cell in names if not (out / "cells" / cell / RESULT).is_file()]
    announce(f"study {name} ({budget}): {len(names)} cells, {len(names) - len(todo)} done")
    if jobs == 1:
        for number, cell in enumerate(todo, 1):
            announce(f"cell {number}/{len(todo)}: {cell}")
            _run_cell(study, base, cells[names.index(cell)], out / "cells" / cell)
    else:
        with ThreadPoolExecutor(jobs) as pool:  # each thread waits on one cell's process
            finished = pool.map(lambda cell: _run_process(commands[cell], out, cell), todo)
            for cell, returncode in zip(todo, finished, strict=True):
                if returncode:
                    raise SelfsupError(f"cell {cell} failed; see {out / 'cells' / cell}/log.txt")
                announce(f"cell done: {cell}")
    rows = []
    for cell, values in zip(names, cells, strict=True):
        result = json.loads((out / "cells" / cell / RESULT).read_text())
        rows.append({"cell": cell, **values, **result})
    finding = study.report(rows, out)
    summary = {
        "study": name,
        "budget": budget,
        "recipe": study.recipe,
        "overrides": {**study.budgets[budget], **overrides},
        "finding": finding,
        "baselines": _baselines(base, out) if study.baselines else None,
        "cells": [{**row, "command": shlex.join(commands[row["cell"]])} for row in rows],
        "seconds": round(time.perf_counter() - started, 1),
        **run_metadata(),
    }
    (out / "study.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "study.md").write_text(_markdown(study, summary, out))
    return summary


def lines_by(
    rows: list[dict[str, Any]], group: str, axis: str, measure: str
) -> dict[Any, list[tuple[Any, float]]]:
    """Per value of the `group` axis, the (axis value, measure) points of its cells in axis
    order, cells without the group or the measure left out: what a study plots and judges.

    >>> rows = [{"tau": 0.1, "bits": 5, "acc": 60.0}, {"tau": 0.1, "bits": 0, "acc": 80.0},
    ...         {"learner": "supervised", "bits": 0, "acc": 90.0}]
    >>> lines_by(rows, "tau", "bits", "acc")
    {0.1: [(0, 80.0), (5, 60.0)]}
    """
    grouped = [row for row in rows if group in row and row.get(measure) is not None]
    lines: dict[Any, list[tuple[Any, float]]] = {}
    for value in sorted({row[group] for row in grouped}):
        chosen = [row for row in grouped if row[group] == value]
        lines[value] = sorted((row[axis], row[measure]) for row in chosen)
    return lines


def _run_cell(study: Study, base: RunConfig, values: Mapping[str, Any], folder: Path) -> dict:
    """Run one cell in this process (resuming its checkpoint if it has one) and save its row."""
    if (folder / RESULT).is_file():
        return json.loads((folder / RESULT).read_text())
    resume = (folder / "config.yaml").is_file()
    folder.mkdir(parents=True, exist_ok=True)
    settings = study.settings(values) if study.settings else None
    config = cell_config(base, values, folder, settings)
    if not resume:
        save_config(config, folder / "config.yaml", extra={"study": study.name, **values})
    started = time.perf_counter()
    result = study.run_cell(copy.deepcopy(config), values, folder, resume)
    result["cell_seconds"] = round(time.perf_counter() - started, 1)
    partial = folder / (RESULT + ".partial")
    partial.write_text(json.dumps(result, indent=2) + "\n")
    partial.replace(folder / RESULT)
    return result


def _baselines(base: RunConfig, out: Path) -> dict[str, float | None]:
    """The study's floors (`cells.baselines`), computed once into baselines.json."""
    path = out / BASELINES
    if not path.is_file():
        floors = baselines(base)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(floors, indent=2) + "\n")
        partial.replace(path)
    return json.loads(path.read_text())


def _run_process(command: list[str], out: Path, cell: str) -> int:
    folder = out / "cells" / cell
    folder.mkdir(parents=True, exist_ok=True)
    executable = [sys.executable, "-m", "selfsup", *command[1:]]
    with open(folder / "log.txt", "a") as log:
        return subprocess.run(executable, stdout=log, stderr=subprocess.STDOUT).returncode


def _markdown(study: Study, summary: dict[str, Any], out: Path) -> str:
    finding = summary["finding"]
    verdict = "reproduced" if finding["reproduced"] else "not reproduced"
    ran = {axis for row in summary["cells"] for axis in row}
    axes = [axis for axis in study.axis_names(summary["budget"]) if axis in ran]
    header = [*axes, *study.columns]
    lines = [
        f"# Study {study.name} ({summary['budget']} budget)",
        "",
        f"**Claim**: {finding['claim']}",
        "",
        f"**Here**: {verdict}. {finding['evidence']}",
        "",
    ]
    if summary.get("baselines"):
        floors = ", ".join(f"{name} {_format(top1)}" for name, top1 in summary["baselines"].items())
        lines += [f"**Baselines** (the same linear probe, top-1 %): {floors}.", ""]
    lines += [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in summary["cells"]:  # axis values as given (0.999 stays 0.999), measures to 0.01
        values = ["" if row.get(axis) is None else str(row[axis]) for axis in axes]
        cells = values + [_format(row.get(column)) for column in study.columns]
        lines.append("| " + " | ".join(cells) + " |")
    plots = [(Path(plot).stem, os.path.relpath(plot, out)) for plot in finding["plots"]]
    lines += ["", *[f"![{stem}]({relative})" for stem, relative in plots]]
    lines += ["", "Each cell's command:", "", "```"]
    lines += [row["command"] for row in summary["cells"]] + ["```", ""]
    return "\n".join(lines)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "" if value is None else str(value)


__all__ = [
    "BUDGETS",
    "STUDIES",
    "Study",
    "cell_name",
    "grid",
    "lines_by",
    "parse_axes",
    "register_study",
    "run_study",
]
