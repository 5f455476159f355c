"""The one in-memory dataset shape every loader returns: uint8 images plus optional labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ImageDataset:
    """Images kept as one uint8 tensor until the last moment (normalisation happens on device).

    Attributes:
        images: uint8 tensor of shape (N, C, H, W).
        labels: int64 tensor of shape (N,), or None for unlabeled data (-1 marks a missing label).
        classes: class names, index = label.
        name: dataset name, for logs and result tables.
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    classes: list[str] = field(default_factory=list)
    name: str = ""

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(
                "images must be uint8 (N, C, H, W), got "
                f"{self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.labels)} labels for {len(self.images)} images")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, indices: torch.Tensor) -> ImageDataset:
        """The samples at `indices`, as a new dataset sharing class names."""
        labels = None if self.labels is None else self.labels[indices]
        return ImageDataset(self.images[indices], labels, list(self.classes), self.name)
