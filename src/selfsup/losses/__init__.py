"""Losses: pure functions of embeddings, each tested against a float64 reference."""

from selfsup.losses.info_nce import InfoNCELoss, info_nce_loss
from selfsup.losses.negative_cosine import NegativeCosineLoss, negative_cosine_loss
from selfsup.losses.nt_xent import NTXentLoss, nt_xent_loss

__all__ = [
    "InfoNCELoss",
    "NTXentLoss",
    "NegativeCosineLoss",
    "info_nce_loss",
    "negative_cosine_loss",
    "nt_xent_loss",
]
