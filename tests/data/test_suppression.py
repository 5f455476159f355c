"""RandBit's bits: fixed by an image's content and the seed, spread over images, and appended as
constant ±1 channels that leave the image's own channels alone."""

from __future__ import annotations

import pytest
import torch

from selfsup.data.base import ImageDataset
from selfsup.data.suppression import (
    WithBits,
    append_bit_channels,
    content_bits,
    digit_images,
    digits_on_images,
    multi_digits,
)
from selfsup.errors import SelfsupError


def _images(count: int = 200, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 1, 8, 8), dtype=torch.uint8, generator=generator)


def test_bits_are_a_seeded_function_of_the_content() -> None:
    images = _images()
    bits = content_bits(images, 20, seed=3)
    assert bits.shape == (200, 20) and bits.dtype == torch.uint8
    assert set(bits.unique().tolist()) == {0, 1}
    torch.testing.assert_close(content_bits(images.clone(), 20, seed=3), bits)
    torch.testing.assert_close(content_bits(images[torch.arange(199, -1, -1)], 20, 3), bits.flip(0))
    assert (content_bits(images, 20, seed=4) != bits).float().mean() > 0.3  # another seed
    codes = {tuple(row) for row in bits.tolist()}
    assert len(codes) >= 195  # 20 bits tell nearly every image apart
    assert 0.4 < bits.float().mean().item() < 0.6
    changed = images.clone()
    changed[:, 0, 0, 0] ^= 1  # one pixel's lowest bit
    assert (content_bits(changed, 20, seed=3) != bits).any(dim=1).float().mean() > 0.9


def test_bits_become_constant_channels_after_the_image_channels() -> None:
    inputs = torch.randn(4, 3, 5, 5)
    bits = torch.tensor([[0, 1], [1, 1], [0, 0], [1, 0]], dtype=torch.uint8)
    out = append_bit_channels(inputs, bits)
    assert out.shape == (4, 5, 5, 5)
    torch.testing.assert_close(out[:, :3], inputs)
    expected = (bits.float() * 2 - 1)[:, :, None, None].expand(-1, -1, 5, 5)
    torch.testing.assert_close(out[:, 3:], expected)
    with pytest.raises(ValueError, match="rows of bits"):
        append_bit_channels(inputs, bits[:3])
    with pytest.raises(ValueError, match=">= 0"):
        content_bits(_images(2), -1)


def test_evaluation_inputs_carry_the_same_bits() -> None:
    images = _images(6)
    preprocess = WithBits(lambda batch: batch.float() / 255, 5, seed=1)
    out = preprocess(images)
    assert out.shape == (6, 6, 8, 8)
    recovered = (out[:, 1:, 0, 0] > 0).to(torch.uint8)
    torch.testing.assert_close(recovered, content_bits(images, 5, seed=1))


def test_digits_fall_back_to_scikit_learns_upscaled_without_mnist(tmp_path) -> None:
    digits = digit_images("train", str(tmp_path))  # an empty folder: no MNIST files there
    assert digits.images.shape[1:] == (1, 28, 28) and digits.images.dtype == torch.uint8
    assert len(digits) == len(digits.labels) and set(digits.labels.tolist()) == set(range(10))


def test_multi_digits_places_a_fixed_small_and_a_growing_large_digit() -> None:
    digits = _square_digits()
    made = multi_digits(digits, 40, canvas=64, small_side=10, large_sides=(10, 40), seed=1)
    assert made.images.shape == (40, 1, 64, 64) and made.images.dtype == torch.uint8
    assert made.large_sides.min() >= 10 and made.large_sides.max() <= 40
    assert len(set(made.large_sides.tolist())) > 5
    # a solid square digit makes each object's lit area its side squared (they do not overlap)
    lit = (made.images > 0).sum(dim=(1, 2, 3))
    torch.testing.assert_close(lit, made.large_sides**2 + 10**2)
    again = multi_digits(digits, 40, canvas=64, small_side=10, large_sides=(10, 40), seed=1)
    torch.testing.assert_close(again.images, made.images)
    with pytest.raises(SelfsupError, match="do not fit"):
        multi_digits(digits, 2, canvas=30, large_sides=(20, 40))


def test_digits_on_images_tile_one_of_n_digits_by_maximum() -> None:
    images = ImageDataset(
        torch.full((30, 3, 12, 12), 40, dtype=torch.uint8), torch.arange(30) % 3, ["a", "b", "c"]
    )
    patterns = torch.randint(0, 256, (10, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    digits = ImageDataset(patterns.to(torch.uint8), torch.arange(10), list("0123456789"))
    merged, digit_labels = digits_on_images(images, digits, unique=4, seed=0)
    assert merged.images.shape == images.images.shape
    assert (merged.images >= images.images).all()  # a pixel-wise maximum
    torch.testing.assert_close(merged.labels, images.labels)
    assert len(set(digit_labels.tolist())) <= 4
    overlays = {bytes(image.numpy()) for image in merged.images}
    assert 2 <= len(overlays) <= 4  # every image carries one of the 4 tiled digits
    tile = merged.images[0, 0, :4, :4]
    torch.testing.assert_close(merged.images[0, 0, 4:8, 8:12], tile)  # tiled 3 x 3
    with pytest.raises(SelfsupError, match="pool"):
        digits_on_images(images, digits, unique=0)


def _square_digits() -> ImageDataset:
    """Ten 'digits', each a solid 255 square filling its image: sizes and overlaps show."""
    return ImageDataset(
        torch.full((10, 1, 8, 8), 255, dtype=torch.uint8), torch.arange(10), list("0123456789")
    )
