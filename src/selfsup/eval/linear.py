"""Linear probe: multinomial logistic regression on frozen, standardised features.

The standard measure of representation quality (SimCLR [0], Sec. 4 and App. B.6): the encoder is
frozen and only a linear classifier on its features is trained. Here the features are
standardised with the training set's statistics (as MAE's probe does with a BatchNorm without
affine [1]), and the convex problem

    min_{W, b}  mean_i CE(W x_i + b, y_i) + λ/2 · ||W||²

is solved to convergence with full-batch L-BFGS, the solver scikit-learn's `LogisticRegression`
uses. λ is chosen from a grid by accuracy on a stratified validation split carved from the
training set (never the test set), then the classifier is refit on the whole training set. So
the probe reports what the features can do, not how well a learning rate was guessed.

[0] A Simple Framework for Contrastive Learning of Visual Representations, Chen et al. 2020,
    arXiv:2002.05709.
[1] Masked Autoencoders Are Scalable Vision Learners, He et al. 2021, arXiv:2111.06377, App. A.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from selfsup.eval.metrics import accuracy_report

WEIGHT_DECAYS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
"""The default grid of λ (per-sample L2 strength on standardised features)."""


def standardise(train: Tensor, *others: Tensor) -> list[Tensor]:
    """(x − mean) / std per column with the statistics of `train`, for `train` and `others`."""
    mean = train.mean(dim=0)
    std = train.std(dim=0).clamp_min(1e-6) if len(train) > 1 else torch.ones_like(mean)
    return [(x - mean) / std for x in (train, *others)]


def stratified_split(labels: Tensor, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Seeded (fit, validation) indices: about `fraction` of each class to validation, keeping
    at least one sample of every class in the fit part (a class of one sample stays there)."""
    generator = torch.Generator().manual_seed(seed)
    fit, validation = [], []
    labels = labels.cpu()
    for label in labels.unique():
        members = (labels == label).nonzero().squeeze(1)
        members = members[torch.randperm(len(members), generator=generator)]
        held = min(len(members) - 1, round(fraction * len(members)))
        validation.append(members[:held])
        fit.append(members[held:])
    return torch.cat(fit).sort().values, torch.cat(validation).sort().values


def fit_logistic_regression(
    features: Tensor,
    labels: Tensor,
    num_classes: int,
    weight_decay: float,
    max_iter: int = 100,
    init: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """Minimise mean cross-entropy + λ/2 ||W||² (bias unpenalised) with full-batch L-BFGS.

    Args:
        features: (N, D) float features (standardise them first).
        labels: (N,) integer labels in [0, num_classes).
        num_classes: C.
        weight_decay: λ.
        max_iter: L-BFGS iterations (each one or a few full-batch passes).
        init: (W (D, C), b (C,)) to start from, e.g. the solution at a nearby λ.

    Returns:
        The weights (D, C) and bias (C,), detached.
    """
    dim = features.shape[1]
    if init is None:
        weight = torch.zeros(dim, num_classes, device=features.device, dtype=features.dtype)
        bias = torch.zeros(num_classes, device=features.device, dtype=features.dtype)
    else:
        weight, bias = (t.detach().clone() for t in init)
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        tolerance_grad=1e-7,
        tolerance_change=1e-10,
        line_search_fn="strong_wolfe",
    )
    targets = labels.to(features.device, torch.long)
    # The gradient by hand, with Xᵀ stored contiguously: autograd's Xᵀ·G through a transposed
    # view is ~7x slower on the CPU than the same product on a contiguous copy.
    transposed = features.T.contiguous()
    rows = torch.arange(len(targets), device=features.device)

    def closure() -> Tensor:
        with torch.no_grad():
            logits = features @ weight + bias
            loss = F.cross_entropy(logits, targets) + 0.5 * weight_decay * weight.square().sum()
            residual = logits.softmax(dim=1)  # d(mean CE)/d(logits) = (softmax - onehot) / N
            residual[rows, targets] -= 1.0
            residual /= len(targets)
            weight.grad = transposed @ residual + weight_decay * weight
            bias.grad = residual.sum(dim=0)
        return loss

    optimizer.step(closure)
    return weight.detach(), bias.detach()


def linear_probe(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    num_classes: int,
    weight_decays: Sequence[float] = WEIGHT_DECAYS,
    val_fraction: float = 0.1,
    max_iter: int = 100,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Fit a linear classifier on frozen features, λ chosen on validation, and score the test set.

    Args:
        train_features: (N, D) frozen features of the (labelled) training set.
        train_labels: (N,) integer labels in [0, num_classes).
        test_features: (M, D) features of the test set.
        test_labels: (M,) labels.
        num_classes: C.
        weight_decays: the grid of λ, to which λ = 1/N (scikit-learn's default C = 1) is added.
        val_fraction: share of each class held out to choose λ when N > 20,000; smaller sets
            choose by stratified cross-validation (3 folds from 5,000 images, 5 below).
        max_iter: L-BFGS iterations per fit.
        seed: seeds the validation split.
        device: where the fits run.

    Returns:
        `accuracy_report` of the test set (top-1, top-k for k < C, balanced accuracy) plus
        "weight_decay", the λ chosen.

    >>> x = torch.cat([torch.randn(50, 4) - 3, torch.randn(50, 4) + 3])
    >>> y = torch.arange(2).repeat_interleave(50)
    >>> linear_probe(x, y, x, y, num_classes=2)["top1"]
    100.0
    """
    if train_features.ndim != 2 or train_labels.shape != train_features.shape[:1]:
        raise ValueError("expected train_features (N, D) and train_labels (N,)")
    if len(train_features) == 0:
        raise ValueError("no training features")
    if not weight_decays or any(not 0 <= value < float("inf") for value in weight_decays):
        raise ValueError(f"weight_decays must be finite and >= 0, got {tuple(weight_decays)}")
    x_train = train_features.to(device, torch.float32)
    x_test = test_features.to(device, torch.float32)
    x_train, x_test = standardise(x_train, x_test)
    y_train = train_labels.to(device, torch.long)

    # Scikit-learn's default (C = 1, i.e. λ = 1/N) joins the grid; strong to weak, each fit
    # warm-starts the next.
    grid = sorted({*weight_decays, 1.0 / len(x_train)}, reverse=True)
    chosen = grid[len(grid) // 2]
    if len(grid) > 1:
        # Smaller sets choose over stratified folds, so that the choice is not one small
        # split's noise: 5 below 5,000 images, 3 up to 20,000, one split above.
        folds = 1 if len(x_train) > 20_000 else 3 if len(x_train) >= 5_000 else 5
        correct = torch.zeros(len(grid))
        for fold in range(folds):
            fit, validation = stratified_split(
                y_train.cpu(), val_fraction if folds == 1 else 1 / folds, seed + fold
            )
            fit, validation = fit.to(device), validation.to(device)
            solution = None
            for index, weight_decay in enumerate(grid):
                solution = fit_logistic_regression(
                    x_train[fit], y_train[fit], num_classes, weight_decay, max_iter, solution
                )
                weight, bias = solution
                predicted = (x_train[validation] @ weight + bias).argmax(1)
                correct[index] += (predicted == y_train[validation]).sum().item()
        if correct.sum() > 0:
            chosen = grid[int(correct.argmax())]  # ties keep the stronger λ
    weight, bias = fit_logistic_regression(x_train, y_train, num_classes, chosen, max_iter)
    report = accuracy_report(x_test @ weight + bias, test_labels.to(device))
    return {**report, "weight_decay": chosen}
