"""DrLIM: learn a mapping G in which neighbours are close and everything else is m apart.

[0] DrLIM, Hadsell, Chopra and LeCun 2006, "Dimensionality Reduction by Learning an Invariant
    Mapping", CVPR, doi:10.1109/CVPR.2006.100, Section 2.2 (the algorithm) and Eq. (4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from selfsup.augment.config import ViewConfig
from selfsup.augment.makers import AugmentedViews, ViewMaker
from selfsup.augment.pairs import NeighbourPairs
from selfsup.checks import check_choice, check_float, check_int
from selfsup.losses.drlim import drlim_batch_loss
from selfsup.methods.plugin import MethodConfig, MethodPlugin, register_method
from selfsup.models.heads import ProjectionHead
from selfsup.models.registry import feature_dim


class DrLIM(nn.Module):
    """G = g(f(x)); similar pairs are pulled together, dissimilar pairs pushed past the margin.

    The two views are (anchor_i, partner_i): an image and one of its neighbours in pixel space
    (the paper's pairs, `NeighbourPairs`) or two augmented views of one image. Row pairs
    (a_i, b_i) are similar (Y = 0); every cross pair (a_i, b_j), j ≠ i, in the batch is
    dissimilar (Y = 1). The paper labels as dissimilar any pair outside the neighbour graph; a
    cross pair in the batch that happens to be a neighbour is counted dissimilar here, a
    negligible error with k = 5 neighbours among 60,000 images.

    The loss (`drlim_batch_loss`) is the mean over the B similar pairs plus the mean over the
    B(B − 1) dissimilar pairs; with `gather_distributed`, over the B(W·B − 1) pairs of each local
    anchor with every other partner of the W processes' batches. Step 2 of the paper's algorithm
    visits every labelled pair; in a batch, a plain mean over all B² pairs would give each similar
    pair B − 1 dissimilar ones, whose push term would swamp the pull term, so each kind is
    averaged on its own. Dissimilar pairs are materialised as a B(B − 1) x D tensor: cheap for the
    paper's low-dimensional outputs, O(B² D) memory for wide ones.

    Args:
        encoder: any backbone with a `feature_dim` attribute.
        head_widths: layer widths of g; the last is the output dimension (2 for a map).
        margin: m in Eq. (4).
        gather_distributed: dissimilar partners come from every process's batch (gathered with
            gradients); off, from the local batch only. Similar pairs are always local.

    >>> from selfsup.models import build_encoder
    >>> method = DrLIM(build_encoder("resnet18", in_channels=1, base_width=4), [16, 2])
    >>> method([torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)]).shape
    torch.Size([])
    """

    def __init__(
        self,
        encoder: nn.Module,
        head_widths: Sequence[int] = (512, 2),
        margin: float = 1.0,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        if margin <= 0:
            raise ValueError(f"margin must be positive, got {margin}")
        self.encoder = encoder
        self.projection_head = ProjectionHead(feature_dim(encoder), head_widths)
        self.margin = margin
        self.gather_distributed = gather_distributed

    def forward(self, views: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(views) != 2:
            raise ValueError(f"DrLIM takes 2 views (anchors, partners), got {len(views)}")
        batch = views[0].shape[0]
        if batch < 2:
            raise ValueError(f"DrLIM needs a batch of at least 2 for dissimilar pairs, got {batch}")
        outputs = self.projection_head(self.encoder(torch.cat(list(views))))  # 2B x D
        anchors, partners = outputs[:batch], outputs[batch:]
        return drlim_batch_loss(anchors, partners, self.margin, self.gather_distributed)


PAIRS = ("neighbours", "augment")
"""DrLIM's similar pairs: pixel-space neighbours (the paper's) or two views of one image."""


@dataclass
class DrLIMConfig(MethodConfig):
    """DrLIM's hyper-parameters.

    Attributes:
        name: drlim.
        margin: m of Eq. (4): dissimilar pairs are pushed until they are m apart.
        gather_distributed: dissimilar partners come from every process's batch.
        pairs: the similar pairs: "neighbours" (an image and one of its k nearest neighbours
            in pixel space, as in the paper) or "augment" (two augmented views of one image).
        neighbours: k, the neighbours per image with pairs "neighbours".
    """

    name: str = "drlim"
    margin: float = 1.0
    gather_distributed: bool = True
    pairs: str = "neighbours"
    neighbours: int = 5

    def __post_init__(self) -> None:
        check_float("margin", self.margin, 0, 1e3, low_open=True)
        check_choice("pairs", self.pairs, PAIRS)
        check_int("neighbours", self.neighbours, 1, 10_000)


def drlim_views(
    config: DrLIMConfig,
    augment: ViewConfig,
    images: torch.Tensor | torch.utils.data.Dataset,
    mean: Sequence[float],
    std: Sequence[float],
    dtype: torch.dtype = torch.float32,
) -> ViewMaker:
    """DrLIM's view recipe: neighbour pairs found once in pixel space, or two augmented views."""
    if config.pairs == "augment":
        return AugmentedViews.from_config(augment, 2, mean, std, dtype)
    if not isinstance(images, torch.Tensor):
        raise ValueError(
            "DrLIM's neighbour pairs look images up in memory; drop --data.stream or use "
            "--method.pairs augment"
        )
    return NeighbourPairs.from_images(images, config.neighbours, mean, std, dtype)


def build_drlim(encoder: nn.Module, config: DrLIMConfig, head_widths: Sequence[int]) -> DrLIM:
    """DrLIM from its config section and the model's head widths."""
    return DrLIM(
        encoder,
        head_widths=head_widths,
        margin=config.margin,
        gather_distributed=config.gather_distributed,
    )


register_method(
    MethodPlugin(
        "drlim",
        DrLIMConfig,
        build_drlim,
        views=drlim_views,
        recipes={"drlim": "drlim-fashion-mnist"},
        exports={"DrLIM": DrLIM, "DrLIMConfig": DrLIMConfig},
    )
)
