"""results.json round-trips the rows; results.md is the table format_table prints."""

from __future__ import annotations

import json

import pytest

from selfsup.eval import format_table, write_results

ROWS = [
    {"encoder": "simclr", "protocol": "kNN (k=200)", "labels": "100%", "top1": 81.234,
     "top3": 95.0, "top5": 98.765, "seconds": 1.5},
    {"encoder": "simclr", "protocol": "fine-tune", "labels": "1%", "top1": 70.0,
     "top3": None, "top5": None},
    {"encoder": "random init", "protocol": "supervised", "labels": "10%", "top1": 60.5,
     "top3": 80.0, "top5": 90.0},
]  # fmt: skip


def test_write_results_writes_json_and_markdown(tmp_path) -> None:
    json_path, md_path = write_results(ROWS, tmp_path / "run", metadata={"dataset": "toy"})

    payload = json.loads(json_path.read_text())
    assert payload["results"] == ROWS
    assert payload["metadata"]["dataset"] == "toy"
    assert "selfsup_version" in payload["metadata"]

    lines = md_path.read_text().splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert table[0] == "| encoder | protocol | labels | top-1 | top-3 | top-5 |"
    assert len(table) == 2 + len(ROWS)
    assert table[2] == "| simclr | kNN (k=200) | 100% | 81.23 | 95.00 | 98.77 |"
    assert table[3] == "| simclr | fine-tune | 1% | 70.00 | - | - |"
    assert "\n".join(table) == format_table(ROWS)


def test_format_table_rejects_incomplete_rows() -> None:
    with pytest.raises(ValueError, match="top3"):
        format_table([{"encoder": "x", "protocol": "linear", "labels": "100%", "top1": 1.0}])
