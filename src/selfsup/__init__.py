"""selfsup: self-supervised visual representation learning in PyTorch.

The pieces drop into your own loop: `ViewAugment` makes views, `build_encoder` and
`ProjectionHead` make f and g, a loss (`nt_xent_loss`, `info_nce_loss`, `negative_cosine_loss`,
`barlow_twins_loss`, `drlim_margin_loss`, `cpc_info_nce`, `distillation_loss`) is the
objective, `LARS` + `warmup_cosine` train it; `SimCLR` (with SimCLRv2's memory), `MoCo`, `BYOL`,
`BarlowTwins`, `DrLIM`, `CPC` are whole methods; `EncoderWithHead` and `Classifier` are what
SimCLRv2 fine-tunes and distils. `embed`, `build_index`, `search`, `cluster` and
`find_duplicates` put embeddings to use; `embedding_quality` scores them without labels.
"""

from selfsup.version import __version__  # noqa: I001 (first: the layers below report it)
from selfsup.augment import ViewAugment, ViewConfig, normalize
from selfsup.config import RunConfig, load_config
from selfsup.data import ImageDataset, label_fraction_indices, load_dataset
from selfsup.dist import gather_with_grad
from selfsup.embeddings import (
    EmbeddingStore,
    SearchIndex,
    build_index,
    cluster,
    embed,
    find_duplicates,
    search,
)
from selfsup.errors import SelfsupError
from selfsup.losses import (
    NTXentLoss,
    barlow_twins_loss,
    cpc_info_nce,
    distillation_loss,
    drlim_margin_loss,
    info_nce_loss,
    negative_cosine_loss,
    nt_xent_loss,
)
from selfsup.methods import (
    METHODS,
    KeyQueue,
    MethodConfig,
    MethodPlugin,
    build_method,
    method_exports,
    register_method,
    update_momentum,
)
from selfsup.models import (
    Classifier,
    EncoderWithHead,
    ProjectionHead,
    ResNet,
    build_encoder,
    load_encoder,
    save_encoder,
)
from selfsup.optim import LARS, param_groups, scaled_learning_rate, warmup_cosine
from selfsup.quality import embedding_quality

globals().update(method_exports())  # SimCLR, MoCo, ... and their configs, as each declares

__all__ = [
    "LARS",
    "Classifier",
    "EncoderWithHead",
    "ImageDataset",
    "KeyQueue",
    "NTXentLoss",
    "ProjectionHead",
    "ResNet",
    "RunConfig",
    "SelfsupError",
    "ViewAugment",
    "ViewConfig",
    "EmbeddingStore",
    "SearchIndex",
    "__version__",
    "barlow_twins_loss",
    "build_encoder",
    "build_index",
    "build_method",
    "cluster",
    "cpc_info_nce",
    "distillation_loss",
    "drlim_margin_loss",
    "embed",
    "embedding_quality",
    "find_duplicates",
    "gather_with_grad",
    "info_nce_loss",
    "label_fraction_indices",
    "load_config",
    "load_dataset",
    "load_encoder",
    "negative_cosine_loss",
    "normalize",
    "nt_xent_loss",
    "param_groups",
    "save_encoder",
    "scaled_learning_rate",
    "search",
    "update_momentum",
    "warmup_cosine",
    "METHODS",
    "MethodConfig",
    "MethodPlugin",
    "register_method",
    *sorted(method_exports()),
]
