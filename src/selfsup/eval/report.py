"""Evaluation results as files: `results.json` for machines, `results.md` for people."""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from selfsup.version import __version__

COLUMNS = ("encoder", "protocol", "labels", "top1", "top3", "top5")
HEADER = "| encoder | protocol | labels | top-1 | top-3 | top-5 |"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def format_table(results: Sequence[Mapping[str, Any]], extra_columns: Sequence[str] = ()) -> str:
    """The results as a markdown table, one row per result, accuracies with 2 decimals.

    Args:
        results: rows with keys "encoder", "protocol", "labels", "top1", "top3", "top5"
            (top-3/top-5 may be None, shown as "-"); other keys are ignored here.
        extra_columns: further keys shown as right-aligned columns after top-5 (e.g.
            "parameters"); a row without one shows "-". A "balanced" column (balanced
            accuracy) comes first whenever a row has one.

    >>> print(format_table([{"encoder": "simclr", "protocol": "linear", "labels": "100%",
    ...                      "top1": 91.234, "top3": None, "top5": 99.5}]))
    | encoder | protocol | labels | top-1 | top-3 | top-5 |
    |---|---|---|---:|---:|---:|
    | simclr | linear | 100% | 91.23 | - | 99.50 |
    """
    if any(row.get("balanced") is not None for row in results) and "balanced" not in extra_columns:
        extra_columns = ("balanced", *extra_columns)  # imbalanced classes: mean per-class recall
    header = HEADER + "".join(f" {key} |" for key in extra_columns)
    lines = [header, "|---|---|---|---:|---:|---:|" + "---:|" * len(extra_columns)]
    for i, row in enumerate(results):
        missing = [key for key in COLUMNS if key not in row]
        if missing:
            raise ValueError(f"result row {i} lacks {', '.join(missing)}: {dict(row)}")
        cells = [_cell(row[key]) for key in COLUMNS[:3]]
        cells += [_cell(None if row[key] is None else float(row[key])) for key in COLUMNS[3:]]
        cells += [_cell(row.get(key)) for key in extra_columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _metadata(extra: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "selfsup_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "command": " ".join(sys.argv),
        **(extra or {}),
    }


def write_results(
    results: Sequence[Mapping[str, Any]],
    run_dir: str | Path,
    metadata: Mapping[str, Any] | None = None,
    name: str = "results",
    title: str = "Evaluation results",
    extra_columns: Sequence[str] = (),
) -> tuple[Path, Path]:
    """Write `NAME.json` (rows plus metadata) and `NAME.md` (the table) into `run_dir`.

    Args:
        results: rows as described in `format_table`; extra keys are kept in the JSON.
        run_dir: directory to write into; created if missing.
        metadata: extra JSON-serialisable entries for the JSON's "metadata" (dataset, config).
        name: file stem ("results"; `selfsup semisup` writes "semisup").
        title: heading of the markdown file.
        extra_columns: as in `format_table`.

    Returns:
        The paths of the JSON and markdown files.
    """
    run_dir = Path(run_dir)
    table = format_table(results, extra_columns)  # validates the rows before anything is written
    run_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = run_dir / f"{name}.json", run_dir / f"{name}.md"
    payload = {"metadata": _metadata(metadata), "results": [dict(row) for row in results]}
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    md_path.write_text(f"# {title}\n\n{table}\n")
    return json_path, md_path
