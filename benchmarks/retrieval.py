"""Retrieval and clustering quality of a run's embeddings on Fashion-MNIST, next to the raw
pixels and a random-init encoder under the same code.

For each representation of the 10k test images (standardised per dimension with the
collection's own statistics, as a user indexing their collection would, then L2-normalised):
precision@10 (the share of
each image's 10 nearest other test images, by cosine similarity through `selfsup.embeddings`'
exact index, that share its label), and spherical k-means with k = 10 (NMI, ARI, purity
against the labels), plus the label-free quality measures of `selfsup.quality` on the same rows.

    python benchmarks/retrieval.py --run-dir runs/simclr-fashion-mnist
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from selfsup.config import load_config
from selfsup.embeddings import build_index, cluster, label_agreement
from selfsup.eval import extract_features, make_preprocess
from selfsup.eval.linear import standardise
from selfsup.eval.suite import pixel_features
from selfsup.models import build_from_architecture, load_encoder
from selfsup.pipeline import load_split
from selfsup.quality import collapse_level, effective_rank, uniformity


def precision_at(vectors: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    index = build_index(vectors, kind="flat")
    _, found = index.search(vectors, k + 1)
    neighbours = found[:, 1:]  # the first hit is the image itself
    return float((labels[neighbours] == labels[:, None]).mean() * 100)


def score(name: str, features: torch.Tensor, labels: np.ndarray) -> dict:
    started = time.perf_counter()
    (standardised,) = standardise(features.float())
    vectors = torch.nn.functional.normalize(standardised, dim=1).numpy()
    clusters = cluster(vectors, 10, seed=0)
    agreement = label_agreement(clusters.assignments, labels)
    sample = torch.from_numpy(vectors[:2000])
    row = {
        "representation": name,
        "dim": vectors.shape[1],
        "precision@10": round(precision_at(vectors, labels), 2),
        "nmi": round(agreement["nmi"], 4),
        "ari": round(agreement["ari"], 4),
        "purity": round(agreement["purity"], 4),
        "effective_rank": round(effective_rank(sample), 1),
        "uniformity": round(uniformity(sample), 3),
        "collapse_level": round(collapse_level(sample), 3),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, help="a run directory with an encoder")
    args = parser.parse_args()
    test = load_split(load_config(None, {}), "test")
    labels = test.labels.numpy()
    encoder, architecture = load_encoder(args.run_dir)
    preprocess = make_preprocess(architecture["mean"], architecture["std"])
    torch.manual_seed(0)
    random_encoder = build_from_architecture(architecture)
    rows = [
        score("this run's encoder", extract_features(encoder, test.images, preprocess), labels),
        score("random init", extract_features(random_encoder, test.images, preprocess), labels),
        score("raw pixels", pixel_features(test.images), labels),
    ]
    print(
        "\n| representation | dim | precision@10 | NMI | ARI | purity | eff. rank | "
        "uniformity | collapse |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    for row in rows:
        print(
            f"| {row['representation']} | {row['dim']} | {row['precision@10']} | {row['nmi']} | "
            f"{row['ari']} | {row['purity']} | {row['effective_rank']} | {row['uniformity']} | "
            f"{row['collapse_level']} |"
        )


if __name__ == "__main__":
    main()
