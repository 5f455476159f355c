"""Frozen-encoder feature extraction: uint8 images in, float32 (N, D) features out, in batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

Preprocess = Callable[[Tensor], Tensor]
"""`preprocess(uint8 (B, C, H, W) on device) -> float (B, C, H, W)`, normalised for the encoder."""


def make_preprocess(
    mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> Preprocess:
    """Build the default preprocess: scale uint8 to [0, 1], then normalise per channel.

    Args:
        mean: per-channel mean of the [0, 1] images; None leaves the images unnormalised.
        std: per-channel standard deviation, same length as `mean`.

    Returns:
        A function mapping a uint8 batch (B, C, H, W) to float32 on the batch's device.

    >>> pre = make_preprocess([0.5], [0.25])
    >>> pre(torch.full((1, 1, 2, 2), 255, dtype=torch.uint8))[0, 0, 0, 0].item()
    2.0
    """
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither")

    def preprocess(images: Tensor) -> Tensor:
        x = images.float().div_(255.0)
        if mean is None or std is None:
            return x
        from selfsup.data.stats import normalize

        return normalize(x, mean, std)

    return preprocess


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put `module` in eval mode, then restore every submodule's own train/eval flag.

    Restoring per submodule (not just `module.train(was_training)`) keeps mixed states, e.g. an
    encoder whose batch-norm layers a user froze on purpose.
    """
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, flag in flags:
            m.training = flag


def infer_feature_dim(
    encoder: nn.Module, sample: Tensor, preprocess: Preprocess | None = None
) -> int:
    """The encoder's output width: its `feature_dim` attribute, else one forward pass.

    Args:
        encoder: maps float images (B, C, H, W) to features (B, D).
        sample: a few uint8 images (B, C, H, W) of the size the encoder will see, on the
            encoder's device.
        preprocess: maps uint8 to the encoder's float input; default scales to [0, 1].
    """
    dim = getattr(encoder, "feature_dim", None)
    if isinstance(dim, int):
        return dim
    preprocess = preprocess or make_preprocess()
    with torch.no_grad(), eval_mode(encoder):
        out = encoder(preprocess(sample[:2]))
    if out.ndim != 2:
        raise ValueError(f"encoder must return (B, D) features, got shape {tuple(out.shape)}")
    return out.shape[1]


def extract_features(
    encoder: nn.Module,
    images: Tensor,
    preprocess: Preprocess | None = None,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> Tensor:
    """Run a frozen encoder over uint8 images in batches, for kNN and linear evaluation.

    Images stay uint8 until each batch reaches `device`; the encoder runs in eval mode under
    `torch.no_grad` and gets its previous train/eval flags back afterwards. The encoder is moved
    to `device` in place (as `nn.Module.to` does).

    Args:
        encoder: maps float images (B, C, H, W) to features (B, D).
        images: uint8 tensor (N, C, H, W), on any device.
        preprocess: maps a uint8 batch on `device` to the encoder's float input; default scales
            to [0, 1] (see `make_preprocess`).
        batch_size: images per forward pass.
        device: where the encoder runs.
        progress: show a tqdm progress bar.

    Returns:
        float32 features (N, D) on the CPU.

    >>> enc = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 8))
    >>> extract_features(enc, torch.zeros(5, 3, 4, 4, dtype=torch.uint8)).shape
    torch.Size([5, 8])
    """
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(
            f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    preprocess = preprocess or make_preprocess()
    encoder.to(device)
    starts = range(0, len(images), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="features", unit="batch", leave=False)
    chunks = []
    with torch.no_grad(), eval_mode(encoder):
        for start in starts:
            batch = images[start : start + batch_size].to(device, non_blocking=True)
            feats = encoder(preprocess(batch))
            if feats.ndim != 2:
                raise ValueError(
                    f"encoder must return (B, D) features, got shape {tuple(feats.shape)}"
                )
            chunks.append(feats.float().cpu())
    if not chunks:
        raise ValueError("no images to extract features from")
    return torch.cat(chunks)
