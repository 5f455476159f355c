"""A patch-grid encoder: cut an image into overlapping patches and encode each one alone.

CPC [0, 1] never shows the encoder a whole image: the image is cut into a grid of overlapping
patches (7×7 patches of 64 px with stride 32 on 224 px ImageNet crops in [1]) and every patch is
encoded on its own into one vector. Downstream, the image's feature is the mean of its patch
vectors over the grid, so kNN and linear evaluation take a `PatchGrid` like any other encoder.

References:
    [0] CPC, van den Oord et al. 2018, arXiv:1807.03748, Section 3.3.
    [1] CPC v2, Hénaff et al. 2019, arXiv:1905.09272, Section 3 and Appendix A.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from selfsup.models.registry import feature_dim

# Patches per encoder pass in eval mode. Feature extraction feeds 512 images = 18k patches at
# once; on CPU, passes of ~1k patches stay in cache and run ~2x faster (measured with a base-width
# 16 ResNet-18 on 8 px patches). Training keeps one pass: batch-norm statistics, if the encoder
# has any, must cover the whole batch.
EVAL_PATCHES_PER_PASS = 1024


def check_patch_geometry(patch_size: int, stride: int) -> None:
    """Patch side and stride must be positive ints (ValueError otherwise)."""
    for name, value in (("patch_size", patch_size), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def grid_size(length: int, patch_size: int, stride: int) -> int:
    """Number of patches along a side of `length` pixels (pixels past the last patch are unused)."""
    if length < patch_size:
        raise ValueError(f"a side of {length} px is smaller than the {patch_size} px patch")
    return (length - patch_size) // stride + 1


def cut_grid(images: Tensor, patch_size: int, stride: int) -> Tensor:
    """The grid of overlapping patches of each image, as a view (no copy, any dtype).

    Patch (r, c) is `images[:, :, r·stride : r·stride + p, c·stride : c·stride + p]`.

    Args:
        images: (B, C, H, W) images.
        patch_size: patch side p in pixels.
        stride: step between neighbouring patches, in pixels.

    Returns:
        (B, rows, cols, C, p, p) patches, rows = (H − p) // stride + 1, likewise cols.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    grid_size(images.shape[2], patch_size, stride)
    grid_size(images.shape[3], patch_size, stride)
    patches = images.unfold(2, patch_size, stride).unfold(3, patch_size, stride)  # B C R Cols p p
    return patches.permute(0, 2, 3, 1, 4, 5)


class PatchGrid(nn.Module):
    """Encode every patch of a grid with one encoder; `forward` mean-pools over the grid [1].

    All patches of a batch go through the encoder as one batch of B·rows·cols images. Use a
    per-sample normalisation in the encoder (`norm="layer"` for `ResNet`): batch norm over that
    batch would let the patches of one image see each other, which CPC v2 avoids [1]. In eval
    mode the patches go through in passes of `EVAL_PATCHES_PER_PASS`: the same features, faster.

    Args:
        encoder: any backbone with a `feature_dim` attribute, applied to (N, C, p, p) patches.
        patch_size: patch side p in pixels.
        stride: step between neighbouring patches (p/2 gives CPC's half-overlapping grid).

    >>> from selfsup.models import build_encoder
    >>> grid = PatchGrid(build_encoder("resnet18", in_channels=1, base_width=4, norm="layer"), 8, 4)
    >>> images = torch.randn(2, 1, 28, 28)
    >>> grid.encode_grid(images).shape, grid(images).shape
    (torch.Size([2, 6, 6, 32]), torch.Size([2, 32]))
    """

    def __init__(self, encoder: nn.Module, patch_size: int, stride: int) -> None:
        super().__init__()
        check_patch_geometry(patch_size, stride)
        self.encoder = encoder
        self.patch_size = patch_size
        self.stride = stride
        self.feature_dim = feature_dim(encoder)

    def grid_shape(self, height: int, width: int) -> tuple[int, int]:
        """(rows, cols) of the grid cut from an image of `height` × `width` pixels."""
        return (
            grid_size(height, self.patch_size, self.stride),
            grid_size(width, self.patch_size, self.stride),
        )

    def grid(self, images: Tensor) -> Tensor:
        """(B, C, H, W) images → (B, rows, cols, C, p, p) patches, a view of `images`."""
        return cut_grid(images, self.patch_size, self.stride)

    def encode_patches(self, patches: Tensor) -> Tensor:
        """(B, rows, cols, C, p, p) patches → (B, rows, cols, F) patch vectors, one encoder pass."""
        if patches.ndim != 6:
            raise ValueError(
                f"patches must be (B, rows, cols, C, p, p), got shape {tuple(patches.shape)}"
            )
        batch, rows, cols = patches.shape[:3]
        flat = patches.reshape(batch * rows * cols, *patches.shape[3:])
        if self.training:
            features = self.encoder(flat)
        else:
            features = torch.cat([self.encoder(part) for part in flat.split(EVAL_PATCHES_PER_PASS)])
        return features.view(batch, rows, cols, -1)

    def encode_grid(self, images: Tensor) -> Tensor:
        """(B, C, H, W) images → (B, rows, cols, F): the vector of every patch of the grid."""
        return self.encode_patches(self.grid(images))

    def forward(self, images: Tensor) -> Tensor:
        """(B, C, H, W) images → (B, F): patch vectors averaged over the grid."""
        return self.encode_grid(images).mean(dim=(1, 2))
