"""Evaluation of frozen and fine-tuned encoders: kNN, linear probe, fine-tuning, baselines."""

from selfsup.eval.distill import distill
from selfsup.eval.features import (
    Preprocess,
    eval_mode,
    extract_features,
    infer_feature_dim,
    make_preprocess,
)
from selfsup.eval.finetune import (
    choose_finetune_lr,
    classifier_accuracy,
    count_classes,
    finetune,
    fit_classifier,
    random_crop_flip,
    seeded,
    supervised_baseline,
)
from selfsup.eval.knn import knn_accuracy, knn_predict
from selfsup.eval.linear import linear_probe
from selfsup.eval.metrics import topk_accuracy
from selfsup.eval.report import format_table, write_results
from selfsup.eval.suite import EvalConfig, evaluate, result_row

__all__ = [
    "EvalConfig",
    "Preprocess",
    "choose_finetune_lr",
    "classifier_accuracy",
    "count_classes",
    "distill",
    "eval_mode",
    "evaluate",
    "extract_features",
    "finetune",
    "fit_classifier",
    "format_table",
    "infer_feature_dim",
    "knn_accuracy",
    "knn_predict",
    "linear_probe",
    "make_preprocess",
    "random_crop_flip",
    "result_row",
    "seeded",
    "supervised_baseline",
    "topk_accuracy",
    "write_results",
]
