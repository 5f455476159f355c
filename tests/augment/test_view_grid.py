"""Tests for selfsup.augment.grid: the PNG has the promised layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.augment import ViewAugment, ViewConfig, save_view_grid


@pytest.mark.parametrize(("channels", "mode"), [(1, "L"), (3, "RGB")])
def test_grid_png_size_and_layout(tmp_path: Path, channels: int, mode: str) -> None:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (3, channels, 10, 10), dtype=torch.uint8, generator=gen)
    path = tmp_path / "nested" / "dir" / "grid.png"
    out = save_view_grid(images, ViewAugment(ViewConfig(size=8)), path, n_views=4, scale=3)
    assert out == path and path.exists()
    with Image.open(path) as png:
        assert png.mode == mode
        # 5 columns (original + 4 views) and 3 rows of 24-px cells, 2-px gutters all round.
        assert png.size == (5 * 24 + 6 * 2, 3 * 24 + 4 * 2)
        pixels = np.asarray(png)
    assert (pixels[:2] == 255).all() and (pixels[:, :2] == 255).all()
    assert (pixels[:, 26:28] == 255).all()  # gutter after the first column
    # The first cell is the original, resized to the views' size and upscaled 3x.
    cell = pixels[2:26, 2:26]
    original = torch.nn.functional.interpolate(
        images[:1].float() / 255, size=8, mode="bilinear", antialias=True
    )
    expected = (original[0] * 255).round().clamp(0, 255).to(torch.uint8)
    expected = expected.repeat_interleave(3, -1).repeat_interleave(3, -2)
    expected = expected[0] if channels == 1 else expected.permute(1, 2, 0)
    assert np.abs(cell.astype(int) - expected.numpy().astype(int)).max() <= 1
