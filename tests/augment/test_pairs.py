"""NeighbourPairs: the second view of each pair is one of the anchor's k neighbours."""

import pytest
import torch

from selfsup.augment import NeighbourPairs, ViewAugment, ViewConfig, normalize
from selfsup.data import pixel_neighbours

MEAN, STD = [0.4], [0.3]


def make_pairs(
    augment: ViewAugment | None = None,
) -> tuple[torch.Tensor, torch.Tensor, NeighbourPairs]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (30, 1, 6, 6), dtype=torch.uint8, generator=generator)
    neighbours = pixel_neighbours(images, 3)
    return images, neighbours, NeighbourPairs(images, neighbours, MEAN, STD, augment)


def normalised(images: torch.Tensor) -> torch.Tensor:
    return normalize(images.float() / 255, MEAN, STD)


def test_second_view_is_one_of_the_anchors_neighbours() -> None:
    images, neighbours, pairs = make_pairs()
    indices = torch.tensor([5, 0, 29, 5, 17, 3, 11, 8])
    anchors, partners = pairs(images[indices], indices, torch.Generator().manual_seed(1))
    assert anchors.shape == partners.shape == (8, 1, 6, 6)
    assert anchors.dtype == partners.dtype == torch.float32
    torch.testing.assert_close(anchors, normalised(images[indices]))
    for row, index in enumerate(indices.tolist()):
        matches = [
            j
            for j in neighbours[index].tolist()
            if torch.equal(partners[row], normalised(images[j : j + 1])[0])
        ]
        assert matches, f"partner of image {index} is none of its neighbours"


def test_same_seed_same_pairs_other_seed_other_pairs() -> None:
    images, _, pairs = make_pairs()
    indices = torch.arange(30)

    def partners(seed: int) -> torch.Tensor:
        return pairs(images[indices], indices, torch.Generator().manual_seed(seed))[1]

    assert torch.equal(partners(3), partners(3))
    assert not torch.equal(partners(3), partners(4))


def test_neighbours_are_drawn_uniformly() -> None:
    images, neighbours, pairs = make_pairs()
    indices = torch.full((3000,), 7)
    partners = pairs(images[indices], indices, torch.Generator().manual_seed(5))[1]
    table = normalised(images[neighbours[7]])  # k x C x H x W
    chosen = (partners[:, None] == table[None]).flatten(2).all(2).float().argmax(1)
    counts = torch.bincount(chosen, minlength=3)
    # 1000 expected each; 5 standard deviations (sqrt(3000 · 1/3 · 2/3) ≈ 26) either side.
    assert ((counts - 1000).abs() < 130).all(), counts


def test_augment_applies_to_both_views_reproducibly() -> None:
    augment = ViewAugment(ViewConfig(size=4, crop_scale=(0.5, 1.0)))
    images, _, pairs = make_pairs(augment)
    indices = torch.arange(8)
    first = pairs(images[indices], indices, torch.Generator().manual_seed(2))
    second = pairs(images[indices], indices, torch.Generator().manual_seed(2))
    assert [view.shape for view in first] == [torch.Size([8, 1, 4, 4])] * 2
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b)


def test_images_move_to_the_batch_device_once() -> None:
    images, _, pairs = make_pairs()
    indices = torch.arange(4)
    pairs(images[indices], indices)
    kept = pairs.images
    pairs(images[indices], indices)
    assert pairs.images is kept and kept.device == images.device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batch_gives_the_cpu_pairs() -> None:
    images, _, pairs = make_pairs()
    indices = torch.arange(10)
    on_cpu = pairs(images[indices], indices, torch.Generator().manual_seed(6))
    on_cuda = pairs(images[indices].cuda(), indices, torch.Generator().manual_seed(6))
    assert pairs.images.device.type == "cuda"
    for a, b in zip(on_cpu, on_cuda, strict=True):
        torch.testing.assert_close(a, b.cpu())


def test_bad_tables_raise() -> None:
    images = torch.zeros(5, 1, 4, 4, dtype=torch.uint8)
    for table in (
        torch.zeros(4, 2, dtype=torch.int64),  # one row per image
        torch.zeros(5, dtype=torch.int64),
        torch.zeros(5, 0, dtype=torch.int64),
        torch.zeros(5, 2, dtype=torch.int32),
    ):
        with pytest.raises(ValueError, match="neighbours"):
            NeighbourPairs(images, table, [0.5], [0.5])
    with pytest.raises(ValueError, match="uint8"):
        NeighbourPairs(images.float(), torch.zeros(5, 2, dtype=torch.int64), [0.5], [0.5])
