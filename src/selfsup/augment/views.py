"""SimCLR random views as batched tensor ops with per-sample parameters, identical on CPU and GPU.

Every random number is drawn on a CPU `torch.Generator` and only the small parameter tensors are
moved to the images' device, so one seed gives the same views whatever the device. The image ops
themselves never loop over samples in Python: crop and flip are one `grid_sample`, colour jitter
is 4 batched blends (2 for one channel) plus hue rotations, blur is one grouped convolution. On
CPU, ops applied with a probability (hue, grayscale, blur, solarize) run only on the samples
drawn for them; on GPU they run on the whole batch and are selected with `torch.where`, which
avoids host syncs. Element-wise masks are avoided in hot paths: they are slow on CPU.

References:
    [0] SimCLR, Chen et al. 2020, arXiv:2002.05709, Appendix A (the view recipe).
    [1] BYOL, Grill et al. 2020, arXiv:2006.07733, Table 6 (solarization).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import partial

import torch
from torch import Tensor

from selfsup.augment.colour import HUE, color_jitter, solarize, to_grayscale
from selfsup.augment.config import ViewConfig
from selfsup.augment.filters import blur_kernel_size, gaussian_blur
from selfsup.augment.geometry import resized_crop_flip, sample_crop_boxes
from selfsup.augment.random import Draws, uniform
from selfsup.augment.tensors import apply_to_samples, to_float


@dataclass
class ViewParams:
    """Per-sample random parameters of one batch of views (all tensors have B rows).

    Attributes:
        boxes: (B, 4) float crop boxes (top, left, height, width) in input pixels.
        flip: (B,) bool, flip horizontally.
        jitter: (B,) bool, apply colour jitter.
        jitter_factors: (B, 4) brightness, contrast, saturation factors and hue shift.
        jitter_order: (B, 4) long, `jitter_order[i, p]` is the op applied at position p.
        grayscale: (B,) bool, convert to grayscale.
        blur: (B,) bool, apply Gaussian blur.
        blur_sigma: (B,) float, blur standard deviation in pixels.
        solarize: (B,) bool, solarize.
    """

    boxes: Tensor
    flip: Tensor
    jitter: Tensor
    jitter_factors: Tensor
    jitter_order: Tensor
    grayscale: Tensor
    blur: Tensor
    blur_sigma: Tensor
    solarize: Tensor

    def to(self, device: torch.device | str) -> ViewParams:
        """The same parameters on `device`.

        The copies are non-blocking: from ordinary CPU memory that still copies at once, but
        without waiting for the work already queued on the GPU.
        """
        moved = {f.name: getattr(self, f.name).to(device, non_blocking=True) for f in fields(self)}
        return ViewParams(**moved)


class ViewAugment(torch.nn.Module):
    """SimCLR's random view [0]: crop+flip, colour jitter, grayscale, blur, solarize.

    Every sample in a batch gets its own random parameters, drawn on a CPU generator, so the
    same seed gives the same views on any device. Images stay uint8 until this module.

    Args:
        config: the recipe's parameters.
        dtype: the floating dtype uint8 images are converted to and the views are made in
            (float32 for training; float64 where a test must see only float64 rounding).

    >>> augment = ViewAugment(ViewConfig(size=24))
    >>> images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    >>> a, b = augment.views(images, generator=torch.Generator().manual_seed(0))
    >>> a.shape, a.dtype
    (torch.Size([8, 3, 24, 24]), torch.float32)
    """

    def __init__(
        self, config: ViewConfig | None = None, dtype: torch.dtype = torch.float32
    ) -> None:
        super().__init__()
        if not dtype.is_floating_point:
            raise ValueError(f"views are made in a floating dtype, got {dtype}")
        self.config = config if config is not None else ViewConfig()
        self.dtype = dtype

    def sample_params(
        self,
        batch_size: int,
        height: int,
        width: int,
        generator: Draws = None,
    ) -> ViewParams:
        """Draw one batch of view parameters on the CPU (same draws whatever the config's p's).

        Args:
            batch_size: number of samples B.
            height: input image height.
            width: input image width.
            generator: CPU generator (or `ShardedDraws`); None uses torch's default CPU generator.

        Returns:
            CPU `ViewParams` with B rows.
        """
        if isinstance(generator, torch.Generator) and generator.device.type != "cpu":
            raise ValueError(
                "views draw their random numbers on the CPU so that a seed gives the same views "
                f"on every device; pass a CPU torch.Generator, got one on {generator.device}"
            )
        cfg = self.config
        boxes = sample_crop_boxes(
            batch_size, height, width, cfg.crop_scale, cfg.crop_ratio, generator
        )
        coins = uniform((batch_size, 5), generator)
        s = cfg.jitter_strength
        lo, hi = max(0.0, 1 - 0.8 * s), 1 + 0.8 * s
        unit = uniform((batch_size, 4), generator)
        factors = torch.cat([lo + (hi - lo) * unit[:, :3], 0.2 * s * (2 * unit[:, 3:] - 1)], 1)
        order = uniform((batch_size, 4), generator).argsort(1)  # a uniform random permutation
        sigma_lo, sigma_hi = cfg.blur_sigma
        sigma = sigma_lo + (sigma_hi - sigma_lo) * uniform((batch_size,), generator)
        return ViewParams(
            boxes=boxes,
            flip=coins[:, 0] < cfg.flip_p,
            jitter=coins[:, 1] < cfg.jitter_p,
            jitter_factors=factors,
            jitter_order=order,
            grayscale=coins[:, 2] < cfg.grayscale_p,
            blur=coins[:, 3] < cfg.blur_p,
            blur_sigma=sigma,
            solarize=coins[:, 4] < cfg.solarize_p,
        )

    def apply_params(self, images: Tensor, params: ViewParams) -> Tensor:
        """Make views with given parameters (the deterministic half of `forward`).

        Named so as not to shadow `nn.Module.apply`.

        Args:
            images: (B, C, H, W) uint8 (or float in [0, 1]) images, C = 1 or 3, any device.
            params: parameters from `sample_params`, on any device.

        Returns:
            (B, C, size, size) views in [0, 1] in `dtype` (float input: its dtype), on the
            images' device.
        """
        cfg = self.config
        channels = images.shape[1]
        if channels not in (1, 3):
            raise ValueError(f"images must have 1 or 3 channels, got {channels}")
        p = params.to(images.device)
        # x is a fresh tensor from here on, so the ops below may write into it.
        x = resized_crop_flip(to_float(images, self.dtype), p.boxes, p.flip, cfg.size)
        if cfg.jitter_p > 0 and cfg.jitter_strength > 0:
            identity = (torch.arange(4, device=x.device) < HUE).to(x.dtype)  # (1, 1, 1, 0)
            factors = torch.where(p.jitter[:, None], p.jitter_factors.to(x.dtype), identity)
            x = color_jitter(x, factors, p.jitter_order)
        if cfg.grayscale_p > 0 and channels == 3:
            x = apply_to_samples(x, p.grayscale, to_grayscale)
        if cfg.blur_p > 0:
            k = blur_kernel_size(min(x.shape[-2:]), cfg.blur_kernel_fraction)
            x = apply_to_samples(x, p.blur, partial(gaussian_blur, kernel_size=k), p.blur_sigma)
        if cfg.solarize_p > 0:
            x = apply_to_samples(x, p.solarize, partial(solarize, threshold=cfg.solarize_threshold))
        return x

    def forward(self, images: Tensor, generator: Draws = None) -> Tensor:
        """One random view of each image.

        Args:
            images: (B, C, H, W) uint8 images, C = 1 or 3, on any device.
            generator: CPU generator for the parameters; None uses torch's default.

        Returns:
            (B, C, size, size) float32 views in [0, 1], on the images' device.
        """
        b, _, h, w = images.shape
        return self.apply_params(images, self.sample_params(b, h, w, generator))

    def views(self, images: Tensor, n_views: int = 2, generator: Draws = None) -> list[Tensor]:
        """`n_views` independent random views of each image (a SimCLR pair by default)."""
        if n_views < 1:
            raise ValueError(f"n_views must be >= 1, got {n_views}")
        return [self(images, generator) for _ in range(n_views)]
