"""The CLI as a user meets it: outputs of a run, and one clear line for each kind of bad input."""

import json

import pytest

from selfsup.cli import main
from selfsup.config import chosen_recipe, recipe_path
from selfsup.methods.plugin import method_recipes

TINY = [
    "--data.dataset", "synthetic",
    "--model.base_width", "4",
    "--model.head_widths", "[16, 8]",
    "--train.epochs", "1",
    "--train.batch_size", "64",
    "--train.progress", "false",
        "--eval.finetune_epochs", "1",
    "--eval.finetune_min_steps", "2",
    "--eval.label_fractions", "[10%]",
]  # fmt: skip


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback wall
    assert err[0].startswith("selfsup: error: ")
    return err[0]


def test_run_writes_every_output(tmp_path, capsys) -> None:
    run_dir = tmp_path / "run"
    assert main(["run", "--run-dir", str(run_dir), *TINY]) == 0
    out = capsys.readouterr().out
    assert "| random init | kNN (k=200) |" in out and "| fine-tune | 10% |" in out
    for name in [
        "config.yaml", "metrics.jsonl", "checkpoints/last.pt", "encoder.safetensors",
        "encoder.json", "results.json", "results.md", "loss.png", "views.png",
    ]:  # fmt: skip
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "tensorboard").iterdir())
    results = json.loads((run_dir / "results.json").read_text())
    rows = results["results"] if isinstance(results, dict) else results
    encoders = {"simclr (resnet18)", "random init", "raw pixels", "majority class"}
    assert {row["encoder"] for row in rows} == encoders
    assert "| raw pixels | kNN (k=200) |" in out and "| majority class | majority class |" in out
    # A second run into the same directory is refused: earlier outputs stay intact.
    before = (run_dir / "encoder.safetensors").read_bytes()
    assert main(["pretrain", "--run-dir", str(run_dir), *TINY]) == 2
    assert "already holds a run" in _error_line(capsys)
    assert (run_dir / "encoder.safetensors").read_bytes() == before
    # Resuming to more epochs works; evaluating again works; embeddings export.
    assert main(["pretrain", "--run-dir", str(run_dir), "--resume", "--train.epochs", "2"]) == 0
    # embed/eval read the run's own config: no need to repeat --data.dataset synthetic.
    assert main(["embed", "--run-dir", str(run_dir), "--out", str(tmp_path / "emb")]) == 0
    from selfsup.embeddings import EmbeddingStore

    store = EmbeddingStore(tmp_path / "emb")
    assert len(store.vectors()) == len(store.items()["label"]) == store.meta().rows > 0


def test_show_augment_writes_png(tmp_path, capsys) -> None:
    out = tmp_path / "grid.png"
    assert main(["show-augment", *TINY, "--out", str(out), "--num-images", "3"]) == 0
    assert out.is_file() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--train.epochs", "many"], "expected int"),
        (["--data.dataset", "imagenet-21k"], "dataset must be one of 'fashion-mnist'"),
        (["--data.dataset", "folder", "--data.data_dir", "/nonexistent/images"], "/nonexistent"),
        (["--train.batch_size", "100000"], "larger than the dataset"),
        (["--model.encoder", "vgg11"], "encoder must be one of"),
        (["--optim.optimizer", "adagrad"], "optimizer must be one of 'lars', 'sgd', 'adamw'"),
        (["--config", "no-such-recipe"], "neither a file nor a bundled recipe"),
    ],
)
def test_bad_input_gives_one_line(tmp_path, capsys, args, message) -> None:
    assert main(["pretrain", "--run-dir", str(tmp_path / "r"), *TINY, *args]) == 2
    assert message in _error_line(capsys)


def test_unknown_config_key_in_recipe(tmp_path, capsys) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("train:\n  epochs: 1\n  learning_rate: 0.1\n")
    assert main(["pretrain", "--config", str(recipe), "--run-dir", str(tmp_path / "r")]) == 2
    assert "unknown config key 'train.learning_rate'" in _error_line(capsys)


def test_empty_and_corrupt_image_folders(tmp_path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["pretrain", "--run-dir", str(tmp_path / "r"), *TINY, "--data.dataset", "folder",
                 "--data.data_dir", str(empty)]) == 2  # fmt: skip
    assert "no images" in _error_line(capsys)


def test_folder_with_corrupt_files_trains_and_reports(tmp_path, capsys) -> None:
    from PIL import Image

    root = tmp_path / "images"
    for label in ("cats", "dogs"):
        (root / label).mkdir(parents=True)
        for index in range(40):
            colour = (index * 6, 100 if label == "cats" else 200, 50)
            Image.new("RGB", (20, 24), colour).save(root / label / f"{index}.png")
    (root / "cats" / "broken.jpg").write_bytes(b"not a jpeg")
    (root / "dogs" / "notes.txt").write_text("hello")
    args = [
        *TINY,
        "--data.dataset",
        "folder",
        "--data.data_dir",
        str(root),
        "--data.image_size",
        "16",
    ]
    assert main(["pretrain", "--run-dir", str(tmp_path / "r"), *args]) == 0
    err = capsys.readouterr().err
    assert "selfsup: warning: skipped 2" in err


def test_nan_loss_stops_with_one_line(tmp_path, capsys) -> None:
    args = ["--method.temperature", "1e-30", "--optim.warmup_epochs", "0"]
    assert (
        main(["pretrain", "--run-dir", str(tmp_path / "r"), *TINY, "--train.epochs", "3", *args])
        == 2
    )
    assert "NaN/inf" in _error_line(capsys)


def test_resume_with_other_architecture(tmp_path, capsys) -> None:
    run_dir = str(tmp_path / "r")
    assert main(["pretrain", "--run-dir", run_dir, *TINY]) == 0
    capsys.readouterr()
    assert main(["pretrain", "--run-dir", run_dir, "--resume", "--model.base_width", "8",
                 "--train.epochs", "2"]) == 2  # fmt: skip
    assert "different architecture" in _error_line(capsys)


@pytest.mark.parametrize("name", sorted(method_recipes()))
def test_every_method_recipe_builds_its_method(name: str) -> None:
    """`--method NAME` names a bundled recipe that loads and builds (encoder, method, views)."""
    import torch

    from selfsup.config import load_config
    from selfsup.methods import build_method, build_views
    from selfsup.models import build_encoder

    config = load_config(recipe_path(chosen_recipe(None, name)))
    model = config.model
    encoder = build_encoder(
        model.encoder,
        in_channels=1,
        stem=model.stem,
        base_width=model.base_width,
        width_multiplier=model.width_multiplier,
        norm=model.norm,
    )
    method = build_method(encoder, config)
    images = torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8)
    make_views = build_views(config, images, [0.3], [0.3])
    views = make_views(images[:8], torch.arange(8), torch.Generator().manual_seed(0))
    loss = method(views)
    assert torch.isfinite(loss)
    if name == "simclr-v2":  # SimCLRv2's bigger, wider encoder and 3-layer head
        assert model.encoder == "resnet50" and model.width_multiplier == 2
        assert len(method.projection_head.layers) == 3


@pytest.mark.parametrize(
    "verb", ["run", "pretrain", "eval", "semisup", "show-augment", "embed", "drlim-map"]
)
def test_every_verb_prints_its_help(verb: str, capsys) -> None:
    """--help lists every override with its default (a "1%" default once broke argparse)."""
    with pytest.raises(SystemExit) as exit_info:
        main([verb, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--eval.label_fractions" in out and "'1%'" in out
