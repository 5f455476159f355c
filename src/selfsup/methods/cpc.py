"""CPC v2 on images: encode a grid of patches, summarise the rows above, predict the rows below.

[0] CPC, van den Oord et al. 2018, arXiv:1807.03748, Section 3.3.
[1] CPC v2, Hénaff et al. 2019, arXiv:1905.09272, Section 3, Eq. (1)-(3) and the pseudo-code
    of Appendix A.

    z_{i,j} = f(x_{i,j})                  every patch encoded alone (layer norm, no batch norm)
    c_{i,j} = g({z_{u,v}}_{u ≤ i})        a masked (PixelCNN-style) context network
    ẑ_{i+k,j} = W_k c_{i,j}               one linear prediction per step k = 1..K
    L = mean_k InfoNCE(ẑ_{i+k,j}; z_{i+k,j} against every other z of the batch)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from selfsup.augment.config import ViewConfig
from selfsup.augment.makers import ViewMaker
from selfsup.augment.patches import PatchViews
from selfsup.checks import check_float, check_int
from selfsup.losses.cpc import cpc_info_nce
from selfsup.methods.plugin import MethodConfig, MethodPlugin, register_method
from selfsup.models.patches import PatchGrid


class MaskedContextNetwork(nn.Module):
    """PixelCNN-style context g: output row i sees the input rows ≤ i only, all columns [1].

    Each residual block, as in [1]'s pseudo-code: 1×1 conv → ReLU → 1×3 conv along the row →
    2×1 conv over (the row above, the row itself) → ReLU → 1×1 conv back to the input width,
    added to its input. The 2×1 conv runs on the grid padded with one zero row on top, so row i
    reads rows i − 1 and i and never a row below; stacking blocks widens what it sees upwards
    and sideways, never downwards.

    Args:
        dim: width of the patch vectors z (and of the context c).
        channels: width inside each block (256 in [1]).
        layers: number of residual blocks (5 in [1]'s pseudo-code).
    """

    def __init__(self, dim: int, channels: int = 256, layers: int = 5) -> None:
        super().__init__()
        if dim < 1 or channels < 1 or layers < 1:
            raise ValueError(
                f"dim, channels and layers must be positive, got {dim}, {channels}, {layers}"
            )
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(dim, channels, 1),
                nn.ReLU(),
                nn.Conv2d(channels, channels, (1, 3), padding=(0, 1)),
                nn.ZeroPad2d((0, 0, 1, 0)),  # one zero row on top: row i sees rows i − 1, i
                nn.Conv2d(channels, channels, (2, 1)),
                nn.ReLU(),
                nn.Conv2d(channels, dim, 1),
            )
            for _ in range(layers)
        )

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, rows, cols, dim) patch vectors → (B, rows, cols, dim) context vectors."""
        x = latents.permute(0, 3, 1, 2)  # B x dim x rows x cols
        for block in self.blocks:
            x = x + block(x)
        return torch.relu(x).permute(0, 2, 3, 1)


class CPC(nn.Module):
    """Contrastive predictive coding over a grid of patches, predicting top to bottom [1].

    `self.encoder` is the `PatchGrid` around `encoder`: exported as is, its `forward` gives the
    mean-pooled patch features used downstream. Give `encoder` a per-sample normalisation
    (`norm="layer"`): with batch norm the patches of one image would see each other.

    Args:
        encoder: patch encoder f with a `feature_dim` attribute, e.g. a ResNet with layer norm.
        patch_size: patch side p in pixels.
        stride: step between patches (p/2: half-overlapping patches, as in [0, 1]).
        prediction_steps: K; W_k predicts the patch k = 1..K rows below the context.
        context_channels: width inside the context network's blocks.
        context_layers: residual blocks of the context network.
        temperature: τ dividing the dot-product scores (1: the papers' InfoNCE).
        gather_distributed: the negatives are the patches of every process's batch (gathered
            with gradients); off, of the local batch only.

    >>> from selfsup.models import build_encoder
    >>> cpc = CPC(build_encoder("resnet18", in_channels=1, base_width=4, norm="layer"), 8, 4)
    >>> cpc([torch.randn(2, 6, 6, 1, 8, 8)]).shape
    torch.Size([])
    """

    def __init__(
        self,
        encoder: nn.Module,
        patch_size: int,
        stride: int,
        prediction_steps: int = 3,
        context_channels: int = 256,
        context_layers: int = 5,
        temperature: float = 1.0,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        if prediction_steps < 1:
            raise ValueError(f"prediction_steps must be >= 1, got {prediction_steps}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.encoder = PatchGrid(encoder, patch_size, stride)
        dim = self.encoder.feature_dim
        self.context_network = MaskedContextNetwork(dim, context_channels, context_layers)
        # W_k without bias: a bias b would add bᵀz_l to every score, favouring some targets.
        self.predictors = nn.ModuleList(
            nn.Linear(dim, dim, bias=False) for _ in range(prediction_steps)
        )
        self.prediction_steps = prediction_steps
        self.temperature = temperature
        self.gather_distributed = gather_distributed

    def encode(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, rows, cols, C, p, p) patches → patch vectors z and context c, (B, rows, cols, F)."""
        latents = self.encoder.encode_patches(patches)
        return latents, self.context_network(latents)

    def forward(self, views: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(views) != 1 or views[0].ndim != 6:
            raise ValueError(
                "CPC takes one view: a (B, rows, cols, C, p, p) grid of patches (PatchViews), got "
                f"{[tuple(view.shape) for view in views]}"
            )
        rows = views[0].shape[1]
        if self.prediction_steps >= rows:
            raise ValueError(
                f"predicting {self.prediction_steps} rows ahead needs a grid of more than "
                f"{self.prediction_steps} rows, got {rows}; lower prediction_steps or the stride"
            )
        latents, context = self.encode(views[0])  # B x rows x cols x F, both
        losses = []
        for step, predictor in enumerate(self.predictors, start=1):
            predictions = predictor(context[:, :-step])  # B x (rows − k) x cols x F
            losses.append(
                cpc_info_nce(predictions, latents, step, self.temperature, self.gather_distributed)
            )
        return torch.stack(losses).mean()


@dataclass
class CPCConfig(MethodConfig):
    """CPC's hyper-parameters.

    Attributes:
        name: cpc.
        temperature: τ dividing the InfoNCE scores (1: the papers' plain dot products).
        gather_distributed: the negatives are the patches of every process's batch.
        patch_size: side of the square patches cut from each view, in pixels.
        patch_stride: step between patches, in pixels (half the size: 50% overlap, as in [0]).
        prediction_steps: the context predicts the patches 1..prediction_steps rows below.
    """

    name: str = "cpc"
    temperature: float = 0.5
    gather_distributed: bool = True
    patch_size: int = 8
    patch_stride: int = 4
    prediction_steps: int = 3

    def __post_init__(self) -> None:
        check_float("temperature", self.temperature, 0, 100, low_open=True)
        check_int("patch_size", self.patch_size, 2, 4096)
        check_int("patch_stride", self.patch_stride, 1, 4096)
        check_int("prediction_steps", self.prediction_steps, 1, 4096)


def cpc_views(
    config: CPCConfig,
    augment: ViewConfig,
    images: torch.Tensor | torch.utils.data.Dataset,
    mean: Sequence[float],
    std: Sequence[float],
    dtype: torch.dtype = torch.float32,
) -> ViewMaker:
    """CPC's view recipe: one grid of overlapping patches, each augmented on its own."""
    return PatchViews.from_config(augment, config.patch_size, config.patch_stride, mean, std, dtype)


def build_cpc(encoder: nn.Module, config: CPCConfig, head_widths: Sequence[int]) -> CPC:
    """CPC from its config section (it has no projection head: `head_widths` is unused)."""
    return CPC(
        encoder,
        patch_size=config.patch_size,
        stride=config.patch_stride,
        prediction_steps=config.prediction_steps,
        temperature=config.temperature,
        gather_distributed=config.gather_distributed,
    )


register_method(
    MethodPlugin(
        "cpc",
        CPCConfig,
        build_cpc,
        views=cpc_views,
        recipes={"cpc": "cpc-fashion-mnist"},
        exports={"CPC": CPC, "CPCConfig": CPCConfig, "MaskedContextNetwork": MaskedContextNetwork},
    )
)
