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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor

from selfsup.augment.random import Draws, uniform
from selfsup.checks import check_float, check_int

# ITU-R 601 luma, the weights torchvision and PIL use for grayscale.
_GRAY_WEIGHTS = (0.299, 0.587, 0.114)
# Candidate (scale, ratio) pairs drawn per sample before falling back to a center crop; the
# same number of tries torchvision's RandomResizedCrop makes one at a time.
_CROP_TRIES = 10
# Colour-jitter op ids: column k of `ViewParams.jitter_factors` parameterises op k.
BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)


@dataclass
class ViewConfig:
    """Parameters of the SimCLR view recipe [0] (plus BYOL's solarization [1]).

    Attributes:
        size: output side in pixels; None keeps the input size.
        crop_scale: range of the crop's area as a fraction of the image area.
        crop_ratio: range of the crop's aspect ratio (width / height), sampled log-uniformly.
        flip_p: probability of a horizontal flip.
        jitter_strength: colour-jitter strength s; brightness, contrast and saturation factors
            are uniform in [max(0, 1 - 0.8 s), 1 + 0.8 s] and the hue shift in [-0.2 s, 0.2 s].
        jitter_p: probability of applying colour jitter to a sample.
        grayscale_p: probability of converting a sample to grayscale.
        blur_p: probability of Gaussian blur (SimCLR uses 0.5 at ImageNet resolution; it is off
            by default because it destroys most of a <= 32 px image).
        blur_kernel_fraction: blur kernel size as a fraction of the output size (odd, >= 3).
        blur_sigma: range of the blur's standard deviation, in pixels.
        solarize_p: probability of solarization.
        solarize_threshold: pixels at or above this value (in [0, 1]) are inverted.
        second_blur_p, second_solarize_p: BYOL's asymmetric pair [1]: the blur and solarize
            probabilities of the second view (the first uses `blur_p`, `solarize_p`); None keeps
            the two views' recipes identical.
    """

    size: int | None = None
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_strength: float = 1.0
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    blur_kernel_fraction: float = 0.1
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.0
    solarize_threshold: float = 0.5
    second_blur_p: float | None = None
    second_solarize_p: float | None = None

    def __post_init__(self) -> None:
        # Recipes loaded from YAML give lists; keep the declared tuple types.
        self.crop_scale = _float_pair("crop_scale", self.crop_scale)
        self.crop_ratio = _float_pair("crop_ratio", self.crop_ratio)
        self.blur_sigma = _float_pair("blur_sigma", self.blur_sigma)
        check_int("size", self.size, 4, 4096, optional=True)
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {self.crop_scale}")
        lo, hi = self.crop_ratio
        if not 0 < lo <= hi <= 100:
            raise ValueError(
                f"crop_ratio must satisfy 0 < low <= high <= 100, got {self.crop_ratio}"
            )
        for name in (
            "flip_p",
            "jitter_p",
            "grayscale_p",
            "blur_p",
            "solarize_p",
            "second_blur_p",
            "second_solarize_p",
        ):
            check_float(name, getattr(self, name), 0, 1, optional=name.startswith("second_"))
        check_float("jitter_strength", self.jitter_strength, 0, 10)
        check_float("blur_kernel_fraction", self.blur_kernel_fraction, 0, 1, low_open=True)
        lo, hi = self.blur_sigma
        if not 0 < lo <= hi <= 1e3:
            raise ValueError(
                f"blur_sigma must satisfy 0 < low <= high <= 1000, got {self.blur_sigma}"
            )
        check_float("solarize_threshold", self.solarize_threshold, 0, 1)

    def for_view(self, index: int) -> ViewConfig:
        """The recipe of view `index`: odd views take the `second_*` probabilities when set."""
        if index % 2 == 0:
            return replace(self, second_blur_p=None, second_solarize_p=None)
        blur_p, solarize_p = self.second_blur_p, self.second_solarize_p
        return replace(
            self,
            blur_p=self.blur_p if blur_p is None else blur_p,
            solarize_p=self.solarize_p if solarize_p is None else solarize_p,
            second_blur_p=None,
            second_solarize_p=None,
        )


def _float_pair(name: str, value: Sequence[float]) -> tuple[float, float]:
    if len(value) != 2:
        raise ValueError(f"{name} must be a (low, high) pair, got {value!r}")
    return float(value[0]), float(value[1])


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


def _to_float(images: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """uint8 images as `dtype` in [0, 1]; float images pass through in their own dtype."""
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.to(dtype).div_(255.0)
    if not images.is_floating_point():
        raise ValueError(f"images must be uint8 or floating point, got {images.dtype}")
    return images


def _size_pair(size: int | Sequence[int] | None, height: int, width: int) -> tuple[int, int]:
    if size is None:
        return height, width
    if isinstance(size, int):
        return size, size
    return int(size[0]), int(size[1])


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


# --------------------------------------------------------------------------- geometric ops


def resized_crop_flip(
    images: Tensor,
    boxes: Tensor,
    flip: Tensor,
    size: int | Sequence[int] | None = None,
    *,
    normalized: bool = False,
) -> Tensor:
    """Crop a box out of each image, flip it if asked and resize it, in one `grid_sample`.

    Crop, flip and resize together are one axis-aligned affine map per sample; the flip is
    the sign of its x scale. The sampling grid is built separably (an x row and a y column
    per sample) rather than with `F.affine_grid`: the same map, ~6x cheaper on CPU, and it
    lets the crop-edge clamp below act on 1-D coordinates.

    Equals slicing each crop and resizing it with bilinear interpolation
    (`align_corners=False`, no antialiasing): sampling points that fall between the crop's
    edge pixel centres and the crop's border are clamped to the edge pixels, so nothing outside
    the box leaks in. Non-integer boxes are allowed.

    Args:
        images: (B, C, H, W) uint8 or float images in [0, 1].
        boxes: (B, 4) crop boxes as (top, left, height, width), in pixels or, with
            `normalized=True`, as fractions of the image height and width.
        flip: (B,) bool, flip the crop horizontally.
        size: output side (int) or (height, width); None keeps (H, W).
        normalized: whether `boxes` are fractions of the image size.

    Returns:
        (B, C, size, size) images: float32 for uint8 input, else the input's float dtype (the
        sampling grid is built in that dtype too, so float64 views stay float64 throughout).

    >>> x = torch.rand(2, 3, 8, 8)
    >>> full = torch.tensor([[0.0, 0.0, 8.0, 8.0]] * 2)
    >>> resized_crop_flip(x, full, torch.tensor([False, True]), 4).shape
    torch.Size([2, 3, 4, 4])
    """
    x = _to_float(images)
    b, _, h, w = x.shape
    out_h, out_w = _size_pair(size, h, w)
    boxes = boxes.to(device=x.device, dtype=x.dtype)
    if normalized:
        boxes = boxes * boxes.new_tensor([h, w, h, w])
    top, left, box_h, box_w = boxes.unbind(1)
    sign = 1.0 - 2.0 * flip.to(device=x.device, dtype=x.dtype)
    # Output pixel j samples input pixel left + (j + 0.5) * box_w / out_w - 0.5; in the
    # normalised coordinates of align_corners=False (pixel x at (2 x + 1) / W - 1) that is
    # x_in = u * box_w / W + (2 left + box_w) / W - 1 for output coordinate u. A flip is u -> -u.
    u = _pixel_centres(out_w, x)
    v = _pixel_centres(out_h, x)
    grid_x = (sign * box_w / w)[:, None] * u + ((2 * left + box_w) / w - 1)[:, None]
    grid_y = (box_h / h)[:, None] * v + ((2 * top + box_h) / h - 1)[:, None]
    # Clamp to the centres of the crop's first and last pixels: that is what slicing the crop
    # and then resizing does, and it keeps pixels outside the box from leaking in.
    x_lo, y_lo = (2 * left + 1) / w - 1, (2 * top + 1) / h - 1
    x_hi = torch.maximum((2 * (left + box_w) - 1) / w - 1, x_lo)
    y_hi = torch.maximum((2 * (top + box_h) - 1) / h - 1, y_lo)
    grid_x = grid_x.clamp_(min=x_lo[:, None], max=x_hi[:, None])
    grid_y = grid_y.clamp_(min=y_lo[:, None], max=y_hi[:, None])
    grid = torch.stack(
        [grid_x[:, None, :].expand(b, out_h, out_w), grid_y[:, :, None].expand(b, out_h, out_w)],
        dim=-1,
    )  # (B, out_h, out_w, 2) as (x, y)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _pixel_centres(n: int, like: Tensor) -> Tensor:
    """Normalised centres of n pixels, (2 j + 1) / n - 1, as F.affine_grid would place them, on
    `like`'s device and in its dtype."""
    return (2 * torch.arange(n, device=like.device, dtype=like.dtype) + 1) / n - 1


def sample_crop_boxes(
    batch_size: int,
    height: int,
    width: int,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: Draws = None,
) -> Tensor:
    """Draw RandomResizedCrop boxes for a batch at once, on the CPU generator.

    As torchvision's RandomResizedCrop: the area fraction is uniform in `scale`, the aspect
    ratio log-uniform in `ratio`, sides are rounded to pixels and the offsets are uniform; of
    10 candidates per sample the first that fits is kept, else the largest center crop whose
    ratio is within `ratio`. Vectorised, so all 10 candidates are always drawn.

    Args:
        batch_size: number of boxes B.
        height: image height H.
        width: image width W.
        scale: range of the crop area as a fraction of H * W.
        ratio: range of the crop aspect ratio (width / height).
        generator: CPU generator (or `ShardedDraws`); None uses torch's default CPU generator.

    Returns:
        (B, 4) float32 CPU tensor of integer-valued (top, left, height, width).
    """
    shape = (batch_size, _CROP_TRIES)
    area = height * width * (scale[0] + (scale[1] - scale[0]) * uniform(shape, generator))
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * uniform(shape, generator))
    cand_w = torch.sqrt(area * aspect).round()
    cand_h = torch.sqrt(area / aspect).round()
    fits = (cand_w > 0) & (cand_w <= width) & (cand_h > 0) & (cand_h <= height)
    first = fits.to(torch.uint8).argmax(1, keepdim=True)  # argmax returns the first maximum
    box_w = cand_w.gather(1, first).squeeze(1)
    box_h = cand_h.gather(1, first).squeeze(1)

    in_ratio = width / height
    if in_ratio < ratio[0]:
        fallback_w, fallback_h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fallback_w, fallback_h = round(height * ratio[1]), height
    else:
        fallback_w, fallback_h = width, height
    any_fit = fits.any(1)
    box_w = torch.where(any_fit, box_w, torch.full_like(box_w, fallback_w))
    box_h = torch.where(any_fit, box_h, torch.full_like(box_h, fallback_h))

    offsets = uniform((batch_size, 2), generator)
    top = torch.minimum((offsets[:, 0] * (height - box_h + 1)).floor(), height - box_h)
    left = torch.minimum((offsets[:, 1] * (width - box_w + 1)).floor(), width - box_w)
    # The fallback is centered, as in torchvision.
    top = torch.where(any_fit, top, ((height - box_h) / 2).round())
    left = torch.where(any_fit, left, ((width - box_w) / 2).round())
    return torch.stack([top, left, box_h, box_w], 1)


# --------------------------------------------------------------------------- colour ops


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
            x = _apply_to_samples(x, (op == HUE) & (shift != 0), adjust_hue, shift)
    return x


def _apply_to_samples(
    images: Tensor, mask: Tensor, op: Callable[..., Tensor], *per_sample: Tensor
) -> Tensor:
    """`op(images, *per_sample)` for the samples in `mask`, the rest unchanged.

    On CPU only the selected samples are computed (most ops here apply to a fraction of the
    batch) and written into `images` in place, so pass a tensor you own. On an accelerator the
    whole batch is computed and selected with `torch.where`: that is cheap there, and a
    data-dependent subset would force a host sync.
    """
    if images.device.type != "cpu":
        return torch.where(mask.view(-1, 1, 1, 1), op(images, *per_sample), images)
    index = mask.nonzero().squeeze(1)
    if index.numel() == 0:
        return images
    if index.numel() == images.shape[0]:
        return op(images, *per_sample)
    selected = op(images.index_select(0, index), *(t.index_select(0, index) for t in per_sample))
    return images.index_copy_(0, index, selected)


# --------------------------------------------------------------------------- filters


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


def solarize(images: Tensor, threshold: float = 0.5) -> Tensor:
    """Invert every pixel at or above `threshold` (x -> 1 - x), as in BYOL [1]."""
    return torch.where(images >= threshold, 1 - images, images)


# --------------------------------------------------------------------------- the module


def blur_kernel_size(size: int, fraction: float) -> int:
    """The odd kernel side nearest `fraction * size`, at least 3 (SimCLR: 10% of the side [0])."""
    return max(3, 2 * round((fraction * size - 1) / 2) + 1)


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
        x = resized_crop_flip(_to_float(images, self.dtype), p.boxes, p.flip, cfg.size)
        if cfg.jitter_p > 0 and cfg.jitter_strength > 0:
            identity = (torch.arange(4, device=x.device) < HUE).to(x.dtype)  # (1, 1, 1, 0)
            factors = torch.where(p.jitter[:, None], p.jitter_factors.to(x.dtype), identity)
            x = color_jitter(x, factors, p.jitter_order)
        if cfg.grayscale_p > 0 and channels == 3:
            x = _apply_to_samples(x, p.grayscale, to_grayscale)
        if cfg.blur_p > 0:
            k = blur_kernel_size(min(x.shape[-2:]), cfg.blur_kernel_fraction)
            x = _apply_to_samples(x, p.blur, partial(gaussian_blur, kernel_size=k), p.blur_sigma)
        if cfg.solarize_p > 0:
            x = _apply_to_samples(
                x, p.solarize, partial(solarize, threshold=cfg.solarize_threshold)
            )
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


# --------------------------------------------------------------------------- eval and stats


def normalize(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Standardise each channel, `(x - mean) / std`, on the images' device.

    Args:
        images: (B, C, H, W) float images.
        mean: C per-channel means (e.g. from `dataset_stats`).
        std: C per-channel standard deviations.
    """
    c = images.shape[1]
    if len(mean) != c or len(std) != c:
        raise ValueError(f"need {c} means and stds, got {len(mean)} and {len(std)}")
    if any(s <= 0 for s in std):
        raise ValueError(f"std must be positive, got {list(std)}")
    mean_t = torch.as_tensor(mean, dtype=images.dtype, device=images.device).view(1, c, 1, 1)
    std_t = torch.as_tensor(std, dtype=images.dtype, device=images.device).view(1, c, 1, 1)
    return (images - mean_t) / std_t


def dataset_stats(
    images: Tensor, max_chunk_elements: int = 1 << 24
) -> tuple[list[float], list[float]]:
    """Per-channel mean and (population) std of uint8 images, in [0, 1] units.

    Accumulated in float64 over chunks of at most `max_chunk_elements` values, so a large
    dataset never needs a full float copy.

    Args:
        images: (N, C, H, W) uint8 images.
        max_chunk_elements: bound on the size of each float64 chunk.

    Returns:
        (mean, std), each a list of C floats.
    """
    if images.ndim != 4 or images.dtype != torch.uint8:
        raise ValueError(
            f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
        )
    n, c = images.shape[:2]
    if n == 0:
        raise ValueError("cannot compute statistics of an empty dataset")
    per_image = images[0].numel()
    chunk = max(1, max_chunk_elements // per_image)
    total = torch.zeros(c, dtype=torch.float64, device=images.device)
    total_sq = torch.zeros_like(total)
    for start in range(0, n, chunk):
        x = images[start : start + chunk].to(torch.float64)
        total += x.sum(dim=(0, 2, 3))
        total_sq += x.square().sum(dim=(0, 2, 3))
    count = n * per_image // c
    mean = total / count
    var = (total_sq / count - mean.square()).clamp(min=0)
    return (mean / 255).tolist(), (var.sqrt() / 255).tolist()


def eval_transform(images: Tensor, size: int | Sequence[int] | None = None) -> Tensor:
    """Deterministic evaluation input: uint8 to float in [0, 1], resized if `size` differs.

    Resizing is bilinear with antialiasing, so downscaling does not alias.

    Args:
        images: (B, C, H, W) uint8 (or float in [0, 1]) images.
        size: output side (int) or (height, width); None keeps the input size.

    Returns:
        (B, C, size, size) float images.
    """
    x = _to_float(images)
    h, w = x.shape[-2:]
    out = _size_pair(size, h, w)
    if out == (h, w):
        return x
    return F.interpolate(x, size=out, mode="bilinear", align_corners=False, antialias=True).clamp_(
        0, 1
    )
