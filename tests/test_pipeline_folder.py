"""A folder of real images (scikit-learn's digits as PNGs in class sub-folders, imbalanced): the
run picks an image size and epochs that suit it and says so, and its table carries balanced
accuracy, the pixel and majority rows, and no top-k at or above the class count."""

import json

import numpy as np
import pytest
from PIL import Image

from selfsup.cli import main
from selfsup.config import DEFAULT_RECIPE, load_config, recipe_path
from selfsup.pipeline import folder_defaults

CLASSES = {0: 120, 1: 40, 2: 20}  # images per class in the training split: imbalanced


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory):
    from sklearn.datasets import load_digits

    digits = load_digits()
    root = tmp_path_factory.mktemp("digits-folder")
    for label, train_count in CLASSES.items():
        images = digits.images[digits.target == label]
        for index, image in enumerate(images[: train_count + 20]):
            split = "train" if index < train_count else "test"
            folder = root / split / f"digit{label}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = (image * (255 / 16)).astype(np.uint8)
            Image.fromarray(pixels).resize((24, 24)).save(folder / f"{index:04d}.png")
    return root


def test_folder_run_picks_size_and_epochs_and_says_so(digits_folder) -> None:
    said = []
    config = load_config(None, {"data.dataset": "folder", "data.data_dir": str(digits_folder)})
    picked = folder_defaults(config, {"data.dataset": "folder"}, said.append)
    assert picked.data.image_size == 32  # 24 px images: the small size
    images = sum(CLASSES.values())
    assert picked.train.epochs == 300  # the main job's compute is 1,400 epochs of 180 images
    assert picked.train.batch_size == images // 4  # the default 256 is more than the folder
    assert any("picked --data.image_size 32" in line and "24 px" in line for line in said)
    assert any("picked --train.epochs 300" in line for line in said)
    # What the user gives is kept.
    given = load_config(None, {"data.dataset": "folder", "data.data_dir": str(digits_folder),
                               "train.epochs": 3, "data.image_size": 16})  # fmt: skip
    kept = folder_defaults(given, {"train.epochs": 3, "data.image_size": 16}, said.append)
    assert (kept.train.epochs, kept.data.image_size) == (3, 16)
    # The main recipe's views (10 px of 28 px images) keep their ratio at the picked size.
    folder = {"data.dataset": "folder", "data.data_dir": str(digits_folder)}
    main_recipe = load_config(recipe_path(DEFAULT_RECIPE), folder)
    assert main_recipe.augment.size == 10
    scaled = folder_defaults(main_recipe, folder, said.append)
    assert scaled.augment.size == 11 and any("picked --augment.size 11" in line for line in said)
    own = folder_defaults(load_config(recipe_path(DEFAULT_RECIPE), {**folder, "augment.size": 20}),
                          {**folder, "augment.size": 20}, said.append)  # fmt: skip
    assert own.augment.size == 20


def test_imbalanced_folder_table_shows_balanced_accuracy_and_baselines(
    digits_folder, tmp_path, capsys
) -> None:
    run_dir = tmp_path / "run"
    args = [
        "run", "--run-dir", str(run_dir), "--data.dataset", "folder",
        "--data.data_dir", str(digits_folder), "--model.base_width", "4",
        "--model.head_widths", "[16, 8]", "--train.epochs", "2", "--train.batch_size", "32",
        "--train.progress", "false", "--eval.label_fractions", '["10%"]', "--eval.k", "20",
        "--eval.finetune_epochs", "1", "--eval.finetune_min_steps", "2",
    ]  # fmt: skip
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "picked --data.image_size 32" in captured.err
    header = next(line for line in captured.out.splitlines() if line.startswith("| encoder"))
    assert header.startswith("| encoder | protocol | labels | top-1 | top-3 | top-5 | balanced |")
    rows = json.loads((run_dir / "results.json").read_text())["results"]
    assert {"raw pixels", "majority class", "random init"} <= {row["encoder"] for row in rows}
    for row in rows:
        assert row["top3"] is None and row["top5"] is None  # 3 classes
        assert row["balanced"] is not None
    majority = next(r for r in rows if r["protocol"] == "majority class" and r["labels"] == "100%")
    assert majority["top1"] == pytest.approx(100 / 3) and majority["balanced"] == pytest.approx(
        100 / 3
    )
