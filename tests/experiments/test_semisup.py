"""`selfsup semisup` end to end on scikit-learn's 8×8 digits: all three stages run, every network
is saved and loads back with the accuracy the table reports, and --resume reuses them."""

import json

import pytest

from selfsup.cli import main
from selfsup.config import load_config
from selfsup.data import load_dataset
from selfsup.eval import classifier_accuracy, make_preprocess
from selfsup.models import load_classifier, load_encoder, load_head

TINY = [
    "--data.dataset", "digits", "--data.train_subset", "400",
    "--model.base_width", "4", "--model.head_widths", "[32, 32, 16]",
    "--method.memory_size", "256",
    "--train.epochs", "1", "--train.batch_size", "64", "--train.threads", "1",
    "--train.progress", "false",
    "--eval.label_fractions", '["5-per-class"]', "--eval.finetune_epochs", "1",
    "--eval.finetune_min_steps", "8",
    "--semisup.distill_epochs", "1", "--semisup.distill_batch_size", "64",
    "--semisup.student_base_width", "2",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """One thread (the shared fixture), as the run itself asks with --train.threads 1."""


def test_semisup_runs_all_stages_and_every_output_loads_back(tmp_path, capsys) -> None:
    run_dir = tmp_path / "semisup"
    assert main(["semisup", "--run-dir", str(run_dir), *TINY]) == 0
    table = capsys.readouterr().out
    rows = json.loads((run_dir / "semisup.json").read_text())["results"]
    protocols = [row["protocol"] for row in rows]
    assert protocols == [
        "supervised from scratch",
        "linear on the frozen encoder",
        "fine-tune from the encoder",
        "fine-tune from head layer 1",
        "self-distillation (resnet50-w4x2)",
        "distillation into resnet18-w2x1",
    ]
    assert "fine-tune from head layer 1" in table and (run_dir / "semisup.md").is_file()
    assert {(row["labels"], row["train_images"]) for row in rows} == {("5-per-class", 50)}

    # Stage 1: the recipe's bigger encoder (ResNet-50, width x2) and its 3-layer head.
    encoder, architecture = load_encoder(run_dir)
    assert architecture["name"] == "resnet50" and architecture["kwargs"]["width_multiplier"] == 2
    assert load_head(run_dir).widths == [32, 32, 16]

    # Stages 2 and 3: each network loads and scores what the table says.
    config = load_config(None, {"data.dataset": "digits"})
    test = load_dataset("digits", "test", seed=config.train.seed)
    preprocess = make_preprocess(architecture["mean"], architecture["std"])
    saved = {
        "supervised from scratch": run_dir / "finetune/5-per-class/supervised",
        "fine-tune from the encoder": run_dir / "finetune/5-per-class/head-layer-0",
        "fine-tune from head layer 1": run_dir / "finetune/5-per-class/head-layer-1",
        "self-distillation (resnet50-w4x2)": run_dir / "distill/5-per-class/self",
        "distillation into resnet18-w2x1": run_dir / "distill/5-per-class/small",
    }
    for row in rows:
        if row["protocol"] not in saved:
            continue
        model, spec = load_classifier(saved[row["protocol"]])
        assert sum(p.numel() for p in model.parameters()) == row["parameters"]
        assert classifier_accuracy(model, test, preprocess)["top1"] == pytest.approx(row["top1"])
    teacher, spec = load_classifier(run_dir / "finetune/5-per-class/head-layer-1")
    head = {"in_dim": encoder.feature_dim, "widths": [32, 32, 16], "depth": 1}
    assert spec["head"] == {**head, "batch_norm": True, "last_batch_norm": False}
    assert teacher.linear.in_features == 32  # the classifier sits on the head's first layer
    small, _ = load_classifier(run_dir / "distill/5-per-class/small")
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in teacher.parameters())

    # --resume: every stage is found, nothing is trained again, the table is the same.
    stamps = {path: path.stat().st_mtime_ns for path in run_dir.rglob("*.safetensors")}
    assert main(["semisup", "--run-dir", str(run_dir), "--resume", *TINY]) == 0
    assert {path: path.stat().st_mtime_ns for path in run_dir.rglob("*.safetensors")} == stamps
    again = json.loads((run_dir / "semisup.json").read_text())["results"]
    assert [(r["protocol"], r["top1"]) for r in again] == [(r["protocol"], r["top1"]) for r in rows]


def test_semisup_refuses_a_head_depth_beyond_the_head(tmp_path, capsys) -> None:
    args = ["semisup", "--run-dir", str(tmp_path / "deep"), *TINY, "--semisup.head_depth", "4"]
    assert main(args) == 2
    assert "deeper than the 3-layer projection head" in capsys.readouterr().err
    assert not (tmp_path / "deep" / "checkpoints").exists()  # refused before any training
