"""`selfsup <verb>`: pretrain, eval, run (both), semisup, show-augment, drlim-map, shards, and
for the embeddings of a collection: embed, index, search, cluster, dedup, map, report.

Every verb takes `--config RECIPE` (a YAML path or a bundled recipe name) and any
`--section.field VALUE` override. User mistakes print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from selfsup.cli.collection import add_collection_verbs, run_collection_verb
from selfsup.errors import SelfsupError


def _parser() -> argparse.ArgumentParser:
    from selfsup.config import (
        DEFAULT_RECIPE,
        DRLIM_MAP_RECIPE,
        SEMISUP_RECIPE,
        add_override_arguments,
    )
    from selfsup.methods.plugin import method_recipes

    parser = argparse.ArgumentParser(
        prog="selfsup", description="Self-supervised representation learning, evaluated."
    )
    verbs = parser.add_subparsers(dest="verb", required=True)

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--config",
            default=None,
            help=f"YAML recipe path or bundled name (default: {DEFAULT_RECIPE})",
        )
        sub.add_argument(
            "--method",
            default=None,
            help="a method's bundled recipe instead of --config: "
            + ", ".join(name for name in sorted(method_recipes()) if "_" not in name),
        )
        add_override_arguments(sub)
        return sub

    run = verb("run", "the main job: pre-train, then evaluate and print the results table")
    run.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    pretrain = verb("pretrain", "self-supervised pre-training into --run-dir")
    pretrain.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    verb("eval", "evaluate the encoder saved in --run-dir (kNN, linear, fine-tune, baselines)")
    semisup = verb(
        "semisup",
        "SimCLRv2's semi-supervised pipeline (Chen et al. 2020): pre-train a big encoder with a "
        "3-layer head, fine-tune from the head on each label fraction, distil into students on "
        f"the unlabeled images, and print the table (default recipe: {SEMISUP_RECIPE})",
    )
    semisup.add_argument(
        "--resume", action="store_true", help="continue in --run-dir, reusing finished stages"
    )
    show = verb("show-augment", "write a PNG grid of images and their augmented views")
    show.add_argument("--out", default="views.png", help="output PNG path")
    show.add_argument("--num-images", type=int, default=8)
    show.add_argument("--num-views", type=int, default=4)
    drlim = verb(
        "drlim-map",
        "DrLIM's 2-D map of two classes (Hadsell et al. 2006): train on pixel-space neighbour "
        f"pairs, plot and score the test images (default recipe: {DRLIM_MAP_RECIPE})",
    )
    drlim.add_argument(
        "--classes",
        type=int,
        nargs=2,
        default=[7, 9],
        metavar=("A", "B"),
        help="the two class ids (default: 7 9, sneaker and ankle boot)",
    )
    drlim.add_argument("--out", default="drlim-map.png", help="output PNG path")
    drlim.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    shards = verbs.add_parser(
        "shards",
        help="pack an image folder into tar shards (webdataset layout) for --data.dataset shards",
        description="pack an image folder into tar shards (webdataset layout: KEY.png + "
        "KEY.cls per image) that `--data.dataset shards --data.data_dir OUT` trains from",
    )
    shards.add_argument("folder", help="image folder (labels from sub-folders, as for folder)")
    shards.add_argument("out", help="output folder for shard-000000.tar, ...")
    shards.add_argument("--images-per-shard", type=int, default=10_000)
    shards.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="store images resized and centre-cropped to this side (default: the files as is)",
    )
    embed = verb(
        "embed",
        "embed a split of a dataset (built-in, folder or shards) with the encoder in --run-dir "
        "into an embeddings folder: float16/32 .npy chunks, items.csv (id, path, label), and "
        "failed.csv for files that do not decode; resumable, and shared among torchrun processes",
    )
    embed.add_argument("--split", default="test", help="which split to embed (train or test)")
    embed.add_argument(
        "--out", default=None, help="embeddings folder (default: RUN_DIR/embeddings-SPLIT)"
    )
    embed.add_argument(
        "--features",
        default="encoder",
        help="what to embed: 'encoder' (the representation) or 'head:K' (after K head layers)",
    )
    embed.add_argument(
        "--no-normalize", action="store_true", help="keep raw features (default: L2-normalised)"
    )
    embed.add_argument(
        "--dtype", default="float16", choices=["float16", "float32"], help="storage precision"
    )
    embed.add_argument(
        "--chunk-rows", type=int, default=65_536, help="rows per chunk file (the unit of resume)"
    )
    embed.add_argument("--resume", action="store_true", help="continue an interrupted embed")

    add_collection_verbs(verbs)
    report = verbs.add_parser(
        "report",
        help="one static HTML folder about a run and its embeddings (opens offline)",
        description="one static HTML folder: the run's config, training and label-free quality "
        "curves, results with baselines, views, and, with --embeddings, neighbour grids, "
        "cluster galleries and the 2-D map",
    )
    report.add_argument("run_dir", help="a run directory")
    report.add_argument("--embeddings", default=None, help="its embeddings folder (indexed)")
    report.add_argument("--out", default="report", help="output folder (index.html inside)")
    report.add_argument("--queries", type=int, default=6, help="sample queries in the grid")
    report.add_argument("--k", type=int, default=8, help="neighbours per query")
    report.add_argument("--clusters", type=int, default=10, help="k of the cluster galleries")
    report.add_argument(
        "--map-method", default="umap", choices=["umap", "tsne"], help="2-D projection"
    )
    from selfsup.experiments.study import BUDGETS, STUDIES

    study = verbs.add_parser(
        "study",
        help="re-run a paper's claim as a grid of cells: table, plot and finding",
        description="re-run a paper's claim as a grid of cells, each trained and measured in "
        "its own folder (an interrupted study resumes), and write study.json, study.md and the "
        "plots. Studies: "
        + "; ".join(f"{name}: {STUDIES[name].summary}" for name in sorted(STUDIES)),
    )
    study.add_argument("name", choices=sorted(STUDIES), help="which study")
    study.add_argument(
        "--budget",
        choices=BUDGETS,
        default="small",
        help="small: 2 CPU cores in about 30 minutes; paper: the paper's setting, for GPUs",
    )
    study.add_argument("--out", default=None, help="its folder (default: runs/study-NAME-BUDGET)")
    study.add_argument("--jobs", type=int, default=1, help="cells run at once, as processes")
    study.add_argument("--cell", default=None, help="run only this cell, as study.md lists it")
    study.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="AXIS=V1,V2",
        help="replace an axis's values (repeatable), e.g. --grid bits=0,20",
    )
    add_override_arguments(study)
    return parser


def _run(args: argparse.Namespace) -> int:
    import torch

    if args.verb == "shards":
        from selfsup.data import write_shards

        written = write_shards(args.folder, args.out, args.images_per_shard, args.image_size)
        print(f"wrote {len(written)} shards to {args.out}")
        return 0
    if args.verb in ("index", "search", "cluster", "dedup", "map"):
        return run_collection_verb(args)
    if args.verb == "study":
        import json

        from selfsup.config import overrides_from_args
        from selfsup.experiments.study import parse_axes, run_study

        done = run_study(
            args.name, args.budget, overrides_from_args(args), args.out, args.jobs, args.cell,
            _announce, parse_axes(args.grid),
        )  # fmt: skip
        if args.cell is not None:
            print(json.dumps(done))
            return 0
        finding = done["finding"]
        verdict = "reproduced" if finding["reproduced"] else "not reproduced"
        out = args.out or f"runs/study-{args.name}-{args.budget}"
        print(f"{args.name}: {verdict}. {finding['evidence']}")
        print(f"table and plots in {Path(out) / 'study.md'} (all cells in study.json)")
        return 0
    if args.verb == "report":
        from selfsup.report import write_report

        page = write_report(
            args.run_dir, args.out, args.embeddings, args.queries, args.k, args.clusters,
            args.map_method,
        )  # fmt: skip
        print(f"wrote {page}")
        return 0

    from selfsup import pipeline
    from selfsup.config import (
        DRLIM_MAP_RECIPE,
        SEMISUP_RECIPE,
        chosen_recipe,
        load_config,
        overrides_from_args,
        recipe_path,
    )
    from selfsup.dist.launch import is_main_process, launched_by_torchrun
    from selfsup.eval import format_table

    overrides = overrides_from_args(args)
    recipe = chosen_recipe(args.config, args.method)
    if args.config is None and args.method is None:
        recipe = {"drlim-map": DRLIM_MAP_RECIPE, "semisup": SEMISUP_RECIPE}.get(args.verb, recipe)
    config = load_config(recipe_path(recipe), overrides)
    if launched_by_torchrun() and args.verb not in ("run", "pretrain", "embed"):
        raise SelfsupError(
            f"`selfsup {args.verb}` runs in one process; only pretrain, run and embed are "
            "distributed "
            "(run it without torchrun)"
        )
    if args.verb in ("run", "pretrain"):
        config = pipeline.prepare_run_dir(config, args.resume, overrides)
        if not args.resume:  # every process picks the same, from the same files
            config = pipeline.folder_defaults(config, overrides, _announce)
        run_dir = pipeline.pretrain(config, resume=args.resume)
        if not is_main_process():  # rank 0 reports and evaluates
            return 0
        print(f"pre-training done: encoder saved to {run_dir / 'encoder.safetensors'}")
        if args.verb == "pretrain":
            return 0
    elif args.verb in ("eval", "embed"):
        config = pipeline.run_config(config, overrides)
    if args.verb in ("run", "eval"):
        rows = pipeline.evaluate_run(config.run_dir, config)
        print(format_table(rows))
        print(f"results written to {Path(config.run_dir) / 'results.md'} and results.json")
    elif args.verb == "semisup":
        from selfsup.experiments import semisup

        config = pipeline.prepare_run_dir(config, args.resume, overrides)
        rows = semisup(config, resume=args.resume, announce=_announce)
        print(format_table(rows, extra_columns=("parameters",)))
        print(f"results written to {Path(config.run_dir) / 'semisup.md'} and semisup.json")
    elif args.verb == "show-augment":
        from selfsup.augment import ViewAugment, save_view_grid

        dataset = pipeline.load_split(config, "train")
        generator = torch.Generator().manual_seed(config.train.seed)
        chosen = torch.randperm(len(dataset), generator=generator)[: args.num_images]
        path = save_view_grid(
            dataset.images[chosen],
            ViewAugment(config.augment),
            args.out,
            n_views=args.num_views,
            generator=generator,
        )
        print(f"wrote {path}")
    elif args.verb == "drlim-map":
        from selfsup.experiments import drlim_map

        config = pipeline.prepare_run_dir(config, args.resume, overrides)
        results = drlim_map(config, args.classes, args.out, resume=args.resume)
        first, second = results["class_names"]
        print(
            f"wrote {results['output']}: {first} vs {second} test images in 2-D; "
            f"nearest-centroid accuracy {results['nearest_centroid_accuracy']:.1f}% "
            f"(2-D PCA of the pixels: {results['pca_nearest_centroid_accuracy']:.1f}%), "
            f"{results['knn_k']}-NN {results['knn_accuracy']:.1f}%; "
            f"all results in {Path(config.run_dir) / 'drlim-map.json'}"
        )
    elif args.verb == "embed":
        from selfsup.collection import embed_run

        output = args.out or Path(config.run_dir) / f"embeddings-{args.split}"
        store = embed_run(
            config,
            args.split,
            output,
            features=args.features,
            normalize=not args.no_normalize,
            dtype=args.dtype,
            chunk_rows=args.chunk_rows,
            resume=args.resume,
        )
        if is_main_process():
            meta, failed = store.meta(), len(store.failed_ids())
            print(
                f"wrote {meta.rows} embeddings of dimension {meta.dim} to {output}"
                + (f" ({failed} files did not decode: see failed.csv)" if failed else "")
            )
    return 0


def _announce(message: str) -> None:
    print(f"selfsup: {message}", file=sys.stderr, flush=True)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"selfsup: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        return _run(args)
    except (SelfsupError, ValueError) as error:
        # A library function's ValueError is a bad input too; its first line says what.
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"selfsup: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "selfsup: interrupted; the last epoch's checkpoint is kept (use --resume)",
            file=sys.stderr,
        )
        return 130
    finally:
        from selfsup.dist.launch import shutdown

        shutdown()


if __name__ == "__main__":
    sys.exit(main())
