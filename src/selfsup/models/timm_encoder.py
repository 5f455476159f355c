"""Any timm backbone as an encoder: `--model.encoder timm:vit_tiny_patch16_224`, `timm:resnet50`.

timm is an optional dependency (`pip install selfsup[timm]`). The model is built without
pretrained weights and without its classifier, so it returns pooled features. Vision
transformers are built for the run's image size, with `patch_size` when given (small images
want small patches), and with timm's dynamic image size, which interpolates the position
embeddings: the small crops of multi-crop and evaluation at another size then work.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from selfsup.errors import SelfsupError

PREFIX = "timm:"
"""Encoder names with this prefix are timm models."""


def import_timm() -> Any:
    try:
        import timm
    except ImportError:
        raise SelfsupError(
            "timm encoders need timm: pip install 'selfsup[timm]' (or pip install timm)"
        ) from None
    return timm


class TimmEncoder(nn.Module):
    """A timm model with its classifier removed; `feature_dim` is its pooled feature width.

    Args:
        model_name: the timm model (`vit_tiny_patch16_224`, `resnet50`, `convnext_atto`, ...).
        in_channels: input channels.
        image_size: the images' side, for models whose constructor takes one (ViTs).
        patch_size: a ViT's patch side (None: the model's own).
    """

    def __init__(
        self,
        model_name: str,
        in_channels: int = 3,
        image_size: int | None = None,
        patch_size: int | None = None,
    ) -> None:
        super().__init__()
        timm = import_timm()
        if not timm.is_model(model_name):
            raise SelfsupError(f"timm has no model {model_name!r}; see timm.list_models()")
        common = {"pretrained": False, "num_classes": 0, "in_chans": in_channels}
        sized: dict[str, Any] = {"dynamic_img_size": True}
        if image_size is not None:
            sized["img_size"] = image_size
        if patch_size is not None:
            sized["patch_size"] = patch_size
        try:  # timm's transformer constructors take image-size keywords; convolutional ones not
            self.model = timm.create_model(model_name, **common, **sized)
        except TypeError:
            if patch_size is not None:
                raise SelfsupError(f"{model_name} takes no patch_size; it is not a ViT") from None
            self.model = timm.create_model(model_name, **common)
        self.model_name = model_name
        self.feature_dim = int(self.model.num_features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)


def build_timm_encoder(
    name: str,
    in_channels: int = 3,
    image_size: int | None = None,
    patch_size: int | None = None,
) -> TimmEncoder:
    """`TimmEncoder` from a `timm:`-prefixed encoder name.

    >>> encoder = build_timm_encoder("timm:resnet10t", in_channels=1)  # doctest: +SKIP
    """
    return TimmEncoder(name.removeprefix(PREFIX), in_channels, image_size, patch_size)


__all__ = ["PREFIX", "TimmEncoder", "build_timm_encoder", "import_timm"]
