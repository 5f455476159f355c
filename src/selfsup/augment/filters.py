"""Filters: Gaussian blur with per-sample parameters as one grouped convolution; Sobel edges."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def gaussian_blur(images: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Blur each image with its own Gaussian, separably, by grouped convolution (reflect padding).

    Args:
        images: (B, C, H, W) float images.
        sigma: (B,) positive standard deviations in pixels.
        kernel_size: odd kernel side, smaller than twice the image side.

    Returns:
        (B, C, H, W) blurred images.
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size}")
    b, c, h, w = images.shape
    pad = kernel_size // 2
    if pad >= min(h, w):
        raise ValueError(f"kernel_size {kernel_size} is too large for {h}x{w} images")
    taps = torch.arange(kernel_size, device=images.device, dtype=images.dtype) - pad
    sigma = sigma.to(device=images.device, dtype=images.dtype).clamp(min=1e-6)
    kernel = torch.exp(-0.5 * (taps / sigma[:, None]) ** 2)
    kernel = kernel / kernel.sum(1, keepdim=True)
    # One group per (sample, channel): every sample gets its own kernel.
    kernel = kernel.repeat_interleave(c, 0)  # (B*C, k)
    x = images.reshape(1, b * c, h, w)
    x = F.conv2d(F.pad(x, (pad, pad, 0, 0), mode="reflect"), kernel[:, None, None, :], groups=b * c)
    x = F.conv2d(F.pad(x, (0, 0, pad, pad), mode="reflect"), kernel[:, None, :, None], groups=b * c)
    return x.view(b, c, h, w)


def blur_kernel_size(size: int, fraction: float) -> int:
    """The odd kernel side nearest `fraction * size`, at least 3 (SimCLR: 10% of the side [0])."""
    return max(3, 2 * round((fraction * size - 1) / 2) + 1)


def sobel(images: Tensor) -> Tensor:
    """Sobel edge magnitude of each image's channel mean, in [0, 1] and repeated over its C
    channels (SimCLR's Sobel filtering, Fig. 4): |∇| / (4√2), the largest magnitude a [0, 1]
    image can reach, with replicate padding.

    >>> flat = torch.full((1, 3, 6, 6), 0.7)
    >>> bool(sobel(flat).max() < 1e-6)
    True
    """
    b, c, h, w = images.shape
    grey = F.pad(images.mean(1, keepdim=True), (1, 1, 1, 1), mode="replicate")
    taps = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([taps, taps.T])[:, None].to(device=images.device, dtype=images.dtype)
    gradients = F.conv2d(grey, kernels)  # (B, 2, H, W): d/dx, d/dy
    magnitude = gradients.pow(2).sum(1, keepdim=True).sqrt() / (4 * 2**0.5)
    return magnitude.clamp(0, 1).expand(b, c, h, w).contiguous()
