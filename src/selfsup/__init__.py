"""selfsup: self-supervised visual representation learning in PyTorch.

The pieces drop into your own loop: `ViewAugment` makes views, `build_encoder` and
`ProjectionHead` make f and g, `nt_xent_loss` is the objective, `LARS` + `warmup_cosine` train it.
"""

__version__ = "0.1.0"

from selfsup.augment import ViewAugment, ViewConfig, normalize
from selfsup.config import RunConfig, load_config
from selfsup.data import ImageDataset, label_fraction_indices, load_dataset
from selfsup.dist import gather_with_grad
from selfsup.errors import SelfsupError
from selfsup.losses import NTXentLoss, nt_xent_loss
from selfsup.methods import SimCLR, build_method
from selfsup.models import (
    ProjectionHead,
    ResNet,
    build_encoder,
    load_encoder,
    save_encoder,
)
from selfsup.optim import LARS, param_groups, scaled_learning_rate, warmup_cosine

__all__ = [
    "LARS",
    "ImageDataset",
    "NTXentLoss",
    "ProjectionHead",
    "ResNet",
    "RunConfig",
    "SelfsupError",
    "SimCLR",
    "ViewAugment",
    "ViewConfig",
    "__version__",
    "build_encoder",
    "build_method",
    "gather_with_grad",
    "label_fraction_indices",
    "load_config",
    "load_dataset",
    "load_encoder",
    "normalize",
    "nt_xent_loss",
    "param_groups",
    "save_encoder",
    "scaled_learning_rate",
    "warmup_cosine",
]
