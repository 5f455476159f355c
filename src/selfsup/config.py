"""Typed run configuration: dataclass defaults, YAML recipes that say only what differs, and
`--section.field value` overrides. Unknown keys and wrong types are errors, never ignored.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from selfsup.augment.views import ViewConfig
from selfsup.checks import check_choice, check_float, check_int, check_widths
from selfsup.data.datasets import DATASETS, STREAMABLE
from selfsup.errors import SelfsupError
from selfsup.eval.suite import EvalConfig
from selfsup.models.registry import ENCODERS
from selfsup.models.resnet import NORMS

OPTIMIZERS = ("lars", "sgd", "adamw")
LR_SCALING_RULES = ("linear", "sqrt", "none")
PRECISIONS = ("auto", "bf16", "fp32")
DRLIM_PAIRS = ("neighbours", "augment")
BUILT_IN = ("digits", "synthetic")  # made in memory: no data_dir
DOWNLOADABLE = ("fashion-mnist", "mnist", "cifar10", "cifar100", "stl10")  # torchvision's


LARGEST_EPOCHS = 100_000
"""More epochs than this is a typo, not a recipe."""


@dataclass
class DataConfig:
    """Which images to learn from."""

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    download: bool = False
    image_size: int | None = None
    train_subset: int | None = None  # a seeded random subset of the training set, for quick runs
    stream: bool = False  # folder/shards: decode in DataLoader workers instead of in memory

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
    """Encoder f(·) and projection head g(·) (SimCLRv2: a deeper/wider ResNet, 3-layer head)."""

    encoder: str = "resnet18"
    stem: str = "cifar"
    base_width: int = 64
    width_multiplier: float = 1.0
    zero_init_residual: bool = False
    norm: str = "batch"  # "layer" for CPC v2's patch encoder
    selective_kernel: bool = False  # SK-ResNet, as SimCLRv2's biggest encoders (bottlenecks only)
    pool_grid: int = 1  # features = the last stage average-pooled to g×g (C·g² wide); 1 = global
    head_widths: tuple[int, ...] = (512, 128)

    def __post_init__(self) -> None:
        check_choice("encoder", self.encoder, ENCODERS)
        check_choice("stem", self.stem, ("cifar", "imagenet"))
        check_int("base_width", self.base_width, 1, 4096)
        check_float("width_multiplier", self.width_multiplier, 0, 64, low_open=True)
        check_choice("norm", self.norm, NORMS)
        check_int("pool_grid", self.pool_grid, 1, 8)
        check_widths("head_widths", self.head_widths)


@dataclass
class MethodConfig:
    """The self-supervised objective and its hyper-parameters; each method reads its own fields.

    Attributes:
        name: simclr, moco, byol, barlow_twins, drlim or cpc.
        temperature: softmax temperature τ (SimCLR, MoCo: 0.07 in v1, 0.2 in v2; CPC).
        gather_distributed: losses see the global batch across processes.
        momentum: MoCo's key-encoder momentum m (constant, also SimCLRv2's memory network);
            BYOL's base τ, raised to 1 along a cosine schedule.
        queue_size: MoCo's dictionary size K (any size; it need not divide by the batch).
        memory_size: SimCLR's memory of momentum-encoded negatives (SimCLRv2); 0 = none.
        shuffle_bn: MoCo's shuffled BN for the key encoder when running on several processes.
        symmetric: MoCo's symmetrised loss (each view queries the other's key).
        predictor_widths: BYOL's predictor q (hidden, output).
        redundancy_weight: Barlow Twins' λ on the off-diagonal terms.
        margin: DrLIM's margin m on the distance of dissimilar pairs.
        pairs: DrLIM's positives: "neighbours" (k nearest in pixel space, as in the paper) or
            "augment" (two views of one image).
        neighbours: DrLIM's k.
        patch_size, patch_stride: CPC's grid of overlapping patches, in pixels of the view.
        prediction_steps: CPC predicts the patches 1..prediction_steps rows below the context.
    """

    name: str = "simclr"
    temperature: float = 0.5
    gather_distributed: bool = True
    momentum: float = 0.999
    queue_size: int = 4096
    memory_size: int = 0
    shuffle_bn: bool = True
    symmetric: bool = False
    predictor_widths: tuple[int, ...] = (512, 128)
    redundancy_weight: float = 5e-3
    margin: float = 1.0
    pairs: str = "neighbours"
    neighbours: int = 5
    patch_size: int = 8
    patch_stride: int = 4
    prediction_steps: int = 3

    def __post_init__(self) -> None:
        from selfsup.methods.registry import METHODS

        check_choice("name", self.name, METHODS)
        check_float("temperature", self.temperature, 0, 100, low_open=True)
        check_float("momentum", self.momentum, 0, 1)
        check_int("queue_size", self.queue_size, 1)
        check_int("memory_size", self.memory_size, 0)
        check_widths("predictor_widths", self.predictor_widths)
        check_float("redundancy_weight", self.redundancy_weight, 0, 1e3)
        check_float("margin", self.margin, 0, 1e3, low_open=True)
        check_choice("pairs", self.pairs, DRLIM_PAIRS)
        check_int("neighbours", self.neighbours, 1, 10_000)
        check_int("patch_size", self.patch_size, 2, 4096)
        check_int("patch_stride", self.patch_stride, 1, 4096)
        check_int("prediction_steps", self.prediction_steps, 1, 4096)


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule (lr is per 256 images under the "linear" rule)."""

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
        epochs: passes over the training set; with `time_budget`, the most it may take.
        time_budget: train for this long ("15m", "90s", "1h") instead of all `epochs`: the
            number of steps comes from the step time measured after a few steps, and the
            learning-rate schedule is set for exactly those steps (see `selfsup.train.budget`).
            Giving `--train.epochs` alone drops a recipe's time budget.
        batch_size: the global batch, shared among processes when run with torchrun.
        precision: "auto" (bf16 autocast on CUDA, fp32 elsewhere), "bf16" or "fp32".
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
            from selfsup.train.budget import parse_duration

            parse_duration(self.time_budget)
        check_int("batch_size", self.batch_size, 2)  # batch norm needs two samples
        _check_device(self.device)
        check_choice("precision", self.precision, PRECISIONS)
        check_int("seed", self.seed, 0, 2**63 - 1)
        check_int("threads", self.threads, 1, 1024, optional=True)
        check_int("log_every", self.log_every, 1)
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
    """One run: everything needed to reproduce it, saved as config.yaml in the run directory."""

    run_dir: str = "runs/simclr-fashion-mnist"
    data: DataConfig = field(default_factory=DataConfig)
    augment: ViewConfig = field(default_factory=ViewConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
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


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint).replace("typing.", ""))


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check `value` against the annotation `hint`, converting only lossless cases (int→float,
    list→tuple)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except SelfsupError:
                continue
        raise SelfsupError(f"config key {key!r}: expected {_type_name(hint)}, got {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise SelfsupError(f"config key {key!r}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        if origin is tuple and args and args[-1] is not Ellipsis and len(args) != len(value):
            raise SelfsupError(f"config key {key!r}: expected {len(args)} values, got {value!r}")
        item_types = [args[0]] * len(value) if (not args or args[-1] is Ellipsis) else list(args)
        items = [_coerce(v, t, key) for v, t in zip(value, item_types, strict=True)]
        return origin(items)
    if hint is float and isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)  # YAML 1.1 reads "1e-3" as a string
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise SelfsupError(f"config key {key!r}: expected a finite number, got {value!r}")
        return float(value)
    if hint is Any or (isinstance(hint, type) and isinstance(value, hint)):
        if hint is int and isinstance(value, bool):
            raise SelfsupError(f"config key {key!r}: expected int, got {value!r}")
        return value
    raise SelfsupError(f"config key {key!r}: expected {_type_name(hint)}, got {value!r}")


def _apply(target: Any, updates: dict[str, Any], prefix: str = "") -> None:
    hints = typing.get_type_hints(type(target))
    names = {f.name for f in dataclasses.fields(target)}
    for name, value in updates.items():
        key = f"{prefix}{name}"
        if name not in names:
            raise SelfsupError(
                f"unknown config key {key!r}; valid keys here: {', '.join(sorted(names))}"
            )
        current = getattr(target, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise SelfsupError(f"config key {key!r} is a section; give it a mapping")
            _apply(current, value, f"{key}.")
        else:
            setattr(target, name, _coerce(value, hints[name], key))
    if hasattr(target, "__post_init__"):
        try:
            target.__post_init__()
        except ValueError as error:
            raise SelfsupError(f"config section {prefix.rstrip('.') or 'run'}: {error}") from None


def load_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> RunConfig:
    """Defaults ← YAML recipe at `path` ← dotted `overrides` ({"train.epochs": 5})."""
    config = RunConfig()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise SelfsupError(f"config file {path} not found; pass an existing YAML recipe")
        try:
            recipe = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise SelfsupError(
                f"config file {path} is not valid YAML: {error}".splitlines()[0]
            ) from None
        if not isinstance(recipe, dict):
            raise SelfsupError(f"config file {path} must hold a mapping of sections")
        _apply(config, recipe)
    overrides = dict(overrides or {})
    if "train.epochs" in overrides and "train.time_budget" not in overrides:
        overrides["train.time_budget"] = None  # epochs given: they, not the recipe's budget, rule
    return apply_overrides(config, overrides)


def apply_overrides(config: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """Set dotted keys ({"train.epochs": 5}) in place, with the same checks as a recipe; all
    at once, so that fields checked together (warm-up and epochs) may change together."""
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        cursor = nested
        *parents, last = dotted.split(".")
        for part in parents:
            cursor = cursor.setdefault(part, {})
            if not isinstance(cursor, dict):
                raise SelfsupError(f"config key {dotted!r} sets a field inside a value")
        cursor[last] = value
    _apply(config, nested)
    return config


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain dict (tuples as lists) for YAML/JSON."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def save_config(config: RunConfig, path: str | Path, extra: dict[str, Any] | None = None) -> None:
    """Write the config (plus e.g. the command line and package version) as YAML."""
    document = config_to_dict(config)
    if extra:
        document = {"_meta": extra, **document}
    Path(path).write_text(yaml.safe_dump(document, sort_keys=False))


def config_from_dict(document: dict[str, Any]) -> RunConfig:
    """Inverse of `config_to_dict` (ignores the `_meta` block that `save_config` adds)."""
    config = RunConfig()
    _apply(config, {k: v for k, v in document.items() if k != "_meta"})
    return config


def _help_default(value: Any) -> str:
    """ "default: <value>", with argparse's % escaped (label fractions hold "1%")."""
    return f"default: {value!r}".replace("%", "%%")


def add_override_arguments(parser: argparse.ArgumentParser) -> None:
    """One `--section.field VALUE` flag per config field (values parsed as YAML scalars)."""
    group = parser.add_argument_group("config overrides (any field of the recipe)")
    defaults = RunConfig()
    for section in dataclasses.fields(defaults):
        value = getattr(defaults, section.name)
        if dataclasses.is_dataclass(value):
            for sub in dataclasses.fields(value):
                flag = f"--{section.name}.{sub.name}"
                group.add_argument(
                    flag,
                    dest=f"override:{section.name}.{sub.name}",
                    default=None,
                    metavar="V",
                    help=_help_default(getattr(value, sub.name)),
                )
        else:
            group.add_argument(
                f"--{section.name.replace('_', '-')}",
                dest=f"override:{section.name}",
                default=None,
                metavar="V",
                help=_help_default(value),
            )


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The overrides given on the command line, values parsed as YAML ("5" → 5, "[1, 2]" → list)."""
    overrides = {}
    for dest, text in vars(args).items():
        if dest.startswith("override:") and text is not None:
            try:
                value = yaml.safe_load(text)
            except yaml.YAMLError:
                value = text
            overrides[dest.removeprefix("override:")] = value
    return overrides
