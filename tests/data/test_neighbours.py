"""Pixel-space neighbours against a brute-force float64 `torch.cdist` reference."""

import pytest
import torch

from selfsup.data import pixel_neighbours
from selfsup.errors import SelfsupError


def random_images(count: int, seed: int, shape: tuple[int, ...] = (3, 5, 5)) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, *shape), dtype=torch.uint8, generator=generator)


def reference_neighbours(images: torch.Tensor, k: int) -> torch.Tensor:
    """Every pairwise distance, the diagonal excluded, the k smallest per row."""
    pixels = images.flatten(1).double()
    distances = torch.cdist(pixels, pixels)
    distances.fill_diagonal_(float("inf"))
    return distances.topk(k, dim=1, largest=False).indices


def squared_distances(images: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
    """Exact integer ‖x_i − x_j‖² for each (i, neighbours[i, ·])."""
    pixels = images.flatten(1).long()
    return (pixels[:, None, :] - pixels[neighbours]).square().sum(-1)


@pytest.mark.parametrize(("count", "k"), [(2, 1), (10, 3), (40, 5), (33, 32)])
def test_matches_brute_force_reference(count: int, k: int) -> None:
    images = random_images(count, seed=count)
    ours = pixel_neighbours(images, k)
    expected = reference_neighbours(images, k)
    assert ours.shape == (count, k) and ours.dtype == torch.int64
    # Exact integer distances agree whatever the order of ties; random images have none here.
    assert torch.equal(squared_distances(images, ours), squared_distances(images, expected))
    assert torch.equal(ours, expected)


@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 1, 1), (1, 1, 3)])
def test_images_of_one_or_few_values_match_the_reference(shape: tuple[int, ...]) -> None:
    """One value per image (an inner dimension of 1) is where torch._int_mm goes wrong."""
    images = random_images(12, seed=5, shape=shape)
    ours = pixel_neighbours(images, 3)
    expected = reference_neighbours(images, 3)
    assert torch.equal(squared_distances(images, ours), squared_distances(images, expected))


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 16, 17, 18, 100])
def test_chunk_boundaries_change_nothing(chunk_size: int) -> None:
    images = random_images(17, seed=3)
    expected = reference_neighbours(images, 4)
    assert torch.equal(pixel_neighbours(images, 4, chunk_size=chunk_size), expected)


def test_nearest_first_never_itself_and_distinct() -> None:
    images = random_images(50, seed=4, shape=(1, 6, 6))
    neighbours = pixel_neighbours(images, 6, chunk_size=8)
    rows = torch.arange(50)[:, None]
    assert not (neighbours == rows).any()
    assert all(len(set(row)) == 6 for row in neighbours.tolist())
    distances = squared_distances(images, neighbours)
    assert (distances[:, 1:] >= distances[:, :-1]).all()


def test_a_duplicate_is_the_nearest_other_image() -> None:
    images = random_images(12, seed=5)
    images[7] = images[2]
    neighbours = pixel_neighbours(images, 2, chunk_size=5)
    assert neighbours[2, 0] == 7 and neighbours[7, 0] == 2


def test_float64_path_gives_the_same_neighbours(monkeypatch: pytest.MonkeyPatch) -> None:
    # Devices without an int8 matmul take the float64 path; force it on the CPU.
    images = random_images(30, seed=6)
    integer = pixel_neighbours(images, 5, chunk_size=8)
    monkeypatch.delattr(torch, "_int_mm")
    assert torch.equal(pixel_neighbours(images, 5, chunk_size=8), integer)


def test_extreme_pixels_do_not_overflow() -> None:
    # All-0 and all-255 images give the largest products of the int8 shift (−128 · −128).
    images = torch.zeros(6, 1, 4, 4, dtype=torch.uint8)
    images[3:] = 255
    images[1, 0, 0, 0] = 1
    images[4, 0, 0, 0] = 254
    neighbours = pixel_neighbours(images, 2)
    assert set(neighbours[0].tolist()) == {1, 2}
    assert set(neighbours[3].tolist()) == {4, 5}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    images = random_images(64, seed=7)
    on_cuda = pixel_neighbours(images.cuda(), 5, chunk_size=16)
    assert on_cuda.device.type == "cuda"
    assert torch.equal(on_cuda.cpu(), pixel_neighbours(images, 5))


@pytest.mark.parametrize("k", [0, -1, 5, 6, True])
def test_k_out_of_range_raises(k: int) -> None:
    with pytest.raises(SelfsupError, match="neighbours"):
        pixel_neighbours(random_images(5, seed=8), k)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="uint8"):
        pixel_neighbours(torch.zeros(5, 1, 4, 4), 2)
    with pytest.raises(ValueError, match="uint8"):
        pixel_neighbours(torch.zeros(5, 16, dtype=torch.uint8), 2)
    with pytest.raises(ValueError, match="chunk_size"):
        pixel_neighbours(random_images(5, seed=9), 2, chunk_size=0)
