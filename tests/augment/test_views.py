"""Tests for selfsup.augment.views: batched ops against slow per-image references."""

from __future__ import annotations

import colorsys

import pytest
import torch
import torch.nn.functional as F

from selfsup.augment import (
    ViewAugment,
    ViewConfig,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    color_jitter,
    dataset_stats,
    eval_transform,
    gaussian_blur,
    hsv_to_rgb,
    normalize,
    resized_crop_flip,
    rgb_to_hsv,
    sample_crop_boxes,
    solarize,
    to_grayscale,
)

GRAY = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _uint8(b: int, c: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (b, c, h, w), dtype=torch.uint8, generator=_gen(seed))


def _rand(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(shape, generator=_gen(seed), dtype=dtype)


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": 0},
        {"size": 28.5},
        {"crop_scale": (0.0, 1.0)},
        {"crop_scale": (0.5, 0.4)},
        {"crop_scale": (0.5, 1.2)},
        {"crop_ratio": (1.5, 1.0)},
        {"crop_ratio": (0.0, 1.0)},
        {"flip_p": 1.5},
        {"jitter_p": -0.1},
        {"grayscale_p": 2.0},
        {"blur_p": -1.0},
        {"solarize_p": 1.01},
        {"jitter_strength": -1.0},
        {"blur_kernel_fraction": 0.0},
        {"blur_sigma": (0.0, 1.0)},
        {"blur_sigma": (2.0, 1.0)},
        {"solarize_threshold": 1.5},
        {"crop_scale": (0.1, 0.5, 1.0)},
    ],
)
def test_config_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ViewConfig(**kwargs)


def test_config_accepts_lists_from_yaml() -> None:
    cfg = ViewConfig(crop_scale=[0.2, 1], blur_sigma=[0.1, 2])
    assert cfg.crop_scale == (0.2, 1.0) and cfg.blur_sigma == (0.1, 2.0)


# --------------------------------------------------------------------------- the module


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [None, 20])
def test_output_shape_dtype_range(channels: int, size: int | None) -> None:
    cfg = ViewConfig(size=size, blur_p=0.5, solarize_p=0.5)
    images = _uint8(16, channels, 24, 28)
    out = ViewAugment(cfg)(images, _gen())
    expected = (16, channels, *((24, 28) if size is None else (size, size)))
    assert out.shape == expected
    assert out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("channels", [1, 3])
def test_per_sample_parameters_differ_within_batch(channels: int) -> None:
    images = _uint8(1, channels, 16, 16).expand(12, -1, -1, -1)
    out = ViewAugment()(images, _gen())
    flat = out.flatten(1)
    distinct = torch.cdist(flat, flat)[~torch.eye(12, dtype=torch.bool)] > 1e-3
    assert distinct.all(), "identical inputs must get different random views"


def test_same_seed_same_views_different_seed_different() -> None:
    augment = ViewAugment(ViewConfig(blur_p=0.5, solarize_p=0.5))
    images = _uint8(8, 3, 16, 16)
    a = augment(images, _gen(1))
    b = augment(images, _gen(1))
    c = augment(images, _gen(2))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_views_are_independent() -> None:
    images = _uint8(4, 3, 16, 16)
    views = ViewAugment().views(images, n_views=3, generator=_gen())
    assert len(views) == 3
    assert not torch.allclose(views[0], views[1])
    with pytest.raises(ValueError):
        ViewAugment().views(images, n_views=0)


def test_rejects_bad_channels_and_cuda_generator() -> None:
    with pytest.raises(ValueError):
        ViewAugment()(_uint8(2, 2, 8, 8), _gen())
    if torch.cuda.is_available():
        with pytest.raises(ValueError):
            ViewAugment()(_uint8(2, 3, 8, 8), torch.Generator(device="cuda"))


def _plain(**kwargs: float) -> ViewConfig:
    """Whole-image crop, every random op off unless asked for."""
    base = {
        "crop_scale": (1.0, 1.0),
        "crop_ratio": (1.0, 1.0),
        "flip_p": 0.0,
        "jitter_p": 0.0,
        "grayscale_p": 0.0,
    }
    return ViewConfig(**{**base, **kwargs})


def test_probabilities_zero_and_one_are_respected() -> None:
    images = _uint8(8, 3, 12, 12)
    expected = images.float() / 255
    assert torch.allclose(ViewAugment(_plain())(images, _gen()), expected, atol=1e-5)
    flipped = ViewAugment(_plain(flip_p=1.0))(images, _gen())
    assert torch.allclose(flipped, expected.flip(-1), atol=1e-5)
    gray = ViewAugment(_plain(grayscale_p=1.0))(images, _gen())
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 0], gray[:, 2])
    solarized = ViewAugment(_plain(solarize_p=1.0))(images, _gen())
    assert torch.allclose(solarized, solarize(expected), atol=1e-5)


def test_sampled_probabilities_are_approximately_right() -> None:
    cfg = ViewConfig(flip_p=0.5, jitter_p=0.8, grayscale_p=0.2, blur_p=0.3, solarize_p=0.1)
    params = ViewAugment(cfg).sample_params(4000, 32, 32, _gen())
    for mask, p in [
        (params.flip, 0.5),
        (params.jitter, 0.8),
        (params.grayscale, 0.2),
        (params.blur, 0.3),
        (params.solarize, 0.1),
    ]:
        assert abs(mask.float().mean().item() - p) < 0.03
    lo, hi = params.jitter_factors[:, :3].min(), params.jitter_factors[:, :3].max()
    assert lo >= 0.2 - 1e-6 and hi <= 1.8 + 1e-6
    assert params.jitter_factors[:, 3].abs().max() <= 0.2 + 1e-6
    assert (params.blur_sigma >= 0.1).all() and (params.blur_sigma <= 2.0).all()
    # Every row of the order is a permutation, and all 24 permutations occur.
    assert torch.equal(params.jitter_order.sort(1).values, torch.arange(4).expand(4000, 4))
    assert len({tuple(row) for row in params.jitter_order.tolist()}) == 24


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("channels", [1, 3])
def test_cpu_and_cuda_give_the_same_views(channels: int) -> None:
    augment = ViewAugment(ViewConfig(size=20, blur_p=0.5, solarize_p=0.3))
    images = _uint8(32, channels, 24, 24)
    on_cpu = augment(images, _gen(3))
    on_gpu = augment(images.cuda(), _gen(3))
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=1e-4, rtol=0)


# --------------------------------------------------------------------------- crop and flip


def test_full_box_is_identity_and_flip_is_mirror() -> None:
    x = _rand(3, 3, 9, 13)
    full = torch.tensor([[0.0, 0.0, 9.0, 13.0]]).expand(3, 4)
    no_flip = torch.zeros(3, dtype=torch.bool)
    out = resized_crop_flip(x, full, no_flip)
    assert (out - x).abs().max() < 1e-5
    out = resized_crop_flip(x, full, torch.ones(3, dtype=torch.bool))
    assert (out - x.flip(-1)).abs().max() < 1e-5
    normalized = torch.tensor([[0.0, 0.0, 1.0, 1.0]]).expand(3, 4)
    out = resized_crop_flip(x, normalized, no_flip, normalized=True)
    assert (out - x).abs().max() < 1e-5


def test_uint8_input_matches_float_input() -> None:
    images = _uint8(4, 3, 10, 10)
    boxes = torch.tensor([[1.0, 2.0, 6.0, 5.0]]).expand(4, 4)
    flip = torch.tensor([True, False, True, False])
    a = resized_crop_flip(images, boxes, flip, 7)
    b = resized_crop_flip(images.float() / 255, boxes, flip, 7)
    assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize(
    ("box", "size"),
    [
        ((2, 3, 5, 7), (11, 9)),  # upscaling, non-square
        ((0, 0, 12, 16), (6, 8)),  # downscaling by 2
        ((4, 5, 8, 8), (8, 8)),  # translation only
        ((9, 0, 3, 16), (5, 5)),  # a strip on the bottom edge
    ],
)
def test_crop_matches_slice_then_interpolate(
    box: tuple[int, int, int, int], size: tuple[int, int]
) -> None:
    x = _rand(4, 3, 12, 16, dtype=torch.float64).float()
    top, left, h, w = box
    flip = torch.tensor([False, True, False, True])
    boxes = torch.tensor([box], dtype=torch.float32).expand(4, 4)
    out = resized_crop_flip(x, boxes, flip, size)
    crop = x[:, :, top : top + h, left : left + w]
    ref = F.interpolate(crop, size=size, mode="bilinear", align_corners=False, antialias=False)
    ref = torch.where(flip.view(4, 1, 1, 1), ref.flip(-1), ref)
    assert (out - ref).abs().max() < 1e-4


def test_crop_boxes_follow_random_resized_crop() -> None:
    boxes = sample_crop_boxes(2000, 20, 30, (0.08, 1.0), (3 / 4, 4 / 3), _gen())
    top, left, h, w = boxes.unbind(1)
    assert torch.equal(boxes, boxes.round())
    assert (top >= 0).all() and (left >= 0).all() and (h >= 1).all() and (w >= 1).all()
    assert (top + h <= 20).all() and (left + w <= 30).all()
    area = h * w / 600
    assert area.min() > 0.04 and area.max() <= 1.0
    ratio = w / h
    assert ratio.min() > 0.5 and ratio.max() < 2.0  # 3/4 .. 4/3 up to pixel rounding
    assert top.unique().numel() > 5 and left.unique().numel() > 5


def test_crop_boxes_fall_back_to_center_crop() -> None:
    # A 2:1 crop covering the whole area never fits a square image.
    boxes = sample_crop_boxes(5, 10, 10, (1.0, 1.0), (2.0, 2.0), _gen())
    assert torch.equal(boxes, torch.tensor([[2.0, 0.0, 5.0, 10.0]]).expand(5, 4))


# --------------------------------------------------------------------------- colour


def test_colour_ops_at_identity_parameters() -> None:
    x = _rand(4, 3, 8, 8)
    ones, zeros = torch.ones(4), torch.zeros(4)
    assert torch.equal(adjust_brightness(x, ones), x)
    assert torch.equal(adjust_contrast(x, ones), x)
    assert torch.equal(adjust_saturation(x, ones), x)
    assert (adjust_hue(x, zeros) - x).abs().max() < 1e-6
    assert (adjust_hue(x, ones) - x).abs().max() < 1e-5  # a full turn
    assert (adjust_hue(x, -ones) - x).abs().max() < 1e-5


def _reference_blend(x: torch.Tensor, ref: torch.Tensor, f: float) -> torch.Tensor:
    return (f * x + (1 - f) * ref).clamp(0, 1)


def test_brightness_contrast_saturation_match_per_image_reference() -> None:
    x = _rand(5, 3, 6, 7, dtype=torch.float64)
    f = torch.tensor([0.0, 0.3, 1.0, 1.5, 1.8], dtype=torch.float64)
    for i in range(5):
        gray = (x[i] * GRAY.view(3, 1, 1)).sum(0, keepdim=True)
        xi, fi = x[i], f[i].item()
        torch.testing.assert_close(adjust_brightness(x, f)[i], _reference_blend(xi, 0 * xi, fi))
        torch.testing.assert_close(adjust_contrast(x, f)[i], _reference_blend(xi, gray.mean(), fi))
        torch.testing.assert_close(adjust_saturation(x, f)[i], _reference_blend(xi, gray, fi))


def _hsv_reference(x: torch.Tensor) -> torch.Tensor:
    pixels = x.permute(0, 2, 3, 1).reshape(-1, 3).tolist()
    hsv = torch.tensor([colorsys.rgb_to_hsv(*p) for p in pixels], dtype=torch.float64)
    return hsv.view(x.shape[0], x.shape[2], x.shape[3], 3).permute(0, 3, 1, 2)


def _rgb_reference(hsv: torch.Tensor) -> torch.Tensor:
    pixels = hsv.permute(0, 2, 3, 1).reshape(-1, 3).tolist()
    rgb = torch.tensor([colorsys.hsv_to_rgb(*p) for p in pixels], dtype=torch.float64)
    return rgb.view(hsv.shape[0], hsv.shape[2], hsv.shape[3], 3).permute(0, 3, 1, 2)


def test_hsv_matches_colorsys_and_round_trips() -> None:
    x = _rand(3, 3, 5, 6, dtype=torch.float64)
    x[0, :, 0, 0] = torch.tensor([0.4, 0.4, 0.4], dtype=torch.float64)  # gray
    x[0, :, 0, 1] = torch.tensor([0.9, 0.9, 0.1], dtype=torch.float64)  # r = g tie
    x[0, :, 0, 2] = torch.tensor([0.2, 0.7, 0.7], dtype=torch.float64)  # g = b tie
    x[0, :, 0, 3] = torch.tensor([0.8, 0.3, 0.8], dtype=torch.float64)  # r = b tie
    x[0, :, 0, 4] = 0.0  # black
    hsv = rgb_to_hsv(x)
    torch.testing.assert_close(hsv, _hsv_reference(x))
    torch.testing.assert_close(hsv_to_rgb(hsv), x)


def test_hue_shift_matches_colorsys_reference() -> None:
    x = _rand(4, 3, 5, 5, dtype=torch.float64)
    shift = torch.tensor([0.1, -0.2, 0.5, -0.45], dtype=torch.float64)
    hsv = _hsv_reference(x)
    hsv[:, 0] = torch.remainder(hsv[:, 0] + shift.view(4, 1, 1), 1.0)
    torch.testing.assert_close(adjust_hue(x, shift), _rgb_reference(hsv))


def test_colour_ops_on_one_channel() -> None:
    x = _rand(3, 1, 6, 6)
    f = torch.tensor([0.5, 1.0, 1.5])
    assert torch.equal(adjust_saturation(x, f), x)
    assert torch.equal(adjust_hue(x, f), x)
    assert torch.equal(to_grayscale(x), x)
    torch.testing.assert_close(adjust_brightness(x, f), (x * f.view(3, 1, 1, 1)).clamp(0, 1))
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    expected = (f.view(3, 1, 1, 1) * x + (1 - f.view(3, 1, 1, 1)) * mean).clamp(0, 1)
    torch.testing.assert_close(adjust_contrast(x, f), expected)


def test_to_grayscale_keeps_channels_and_weights() -> None:
    x = _rand(2, 3, 4, 4)
    g = to_grayscale(x)
    assert g.shape == x.shape
    assert torch.equal(g[:, 0], g[:, 1]) and torch.equal(g[:, 1], g[:, 2])
    expected = (x.double() * GRAY.view(1, 3, 1, 1)).sum(1)
    torch.testing.assert_close(g[:, 0].double(), expected)


@pytest.mark.parametrize("channels", [1, 3])
def test_color_jitter_matches_sequential_ops(channels: int) -> None:
    b = 24
    x = _rand(b, channels, 6, 6, seed=1)
    factors = torch.cat([0.2 + 1.6 * _rand(b, 3, seed=2), 0.4 * _rand(b, 1, seed=3) - 0.2], 1)
    order = _rand(b, 4, seed=4).argsort(1)
    ops = [adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue]
    out = color_jitter(x, factors, order)
    for i in range(b):
        ref = x[i : i + 1]
        for k in order[i].tolist():
            ref = ops[k](ref, factors[i : i + 1, k])
        torch.testing.assert_close(out[i : i + 1], ref, atol=1e-5, rtol=0)


def test_color_jitter_identity_factors() -> None:
    x = _rand(6, 3, 5, 5)
    identity = torch.tensor([[1.0, 1.0, 1.0, 0.0]]).expand(6, 4)
    order = _rand(6, 4).argsort(1)
    assert torch.equal(color_jitter(x, identity, order), x)


# --------------------------------------------------------------------------- blur, solarize


def test_blur_keeps_constants_and_sums() -> None:
    sigma = torch.tensor([0.1, 0.8, 2.0])
    const = torch.full((3, 3, 10, 10), 0.37)
    torch.testing.assert_close(gaussian_blur(const, sigma, 5), const)
    delta = torch.zeros(3, 1, 11, 11)
    delta[:, :, 5, 5] = 1.0
    out = gaussian_blur(delta, sigma, 5)
    torch.testing.assert_close(out.sum(dim=(1, 2, 3)), torch.ones(3))
    assert out[0, 0, 5, 5] > 0.99 and out[2, 0, 5, 5] < 0.2  # small sigma barely blurs
    torch.testing.assert_close(out, out.transpose(-1, -2))  # separable, isotropic kernel


def test_blur_matches_per_image_2d_reference() -> None:
    x = _rand(3, 3, 9, 8, dtype=torch.float64)
    sigma = torch.tensor([0.5, 1.0, 1.7], dtype=torch.float64)
    out = gaussian_blur(x, sigma, 5)
    taps = torch.arange(5, dtype=torch.float64) - 2
    for i in range(3):
        k1 = torch.exp(-(taps**2) / (2 * sigma[i] ** 2))
        k2 = torch.outer(k1, k1) / k1.sum() ** 2
        padded = F.pad(x[i : i + 1], (2, 2, 2, 2), mode="reflect")
        ref = F.conv2d(padded, k2.expand(3, 1, 5, 5), groups=3)
        torch.testing.assert_close(out[i : i + 1], ref)
    with pytest.raises(ValueError):
        gaussian_blur(x, sigma, 4)


def test_solarize_exact_values() -> None:
    x = torch.tensor([0.0, 0.25, 0.49, 0.5, 0.75, 1.0]).view(1, 1, 1, 6)
    expected = torch.tensor([0.0, 0.25, 0.49, 0.5, 0.25, 0.0]).view(1, 1, 1, 6)
    assert torch.equal(solarize(x, 0.5), expected)
    assert torch.equal(solarize(x, 1.1), x)


# --------------------------------------------------------------------------- eval, stats


def test_eval_transform() -> None:
    images = _uint8(2, 3, 16, 16)
    out = eval_transform(images)
    assert out.dtype == torch.float32 and torch.equal(out, images.float() / 255)
    small = eval_transform(images, 8)
    assert small.shape == (2, 3, 8, 8) and small.min() >= 0 and small.max() <= 1
    const = torch.full((1, 1, 12, 12), 77, dtype=torch.uint8)
    torch.testing.assert_close(eval_transform(const, 5), torch.full((1, 1, 5, 5), 77 / 255))
    # Antialiasing turns a 1-px checkerboard into flat gray when downscaling 3x.
    checker = ((torch.arange(12)[:, None] + torch.arange(12)) % 2 * 255).to(torch.uint8)
    small = eval_transform(checker.view(1, 1, 12, 12), 4)
    assert (small[..., 1:-1, 1:-1] - 0.5).abs().max() < 0.1


def test_dataset_stats_and_normalize() -> None:
    images = _uint8(7, 3, 5, 6)
    mean, std = dataset_stats(images, max_chunk_elements=200)  # forces several chunks
    x = images.double() / 255
    torch.testing.assert_close(torch.tensor(mean, dtype=torch.float64), x.mean(dim=(0, 2, 3)))
    ref_std = x.std(dim=(0, 2, 3), unbiased=False)
    torch.testing.assert_close(torch.tensor(std, dtype=torch.float64), ref_std)
    z = normalize(images.float() / 255, mean, std)
    torch.testing.assert_close(z.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        z.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-5, rtol=0
    )
    with pytest.raises(ValueError):
        normalize(z, mean[:2], std[:2])
    with pytest.raises(ValueError):
        dataset_stats(images.float())
