"""`selfsup <verb>`: pretrain, eval, run (both), show-augment, embed.

Every verb takes `--config RECIPE` (a YAML path or a bundled recipe name) and any
`--section.field VALUE` override. User mistakes print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from selfsup.errors import SelfsupError

RECIPES = Path(__file__).parent / "configs"
DEFAULT_RECIPE = "simclr-fashion-mnist"


def recipe_path(name_or_path: str | None) -> Path | None:
    """A YAML path as given, or the bundled recipe of that name (None passes through)."""
    if name_or_path is None:
        return None
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = RECIPES / f"{name_or_path.removesuffix('.yaml')}.yaml"
    if bundled.is_file():
        return bundled
    names = ", ".join(sorted(p.stem for p in RECIPES.glob("*.yaml")))
    raise SelfsupError(f"config {name_or_path!r} is neither a file nor a bundled recipe ({names})")


def _parser() -> argparse.ArgumentParser:
    from selfsup.config import add_override_arguments

    parser = argparse.ArgumentParser(
        prog="selfsup", description="Self-supervised representation learning, evaluated."
    )
    verbs = parser.add_subparsers(dest="verb", required=True)

    def verb(
        name: str, help_text: str, default_recipe: str | None = DEFAULT_RECIPE
    ) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--config",
            default=default_recipe,
            help=f"YAML recipe path or bundled name (default: {default_recipe})",
        )
        add_override_arguments(sub)
        return sub

    run = verb("run", "the main job: pre-train, then evaluate and print the results table")
    run.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    pretrain = verb("pretrain", "self-supervised pre-training into --run-dir")
    pretrain.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    verb("eval", "evaluate the encoder saved in --run-dir (kNN, linear, fine-tune, baselines)")
    show = verb("show-augment", "write a PNG grid of images and their augmented views")
    show.add_argument("--out", default="views.png", help="output PNG path")
    show.add_argument("--num-images", type=int, default=8)
    show.add_argument("--num-views", type=int, default=4)
    embed = verb("embed", "export the encoder's embeddings of a split to .npz")
    embed.add_argument("--split", default="test")
    embed.add_argument(
        "--out", default=None, help="output .npz (default: RUN_DIR/embeddings-SPLIT.npz)"
    )
    return parser


def _run(args: argparse.Namespace) -> int:
    import torch

    from selfsup import pipeline
    from selfsup.config import load_config, overrides_from_args
    from selfsup.eval import format_table

    overrides = overrides_from_args(args)
    config = load_config(recipe_path(args.config), overrides)
    if args.verb in ("run", "pretrain"):
        config = pipeline.prepare_run_dir(config, args.resume, overrides)
        run_dir = pipeline.pretrain(config, resume=args.resume)
        print(f"pre-training done: encoder saved to {run_dir / 'encoder.safetensors'}")
        if args.verb == "pretrain":
            return 0
    elif args.verb in ("eval", "embed"):
        config = pipeline.run_config(config, overrides)
    if args.verb in ("run", "eval"):
        rows = pipeline.evaluate_run(config.run_dir, config)
        print(format_table(rows))
        print(f"results written to {Path(config.run_dir) / 'results.md'} and results.json")
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
    elif args.verb == "embed":
        output = args.out or Path(config.run_dir) / f"embeddings-{args.split}.npz"
        print(f"wrote {pipeline.export_embeddings(config.run_dir, config, args.split, output)}")
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"selfsup: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        return _run(args)
    except SelfsupError as error:
        print(f"selfsup: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "selfsup: interrupted; the last epoch's checkpoint is kept (use --resume)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
