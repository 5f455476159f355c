"""`selfsup report`: one static HTML folder about a run and its embeddings, that opens offline.

It gathers what the run wrote (config, training and label-free quality curves, the results
table with its baselines, the augmentation preview) and, given an embeddings folder, makes the
rest: neighbour grids of sample queries, cluster galleries with their sizes and label scores,
and the 2-D map. Every picture is a file in the folder; the page links nothing outside it.
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from selfsup.collection import (
    cluster_collection,
    map_collection,
    open_store,
    search_collection,
)
from selfsup.embeddings import SearchIndex
from selfsup.errors import SelfsupError
from selfsup.train.metrics import plot_metrics, read_metrics

QUALITY_KEYS = (
    "quality/effective_rank",
    "quality/alignment",
    "quality/uniformity",
    "quality/collapse_level",
)

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td.number { text-align: right; }
tr.baseline { color: #666; }
img { max-width: 100%; border: 1px solid #eee; }
pre { background: #f6f6f6; padding: 1em; overflow: auto; max-height: 30em; }
"""


CHECK_PICTURES = """<script>
window.addEventListener("load", () => {
  const missing = [...document.images].filter((image) => image.naturalWidth === 0);
  document.body.dataset.pictures = document.images.length;
  document.body.dataset.missingPictures = missing.length;
  if (missing.length) {
    const note = document.createElement("p");
    note.textContent = missing.length + " pictures are missing from this folder";
    document.body.prepend(note);
  }
});
</script>"""
"""Marks the page with how many pictures loaded, and says so when some did not."""


def _table(rows: list[dict[str, Any]]) -> str:
    columns = ["encoder", "protocol", "labels", "top1", "top3", "top5"]
    if any(row.get("balanced") is not None for row in rows):
        columns.append("balanced")
    names = {"top1": "top-1", "top3": "top-3", "top5": "top-5", "balanced": "balanced accuracy"}
    head = "".join(f"<th>{html.escape(names.get(c, c))}</th>" for c in columns)
    body = []
    baselines = ("raw pixels", "majority class", "random init")
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            if isinstance(value, float):
                cells.append(f'<td class="number">{value:.2f}</td>')
            else:
                cells.append(f"<td>{html.escape('-' if value is None else str(value))}</td>")
        kind = ' class="baseline"' if row["encoder"] in baselines else ""
        body.append(f"<tr{kind}>{''.join(cells)}</tr>")
    return f'<table id="results"><tr>{head}</tr>{"".join(body)}</table>'


def _figure(source: Path, out: Path, caption: str) -> str:
    """An <img> of `source`, copied into the report folder unless it is there already."""
    if source.resolve().parent != out.resolve():
        shutil.copy(source, out / source.name)
    return _picture(source.name, caption)


def _picture(relative: str, caption: str) -> str:
    text = html.escape(caption)
    return (
        f'<figure><img src="{html.escape(relative)}" alt="{text}">'
        f"<figcaption>{text}</figcaption></figure>"
    )


def write_report(
    run_dir: str | Path,
    out: str | Path,
    embeddings: str | Path | None = None,
    queries: int = 6,
    k: int = 8,
    clusters: int = 10,
    map_method: str = "umap",
    seed: int = 0,
) -> Path:
    """Write `out/index.html` and its pictures; returns the page's path."""
    run_dir, out = Path(run_dir), Path(out)
    if not (run_dir / "config.yaml").is_file():
        raise SelfsupError(f"{run_dir} is not a run directory (no config.yaml)")
    out.mkdir(parents=True, exist_ok=True)
    sections = [f"<h1>selfsup report: {html.escape(run_dir.name)}</h1>"]

    results = run_dir / "results.json"
    if results.is_file():
        rows = json.loads(results.read_text())["results"]
        sections.append("<h2>Results, next to the baselines</h2>" + _table(rows))
    else:
        sections.append("<h2>Results</h2><p>Not evaluated yet (<code>selfsup eval</code>).</p>")

    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        curves = plot_metrics(metrics, out / "training.png", ("loss", "lr", "img_per_s"))
        if curves is not None:
            sections.append(
                "<h2>Training</h2>" + _figure(curves, out, "loss, learning rate, img/s")
            )
        quality = plot_metrics(metrics, out / "quality.png", QUALITY_KEYS)
        if quality is not None:
            last = {}
            for record in read_metrics(metrics):
                last.update({key: record[key] for key in QUALITY_KEYS if key in record})
            listed = "".join(
                f"<li>{html.escape(key.split('/')[1])}: {value:.3f}</li>"
                for key, value in last.items()
            )
            sections.append(
                "<h2>Label-free quality</h2><p>Effective rank (RankMe), alignment, uniformity "
                "and collapse level of the encoder's features, after each epoch; the last "
                f"epoch's values:</p><ul>{listed}</ul>" + _figure(quality, out, "quality per epoch")
            )
    views = run_dir / "views.png"
    if views.is_file():
        sections.append("<h2>Augmented views</h2>" + _figure(views, out, "training views"))

    if embeddings is not None:
        sections.append(
            _embeddings_section(Path(embeddings), out, queries, k, clusters, map_method, seed)
        )

    config_text = (run_dir / "config.yaml").read_text()
    sections.append(f"<h2>Config</h2><pre>{html.escape(config_text)}</pre>")
    page = out / "index.html"
    page.write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>selfsup report: {html.escape(run_dir.name)}</title><style>{STYLE}</style>"
        f"</head><body>{''.join(sections)}{CHECK_PICTURES}</body></html>\n"
    )
    return page


def _embeddings_section(
    embeddings: Path, out: Path, queries: int, k: int, clusters: int, map_method: str, seed: int
) -> str:
    store = open_store(embeddings)
    meta, ok = store.meta(), store.ok_ids()
    parts = [
        f"<h2>Embeddings</h2><p>{meta.rows} images, {meta.dim}-d {html.escape(meta.features)} "
        f"features ({'L2-normalised' if meta.normalized else 'raw'}), "
        f"{meta.rows - len(ok)} that did not decode.</p>"
    ]
    if SearchIndex.exists(embeddings):  # a corrupt or foreign index is an error, not skipped
        chosen = np.random.default_rng(seed).choice(ok, size=min(queries, len(ok)), replace=False)
        k = min(k, len(ok) - 1)
        search_collection(embeddings, ids=sorted(chosen.tolist()), k=k, out=out / "neighbours.png")
        parts.append(
            "<h3>Nearest neighbours</h3>"
            + _figure(
                out / "neighbours.png",
                out,
                "queries (left) and their neighbours with cosine similarity",
            )
        )
    else:
        command = html.escape(f"selfsup index {embeddings}")
        parts.append(f"<p>No neighbours: build the index with <code>{command}</code>.</p>")
    summary = cluster_collection(embeddings, min(clusters, len(ok)), out / "clusters", seed=seed)
    scores = summary.get("labels")
    agreement = ""
    if scores:
        agreement = (
            f" Against the labels: purity {scores['purity']:.3f}, NMI {scores['nmi']:.3f}, "
            f"ARI {scores['ari']:.3f}."
        )
    parts.append(
        f"<h3>Clusters</h3><p>Spherical k-means, k = {summary['k']}, sizes "
        f"{', '.join(map(str, summary['sizes']))}.{agreement}</p>"
        + "".join(
            _picture(f"clusters/{name}", "most central members, then random ones")
            for name in summary["galleries"]
        )
    )
    drawn = map_collection(embeddings, out / "map.png", map_method, seed=seed)
    caption = f"{map_method} of {drawn['points']} embeddings"
    parts.append("<h3>Map</h3>" + _picture("map.png", caption))
    return "".join(parts)


__all__ = ["write_report"]
