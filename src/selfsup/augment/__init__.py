"""Random views for self-supervised learning: SimCLR's recipe as batched, per-sample tensor ops.

Images stay uint8 until `ViewAugment` turns them into float views in [0, 1]; every random
number is drawn on a CPU generator, so a seed gives the same views on CPU and GPU.
"""

from selfsup.augment.colour import (
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    color_jitter,
    hsv_to_rgb,
    rgb_to_hsv,
    solarize,
    to_grayscale,
)
from selfsup.augment.config import ViewConfig
from selfsup.augment.filters import blur_kernel_size, gaussian_blur
from selfsup.augment.geometry import eval_transform, resized_crop_flip, sample_crop_boxes
from selfsup.augment.grid import save_view_grid
from selfsup.augment.makers import (
    AugmentedViews,
    LabelledViews,
    MultiCropViews,
    ViewMaker,
    WithBitViews,
)
from selfsup.augment.pairs import NeighbourPairs
from selfsup.augment.patches import PatchViews
from selfsup.augment.random import ShardedDraws
from selfsup.augment.views import ViewAugment, ViewParams
from selfsup.data.stats import dataset_stats, normalize

__all__ = [
    "AugmentedViews",
    "LabelledViews",
    "MultiCropViews",
    "NeighbourPairs",
    "PatchViews",
    "ShardedDraws",
    "ViewAugment",
    "ViewConfig",
    "ViewMaker",
    "ViewParams",
    "WithBitViews",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "blur_kernel_size",
    "color_jitter",
    "dataset_stats",
    "eval_transform",
    "gaussian_blur",
    "hsv_to_rgb",
    "normalize",
    "resized_crop_flip",
    "rgb_to_hsv",
    "sample_crop_boxes",
    "save_view_grid",
    "solarize",
    "to_grayscale",
]
