"""Distillation: the student learns the teacher's labels from unlabeled images; the teacher is
left alone; Eq. (3)'s labelled term is mixed in when α < 1."""

from __future__ import annotations

import pytest
import torch

from selfsup.errors import SelfsupError
from selfsup.eval import classifier_accuracy, distill, fit_classifier
from selfsup.models import Classifier

SMALL = dict(epochs=2, lr=0.1, batch_size=16, weight_decay=0.0)


def _teacher(make_encoder, labelled):
    return fit_classifier(make_encoder(seed=1), labelled, seed=0, min_steps=25, **SMALL)


def test_student_learns_the_teacher_from_unlabeled_images(make_encoder, make_bright_dark) -> None:
    labelled, test = make_bright_dark(32, seed=0), make_bright_dark(40, seed=1)
    unlabeled = make_bright_dark(96, seed=2).images  # no labels used
    teacher = _teacher(make_encoder, labelled)
    assert classifier_accuracy(teacher, test)["top1"] >= 90.0
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = Classifier(make_encoder(seed=3), 8, 2)
    student_before = {k: v.clone() for k, v in student.state_dict().items()}
    assert classifier_accuracy(student, test)["top1"] == 50.0  # zero classifier: chance

    trained = distill(teacher, student, unlabeled, temperature=2.0, seed=4, **SMALL)
    again = distill(teacher, student, unlabeled, temperature=2.0, seed=4, **SMALL)

    assert classifier_accuracy(trained, test)["top1"] >= 90.0
    assert classifier_accuracy(trained, test) == classifier_accuracy(again, test)
    assert all(p.grad is None for p in teacher.parameters())  # the teacher gets no gradient
    assert teacher.training  # its own mode is restored
    for key, value in teacher.state_dict().items():  # BN statistics included
        assert torch.equal(value, teacher_before[key]), key
    for key, value in student.state_dict().items():  # a copy was trained
        assert torch.equal(value, student_before[key]), key


def test_labelled_term_is_used_when_alpha_is_below_one(make_encoder, make_bright_dark) -> None:
    labelled, test = make_bright_dark(32, seed=0), make_bright_dark(40, seed=1)
    unlabeled = make_bright_dark(64, seed=2).images
    # A teacher that has learned nothing (zero classifier: uniform soft labels) teaches nothing;
    # with α = 0 the labels alone train the student.
    clueless = Classifier(make_encoder(seed=1), 8, 2)
    student = Classifier(make_encoder(seed=3), 8, 2)
    from_teacher = distill(clueless, student, unlabeled, distill_weight=1.0, **SMALL)
    from_labels = distill(
        clueless, student, unlabeled, labelled=labelled, distill_weight=0.0, **SMALL
    )
    assert classifier_accuracy(from_teacher, test)["top1"] == 50.0
    assert classifier_accuracy(from_labels, test)["top1"] >= 90.0
    with pytest.raises(SelfsupError, match="labelled"):
        distill(clueless, student, unlabeled, distill_weight=0.5, **SMALL)
