"""Class-balanced labelled subsets, for semi-supervised evaluation on 1% / 10% of the labels."""

from __future__ import annotations

import math
import re

import torch

from selfsup.errors import SelfsupError

_PER_CLASS = re.compile(r"^(\d+)\s*[-_ ]?\s*(?:per[-_ ]?class|/class)$")


def _round_half_up(value: float) -> int:
    """Conventional rounding (2.5 -> 3), unlike Python's round-half-to-even."""
    return math.floor(value + 0.5)


def label_fraction_indices(
    labels: torch.Tensor,
    fraction: float | None = None,
    per_class: int | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Indices of a seeded, class-balanced labelled subset, so every class is represented.

    Each class c with n_c samples contributes max(1, round(fraction * n_c)) samples (rounding
    half up), or exactly `per_class`. Samples with a label < 0 (unlabeled) are never chosen.

    Args:
        labels: int tensor (N,) of class indices; -1 marks an unlabeled sample.
        fraction: share of each class to keep, 0 < fraction <= 1.
        per_class: number of samples to keep from each class.
        seed: seeds the `torch.Generator` that picks the samples; same seed, same subset.

    Returns:
        Sorted int64 tensor of indices into `labels`.

    >>> label_fraction_indices(torch.tensor([0, 0, 1, 1, -1]), per_class=1, seed=0).shape
    torch.Size([2])
    """
    if (fraction is None) == (per_class is None):
        raise SelfsupError("give exactly one of fraction (e.g. 0.01) or per_class (e.g. 25)")
    if fraction is not None and not 0.0 < fraction <= 1.0:
        raise SelfsupError(f"label fraction must be in (0, 1], got {fraction}; 1% is 0.01")
    if per_class is not None and (isinstance(per_class, bool) or per_class < 1):
        raise SelfsupError(f"per_class must be a positive integer, got {per_class!r}")
    if labels.ndim != 1 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise SelfsupError(
            f"labels must be a 1-D integer tensor, got {labels.dtype} {tuple(labels.shape)}"
        )
    labels = labels.cpu()
    classes = torch.unique(labels[labels >= 0])  # sorted, so the draw order is fixed
    if len(classes) == 0:
        raise SelfsupError("the dataset has no labelled samples to take a label fraction from")
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in classes.tolist():
        members = torch.nonzero(labels == c).flatten()
        if per_class is not None:
            if per_class > len(members):
                raise SelfsupError(
                    f"class {c} has only {len(members)} labelled samples, fewer than "
                    f"per_class={per_class}; ask for at most {len(members)} per class"
                )
            k = per_class
        else:
            k = max(1, _round_half_up(fraction * len(members)))
        chosen.append(members[torch.randperm(len(members), generator=generator)[:k]])
    return torch.sort(torch.cat(chosen)).values.to(torch.int64)


def parse_label_fraction(text: str) -> dict[str, float | int]:
    """Parse a command-line label budget: "1%", "0.01" or "25-per-class".

    Returns:
        {"fraction": f} with 0 < f <= 1, or {"per_class": k}; keyword arguments for
        `label_fraction_indices`.

    >>> parse_label_fraction("10%"), parse_label_fraction("25-per-class")
    ({'fraction': 0.1}, {'per_class': 25})
    """
    cleaned = text.strip().lower()
    usage = 'write a percentage ("1%"), a fraction in (0, 1] ("0.01") or "25-per-class"'
    match = _PER_CLASS.match(cleaned)
    if match:
        count = int(match.group(1))
        if count < 1:
            raise SelfsupError(f"label budget {text!r} keeps no samples; {usage}")
        return {"per_class": count}
    try:
        value = float(cleaned[:-1]) / 100.0 if cleaned.endswith("%") else float(cleaned)
    except ValueError:
        raise SelfsupError(f"cannot read label budget {text!r}; {usage}") from None
    if not 0.0 < value <= 1.0:  # also rejects nan
        raise SelfsupError(f"label budget {text!r} is not in (0, 100%]; {usage}")
    return {"fraction": value}
