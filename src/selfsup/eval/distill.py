"""Stage 3 of SimCLRv2: a fine-tuned teacher labels the unlabeled images, a student learns them.

[0] SimCLRv2, Chen et al. 2020, arXiv:2006.10029, Sec. 2 ("Self-training / knowledge
    distillation via unlabeled examples"), Eq. (2)-(3).

The teacher is frozen (eval mode, no gradient) and sees the very batch the student sees,
augmented with the fine-tuning crop and flip, so its soft labels follow the augmentation.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn

from selfsup.data.base import ImageDataset
from selfsup.errors import SelfsupError
from selfsup.eval.features import Preprocess, eval_mode, make_preprocess
from selfsup.eval.finetune import (
    IndexStream,
    augment_padding,
    random_crop_flip,
    seeded,
    sgd_train,
)
from selfsup.losses.distillation import DistillationLoss


def distill(
    teacher: nn.Module,
    student: nn.Module,
    images: Tensor,
    preprocess: Preprocess | None = None,
    temperature: float = 1.0,
    epochs: int = 10,
    lr: float = 0.1,
    batch_size: int = 256,
    weight_decay: float = 5e-4,
    labelled: ImageDataset | None = None,
    distill_weight: float = 1.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
    augment: bool = True,
    progress: bool = False,
) -> nn.Module:
    """Train `student` (images → logits) on the teacher's soft labels of `images`; return it.

    Each step draws a batch of unlabeled images, augments it, and minimises Eq. (3) of [0]:
    α·L_distill(student, teacher; τ), plus (1 − α)·cross-entropy on a batch of `labelled`
    images when α = `distill_weight` < 1. The teacher and the caller's student are left
    unchanged: a copy of the student is trained.

    Args:
        teacher: fine-tuned classifier, images → logits; run in eval mode without gradients.
        student: classifier to train, same number of classes (random or pre-trained weights).
        images: (N, C, H, W) uint8 unlabeled images (the labelled ones may be among them).
        preprocess: uint8 batch on `device` → the networks' float input.
        temperature: τ of both softmaxes.
        epochs: passes over `images`.
        lr: peak SGD learning rate (Nesterov, cosine to zero).
        batch_size: unlabeled images per step (and labelled images per step when α < 1).
        weight_decay: on weights with ndim >= 2.
        labelled: labelled images for the (1 − α) term; required when `distill_weight` < 1.
        distill_weight: α in [0, 1].
        seed: seeds batch order, augmentation and any global-RNG use in the student.
        device: where training runs.
        augment: random crop and flip on every batch.
        progress: show a tqdm progress bar.
    """
    if len(images) == 0:
        raise SelfsupError("distillation needs unlabeled images")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"need epochs >= 1 and batch_size >= 1, got {epochs}, {batch_size}")
    criterion = DistillationLoss(temperature, distill_weight)
    if distill_weight < 1.0 and (labelled is None or len(labelled) == 0):
        raise SelfsupError("distill_weight < 1 mixes in the labelled loss: pass labelled images")
    preprocess = preprocess or make_preprocess()
    batch_size = min(batch_size, len(images))
    total_steps = epochs * math.ceil(len(images) / batch_size)
    padding = augment_padding(images)

    teacher = teacher.to(device)
    model = copy.deepcopy(student).to(device).requires_grad_(True)
    generator = torch.Generator().manual_seed(seed)
    unlabeled = images.to(device)
    labelled_indices = IndexStream(len(labelled), generator) if labelled is not None else None

    def augmented(batch: Tensor) -> Tensor:
        return preprocess(random_crop_flip(batch, padding, generator) if augment else batch)

    def labelled_batch() -> tuple[Tensor, Tensor]:
        assert labelled is not None and labelled.labels is not None and labelled_indices
        chosen = labelled_indices.take(min(batch_size, len(labelled)))
        return augmented(labelled.images[chosen].to(device)), labelled.labels[chosen].to(device)

    def batch_loss(indices: Tensor) -> Tensor:
        batch = augmented(unlabeled[indices])
        with torch.no_grad():
            teacher_logits = teacher(batch)
        if distill_weight < 1.0:
            labelled_images, labels = labelled_batch()
            return criterion(model(batch), teacher_logits, model(labelled_images), labels)
        return criterion(model(batch), teacher_logits)

    with seeded(seed, device), eval_mode(teacher):  # BN running statistics, no dropout
        sgd_train(
            model, batch_loss, len(images), total_steps, batch_size, lr, weight_decay,
            generator, device, progress, "distill",
        )  # fmt: skip
    return model.eval()
