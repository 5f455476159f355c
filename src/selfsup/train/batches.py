"""How a step's uint8 images reach the device, in the order the loop chose.

Three sources, one interface (`batches(step_indices)` yields one device tensor per step):
- a uint8 tensor kept on the device (small sets: Fashion-MNIST, CIFAR): a gather, no copy;
- a uint8 tensor in pinned host memory (too large for the device): gathered on the host into
  one of two pinned buffers and copied asynchronously, one step ahead of the model;
- a map-style dataset decoded in DataLoader workers to fixed-size uint8 images (folders, tar
  shards): pinned by the loader, copied asynchronously.
Views are made on the device from all three; the images stay uint8 until then.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor


class DeviceImages:
    """The whole uint8 set on the device; a batch is a gather there."""

    def __init__(self, images: Tensor, device: torch.device) -> None:
        self.images = images.to(device)
        self.device = device

    def __len__(self) -> int:
        return len(self.images)

    def batches(self, step_indices: Sequence[Tensor]) -> Iterator[Tensor]:
        for indices in step_indices:
            yield self.images[indices.to(self.device, non_blocking=True)]


class PinnedImages:
    """The uint8 set in pinned host memory, copied to the device one batch ahead.

    Two pinned staging buffers alternate: while the model works on batch k, batch k + 1 is
    gathered into the other buffer and its copy is queued; an event guards a buffer against
    being refilled before its copy has finished.
    """

    def __init__(self, images: Tensor, device: torch.device) -> None:
        self.device = device
        self.pinned = device.type == "cuda"
        self.images = images.pin_memory() if self.pinned else images

    def __len__(self) -> int:
        return len(self.images)

    def batches(self, step_indices: Sequence[Tensor]) -> Iterator[Tensor]:
        if not self.pinned:  # CPU training: the host tensor is already where the model is
            for indices in step_indices:
                yield self.images[indices]
            return
        staging: list[Tensor] = []
        copied: list[torch.cuda.Event | None] = [None, None]

        def send(step: int) -> Tensor:
            indices = step_indices[step]
            slot = step % 2
            if len(staging) <= slot or len(staging[slot]) != len(indices):
                shape = (len(indices), *self.images.shape[1:])
                buffer = torch.empty(shape, dtype=self.images.dtype, pin_memory=True)
                staging[slot : slot + 1] = [buffer]
            elif copied[slot] is not None:
                copied[slot].synchronize()  # its previous copy must be done before refilling
            torch.index_select(self.images, 0, indices, out=staging[slot])
            on_device = staging[slot].to(self.device, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            copied[slot] = event
            return on_device

        if not step_indices:
            return
        upcoming = send(0)
        for step in range(len(step_indices)):
            current = upcoming
            if step + 1 < len(step_indices):
                upcoming = send(step + 1)
            yield current


class _StepOrder:
    """The batch sampler a persistent DataLoader iterates: this epoch's index lists."""

    def __init__(self) -> None:
        self.steps: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)


class LoaderImages:
    """A map-style dataset of fixed-size uint8 (C, H, W) images, decoded in DataLoader workers.

    The loop's per-step index lists are the loader's batch sampler, so the order (and a resumed
    run's order) is the loop's, whatever the number of workers. One loader serves every epoch
    and its workers persist, so an epoch does not pay for starting processes (and, for tar
    shards, reopening and re-reading their headers).
    """

    def __init__(self, dataset: torch.utils.data.Dataset, device: torch.device, workers: int):
        self.dataset = dataset
        self.device = device
        self.workers = workers
        self._order = _StepOrder()
        self._loader: torch.utils.data.DataLoader | None = None

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def batches(self, step_indices: Sequence[Tensor]) -> Iterator[Tensor]:
        self._order.steps = [indices.tolist() for indices in step_indices]
        if self._loader is None:
            self._loader = torch.utils.data.DataLoader(
                self.dataset,
                batch_sampler=self._order,
                num_workers=self.workers,
                pin_memory=self.device.type == "cuda",
                prefetch_factor=4 if self.workers else None,
                persistent_workers=self.workers > 0,
            )
        for batch in self._loader:
            yield batch.to(self.device, non_blocking=True)


ImageSource = DeviceImages | PinnedImages | LoaderImages


def image_source(
    images: Tensor | torch.utils.data.Dataset,
    device: torch.device,
    on_device: bool | None = None,
    workers: int = 4,
) -> ImageSource:
    """The source for `images`: a uint8 tensor on the device (default) or pinned on the host
    (`on_device=False`), or a dataset of decoded images read by `workers` processes."""
    if not isinstance(images, Tensor):
        return LoaderImages(images, device, workers)
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}")
    if on_device is False:
        return PinnedImages(images, device)
    return DeviceImages(images, device)
