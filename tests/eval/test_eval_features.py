"""Feature extraction: the same numbers as a direct eval-mode forward, modes restored."""

from __future__ import annotations

import torch
from torch import nn

from selfsup.eval import extract_features, infer_feature_dim, make_preprocess


def test_extract_features_matches_forward_and_restores_modes(make_encoder) -> None:
    encoder = nn.Sequential(make_encoder(declare_dim=False), nn.Dropout(0.5))
    encoder.train()
    encoder[0].net[1].eval()  # a deliberately frozen BN must stay frozen
    images = torch.randint(0, 256, (10, 1, 8, 8), dtype=torch.uint8)
    preprocess = make_preprocess([0.5], [0.25])

    features = extract_features(encoder, images, preprocess, batch_size=3)

    assert encoder.training and encoder[1].training and not encoder[0].net[1].training
    assert features.dtype == torch.float32 and features.shape == (10, 8)
    encoder.eval()
    with torch.no_grad():
        expected = encoder((images.float() / 255 - 0.5) / 0.25)
    torch.testing.assert_close(features, expected)


def test_infer_feature_dim_from_attribute_or_forward(make_encoder) -> None:
    sample = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    assert infer_feature_dim(make_encoder(width=5), sample) == 5
    encoder = make_encoder(width=6, declare_dim=False).train()
    assert infer_feature_dim(encoder, sample) == 6
    assert encoder.training
