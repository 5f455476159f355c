"""`selfsup report` opened in a real headless Chromium: the page loads offline, every picture
in it loads, and the results table with its baselines is there."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from selfsup.cli import main

TINY = [
    "--data.dataset", "synthetic", "--model.base_width", "4", "--model.head_widths", "[16, 8]",
    "--train.epochs", "2", "--train.batch_size", "64", "--train.progress", "false",
    "--train.quality_sample", "64", "--eval.finetune_epochs", "1",
    "--eval.finetune_min_steps", "2", "--eval.label_fractions", "[10%]",
]  # fmt: skip


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.fail("no chromium: scripts/test.sh installs Debian's chromium for this test")


def test_report_opens_in_a_headless_browser(tmp_path, capsys) -> None:
    run_dir, emb, report = tmp_path / "run", tmp_path / "emb", tmp_path / "report"
    assert main(["run", "--run-dir", str(run_dir), *TINY]) == 0
    assert main(["embed", "--run-dir", str(run_dir), "--out", str(emb)]) == 0
    assert main(["index", str(emb)]) == 0
    command = ["report", str(run_dir), "--embeddings", str(emb), "--out", str(report)]
    assert main([*command, "--map-method", "tsne", "--clusters", "5"]) == 0
    page = report / "index.html"
    shot = tmp_path / "shot.png"
    browser = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--virtual-time-budget=10000",
    ]
    dom = subprocess.run(
        [*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    subprocess.run(
        [*browser, f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri()],
        capture_output=True,
        timeout=120,
    )
    assert 'data-missing-pictures="0"' in dom, dom[:2000]
    pictures = int(dom.split('data-pictures="')[1].split('"')[0])
    assert pictures >= 6  # training, quality, views, neighbours, a gallery, the map
    assert '<table id="results">' in dom and "raw pixels" in dom and "majority class" in dom
    assert "effective_rank" in dom and "purity" in dom
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
