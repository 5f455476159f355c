"""The verbs over an embeddings folder: index, search, cluster, dedup and map (their flags, and
running them), for `selfsup.cli`."""

from __future__ import annotations

import argparse
from typing import Any


def add_collection_verbs(verbs: Any) -> None:
    """Add the folder verbs to `verbs`, the CLI's sub-parsers."""

    def folder_verb(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("embeddings", help="an embeddings folder written by `selfsup embed`")
        return sub

    index = folder_verb(
        "index",
        "build the folder's faiss index: exact up to 1M vectors, IVF-PQ with exact re-ranking "
        "above, its search breadth tuned to a recall target",
    )
    index.add_argument(
        "--kind", default="auto", choices=["auto", "flat", "ivfpq", "hnsw"], help="index kind"
    )
    index.add_argument(
        "--recall", type=float, default=0.95, help="recall@10 target for approximate kinds"
    )
    index.add_argument(
        "--tune-queries",
        default=None,
        help="an embeddings folder of sample queries (same encoder) to tune the recall on "
        "(default: 200 indexed rows)",
    )
    search = folder_verb("search", "the nearest images of query images or row ids")
    search.add_argument("--image", nargs="*", default=[], help="query image files")
    search.add_argument("--id", type=int, nargs="*", default=[], help="query row ids")
    search.add_argument("--k", type=int, default=8, help="neighbours per query")
    search.add_argument("--out", default=None, help="PNG grid: each query and its neighbours")
    cluster = folder_verb(
        "cluster",
        "spherical k-means of the folder's embeddings: clusters.csv, clusters.json (sizes; "
        "purity, NMI and ARI when labelled) and gallery PNGs",
    )
    cluster.add_argument("--k", type=int, default=100, help="number of clusters")
    cluster.add_argument(
        "--sweep", type=int, nargs="*", default=[], help="also score these k by silhouette"
    )
    cluster.add_argument("--out", default="clusters", help="output folder")
    cluster.add_argument("--seed", type=int, default=0, help="seeds k-means and the galleries")
    dedup = folder_verb(
        "dedup", "groups of near-duplicate images (cosine similarity above a threshold)"
    )
    dedup.add_argument("--threshold", type=float, default=0.95, help="cosine similarity")
    dedup.add_argument("--out", default="duplicates.csv", help="CSV of group, id, path")
    atlas = folder_verb("map", "a 2-D map (UMAP or t-SNE) of a sample, by label or cluster")
    atlas.add_argument("--out", default="map.png", help="output PNG (coordinates: same name .csv)")
    atlas.add_argument("--method", default="umap", choices=["umap", "tsne"], help="projection")
    atlas.add_argument(
        "--colour", default="label", choices=["label", "cluster"], help="what colours the points"
    )
    atlas.add_argument("--sample", type=int, default=10_000, help="rows drawn (seeded sample)")
    atlas.add_argument("--clusters", type=int, default=20, help="k when colouring by cluster")
    atlas.add_argument("--thumbnails", type=int, default=0, help="images drawn on the map")
    atlas.add_argument("--seed", type=int, default=0, help="seeds the sample and projection")


def run_collection_verb(args: argparse.Namespace) -> int:
    from selfsup import collection

    if args.verb == "index":
        index = collection.index_collection(
            args.embeddings, args.kind, args.recall, args.tune_queries
        )
        spec = index.spec
        recall = "exact" if spec.recall is None else f"recall@{spec.recall_k} {spec.recall:.3f}"
        print(
            f"built a {spec.kind} index of {spec.count} embeddings ({recall}) in {args.embeddings}"
        )
    elif args.verb == "search":
        report = collection.search_collection(
            args.embeddings, args.image, args.id, args.k, args.out
        )
        for query, neighbours in zip(report["queries"], report["neighbours"], strict=True):
            found = ", ".join(f"{n['id']} ({n['score']:.3f})" for n in neighbours)
            print(f"{query}: {found}")
        if args.out:
            print(f"wrote {args.out}")
    elif args.verb == "cluster":
        summary = collection.cluster_collection(
            args.embeddings, args.k, args.out, args.sweep, seed=args.seed
        )
        sizes = summary["sizes"]
        line = (
            f"{args.k} clusters of {summary['rows']} embeddings (sizes {min(sizes)}-{max(sizes)})"
        )
        if "labels" in summary:
            scores = summary["labels"]
            line += (
                f"; purity {scores['purity']:.3f}, NMI {scores['nmi']:.3f}, ARI {scores['ari']:.3f}"
            )
        print(line)
        for k, score in summary.get("silhouette", {}).items():
            print(f"  k={k}: silhouette {score:.3f}")
        galleries = len(summary["galleries"])
        print(f"wrote {args.out}/clusters.csv, clusters.json and {galleries} gallery PNGs")
    elif args.verb == "dedup":
        groups = collection.dedup_collection(args.embeddings, args.threshold, args.out)
        images = sum(len(group) for group in groups)
        print(f"{len(groups)} groups of near-duplicates ({images} images) written to {args.out}")
    elif args.verb == "map":
        report = collection.map_collection(
            args.embeddings, args.out, args.method, args.colour, args.sample, args.clusters,
            args.thumbnails, args.seed,
        )  # fmt: skip
        print(f"wrote {report['output']} ({report['points']} points) and {report['coordinates']}")
    return 0
