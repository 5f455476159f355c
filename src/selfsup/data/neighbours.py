"""The k nearest neighbours of every image in pixel space: DrLIM's "similar" pairs.

DrLIM [0] needs no labels and no augmentations: a sample's similar set is its k nearest
neighbours under a simple, prior distance, Euclidean in pixel space (Section 3.1 uses k = 5 on
MNIST). Distances are exact. Subtracting 128 from every pixel changes no distance but makes
the images int8, so the one expensive product, the Gram matrix of a chunk of queries against
all images, is an integer matmul (`torch._int_mm`, VNNI on x86 CPUs) with no rounding at all;
other devices use float64, exact too.

[0] DrLIM, Hadsell, Chopra and LeCun 2006, "Dimensionality Reduction by Learning an Invariant
    Mapping", CVPR, doi:10.1109/CVPR.2006.100.
"""

from __future__ import annotations

import torch
from torch import Tensor

from selfsup.errors import SelfsupError

# Below this many values per image, ‖x‖² − 2 q·x of int8 pixels fits in int32 (3 · P · 128² < 2³¹).
_INT32_MAX_PIXELS = 2**31 // (3 * 128**2)


def pixel_neighbours(images: Tensor, k: int, chunk_size: int = 1024) -> Tensor:
    """Indices of each image's k nearest other images, by Euclidean distance between pixels.

    An image is never its own neighbour; an exact duplicate of it is (at distance 0). Among
    equally distant candidates the choice is arbitrary. Runs on the images' device, `chunk_size`
    query images at a time. Memory beyond the int8 copy of the images is one (chunk_size, N)
    block of int32 scores on CPU; the float64 path (other devices, or images of 43,690 values or
    more) also keeps a float64 copy of the images.

    Args:
        images: (N, C, H, W) uint8 images.
        k: neighbours per image, 1 <= k < N.
        chunk_size: query images per distance block.

    Returns:
        (N, k) int64 indices, nearest first, on the images' device.

    >>> images = torch.tensor([0, 10, 11, 50], dtype=torch.uint8).view(4, 1, 1, 1)
    >>> pixel_neighbours(images, k=1).flatten().tolist()
    [1, 2, 1, 2]
    """
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(
            f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
        )
    if isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    count = len(images)
    if isinstance(k, bool) or not 1 <= k < count:
        raise SelfsupError(
            f"need 1 <= k < {count} (the number of images) neighbours per image, got {k}; "
            "lower --method.neighbours"
        )
    device = images.device
    # x − 128 fits int8 and leaves every distance unchanged.
    pixels = images.reshape(count, -1).to(torch.int16).sub_(128).to(torch.int8)
    # torch._int_mm returns garbage for an inner dimension of 1 (torch 2.4 to 2.14, on CPU), so
    # single-value images take the float64 path.
    integer = (
        device.type == "cpu"
        and hasattr(torch, "_int_mm")
        and 2 <= pixels.shape[1] < _INT32_MAX_PIXELS
    )
    bank = pixels if integer else pixels.double()
    norm_dtype = torch.int32 if integer else torch.float64
    # The same dtype as the scores: a mixed-dtype add_ falls off the vectorised path (~6x slower).
    bank_norms = bank.to(norm_dtype).square().sum(1, dtype=norm_dtype)
    excluded = torch.iinfo(torch.int32).max if integer else float("inf")
    neighbours = torch.empty(count, k, dtype=torch.int64, device=device)
    for start in range(0, count, chunk_size):
        stop = min(start + chunk_size, count)
        queries = bank[start:stop]
        # ‖q − x‖² = ‖q‖² + ‖x‖² − 2 q·x; ‖q‖² is the same along a row, so rank by the rest.
        scores = torch._int_mm(queries, bank.T) if integer else queries @ bank.T  # chunk x N
        scores.mul_(-2).add_(bank_norms)
        rows = torch.arange(stop - start, device=device)
        scores[rows, start + rows] = excluded  # never its own neighbour
        neighbours[start:stop] = scores.topk(k, dim=1, largest=False).indices
    return neighbours
