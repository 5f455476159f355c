"""Local features (Chen, Luo & Li 2021, *Intriguing Properties of Contrastive Losses*): k-means
on the per-location features of each encoder stage, drawn as a coloured overlay on sample
images. The paper finds that a contrastively trained ResNet's local features group pixels into
object parts and regions, although the loss only ever sees pooled, global features.

Each cell trains an encoder (SimCLR, or the supervised reference on the same views; the
random-init encoder is left as built), clusters the per-location features of every stage over
a sample of test images, and measures how well each stage's clusters follow the object: the
NMI between a pixel's cluster and whether it belongs to the object (a pixel brighter than
`FOREGROUND` of the image's range). Fashion-MNIST's objects lie on a black background, so
this mask is exact there; on other images it is a crude stand-in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from statistics import mean
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from selfsup.config import RunConfig
from selfsup.embeddings.cluster import cluster, label_agreement
from selfsup.eval import make_preprocess
from selfsup.experiments.cells import pretrain
from selfsup.experiments.plots import line_panels
from selfsup.experiments.study import Study, register_study
from selfsup.models import build_encoder
from selfsup.pipeline import encoder_architecture, load_split
from selfsup.train import resolve_device

FOREGROUND = 0.2
"""A pixel above this fraction of its image's maximum is the object's."""

SHOWN = 6
"""Sample images drawn in each cell's overlay figure."""


@torch.no_grad()
def stage_clusters(
    encoder: torch.nn.Module,
    images: torch.Tensor,
    preprocess: Callable[[torch.Tensor], torch.Tensor],
    clusters: int,
    seed: int = 0,
) -> list[np.ndarray]:
    """Per stage, every pixel's k-means cluster (N, H, W): the stage's per-location features
    over all `images` clustered together (spherical k-means), then upsampled to the images'
    size by nearest neighbour.

    >>> encoder = build_encoder("resnet18", base_width=4)
    >>> images = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    >>> maps = stage_clusters(encoder, images, lambda batch: batch.float() / 255, 3)
    >>> [labels.shape for labels in maps][0], len(maps)
    ((2, 16, 16), 4)
    """
    if not hasattr(encoder, "stage_maps"):
        raise TypeError(f"{type(encoder).__name__} has no stage_maps: local features need a ResNet")
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    maps = encoder.stage_maps(preprocess(images.to(device)))
    encoder.train(was_training)
    height, width = images.shape[-2:]
    labelled = []
    for stage in maps:
        count, channels, rows, columns = stage.shape
        vectors = stage.permute(0, 2, 3, 1).reshape(-1, channels).float().cpu().numpy()
        assignments = cluster(vectors, clusters, seed=seed).assignments
        grid = torch.from_numpy(assignments).view(count, 1, rows, columns).float()
        upsampled = F.interpolate(grid, size=(height, width), mode="nearest")
        labelled.append(upsampled[:, 0].long().numpy())
    return labelled


def foreground(images: torch.Tensor) -> np.ndarray:
    """(N, H, W) booleans: the pixels brighter than `FOREGROUND` of their image's maximum."""
    brightness = images.float().mean(1)
    peak = brightness.flatten(1).max(1).values.clamp_min(1.0)
    return (brightness > FOREGROUND * peak[:, None, None]).numpy()


def draw_overlays(images: torch.Tensor, labelled: list[np.ndarray], path: Path, title: str) -> Path:
    """Rows of sample images: the image, then each stage's clusters over it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = min(SHOWN, len(images))
    columns = 1 + len(labelled)
    figure, axes = plt.subplots(shown, columns, figsize=(1.6 * columns, 1.6 * shown))
    axes = np.atleast_2d(axes)
    for row in range(shown):
        picture = images[row].float().mean(0).numpy()
        axes[row, 0].imshow(picture, cmap="gray")
        for stage, labels in enumerate(labelled, 1):
            axes[row, stage].imshow(picture, cmap="gray")
            axes[row, stage].imshow(labels[row], cmap="tab10", alpha=0.55, vmin=0, vmax=9)
            if row == 0:
                axes[row, stage].set_title(f"stage {stage}", fontsize=8)
        for axis in axes[row]:
            axis.set_axis_off()
    axes[0, 0].set_title("image", fontsize=8)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def run_cell(
    config: RunConfig, values: Mapping[str, Any], folder: Path, resume: bool
) -> dict[str, Any]:
    """Train the cell's learner, cluster each stage's local features, draw and score them."""
    learner, clusters = values["learner"], int(values["clusters"])
    train_set = load_split(config, "train")
    result: dict[str, Any] = {}
    if learner == "random-init":
        architecture = encoder_architecture(config, train_set)
        torch.manual_seed(config.train.seed)
        encoder = build_encoder(architecture["name"], **architecture["kwargs"])
        prepare = make_preprocess(architecture["mean"], architecture["std"])
    else:
        method, summary, prepare = pretrain(
            config, folder, resume, train_set, supervised=learner == "supervised"
        )
        encoder = method.encoder
        result = {"final_loss": summary.final_loss, "steps": summary.steps}
    encoder.to(resolve_device(config.train.device))
    test_set = load_split(config, "test")
    sample = torch.randperm(len(test_set), generator=torch.Generator().manual_seed(0))
    images = test_set.images[sample[: int(values["images"])]]
    labelled = stage_clusters(encoder, images, prepare, clusters, seed=config.train.seed)
    mask = foreground(images).astype(np.int64).ravel()
    for stage, labels in enumerate(labelled, 1):
        result[f"nmi_stage{stage}"] = 100 * label_agreement(labels.ravel(), mask)["nmi"]
    title = f"{learner}: k-means (k = {clusters}) on each stage's local features"
    overlay = draw_overlays(images, labelled, folder / "overlay.png", title)
    return {**result, "overlay": str(overlay)}


def report(rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """NMI with the object mask against stage, per learner; the claim: SimCLR's local features
    at the two deepest stages follow the object better than a random-init encoder's."""
    stages = sorted(int(key.removeprefix("nmi_stage")) for key in rows[0] if "nmi_stage" in key)
    lines = {}
    for row in rows:
        label = f"{row['learner']} (k = {row['clusters']})"
        lines[label] = [(stage, row[f"nmi_stage{stage}"]) for stage in stages]
    plot = line_panels(
        {"NMI of clusters with the object mask (%)": lines},
        out,
        "local-features",
        "Local features: do each stage's clusters follow the object?",
        "encoder stage",
    )
    deep = {row["learner"]: mean(row[f"nmi_stage{stage}"] for stage in stages[-2:]) for row in rows}
    reproduced = "simclr" in deep and "random-init" in deep and deep["simclr"] > deep["random-init"]
    evidence = "; ".join(f"{learner}: {nmi:.1f}" for learner, nmi in deep.items())
    return {
        "claim": "SimCLR's local features at the two deepest stages follow the object better "
        "(higher NMI with the object mask) than a random-init encoder's",
        "reproduced": reproduced,
        "evidence": f"mean NMI (%) at the two deepest stages: {evidence}",
        "plots": [str(plot), *(row["overlay"] for row in rows)],
    }


register_study(
    Study(
        name="local-features",
        summary="local features (Intriguing Properties): k-means on each encoder stage's "
        "per-location features, drawn over sample images, for SimCLR, supervised and "
        "random-init encoders",
        recipe="ablations-fashion-mnist",
        budgets={
            "small": {},
            "paper": {
                "data.dataset": "cifar10",
                "data.train_subset": None,
                "model.encoder": "resnet50",
                "model.base_width": 64,
                "augment.size": 32,
                "train.epochs": 100,
            },
        },
        axes={
            budget: {
                "learner": ("simclr", "supervised", "random-init"),
                "clusters": (4,),
                "images": (256,),
            }
            for budget in ("small", "paper")
        },
        run_cell=run_cell,
        report=report,
        columns=("nmi_stage1", "nmi_stage2", "nmi_stage3", "nmi_stage4", "steps"),
    )
)
