"""A study's floors: the raw pixels, a random-init encoder and the majority class, each scored
the way the cells are."""

from __future__ import annotations

import pytest
import torch

from selfsup.config import load_config, recipe_path
from selfsup.eval import extract_features, make_preprocess
from selfsup.experiments.cells import baselines, probe_top1
from selfsup.models import build_encoder
from selfsup.pipeline import encoder_architecture, load_split

pytestmark = pytest.mark.usefixtures("one_thread")


def test_baselines_are_the_cells_probe_on_pixels_a_seeded_encoder_and_the_majority(tiny) -> None:
    config = load_config(recipe_path("simclr-fashion-mnist"), tiny)
    floors = baselines(config)
    train, test = load_split(config, "train"), load_split(config, "test")
    device = torch.device("cpu")
    pixels = [split.images.flatten(1).float() / 255 for split in (train, test)]
    expected = probe_top1(pixels[0], train.labels, pixels[1], test.labels, config, device)
    assert floors["raw pixels"] == pytest.approx(expected)
    architecture = encoder_architecture(config, train)
    torch.manual_seed(config.train.seed)
    encoder = build_encoder(architecture["name"], **architecture["kwargs"])
    prepare = make_preprocess(architecture["mean"], architecture["std"])
    features = [extract_features(encoder, split.images, prepare) for split in (train, test)]
    expected = probe_top1(features[0], train.labels, features[1], test.labels, config, device)
    assert floors["random init"] == pytest.approx(expected)
    most_frequent = torch.bincount(train.labels).argmax()
    share = 100.0 * (test.labels == most_frequent).float().mean().item()
    assert floors["majority class"] == pytest.approx(share, abs=0.01)
    # on the 8x8 digits, the pixels are far above guessing
    assert floors["raw pixels"] > floors["majority class"] + 50
