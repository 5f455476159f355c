"""SimCLRv2's semi-supervised pipeline in one call: pre-train big, fine-tune from the head, distil.

[0] SimCLRv2, Chen et al. 2020, "Big Self-Supervised Models are Strong Semi-Supervised
    Learners", arXiv:2006.10029, Sec. 2 and Fig. 3:
    1. self-supervised pre-training of a big ResNet with a 3-layer projection head (NT-Xent,
       optionally with a memory of momentum-encoded negatives);
    2. supervised fine-tuning on the labelled fraction from the head's first layer;
    3. distillation of the fine-tuned teacher into a student on the unlabeled images.

For each label fraction the table compares, on the same class-balanced subset: supervised
training from scratch, SimCLR's protocols (a linear classifier on the frozen encoder, and
fine-tuning from the encoder), fine-tuning from head layer k, self-distillation and
distillation into a smaller student. Every trained network is saved as a loadable classifier.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from selfsup.config import RunConfig, config_to_dict
from selfsup.data import ImageDataset, label_fraction_indices, parse_label_fraction
from selfsup.errors import SelfsupError
from selfsup.eval import (
    Preprocess,
    classifier_accuracy,
    count_classes,
    distill,
    extract_features,
    fit_classifier,
    linear_probe,
    make_preprocess,
    result_row,
    seeded,
    write_results,
)
from selfsup.models import (
    Classifier,
    EncoderWithHead,
    ProjectionHead,
    build_classifier,
    build_from_architecture,
    load_classifier,
    load_encoder,
    load_head,
    save_classifier,
)
from selfsup.pipeline import load_split, pretrain
from selfsup.train import has_checkpoint, resolve_device

Announce = Callable[[str], None]


def parameter_count(module: nn.Module) -> int:
    """Number of parameters (what the table reports for each model)."""
    return sum(parameter.numel() for parameter in module.parameters())


def label_slug(text: str) -> str:
    """A label budget as a directory name: "1%" → "1pct", "25-per-class" stays."""
    return text.strip().replace("%", "pct").replace(" ", "").replace("/", "-per-")


def describe(architecture: dict[str, Any]) -> str:
    """A short name: "resnet50-w16x2" is a ResNet-50 at base width 16, width multiplier 2;
    "-sk" marks selective kernels."""
    kwargs = architecture["kwargs"]
    sk = "-sk" if kwargs.get("selective_kernel") else ""
    return f"{architecture['name']}-w{kwargs['base_width']}x{kwargs['width_multiplier']:g}{sk}"


@dataclass
class _Stages:
    """What every stage shares: the pre-trained network, the data, and the rows so far."""

    config: RunConfig
    resume: bool
    announce: Announce
    encoder: nn.Module
    head: ProjectionHead
    architecture: dict[str, Any]
    train_set: ImageDataset
    test_set: ImageDataset
    preprocess: Preprocess
    device: torch.device
    num_classes: int
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return describe(self.architecture)

    def spec(self, depth: int, architecture: dict[str, Any] | None = None) -> dict[str, Any]:
        """`classifier.json` of a classifier on head layer `depth` of this encoder."""
        head = None
        if depth:
            head = {**self.head.spec(), "depth": depth}
        return {
            "encoder": architecture or self.architecture,
            "head": head,
            "num_classes": self.num_classes,
        }

    def directory(self, stage: str, labels: str, name: str) -> Path:
        """Where one network of a stage is saved: RUN_DIR/<stage>/<labels>/<name>/."""
        return Path(self.config.run_dir) / stage / label_slug(labels) / name

    def trunk(self, depth: int) -> nn.Module:
        """The pre-trained encoder followed by the head's first `depth` layers."""
        return self.encoder if depth == 0 else EncoderWithHead(self.encoder, self.head, depth)

    def finetune_settings(self) -> dict[str, Any]:
        return dict(
            device=self.device,
            progress=self.config.train.progress,
            **self.config.eval.finetune_settings(),
        )

    def distill_settings(self) -> dict[str, Any]:
        settings, evaluation = self.config.semisup, self.config.eval
        return dict(
            temperature=settings.temperature,
            distill_weight=settings.distill_weight,
            epochs=settings.distill_epochs,
            lr=settings.distill_lr,
            batch_size=settings.distill_batch_size,
            weight_decay=settings.distill_weight_decay,
            seed=evaluation.seed,
            device=self.device,
            augment=evaluation.finetune_augment,
            progress=self.config.train.progress,
        )

    def record(
        self,
        encoder: str,
        protocol: str,
        labelled: ImageDataset,
        labels: str,
        scores: dict[str, float],
        parameters: int,
        seconds: float | None,
    ) -> None:
        self.rows.append(
            result_row(
                encoder,
                protocol,
                labels,
                scores,
                parameters=parameters,
                train_images=len(labelled),
                seconds=seconds,
                dataset=self.train_set.name,
            )
        )

    def stage(
        self,
        directory: Path,
        spec: dict[str, Any],
        train_model: Callable[[], nn.Module],
        labelled: ImageDataset,
        labels: str,
        encoder: str,
        protocol: str,
    ) -> Classifier:
        """Train (or, resuming, load) one classifier, save it, score it, add its row."""
        if self.resume and (directory / "classifier.safetensors").is_file():
            model, saved = load_classifier(directory)
            seconds = saved.get("seconds")
        else:
            self.announce(f"{encoder}: {protocol}, {labels} of the labels")
            started = time.perf_counter()
            model = train_model()
            seconds = round(time.perf_counter() - started, 1)
            save_classifier(model, {**spec, "seconds": seconds, "labels": labels}, directory)
        scores = classifier_accuracy(
            model, self.test_set, self.preprocess, self.config.eval.batch_size, self.device
        )
        self.record(encoder, protocol, labelled, labels, scores, parameter_count(model), seconds)
        return model


def semisup(
    config: RunConfig, resume: bool = False, announce: Announce | None = None
) -> list[dict[str, Any]]:
    """Run the three stages into `config.run_dir`; returns the rows of the results table.

    Stage 1 is `selfsup pretrain` (the encoder and its projection head are saved in the run
    directory). Stages 2 and 3 save each network under `finetune/<labels>/<name>/` and
    `distill/<labels>/<name>/` as `classifier.safetensors` + `classifier.json`
    (`selfsup.models.load_classifier` reads them); with `resume`, a network whose file exists
    is loaded instead of trained again. The table goes to `semisup.md` and `semisup.json`.
    """
    announce = announce or (lambda message: None)
    run_dir = Path(config.run_dir)
    depth, layers = config.semisup.head_depth, len(config.model.head_widths)
    if depth > layers:
        raise SelfsupError(
            f"semisup.head_depth {depth} is deeper than the {layers}-layer projection head; "
            f"use 0 to {layers}"
        )
    pretrained = all(
        (run_dir / name).is_file() for name in ("encoder.safetensors", "head.safetensors")
    )
    if resume and pretrained:
        announce(f"stage 1: using the pre-trained encoder and head in {run_dir}")
    else:
        announce(f"stage 1: self-supervised pre-training of {config.model.encoder} into {run_dir}")
        pretrain(config, resume=resume and has_checkpoint(run_dir / "checkpoints"))
    encoder, architecture = load_encoder(run_dir)
    head = load_head(run_dir)
    train_set, test_set = load_split(config, "train"), load_split(config, "test")
    for dataset in (train_set, test_set):
        if dataset.labels is None or not (dataset.labels >= 0).any():
            raise SelfsupError(f"{dataset.name} has no labels: semisup needs a labelled fraction")
    stages = _Stages(
        config=config,
        resume=resume,
        announce=announce,
        encoder=encoder,
        head=head,
        architecture=architecture,
        train_set=train_set,
        test_set=test_set,
        preprocess=make_preprocess(architecture["mean"], architecture["std"]),
        device=resolve_device(config.train.device),
        num_classes=count_classes(train_set, test_set),
    )

    def features(images: Tensor) -> Tensor:
        return extract_features(
            encoder, images, stages.preprocess, config.eval.batch_size, stages.device
        )

    train_features, test_features = features(train_set.images), features(test_set.images)
    for text in config.eval.label_fractions:
        indices = label_fraction_indices(
            train_set.labels, **parse_label_fraction(text), seed=config.eval.seed
        )
        labelled = train_set.subset(indices)
        announce(f"stage 2: fine-tuning on {text} of the labels ({len(labelled)} images)")
        _baselines(stages, labelled, text, train_features[indices], test_features)
        teacher = _finetune(stages, labelled, text)
        announce(f"stage 3: distillation on {len(train_set)} unlabeled images ({text} teacher)")
        _distill(stages, teacher, labelled, text)

    write_results(
        stages.rows,
        run_dir,
        metadata={"config": config_to_dict(config), "dataset": train_set.name},
        name="semisup",
        title="SimCLRv2 semi-supervised results",
        extra_columns=("parameters",),
    )
    return stages.rows


def _baselines(
    stages: _Stages,
    labelled: ImageDataset,
    text: str,
    labelled_features: Tensor,
    test_features: Tensor,
) -> None:
    """Supervised from scratch, and SimCLR's linear classifier on the frozen encoder."""
    evaluation = stages.config.eval

    def supervised() -> nn.Module:
        with seeded(evaluation.seed):
            random_encoder = build_from_architecture(stages.architecture)
        return fit_classifier(
            random_encoder,
            labelled,
            stages.preprocess,
            stages.num_classes,
            **stages.finetune_settings(),
        )

    stages.stage(
        stages.directory("finetune", text, "supervised"),
        stages.spec(0),
        supervised,
        labelled,
        text,
        f"{stages.name} (random init)",
        "supervised from scratch",
    )
    started = time.perf_counter()
    scores = linear_probe(
        labelled_features,
        labelled.labels,
        test_features,
        stages.test_set.labels,
        stages.num_classes,
        device=stages.device,
        **evaluation.linear_settings(),
    )
    parameters = parameter_count(stages.encoder) + (labelled_features.shape[1] + 1) * (
        stages.num_classes
    )
    seconds = round(time.perf_counter() - started, 1)
    stages.record(
        f"SimCLR {stages.name}",
        "linear on the frozen encoder",
        labelled,
        text,
        scores,
        parameters,
        seconds,
    )


def _finetune(stages: _Stages, labelled: ImageDataset, text: str) -> Classifier:
    """Fine-tune from the encoder (SimCLR) and from head layer k (SimCLRv2); return the latter,
    the teacher of stage 3."""
    teacher = None
    for depth in sorted({0, stages.config.semisup.head_depth}):
        trunk = stages.trunk(depth)
        method, start = (
            ("SimCLR", "the encoder") if depth == 0 else ("SimCLRv2", f"head layer {depth}")
        )

        def train_model(trunk: nn.Module = trunk) -> nn.Module:
            return fit_classifier(
                trunk,
                labelled,
                stages.preprocess,
                stages.num_classes,
                **stages.finetune_settings(),
            )

        teacher = stages.stage(
            stages.directory("finetune", text, f"head-layer-{depth}"),
            stages.spec(depth),
            train_model,
            labelled,
            text,
            f"{method} {stages.name}",
            f"fine-tune from {start}",
        )
    assert teacher is not None
    return teacher


def _distill(stages: _Stages, teacher: Classifier, labelled: ImageDataset, text: str) -> None:
    """Distil the teacher on every training image, labels unused (unless α < 1), into a student
    of its own architecture and into the small one."""
    settings = stages.config.semisup
    depth = settings.head_depth
    students: list[tuple[str, dict[str, Any], str]] = []
    if settings.self_distill:
        students.append(("self", stages.spec(depth), f"self-distillation ({stages.name})"))
    if settings.student_encoder:
        small = {
            **stages.architecture,
            "name": settings.student_encoder,
            "kwargs": {
                **stages.architecture["kwargs"],
                "base_width": settings.student_base_width,
                "width_multiplier": settings.student_width_multiplier,
                "selective_kernel": False,
            },
        }
        students.append(("small", stages.spec(0, small), f"distillation into {describe(small)}"))
    for kind, spec, protocol in students:

        def train_student(kind: str = kind, spec: dict[str, Any] = spec) -> nn.Module:
            if kind == "self" and settings.student_init == "pretrained":
                trunk = stages.trunk(depth)
                student = Classifier(trunk, trunk.feature_dim, stages.num_classes)
            else:
                with seeded(stages.config.eval.seed):
                    student = build_classifier(spec)
            return distill(
                teacher,
                student,
                stages.train_set.images,
                stages.preprocess,
                labelled=labelled,
                **stages.distill_settings(),
            )

        stages.stage(
            stages.directory("distill", text, kind),
            spec,
            train_student,
            labelled,
            text,
            f"SimCLRv2 {stages.name}",
            protocol,
        )
