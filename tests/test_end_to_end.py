"""A short pre-training on real data (scikit-learn's 8×8 digits) must beat the random-init
encoder's kNN by a clear margin, both measured here."""

import torch

from selfsup import pipeline
from selfsup.cli import RECIPES
from selfsup.config import load_config
from selfsup.eval import extract_features, knn_accuracy, make_preprocess
from selfsup.models import build_encoder, load_encoder


def test_simclr_on_digits_beats_random_init(tmp_path) -> None:
    config = load_config(
        RECIPES / "simclr-fashion-mnist.yaml",
        {
            "run_dir": str(tmp_path / "run"),
            "data.dataset": "digits",
            "model.base_width": 8,
            "model.head_widths": [64, 32],
            "augment.crop_scale": [0.4, 1.0],
            "train.epochs": 15,
            "train.batch_size": 128,
            "train.progress": False,
            "train.device": "cpu",
        },
    )
    run_dir = pipeline.pretrain(config)
    encoder, architecture = load_encoder(run_dir)
    train_set, test_set = pipeline.load_split(config, "train"), pipeline.load_split(config, "test")
    preprocess = make_preprocess(architecture["mean"], architecture["std"])

    def knn_top1(model: torch.nn.Module) -> float:
        train_features = extract_features(model, train_set.images, preprocess)
        test_features = extract_features(model, test_set.images, preprocess)
        return knn_accuracy(train_features, train_set.labels, test_features, test_set.labels, 10)[
            "top1"
        ]

    torch.manual_seed(0)
    random_init = build_encoder(architecture["name"], **architecture["kwargs"])
    learned, baseline = knn_top1(encoder), knn_top1(random_init)
    print(f"digits kNN top-1: SimCLR {learned:.1f}% vs random init {baseline:.1f}%")
    assert learned > baseline + 10.0
