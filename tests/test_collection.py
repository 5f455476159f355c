"""`selfsup embed | index | search | cluster | dedup` on a real folder of images (scikit-learn's
digits as PNGs, one file broken, one duplicated), as a user runs them, and their bad inputs."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.cli import main
from selfsup.embeddings import EmbeddingStore
from selfsup.models import build_encoder, save_encoder

PER_CLASS = 12


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Three digit classes as 16 px grayscale PNGs in class folders, one file that is not an
    image, and an exact copy of one image."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    root = tmp_path_factory.mktemp("photos")
    for label in range(3):
        (root / str(label)).mkdir()
        for number, row in enumerate(np.flatnonzero(digits.target == label)[:PER_CLASS]):
            pixels = (digits.images[row] * 255 / 16).astype(np.uint8)
            Image.fromarray(pixels).resize((16, 16)).save(root / str(label) / f"{number:02d}.png")
    (root / "1" / "broken.png").write_bytes(b"this is not a png")
    shutil.copy(root / "2" / "03.png", root / "2" / "03-copy.png")
    return root


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory holding a small (untrained, seeded) grayscale encoder."""
    directory = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    kwargs = {"in_channels": 1, "base_width": 4, "stem": "cifar"}
    architecture = {"name": "resnet18", "kwargs": kwargs, "mean": [0.2], "std": [0.3]}
    save_encoder(build_encoder("resnet18", **kwargs), {**architecture, "image_size": 16}, directory)
    return directory


def _embed(run_dir, photos, out, *extra: str) -> int:
    return main(
        [
            "embed", "--run-dir", str(run_dir), "--data.dataset", "folder",
            "--data.data_dir", str(photos), "--data.image_size", "16", "--split", "train",
            "--train.workers", "0", "--train.device", "cpu", "--out", str(out), *extra,
        ]
    )  # fmt: skip


def _error(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_embed_writes_a_row_per_file_and_lists_the_broken_one(run_dir, photos, tmp_path):
    out = tmp_path / "emb"
    assert _embed(run_dir, photos, out, "--chunk-rows", "8") == 0
    store = EmbeddingStore(out)
    meta, items = store.meta(), store.items()
    files = sorted(p for p in photos.rglob("*.png"))
    assert meta.rows == len(files) == 3 * PER_CLASS + 2 and meta.num_chunks == 5
    vectors = store.vectors()
    assert vectors.shape == (meta.rows, meta.dim) and store.meta().dtype == "float16"
    broken = [i for i, path in enumerate(items["path"]) if path.endswith("broken.png")]
    assert store.failed_ids().tolist() == broken and not items["ok"][broken[0]]
    assert (vectors[broken[0]] == 0).all()
    ok = items["ok"]
    np.testing.assert_allclose(np.linalg.norm(vectors[ok], axis=1), 1.0, atol=2e-3)
    assert (out / "failed.csv").read_text().splitlines()[1].endswith("broken.png")
    assert sorted(set(items["label"].tolist())) == [0, 1, 2]


def test_an_interrupted_embed_resumes_without_losing_or_duplicating_rows(
    run_dir, photos, tmp_path, capsys
):
    out = tmp_path / "emb"
    assert _embed(run_dir, photos, out, "--chunk-rows", "8") == 0
    whole = EmbeddingStore(out).vectors()
    for chunk in (1, 3):  # as if the process died before writing these
        EmbeddingStore(out).chunk_path(chunk).unlink()
    assert _embed(run_dir, photos, out, "--chunk-rows", "8") == 2
    assert "--resume" in _error(capsys)
    assert _embed(run_dir, photos, out, "--chunk-rows", "8", "--resume") == 0
    resumed = EmbeddingStore(out).vectors()
    np.testing.assert_array_equal(resumed, whole)
    assert len(list((out / "chunks").glob("*.npy"))) == 5  # no partial files left


def test_index_search_cluster_and_dedup(run_dir, photos, tmp_path, capsys):
    out = tmp_path / "emb"
    assert _embed(run_dir, photos, out) == 0
    assert main(["index", str(out)]) == 0
    assert "flat index of 37 embeddings" in capsys.readouterr().out
    grid = tmp_path / "neighbours.png"
    query = photos / "0" / "00.png"
    assert (
        main(
            ["search", str(out), "--image", str(query), "--id", "5", "--k", "4", "--out", str(grid)]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("00.png:") and lines[1].startswith("id 5:")
    assert not lines[1].split(":")[1].lstrip().startswith("5 (")  # a query is not its own match
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first_hit = int(lines[0].split(":")[1].split()[0])
    items = EmbeddingStore(out).items()
    assert items["path"][first_hit].endswith("0/00.png")  # the file itself is the nearest

    clusters = tmp_path / "clusters"
    assert main(["cluster", str(out), "--k", "3", "--sweep", "2", "3", "--out", str(clusters)]) == 0
    summary = json.loads((clusters / "clusters.json").read_text())
    assert sum(summary["sizes"]) == 37 and set(summary["labels"]) == {"purity", "nmi", "ari"}
    assert set(summary["silhouette"]) == {"2", "3"}
    assert (clusters / summary["galleries"][0]).read_bytes()[:4] == b"\x89PNG"
    with open(clusters / "clusters.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 37

    duplicates = tmp_path / "dups.csv"
    assert main(["dedup", str(out), "--threshold", "0.9999", "--out", str(duplicates)]) == 0
    with open(duplicates) as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["path"].rsplit("/", 1)[1] for row in rows) == ["03-copy.png", "03.png"]


def test_map_draws_labelled_and_clustered_points(run_dir, photos, tmp_path, capsys):
    out = tmp_path / "emb"
    assert _embed(run_dir, photos, out) == 0
    by_label = tmp_path / "map.png"
    assert (
        main(["map", str(out), "--method", "tsne", "--out", str(by_label), "--thumbnails", "3"])
        == 0
    )
    assert by_label.read_bytes()[:4] == b"\x89PNG"
    with open(by_label.with_suffix(".csv")) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 37 and {row["label"] for row in rows} == {"0", "1", "2"}  # no broken
    by_cluster = tmp_path / "clusters.png"
    command = ["map", str(out), "--method", "tsne", "--colour", "cluster", "--clusters", "4"]
    assert main([*command, "--out", str(by_cluster)]) == 0
    with open(by_cluster.with_suffix(".csv")) as handle:
        assert {row["cluster"] for row in csv.DictReader(handle)} <= {"0", "1", "2", "3"}


def test_bad_input_gets_one_line_and_exit_2(run_dir, photos, tmp_path, capsys):
    out = tmp_path / "emb"
    assert _embed(run_dir, photos, out) == 0
    assert main(["index", str(out)]) == 0
    capsys.readouterr()
    assert main(["search", str(out), "--id", "0", "--k", "100"]) == 2
    assert "k must be between 1 and" in _error(capsys)
    colour = tmp_path / "colour.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16, 3), np.uint8)).save(colour)
    assert main(["search", str(out), "--image", str(colour)]) == 2
    assert "colour image but the encoder takes 1-channel" in _error(capsys)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _embed(run_dir, empty, tmp_path / "nothing") == 2
    assert "no image files" in _error(capsys) and not (tmp_path / "nothing").exists()
    # an index of another encoder's embeddings
    meta = json.loads((out / "embeddings.json").read_text())
    meta["encoder"]["fingerprint"] = "0" * 16
    (out / "embeddings.json").write_text(json.dumps(meta))
    assert main(["search", str(out), "--id", "0"]) == 2
    assert "another encoder" in _error(capsys)
    (out / "index.faiss").write_bytes(b"garbage")
    assert main(["search", str(out), "--id", "0"]) == 2
    assert "corrupt" in _error(capsys)
    assert main(["index", str(tmp_path)]) == 2
    assert "not an embeddings folder" in _error(capsys)
