"""The supervised reference of the studies (SimCLR Table 1, *Intriguing Properties* Fig. 6):
the same encoder, views and training loop as a self-supervised method, trained by
cross-entropy on the labels that `LabelledViews` appends to the views.

It is not a registered plug-in: a method's views come from images alone, and this one needs
each image's label.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from selfsup.models.registry import feature_dim


class Supervised(nn.Module):
    """Encoder + linear classifier; every view is one labelled example.

    `forward(views)` takes `[view_1, ..., view_V, labels]` (V image batches of B, then the B
    labels) and returns the mean cross-entropy over the V·B examples.

    >>> from selfsup.models import build_encoder
    >>> learner = Supervised(build_encoder("resnet18", base_width=4), num_classes=3)
    >>> images = torch.randn(4, 3, 8, 8)
    >>> learner([images, images, torch.tensor([0, 1, 2, 0])]).shape
    torch.Size([])
    """

    def __init__(self, encoder: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.classifier = nn.Linear(feature_dim(encoder), num_classes)

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        *images, labels = views
        logits = self.classifier(self.encoder(torch.cat(images)))
        return F.cross_entropy(logits, labels.repeat(len(images)))


__all__ = ["Supervised"]
