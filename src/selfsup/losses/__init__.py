"""Losses: pure functions of embeddings, each tested against a float64 reference."""

from selfsup.losses.nt_xent import NTXentLoss, nt_xent_loss

__all__ = ["NTXentLoss", "nt_xent_loss"]
