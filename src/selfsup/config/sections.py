"""The run's config sections as typed dataclasses: the one source of defaults.

Every field is described in its class's `Attributes:` section; `--help` shows those lines.
Each section checks its own values in `__post_init__`; `RunConfig` checks combinations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from selfsup.augment.config import ViewConfig
from selfsup.checks import check_choice, check_float, check_int, check_widths
from selfsup.data.datasets import DATASETS, STREAMABLE
from selfsup.eval.suite import EvalConfig
from selfsup.methods import METHODS, MethodConfig
from selfsup.models.registry import ENCODERS, check_encoder_name
from selfsup.models.resnet import NORMS
from selfsup.train.budget import parse_duration

OPTIMIZERS = ("lars", "sgd", "adamw")
LR_SCALING_RULES = ("linear", "sqrt", "none")
PRECISIONS = ("auto", "bf16", "fp32")
BUILT_IN = ("digits", "synthetic")  # made in memory: no data_dir
DOWNLOADABLE = ("fashion-mnist", "mnist", "cifar10", "cifar100", "stl10")  # torchvision's
DEFAULT_METHOD = "simclr"


LARGEST_EPOCHS = 100_000
"""More epochs than this is a typo, not a recipe."""


@dataclass
class DataConfig:
    """Which images to learn from.

    Attributes:
        dataset: a built-in dataset (fashion-mnist, mnist, cifar10, digits, ...), "folder"
            (class sub-folders of images) or "shards" (tar shards).
        data_dir: where the dataset's files are (None: the dataset's usual places).
        download: let torchvision download the dataset if its files are missing.
        image_size: resize every image to this side in pixels (None: as stored; a folder run
            picks one and says so).
        train_subset: train on a seeded random subset of this many images, for quick runs.
        stream: folder/shards: decode in DataLoader workers instead of holding all in memory.
    """

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    download: bool = False
    image_size: int | None = None
    train_subset: int | None = None
    stream: bool = False

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, DATASETS)
        if self.data_dir is not None and not str(self.data_dir).strip():
            raise ValueError("data_dir must be a folder path or null, got an empty string")
        if self.dataset in BUILT_IN and self.data_dir is not None:
            raise ValueError(f"dataset {self.dataset!r} reads no files; drop data_dir")
        if self.download and self.dataset not in DOWNLOADABLE:
            raise ValueError(f"download applies to {', '.join(DOWNLOADABLE)}; not {self.dataset!r}")
        check_int("image_size", self.image_size, 4, 4096, optional=True)
        check_int("train_subset", self.train_subset, 2, optional=True)
        if self.stream and self.dataset not in STREAMABLE:
            raise ValueError(
                f"stream applies to {' and '.join(STREAMABLE)}; {self.dataset!r} is held in memory"
            )


@dataclass
class ModelConfig:
    """Encoder f(·) and projection head g(·) (SimCLRv2: a deeper/wider ResNet, 3-layer head).

    Attributes:
        encoder: the backbone (resnet18, resnet50, ...), or timm:MODEL for any timm model
            (timm:vit_tiny_patch16_224, timm:resnet50; needs timm installed).
        stem: "cifar" (3x3 conv, no max-pool: for small images) or "imagenet" (7x7 and pool).
        base_width: channels of the first stage (64 in the standard ResNets).
        width_multiplier: scales every stage's width (SimCLRv2's 2x, 3x encoders).
        zero_init_residual: start each residual branch's last BN at zero (identity blocks).
        norm: "batch", or "layer" for CPC v2's patch encoder.
        selective_kernel: SK-ResNet blocks, as SimCLRv2's biggest encoders (bottlenecks only).
        pool_grid: features are the last stage average-pooled to a g x g grid (C·g² wide);
            1 is the usual global average pool.
        head_widths: layer widths of the projection head g; the last is the embedding size
            ([] is no head: the loss sees the encoder's features).
        patch_size: a timm ViT's patch side (None: the model's own, 16 for most; 4 suits
            28-32 px images).
    """

    encoder: str = "resnet18"
    stem: str = "cifar"
    base_width: int = 64
    width_multiplier: float = 1.0
    zero_init_residual: bool = False
    norm: str = "batch"
    selective_kernel: bool = False
    pool_grid: int = 1
    head_widths: tuple[int, ...] = (512, 128)
    patch_size: int | None = None

    def __post_init__(self) -> None:
        check_encoder_name(self.encoder)
        check_int("patch_size", self.patch_size, 1, 1024, optional=True)
        check_choice("stem", self.stem, ("cifar", "imagenet"))
        check_int("base_width", self.base_width, 1, 4096)
        check_float("width_multiplier", self.width_multiplier, 0, 64, low_open=True)
        check_choice("norm", self.norm, NORMS)
        check_int("pool_grid", self.pool_grid, 1, 8)
        check_widths("head_widths", self.head_widths, allow_empty=True)


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule.

    Attributes:
        optimizer: lars (SimCLR's, for big batches), sgd or adamw.
        lr: base learning rate per 256 images (scaled by lr_scaling to the real batch).
        lr_scaling: "linear" (lr x batch / 256), "sqrt" (lr x sqrt(batch / 256)) or "none".
        weight_decay: L2 penalty (biases and norms excluded, as in SimCLR).
        momentum: the optimiser's momentum (adamw: its beta1).
        warmup_epochs: linear warm-up from 0, in epochs (fractions allowed).
        final_lr_fraction: the cosine decay ends at this fraction of the peak learning rate.
    """

    optimizer: str = "lars"
    lr: float = 1.0
    lr_scaling: str = "linear"
    weight_decay: float = 1e-6
    momentum: float = 0.9
    warmup_epochs: float = 1.0
    final_lr_fraction: float = 0.0

    def __post_init__(self) -> None:
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_float("lr", self.lr, 0, 1e4, low_open=True)
        check_choice("lr_scaling", self.lr_scaling, LR_SCALING_RULES)
        check_float("weight_decay", self.weight_decay, 0, 1)
        check_float("momentum", self.momentum, 0, 1, high_open=True)
        check_float("warmup_epochs", self.warmup_epochs, 0, LARGEST_EPOCHS)
        check_float("final_lr_fraction", self.final_lr_fraction, 0, 1)


@dataclass
class TrainConfig:
    """How the loop runs.

    Attributes:
        epochs: passes over the training set; with time_budget, the most it may take.
        time_budget: train for this long ("15m", "90s", "1h") instead of all `epochs`: the
            number of steps comes from the step time measured after a few steps, and the
            learning-rate schedule is set for exactly those steps (see `selfsup.train.budget`).
            Giving `--train.epochs` alone drops a recipe's time budget.
        batch_size: the global batch, shared among processes when run with torchrun.
        device: "auto" (CUDA if present, else CPU), cpu, cuda, cuda:N or mps.
        precision: "auto" (bf16 autocast on CUDA, fp32 elsewhere), "bf16" or "fp32".
        seed: seeds the sample order, the views and the initialisation.
        threads: torch's CPU threads (None: torch's default).
        log_every: log loss, learning rate and throughput every this many steps.
        quality_sample: after every epoch, log the label-free quality of the encoder's features
            (effective rank, alignment, uniformity, collapse level) on two views of this many
            fixed training images; 0 turns it off.
        progress: show a progress bar.
        channels_last: keep images and activations in channels-last memory order.
        compile: torch.compile the training step's model (nn.Module.compile, in place).
        sync_batchnorm: with several processes, batch norm uses the global batch's statistics
            (SimCLR's global BN: torch's SyncBatchNorm on CUDA, selfsup's on CPU/gloo).
        data_on_device: keep the uint8 training set on the device; false keeps it in pinned
            host memory and copies each batch asynchronously, one step ahead.
        workers: DataLoader processes decoding images for streamed datasets (folders, shards).
        keep_cpu_memory: on CPU, make glibc's malloc keep freed memory for the next step
            instead of unmapping it (process-wide; see `selfsup.train.allocator`).
    """

    epochs: int = 100
    time_budget: str | float | None = None
    batch_size: int = 256
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0
    threads: int | None = None
    log_every: int = 10
    quality_sample: int = 512
    progress: bool = True
    channels_last: bool = True
    compile: bool = False
    sync_batchnorm: bool = True
    data_on_device: bool = True
    workers: int = 4
    keep_cpu_memory: bool = True

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, 1, LARGEST_EPOCHS)
        if self.time_budget is not None:
            parse_duration(self.time_budget)
        check_int("batch_size", self.batch_size, 2)  # batch norm needs two samples
        _check_device(self.device)
        check_choice("precision", self.precision, PRECISIONS)
        check_int("seed", self.seed, 0, 2**63 - 1)
        check_int("threads", self.threads, 1, 1024, optional=True)
        check_int("log_every", self.log_every, 1)
        check_int("quality_sample", self.quality_sample, 0, 65_536)
        check_int("workers", self.workers, 0, 1024)


def _check_device(name: str) -> None:
    """ "auto", or a device string torch can parse (cpu, cuda, cuda:N, mps)."""
    if name == "auto":
        return
    import torch

    try:
        torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, got {name!r}") from None


@dataclass
class SemisupConfig:
    """SimCLRv2's stages 2 and 3 (`selfsup semisup`); label fractions and fine-tuning settings
    come from the `eval` section.

    Attributes:
        head_depth: fine-tune from the projection head's layer k: 0 = the encoder (SimCLR),
            1 = SimCLRv2's choice with a 3-layer head, up to the head's depth.
        temperature: τ of the teacher's and student's softmax in the distillation loss.
        distill_weight: α of Eq. (3): 1 = soft labels only; below 1 mixes in the labelled loss.
        distill_epochs: passes over the unlabeled images per student.
        distill_lr, distill_batch_size, distill_weight_decay: the student's SGD.
        self_distill: train a student of the teacher's own architecture.
        student_encoder, student_base_width, student_width_multiplier: the small student (no
            projection head); student_encoder "" skips it.
        student_init: "random" (the student learns from the teacher alone) or "pretrained" (the
            self-distilled student starts from the pre-trained encoder and head).
    """

    head_depth: int = 1
    temperature: float = 1.0
    distill_weight: float = 1.0
    distill_epochs: int = 10
    distill_lr: float = 0.1
    distill_batch_size: int = 256
    distill_weight_decay: float = 5e-4
    self_distill: bool = True
    student_encoder: str = "resnet18"
    student_base_width: int = 16
    student_width_multiplier: float = 1.0
    student_init: str = "random"

    def __post_init__(self) -> None:
        check_int("head_depth", self.head_depth, 0, 64)  # semisup checks it against the head
        check_float("temperature", self.temperature, 0, 100, low_open=True)
        check_float("distill_weight", self.distill_weight, 0, 1)
        check_int("distill_epochs", self.distill_epochs, 1, LARGEST_EPOCHS)
        check_float("distill_lr", self.distill_lr, 0, 1e4, low_open=True)
        check_int("distill_batch_size", self.distill_batch_size, 2)
        check_float("distill_weight_decay", self.distill_weight_decay, 0, 1)
        if self.student_encoder != "":
            check_choice("student_encoder", self.student_encoder, ENCODERS)
        check_int("student_base_width", self.student_base_width, 1, 4096)
        check_float("student_width_multiplier", self.student_width_multiplier, 0, 64, low_open=True)
        check_choice("student_init", self.student_init, ("random", "pretrained"))


@dataclass
class RunConfig:
    """One run: everything needed to reproduce it, saved as config.yaml in the run directory.

    Attributes:
        run_dir: the run's folder: config, checkpoints, metrics, encoder and results.
        data, augment, model, method, optim, train, eval, semisup: the sections; `method`
            holds the chosen method's own config (see `selfsup.methods`).
    """

    run_dir: str = "runs/simclr-fashion-mnist"
    data: DataConfig = field(default_factory=DataConfig)
    augment: ViewConfig = field(default_factory=ViewConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=lambda: METHODS[DEFAULT_METHOD].config())
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    semisup: SemisupConfig = field(default_factory=SemisupConfig)

    def __post_init__(self) -> None:
        if not str(self.run_dir).strip():
            raise ValueError("run_dir must be a folder path, got an empty string")
        if self.optim.warmup_epochs > self.train.epochs:
            raise ValueError(
                f"optim.warmup_epochs ({self.optim.warmup_epochs:g}) is longer than the run "
                f"(train.epochs {self.train.epochs})"
            )
