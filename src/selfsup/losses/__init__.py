"""Losses: pure functions of embeddings, each tested against a float64 reference."""

from selfsup.losses.barlow_twins import BarlowTwinsLoss, barlow_twins_loss
from selfsup.losses.cpc import CPCInfoNCELoss, cpc_info_nce
from selfsup.losses.distillation import DistillationLoss, distillation_loss
from selfsup.losses.drlim import DrLIMLoss, drlim_batch_loss, drlim_margin_loss
from selfsup.losses.generalized import GeneralizedContrastiveLoss, generalized_contrastive_loss
from selfsup.losses.info_nce import InfoNCELoss, info_nce_loss
from selfsup.losses.negative_cosine import NegativeCosineLoss, negative_cosine_loss
from selfsup.losses.nt_xent import NTXentLoss, nt_xent_loss

__all__ = [
    "BarlowTwinsLoss",
    "CPCInfoNCELoss",
    "DistillationLoss",
    "DrLIMLoss",
    "GeneralizedContrastiveLoss",
    "InfoNCELoss",
    "NTXentLoss",
    "NegativeCosineLoss",
    "barlow_twins_loss",
    "cpc_info_nce",
    "distillation_loss",
    "drlim_batch_loss",
    "drlim_margin_loss",
    "generalized_contrastive_loss",
    "info_nce_loss",
    "negative_cosine_loss",
    "nt_xent_loss",
]
