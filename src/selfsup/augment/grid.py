"""A PNG contact sheet of random views, to check by eye what an augmentation recipe does."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from selfsup.augment.geometry import eval_transform
from selfsup.augment.views import ViewAugment

__all__ = ["save_view_grid"]

_GUTTER = 2  # white pixels between (and around) cells


def save_view_grid(
    images: Tensor,
    augment: ViewAugment,
    path: str | Path,
    n_views: int = 4,
    generator: torch.Generator | None = None,
    scale: int = 4,
) -> Path:
    """Write a PNG with one row per image: the original, then `n_views` random views.

    The original is resized to the views' size so the columns line up; every cell is
    upscaled by `scale` with nearest-neighbour (small images stay legible) and cells are
    separated by 2-pixel white gutters. Parent directories are created.

    Args:
        images: (B, C, H, W) uint8 images, C = 1 or 3; keep B small (one row each).
        augment: the view recipe to show.
        path: where to write the PNG.
        n_views: views per image.
        generator: CPU generator for the views; None uses torch's default.
        scale: integer nearest-neighbour upscaling factor (1 = none).

    Returns:
        The path written, as a `Path`.

    >>> import tempfile, os
    >>> images = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)
    >>> out = save_view_grid(images, ViewAugment(), os.path.join(tempfile.mkdtemp(), "g.png"))
    >>> Image.open(out).size
    (172, 70)
    """
    if scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale}")
    views = augment.views(images, n_views, generator)
    original = eval_transform(images, tuple(views[0].shape[-2:]))
    cells = torch.stack([original, *views], 1).float().cpu()  # (B, 1 + n_views, C, h, w)
    if scale > 1:
        cells = cells.repeat_interleave(scale, -2).repeat_interleave(scale, -1)
    b, n, c, h, w = cells.shape
    g = _GUTTER
    # A gutter right of and below each cell, then one along the top and left edges.
    cells = F.pad(cells, (0, g, 0, g), value=1.0)
    sheet = cells.permute(2, 0, 3, 1, 4).reshape(c, b * (h + g), n * (w + g))
    sheet = F.pad(sheet, (g, 0, g, 0), value=1.0)
    pixels = (sheet * 255).round_().clamp_(0, 255).to(torch.uint8)
    array = pixels[0].numpy() if c == 1 else pixels.permute(1, 2, 0).contiguous().numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)  # 2-D uint8 is mode L, (H, W, 3) is RGB
    return path
