"""CPC's inputs: the grid of overlapping patches of each image, every patch augmented on its own.

CPC v2 [1] found that augmenting each patch independently (its "PA" step) helps: the context
cannot then match patches by shared low-level colour or position cues. Here every patch of the
grid gets its own random parameters of a `ViewAugment` (crop-and-resize back to p, a small
spatial jitter; flip; colour jitter; grayscale), all patches of the batch in one batched call;
this is a subset of the paper's per-patch augmentations.

References:
    [0] CPC, van den Oord et al. 2018, arXiv:1807.03748, Section 3.3.
    [1] CPC v2, Hénaff et al. 2019, arXiv:1905.09272, Section 4.1 and Appendix A.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import Tensor

from selfsup.augment.config import ViewConfig
from selfsup.augment.random import Draws
from selfsup.augment.views import ViewAugment
from selfsup.data.stats import normalize
from selfsup.models.patches import check_patch_geometry, cut_grid


class PatchViews:
    """A `ViewMaker` returning one (B, rows, cols, C, p, p) tensor of augmented, normalised patches.

    Patch (r, c) of an image is cut at rows r·stride : r·stride + p and columns
    c·stride : c·stride + p, as `PatchGrid.grid` cuts it at evaluation time.

    Args:
        augment: applied to the flattened (B·rows·cols, C, p, p) patches, each with its own
            random parameters; its `size` must be None or p, so patches keep their side.
        patch_size: patch side p in pixels.
        stride: step between neighbouring patches, in pixels.
        mean, std: per-channel normalisation applied after augmentation.

    >>> maker = PatchViews.from_config(ViewConfig(crop_scale=(0.6, 1.0)), 8, 4, [0.5], [0.25])
    >>> images = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    >>> [patches] = maker(images, torch.arange(2), torch.Generator().manual_seed(0))
    >>> patches.shape
    torch.Size([2, 6, 6, 1, 8, 8])
    """

    def __init__(
        self,
        augment: ViewAugment,
        patch_size: int,
        stride: int,
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        if augment.config.size not in (None, patch_size):
            raise ValueError(
                f"the patch augment resizes to {augment.config.size} px but patches are "
                f"{patch_size} px; leave its size unset"
            )
        check_patch_geometry(patch_size, stride)
        self.augment = augment
        self.patch_size = patch_size
        self.stride = stride
        self.mean, self.std = list(mean), list(std)

    @classmethod
    def from_config(
        cls,
        config: ViewConfig,
        patch_size: int,
        stride: int,
        mean: Sequence[float],
        std: Sequence[float],
        dtype: torch.dtype = torch.float32,
    ) -> PatchViews:
        """The recipe's view parameters applied per patch (its crop is a crop of the patch), in
        `dtype`."""
        if config.size not in (None, patch_size):
            raise ValueError(
                f"augment.size is {config.size} but CPC's patches are {patch_size} px; the patch "
                "size sets the view size, so leave augment.size unset"
            )
        augment = ViewAugment(replace(config, size=patch_size), dtype)
        return cls(augment, patch_size, stride, mean, std)

    def __call__(self, batch: Tensor, indices: Tensor, generator: Draws = None) -> list[Tensor]:
        patches = cut_grid(batch, self.patch_size, self.stride)  # B x rows x cols x C x p x p
        images, rows, cols = patches.shape[:3]
        flat = patches.reshape(images * rows * cols, *patches.shape[3:])  # one image per patch
        views = normalize(self.augment(flat, generator), self.mean, self.std)
        return [views.view(images, rows, cols, *views.shape[1:])]
