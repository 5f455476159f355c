"""Typed run configuration: dataclass defaults, YAML recipes that say only what differs, and
`--section.field value` overrides. Unknown keys and wrong types are errors, never ignored.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from selfsup.augment.views import ViewConfig
from selfsup.errors import SelfsupError
from selfsup.eval.suite import EvalConfig


@dataclass
class DataConfig:
    """Which images to learn from."""

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    download: bool = False
    image_size: int | None = None
    train_subset: int | None = None  # a seeded random subset of the training set, for quick runs
    stream: bool = False  # folder/shards: decode in DataLoader workers instead of in memory


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
    head_widths: tuple[int, ...] = (512, 128)


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


@dataclass
class TrainConfig:
    """How the loop runs.

    Attributes:
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
        if self.head_depth < 0:
            raise ValueError(f"head_depth must be >= 0, got {self.head_depth}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"distill_weight must be in [0, 1], got {self.distill_weight}")
        for name in ("distill_epochs", "distill_lr", "distill_batch_size", "student_base_width"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.student_init not in ("random", "pretrained"):
            raise ValueError(
                f"student_init must be 'random' or 'pretrained', got {self.student_init!r}"
            )


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
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads "1e-3" as a string
        except ValueError:
            pass
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
    return apply_overrides(config, overrides or {})


def apply_overrides(config: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """Set dotted keys ({"train.epochs": 5}) in place, with the same checks as a recipe."""
    for dotted, value in overrides.items():
        nested: dict[str, Any] = {}
        cursor = nested
        *parents, last = dotted.split(".")
        for part in parents:
            cursor = cursor.setdefault(part, {})
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
