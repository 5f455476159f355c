"""DrLIM's classic experiment: a 2-D map of two classes, learnt from pixel-space neighbours.

[0] DrLIM, Hadsell, Chopra and LeCun 2006, "Dimensionality Reduction by Learning an Invariant
    Mapping", CVPR, doi:10.1109/CVPR.2006.100, Section 3.1: images of the digits 4 and 9, each
    paired with its 5 nearest neighbours in pixel space (similar) and with every other image
    (dissimilar), mapped to 2-D by a convolutional network; the test images of the two digits
    fall into two separate regions of the map, though no label was used.

Here the same protocol runs on any labelled dataset (Fashion-MNIST by default), with the
configured encoder plus a projection head ending in width 2 as G, trained by the library's loop.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from selfsup.augment.pairs import NeighbourPairs
from selfsup.config import RunConfig, save_config
from selfsup.data import ImageDataset
from selfsup.errors import SelfsupError
from selfsup.eval import extract_features, make_preprocess
from selfsup.methods import build_method, build_views
from selfsup.methods.drlim import DrLIMConfig
from selfsup.models import build_encoder
from selfsup.pipeline import encoder_architecture, load_split, run_metadata
from selfsup.train import plot_metrics, resolve_device, train


def _two_classes(dataset: ImageDataset, classes: Sequence[int]) -> ImageDataset:
    """The samples of the two classes, labels kept as the dataset's class ids."""
    if dataset.labels is None:
        raise SelfsupError(f"dataset {dataset.name!r} has no labels to pick two classes from")
    present = set(dataset.labels.unique().tolist())
    missing = [c for c in classes if c < 0 or c not in present]
    if missing:
        raise SelfsupError(
            f"class {missing[0]} has no images in {dataset.name}; choose two of "
            f"{sorted(c for c in present if c >= 0)}"
        )
    keep = (dataset.labels == classes[0]) | (dataset.labels == classes[1])
    return dataset.subset(torch.nonzero(keep).flatten())


def _nearest_centroid_accuracy(
    train_points: Tensor, train_labels: Tensor, test_points: Tensor, test_labels: Tensor
) -> float:
    """Percent of test points whose nearest class mean (Euclidean) among the training points is
    their own class."""
    classes = train_labels.unique()
    centroids = torch.stack([train_points[train_labels == c].mean(0) for c in classes])
    predicted = classes[torch.cdist(test_points, centroids).argmin(1)]
    return 100.0 * (predicted == test_labels).double().mean().item()


def _knn_accuracy(
    train_points: Tensor, train_labels: Tensor, test_points: Tensor, test_labels: Tensor, k: int
) -> float:
    """Percent of test points whose k nearest training points (Euclidean) vote for their class.

    Not `selfsup.eval.knn_accuracy`: its cosine similarity sees only the angle of a 2-D point.
    """
    nearest = torch.cdist(test_points, train_points).topk(k, dim=1, largest=False).indices
    votes = train_labels[nearest]  # Q x k
    classes = train_labels.unique()
    counts = torch.stack([(votes == c).sum(1) for c in classes], 1)  # Q x 2
    predicted = classes[counts.argmax(1)]
    return 100.0 * (predicted == test_labels).double().mean().item()


def _pca_2d(train_pixels: Tensor, test_pixels: Tensor) -> tuple[Tensor, Tensor]:
    """Both sets projected on the training set's top-2 principal axes: the linear 2-D baseline."""
    mean = train_pixels.mean(0)
    _, _, axes = torch.linalg.svd(train_pixels - mean, full_matrices=False)  # axes: P' x P
    return (train_pixels - mean) @ axes[:2].T, (test_pixels - mean) @ axes[:2].T


def _plot(
    points: Tensor,
    labels: Tensor,
    classes: Sequence[int],
    names: Sequence[str],
    title: str,
    output: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 6))
    for colour, c, name in zip(("tab:blue", "tab:orange"), classes, names, strict=True):
        chosen = points[labels == c]
        label = name if name == str(c) else f"{c}: {name}"  # digits are named by their id
        axis.scatter(chosen[:, 0], chosen[:, 1], s=6, alpha=0.6, c=colour, label=label)
    axis.set_title(title)
    axis.set_aspect("equal", adjustable="datalim")
    axis.legend(markerscale=3, loc="best")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=120)
    plt.close(figure)


def drlim_map(
    config: RunConfig,
    classes: Sequence[int] = (7, 9),
    output: str | Path = "drlim-map.png",
    knn_k: int = 10,
    resume: bool = False,
) -> dict[str, Any]:
    """Train DrLIM on the training images of two classes, map their test images to 2-D, plot.

    Uses `config.data` (dataset, `train_subset` taken before the two classes are picked),
    `config.model` (the encoder; `head_widths` must end in 2), `config.method` (`margin`,
    `neighbours` = k, `pairs`), `config.optim` and `config.train`; the run goes to
    `config.run_dir` (config.yaml, metrics.jsonl, loss.png, checkpoints/, drlim-map.json).
    Labels are used only to pick the two classes and to score and colour the map.

    Args:
        config: the run's configuration; `method.name` is recorded as "drlim".
        classes: the two class ids (Fashion-MNIST 7 and 9: sneaker and ankle boot).
        output: where the scatter plot of the test images goes (PNG).
        knn_k: neighbours that vote in the kNN score of the map.
        resume: continue from `config.run_dir`/checkpoints/last.pt. As with `pipeline.pretrain`,
            whether the directory may be reused is the caller's call (`pipeline.prepare_run_dir`).

    Returns:
        What was measured: accuracies in percent of nearest-centroid and kNN classification
        of the 2-D test points by the 2-D training points (chance is about 50), the same
        nearest-centroid score on a 2-D PCA of the pixels (the linear baseline), the share of
        pixel-space neighbours from the same class (how good the similarity prior is), image
        counts and timings.

    The bundled recipe `drlim-map-fashion-mnist` sizes a run to ~2 minutes on 2 CPU cores:

    >>> from selfsup.config import recipe_path
    >>> from selfsup.config import load_config
    >>> config = load_config(recipe_path("drlim-map-fashion-mnist"), {"run_dir": "runs/map"})
    >>> drlim_map(config, classes=(7, 9), output="map.png")["knn_accuracy"]  # doctest: +SKIP
    """
    classes = tuple(int(c) for c in classes)
    if len(classes) != 2 or classes[0] == classes[1]:
        raise SelfsupError(f"need two different class ids, got {list(classes)}")
    if not config.model.head_widths or config.model.head_widths[-1] != 2:
        raise SelfsupError(
            f"a 2-D map needs head widths ending in 2, got {list(config.model.head_widths)}; "
            "pass e.g. --model.head_widths [64, 2]"
        )
    if knn_k < 1:
        raise SelfsupError(f"knn_k must be >= 1, got {knn_k}")
    if not isinstance(config.method, DrLIMConfig):
        raise SelfsupError(
            f"drlim-map trains DrLIM, but the config's method is {config.method.name}; use the "
            "drlim-map-fashion-mnist recipe or --method.name drlim"
        )
    started = time.perf_counter()
    config = copy.deepcopy(config)
    run_dir = Path(config.run_dir)
    train_set = _two_classes(load_split(config, "train"), classes)
    test_set = _two_classes(load_split(config, "test"), classes)
    names = [train_set.classes[c] if c < train_set.num_classes else str(c) for c in classes]
    k, margin = config.method.neighbours, config.method.margin
    run_dir.mkdir(parents=True, exist_ok=True)
    extra = {**run_metadata(), "experiment": "drlim-map", "classes": list(classes)}
    save_config(config, run_dir / "config.yaml", extra=extra)

    architecture = encoder_architecture(config, train_set)
    mean, std = architecture["mean"], architecture["std"]
    neighbour_started = time.perf_counter()
    make_views = build_views(config, train_set.images, mean, std)  # finds the pixel neighbours
    neighbour_seconds = time.perf_counter() - neighbour_started
    agreement = None  # of the neighbour pairs' labels; augmented pairs have no neighbours
    if isinstance(make_views, NeighbourPairs):
        same = train_set.labels[make_views.neighbours] == train_set.labels[:, None]
        agreement = 100.0 * same.double().mean().item()

    torch.manual_seed(config.train.seed)
    encoder = build_encoder(architecture["name"], **architecture["kwargs"])
    method = build_method(encoder, config)
    summary = train(method, train_set.images, make_views, config, run_dir, resume=resume)
    plot_metrics(run_dir / "metrics.jsonl", run_dir / "loss.png")

    mapping = nn.Sequential(method.encoder, method.projection_head)
    preprocess = make_preprocess(mean, std)
    device = resolve_device(config.train.device)
    train_points = extract_features(mapping, train_set.images, preprocess, device=device)
    test_points = extract_features(mapping, test_set.images, preprocess, device=device)
    train_pixels, test_pixels = (s.images.flatten(1).double() for s in (train_set, test_set))
    pca_train, pca_test = _pca_2d(train_pixels, test_pixels)
    dataset = config.data.dataset
    results: dict[str, Any] = {
        "dataset": dataset,
        "classes": list(classes),
        "class_names": names,
        "train_images": len(train_set),
        "test_images": len(test_set),
        "neighbours": k,
        "margin": margin,
        "pairs": config.method.pairs,
        "nearest_centroid_accuracy": _nearest_centroid_accuracy(
            train_points, train_set.labels, test_points, test_set.labels
        ),
        "knn_k": knn_k,
        "knn_accuracy": _knn_accuracy(
            train_points, train_set.labels, test_points, test_set.labels, knn_k
        ),
        "pca_nearest_centroid_accuracy": _nearest_centroid_accuracy(
            pca_train, train_set.labels, pca_test, test_set.labels
        ),
        "neighbour_label_agreement": agreement,
        "final_loss": summary.final_loss,
        "neighbour_seconds": neighbour_seconds,
        "train_seconds": summary.seconds,
    }
    pairs = f"k={k} pixel neighbours" if config.method.pairs == "neighbours" else "augmented pairs"
    title = (
        f"DrLIM 2-D map of {dataset} test images\n"
        f"{names[0]} vs {names[1]}, {pairs}, margin m={margin:g}"
    )
    output = Path(output)
    _plot(test_points, test_set.labels, classes, names, title, output)
    results["output"] = str(output)
    results["seconds"] = time.perf_counter() - started
    (run_dir / "drlim-map.json").write_text(json.dumps(results, indent=2))
    return results
