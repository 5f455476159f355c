"""Colour ops with per-sample factors: brightness, contrast, saturation, hue, grayscale,
solarize, and SimCLR's colour jitter in a random order per sample.

References:
    [0] SimCLR, Chen et al. 2020, arXiv:2002.05709, Appendix A (the view recipe).
    [1] BYOL, Grill et al. 2020, arXiv:2006.07733, Table 6 (solarization).
"""

from __future__ import annotations

import torch
from torch import Tensor

from selfsup.augment.tensors import apply_to_samples

# ITU-R 601 luma, the weights torchvision and PIL use for grayscale.
_GRAY_WEIGHTS = (0.299, 0.587, 0.114)
# Colour-jitter op ids: column k of `ViewParams.jitter_factors` parameterises op k.
BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)


def _per_sample(values: Tensor, images: Tensor) -> Tensor:
    """(B,) values as a (B, 1, 1, 1) tensor on the images' device and dtype."""
    return values.to(device=images.device, dtype=images.dtype).view(-1, 1, 1, 1)


def _gray(images: Tensor) -> Tensor:
    """Luma of (B, C, H, W) images as (B, 1, H, W); a 1-channel image is its own luma."""
    if images.shape[1] == 1:
        return images
    r, g, b = images.unbind(1)
    wr, wg, wb = _GRAY_WEIGHTS
    # Fused adds (3 passes instead of 5). Not a matmul: TF32 matmul settings would change it.
    return torch.add(r * wr, g, alpha=wg).add_(b, alpha=wb).unsqueeze(1)


def _blend(images: Tensor, reference: Tensor, factor: Tensor) -> Tensor:
    # factor * images + (1 - factor) * reference, the form every jitter op shares; factor 1
    # returns the images exactly.
    return (factor * images + (1 - factor) * reference).clamp_(0, 1)


def _require_rgb(images: Tensor, op: str) -> None:
    if images.shape[1] != 3:
        raise ValueError(f"{op} needs 3-channel images, got {images.shape[1]} channels")


def adjust_brightness(images: Tensor, factor: Tensor) -> Tensor:
    """Multiply each image by its brightness factor, clamped to [0, 1] (factor 1 = identity).

    Args:
        images: (B, C, H, W) float images in [0, 1].
        factor: (B,) non-negative factors.
    """
    return _blend(images, torch.zeros((), device=images.device), _per_sample(factor, images))


def adjust_contrast(images: Tensor, factor: Tensor) -> Tensor:
    """Blend each image with the mean of its grayscale version (factor 0 = flat gray image).

    Args:
        images: (B, C, H, W) float images in [0, 1], C = 1 or 3.
        factor: (B,) non-negative factors; 1 is the identity.
    """
    mean = _gray(images).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(images, mean, _per_sample(factor, images))


def adjust_saturation(images: Tensor, factor: Tensor) -> Tensor:
    """Blend each image with its grayscale version (factor 0 = grayscale, 1 = identity).

    A 1-channel image has no saturation and is returned unchanged.

    Args:
        images: (B, C, H, W) float images in [0, 1], C = 1 or 3.
        factor: (B,) non-negative factors.
    """
    if images.shape[1] == 1:
        return images
    return _blend(images, _gray(images), _per_sample(factor, images))


def _hexcone(images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Hue - 3 (hue in sixths of a turn), chroma and max of RGB (B, 3, H, W), each (B, H, W).

    Branch-free (element-wise masks are slow on CPU): with channels rescaled so that min = 0
    and max = 1, A = g' - r' + b' rises from -1 to 2 as the hue goes from 0 to 3 sixths and
    falls back as it goes on to 6, and the half is the sign of g - b, so hue = 3 -+ (2 - A).
    At g = b both halves give the same hue (0 or 3), so the sign of a zero does not matter.
    Gray pixels (chroma 0) get an arbitrary hue, which chroma 0 makes irrelevant.
    """
    r, g, b = images.unbind(1)
    high = torch.maximum(torch.maximum(r, g), b)
    low = torch.minimum(torch.minimum(r, g), b)
    chroma = high - low
    a = (g + b - r - low) / chroma.clamp(min=1e-12)
    return torch.copysign(2 - a, b - g), chroma, high


def _from_hexcone(hue_minus_3: Tensor, offset: Tensor, chroma: Tensor, high: Tensor) -> Tensor:
    """(B, 3, H, W) RGB from the hexcone parts of `_hexcone`, hue moved by `offset` sixths.

    Channel n (R: 5, G: 3, B: 1) is max - chroma * g(hue + n), g the trapezoid of period 6 that
    is 1 within distance 1 of 2 and 0 beyond distance 2. With j = hue + n - 2 folded into
    [-6, 6] (by folding the per-sample constant, so no per-pixel modulo), the distance to 2 is
    3 - ||j| - 3|, hence g = clamp(||j| - 3| - 1, 0, 1).

    Args:
        hue_minus_3: (B, H, W) hue in sixths of a turn minus 3, in [-3, 3].
        offset: hue shift in sixths of a turn, broadcastable to (B, 1, 1, 1).
        chroma: (B, H, W) max - min.
        high: (B, H, W) max.
    """
    # n = (5, 3, 1), made on the device (a tensor from a list would be a host-to-device copy).
    n = torch.arange(5, 0, -2, device=high.device, dtype=high.dtype).view(1, 3, 1, 1)
    const = torch.remainder(offset + n + 4, 6.0) - 3  # 1 + n + offset, folded into [-3, 3)
    j = hue_minus_3.unsqueeze(1) + const
    ramp = (j.abs_() - 3).abs_().sub_(1).clamp_(0, 1)
    return torch.addcmul(high.unsqueeze(1), chroma.unsqueeze(1), ramp, value=-1)


def rgb_to_hsv(images: Tensor) -> Tensor:
    """Convert (B, 3, H, W) RGB in [0, 1] to HSV, all channels in [0, 1] (gray: hue 0)."""
    _require_rgb(images, "rgb_to_hsv")
    hue_minus_3, chroma, high = _hexcone(images)
    hue = torch.remainder((hue_minus_3 + 3) / 6, 1.0)
    hue = torch.where(chroma > 0, hue, torch.zeros_like(hue))
    sat = chroma / torch.where(high > 0, high, torch.ones_like(high))
    return torch.stack([hue, sat, high], 1)


def hsv_to_rgb(images: Tensor) -> Tensor:
    """Convert (B, 3, H, W) HSV (all channels in [0, 1]) to RGB in [0, 1]."""
    _require_rgb(images, "hsv_to_rgb")
    hue, sat, value = images.unbind(1)
    zero = torch.zeros((), device=images.device, dtype=images.dtype)
    return _from_hexcone(6 * hue - 3, zero, sat * value, value)


def adjust_hue(images: Tensor, shift: Tensor) -> Tensor:
    """Rotate each image's hue by its shift, a fraction of a full turn (0 or 1 = identity).

    Works directly on the hexcone (max, chroma, hue), which is what an RGB -> HSV -> RGB round
    trip does without dividing and multiplying by the value. A 1-channel image is returned
    unchanged.

    Args:
        images: (B, C, H, W) float images in [0, 1], C = 1 or 3.
        shift: (B,) hue shifts, usually in [-0.5, 0.5].
    """
    if images.shape[1] == 1:
        return images
    _require_rgb(images, "adjust_hue")
    hue_minus_3, chroma, high = _hexcone(images)
    offset = 6 * shift.to(device=images.device, dtype=images.dtype).view(-1, 1, 1, 1)
    return _from_hexcone(hue_minus_3, offset, chroma, high)


def to_grayscale(images: Tensor) -> Tensor:
    """Replace each image by its luma (0.299 R + 0.587 G + 0.114 B), keeping the channel count."""
    return _gray(images).expand_as(images).contiguous()


def color_jitter(images: Tensor, factors: Tensor, order: Tensor) -> Tensor:
    """Apply brightness, contrast, saturation and hue changes in a per-sample order [0].

    Brightness, contrast and saturation are all blends `f * x + (1 - f) * ref` towards a
    reference (black, mean luma, luma), so each of the 4 positions is one blend with a
    per-sample reference, plus a hue rotation for the samples whose op there is hue. For
    1-channel images saturation and hue are skipped.

    Args:
        images: (B, C, H, W) float images in [0, 1], C = 1 or 3.
        factors: (B, 4) brightness, contrast, saturation factors and hue shift; use
            (1, 1, 1, 0) for samples that should stay unchanged.
        order: (B, 4) long, `order[i, p]` is the op (0 brightness, 1 contrast, 2 saturation,
            3 hue) applied to sample i at position p; each row a permutation of 0..3.

    Returns:
        (B, C, H, W) jittered images.
    """
    x = images
    b = x.shape[0]
    rgb = x.shape[1] == 3
    factors = factors.to(device=x.device, dtype=x.dtype)
    order = order.to(x.device)
    if rgb:
        stages = order
    else:
        # Saturation and hue do nothing to one channel: only whether brightness comes before
        # contrast matters, so two stages do the work of four.
        position = order.argsort(1)  # position[i, k]: the stage at which op k runs
        first = torch.where(position[:, BRIGHTNESS] < position[:, CONTRAST], BRIGHTNESS, CONTRAST)
        stages = torch.stack([first, BRIGHTNESS + CONTRAST - first], 1)
    # Per-op blend factors; hue is not a blend and gets the identity factor 1.
    blend_factors = torch.cat([factors[:, :3], torch.ones_like(factors[:, :1])], 1)
    shift = factors[:, HUE]
    for op in stages.unbind(1):
        factor = blend_factors.gather(1, op[:, None]).view(b, 1, 1, 1)
        # f * x + (1 - f) * reference, the reference being 0 (brightness), the mean luma
        # (contrast) or the luma (saturation); per-sample weights instead of masks, which are
        # slow on CPU. With f = 1 both weights are 0 and x comes back exactly.
        rest = 1 - factor
        gray = _gray(x)
        is_contrast = (op == CONTRAST).view(b, 1, 1, 1).to(x.dtype)
        reference = rest * is_contrast * gray.mean(dim=(1, 2, 3), keepdim=True)
        if rgb:  # one channel never reaches saturation (see the stages above)
            is_saturation = (op == SATURATION).view(b, 1, 1, 1).to(x.dtype)
            reference = torch.addcmul(reference, rest * is_saturation, gray)
        x = torch.addcmul(reference, factor, x).clamp_(0, 1)
        if rgb:
            # Hue is the one op that is not a blend; it runs on its samples only.
            x = apply_to_samples(x, (op == HUE) & (shift != 0), adjust_hue, shift)
    return x


def solarize(images: Tensor, threshold: float = 0.5) -> Tensor:
    """Invert every pixel at or above `threshold` (x -> 1 - x), as in BYOL [1]."""
    return torch.where(images >= threshold, 1 - images, images)
