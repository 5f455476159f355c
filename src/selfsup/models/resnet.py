"""ResNet encoders (He et al. 2016, arXiv:1512.03385): CIFAR or ImageNet stem, width knob.

SimCLR widens every stage by a multiplier (×1, ×2, ×4); for CPU work the base width can be
small (16 instead of 64). The classifier is dropped: `forward` returns pooled features.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

NORMS = ("batch", "layer")


def _norm(channels: int, norm: str = "batch") -> nn.Module:
    """BatchNorm, or layer norm over (C, H, W) as CPC v2 uses (GroupNorm with one group)."""
    if norm == "layer":
        return nn.GroupNorm(1, channels)
    return nn.BatchNorm2d(channels)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with an identity (or 1×1 projection) shortcut."""

    expansion = 1

    def __init__(
        self, in_channels: int, channels: int, stride: int = 1, norm: str = "batch"
    ) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = _norm(channels, norm)
        self.conv2 = nn.Conv2d(channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = _norm(out_channels, norm)
        self.shortcut = _shortcut(in_channels, out_channels, stride, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class SelectiveKernel(nn.Module):
    """Selective-kernel convolution (Li et al. 2019, arXiv:1903.06586), as SimCLRv2's SK-ResNets
    use in place of each bottleneck's 3×3 convolution.

    Two branches see the input at two receptive fields (3×3, and 3×3 with dilation 2 = 5×5),
    each conv-norm-ReLU; a squeeze of their sum (global pool → 1×1 conv to max(C/r, 32) → norm
    → ReLU) gives per-channel logits for each branch, a softmax across branches weights them,
    and the output is the weighted sum: each channel picks its receptive field per image.
    """

    def __init__(
        self,
        channels: int,
        stride: int = 1,
        norm: str = "batch",
        reduction: int = 16,
        min_dim: int = 32,
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, channels, 3, stride, dilation, dilation, bias=False),
                _norm(channels, norm),
                nn.ReLU(),
            )
            for dilation in (1, 2)
        )
        squeezed = max(channels // reduction, min_dim)
        self.squeeze = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, squeezed, 1, bias=False),
            _norm(squeezed, norm),
            nn.ReLU(),
        )
        self.select = nn.Conv2d(squeezed, channels * len(self.branches), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        paths = torch.stack([branch(x) for branch in self.branches], dim=1)  # B x M x C x H x W
        logits = self.select(self.squeeze(paths.sum(dim=1)))  # B x (M·C) x 1 x 1
        weights = logits.view(x.shape[0], len(self.branches), -1, 1, 1).softmax(dim=1)
        return (paths * weights).sum(dim=1)


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3 (strided, as in torchvision's v1.5), 1×1 expand ×4; with
    `selective_kernel`, the 3×3 is a `SelectiveKernel` (SK-ResNet)."""

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        norm: str = "batch",
        selective_kernel: bool = False,
        pool_grid: int = 1,
    ) -> None:
        super().__init__()
        if isinstance(pool_grid, bool) or not isinstance(pool_grid, int) or pool_grid < 1:
            raise ValueError(f"pool_grid must be a positive int, got {pool_grid!r}")
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = _norm(channels, norm)
        if selective_kernel:  # conv, norm and ReLU inside each branch
            self.conv2: nn.Module = SelectiveKernel(channels, stride, norm)
            self.bn2: nn.Module = nn.Identity()
        else:
            self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
            self.bn2 = _norm(channels, norm)
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = _norm(out_channels, norm)
        self.shortcut = _shortcut(in_channels, out_channels, stride, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + self.shortcut(x))


def _shortcut(in_channels: int, out_channels: int, stride: int, norm: str) -> nn.Module:
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), _norm(out_channels, norm)
    )


class ResNet(nn.Module):
    """A ResNet trunk: stem, four stages, average pool (global, or to a grid) → (B, feature_dim).

    Args:
        block: `BasicBlock` or `Bottleneck`.
        layers: blocks per stage, e.g. (2, 2, 2, 2) for ResNet-18.
        in_channels: 1 for grayscale data, 3 for colour.
        stem: "cifar" (3×3 stride-1 conv, no max-pool) for ≤64 px images, or "imagenet"
            (7×7 stride-2 conv + 3×3 max-pool).
        base_width: channels of the first stage before the multiplier (64 in the paper).
        width_multiplier: SimCLR's ×1/×2/×4; fractional values are allowed.
        zero_init_residual: start each block's last BN at γ=0 (Goyal et al. 2017; SimCLR's TF code
            does this). Off by default, as in torchvision: a random-init baseline is then stronger.
        norm: "batch" (default) or "layer" (per-sample norm over C, H, W: CPC v2's patch
            encoder, where batch statistics would let patches of one image see each other).
        selective_kernel: SK-ResNet (SimCLRv2's biggest encoders): every bottleneck's 3×3
            convolution becomes a `SelectiveKernel`. Bottleneck ResNets (50/101/152) only.
        pool_grid: the last stage's map is average-pooled to a g×g grid and flattened, so the
            features keep where things are: C·g² wide. 1 is the usual global average pool.
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, ...],
        in_channels: int = 3,
        stem: str = "cifar",
        base_width: int = 64,
        width_multiplier: float = 1.0,
        zero_init_residual: bool = False,
        norm: str = "batch",
        selective_kernel: bool = False,
        pool_grid: int = 1,
    ) -> None:
        super().__init__()
        if isinstance(pool_grid, bool) or not isinstance(pool_grid, int) or pool_grid < 1:
            raise ValueError(f"pool_grid must be a positive int, got {pool_grid!r}")
        if selective_kernel and block is not Bottleneck:
            raise ValueError(
                "selective kernels replace a bottleneck's 3×3 convolution: use resnet50/101/152"
            )
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"stem must be 'cifar' or 'imagenet', got {stem!r}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        width = max(1, round(base_width * width_multiplier))
        if stem == "cifar":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), _norm(width, norm), nn.ReLU()
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, 7, 2, 3, bias=False),
                _norm(width, norm),
                nn.ReLU(),
                nn.MaxPool2d(3, 2, 1),
            )
        options = {"selective_kernel": True} if selective_kernel else {}
        stages = []
        channels_in = width
        for index, num_blocks in enumerate(layers):
            channels = width * 2**index
            stride = 1 if index == 0 else 2
            blocks = []
            for block_index in range(num_blocks):
                block_stride = stride if block_index == 0 else 1
                blocks.append(block(channels_in, channels, block_stride, norm, **options))
                channels_in = channels * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(pool_grid)
        self.feature_dim = channels_in * pool_grid**2
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if not zero_init_residual:
            return
        for module in self.modules():  # blocks start as identities
            if isinstance(module, Bottleneck):
                nn.init.zeros_(module.bn3.weight)
            elif isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(images))).flatten(1)

    def stage_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Every stage's output (B, C_i, H_i, W_i): the per-location features that the local
        features study clusters (*Intriguing Properties*, local features)."""
        maps, features = [], self.stem(images)
        for stage in self.stages:
            features = stage(features)
            maps.append(features)
        return maps


def _builder(block: type[BasicBlock] | type[Bottleneck], layers: tuple[int, ...]) -> Callable:
    def build(**kwargs: object) -> ResNet:
        return ResNet(block, layers, **kwargs)  # type: ignore[arg-type]

    return build


resnet18 = _builder(BasicBlock, (2, 2, 2, 2))
resnet34 = _builder(BasicBlock, (3, 4, 6, 3))
resnet50 = _builder(Bottleneck, (3, 4, 6, 3))
resnet101 = _builder(Bottleneck, (3, 4, 23, 3))
resnet152 = _builder(Bottleneck, (3, 8, 36, 3))
