"""DrLIM's 4-vs-9 map (Hadsell et al. 2006, Section 3.1) on scikit-learn's 8×8 digits: the two
classes of test images land in separable regions of the learnt 2-D map, well above chance."""

import json

import pytest
from PIL import Image

from selfsup.config import load_config
from selfsup.errors import SelfsupError
from selfsup.experiments import drlim_map


def digits_config(run_dir: str, **overrides: object):
    return load_config(
        None,
        {
            "run_dir": run_dir,
            "data.dataset": "digits",
            "model.base_width": 8,
            "model.head_widths": [32, 2],
            "method.name": "drlim",
            "method.margin": 1.0,
            "method.neighbours": 5,
            "optim.optimizer": "sgd",
            "optim.lr": 0.1,
            "optim.weight_decay": 5e-4,
            "optim.warmup_epochs": 0.5,
            "train.epochs": 8,
            "train.batch_size": 64,
            "train.device": "cpu",
            "train.progress": False,
            **overrides,
        },
    )


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_fours_and_nines_separate_in_the_map(tmp_path) -> None:
    output = tmp_path / "plots" / "drlim-4-9.png"
    results = drlim_map(digits_config(str(tmp_path / "run")), classes=(4, 9), output=output)
    print(json.dumps(results, indent=1))
    with Image.open(output) as png:
        assert png.format == "PNG" and png.size[0] > 300
    assert results["output"] == str(output)
    assert json.loads((tmp_path / "run" / "drlim-map.json").read_text()) == results
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "experiment: drlim-map" in saved and saved.count("name: drlim") == 1
    assert results["classes"] == [4, 9] and results["train_images"] > 200
    # Chance is ~50%; the learnt map reached 95.6% (centroid) and 96.7% (kNN) when written.
    assert results["nearest_centroid_accuracy"] > 85.0
    assert results["knn_accuracy"] > 85.0
    assert results["neighbour_label_agreement"] > 95.0


def test_refuses_a_head_that_is_not_2d(tmp_path) -> None:
    with pytest.raises(SelfsupError, match="ending in 2"):
        drlim_map(digits_config(str(tmp_path), **{"model.head_widths": [32, 8]}), (4, 9))


@pytest.mark.parametrize("classes", [(4, 4), (4,), (4, 10), (-1, 4)])
def test_refuses_anything_but_two_present_classes(tmp_path, classes) -> None:
    with pytest.raises(SelfsupError, match="class"):
        drlim_map(digits_config(str(tmp_path)), classes, output=tmp_path / "map.png")
    assert not (tmp_path / "map.png").exists()


def test_refuses_unknown_pairs(tmp_path) -> None:
    with pytest.raises(SelfsupError, match="pairs"):
        drlim_map(digits_config(str(tmp_path), **{"method.pairs": "random"}), (4, 9))
