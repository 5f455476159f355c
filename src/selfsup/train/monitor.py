"""What the loop watches besides the loss: the label-free quality of the encoder's features."""

from __future__ import annotations

import torch
from torch import nn

from selfsup.augment.makers import ViewMaker
from selfsup.quality import embedding_quality

QUALITY_SEED = 1234
"""Seeds the fixed sample and views on which `quality_probe` measures every epoch."""


def quality_probe(
    method: nn.Module,
    images: torch.Tensor | torch.utils.data.Dataset,
    make_views: ViewMaker,
    sample: int,
    device: torch.device,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> dict[str, float]:
    """Label-free quality (`selfsup.quality`) of `method.encoder` on two views of the same
    `sample` training images every time, from a generator of its own so the run's random
    stream, and so resume, are untouched; in eval mode, so batch-norm statistics are too.
    Empty for methods without an encoder or two image views of one shape."""
    encoder = getattr(method, "encoder", None)
    if encoder is None or sample == 0:
        return {}
    generator = torch.Generator().manual_seed(QUALITY_SEED)
    indices = torch.randperm(len(images), generator=generator)[: max(2, sample)].sort().values
    if isinstance(images, torch.Tensor):
        batch = images[indices]
    else:
        batch = torch.stack([images[int(index)] for index in indices])
    was_training = method.training
    method.eval()
    try:
        with torch.no_grad():
            views = make_views(batch.to(device), indices, generator)
            if len(views) < 2 or views[0].ndim != 4 or views[0].shape != views[1].shape:
                return {}
            first, second = (
                encoder(view.contiguous(memory_format=memory_format)).flatten(1).float()
                for view in views[:2]
            )
    finally:
        method.train(was_training)
    return {f"quality/{name}": value for name, value in embedding_quality(first, second).items()}
