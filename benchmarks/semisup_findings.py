"""SimCLRv2's findings, checked on Fashion-MNIST: runs `selfsup semisup` and compares the rows.

The paper's shape (Chen et al. 2020, arXiv:2006.10029), each printed with its numbers:
  1. at 1% labels, fine-tuning from head layer 1 is at least as good as from the encoder;
  2. distillation recovers most of the teacher: the small student keeps >= 90% of its top-1;
  3. SimCLRv2 at 1% labels is far above supervised training on the same 1% (>= 5 points).

    python benchmarks/semisup_findings.py                          # the bundled CPU recipe
    python benchmarks/semisup_findings.py --run-dir runs/v2 --resume   # reuse finished stages
    python benchmarks/semisup_findings.py --model.base_width 32 --train.device cuda
"""

from __future__ import annotations

import argparse
import sys
import time

from selfsup.config import (
    SEMISUP_RECIPE,
    add_override_arguments,
    load_config,
    overrides_from_args,
    recipe_path,
)
from selfsup.eval import format_table
from selfsup.experiments import semisup
from selfsup.pipeline import prepare_run_dir


def _find(rows: list[dict], labels: str, protocol_start: str) -> dict:
    return next(
        r for r in rows if r["labels"] == labels and r["protocol"].startswith(protocol_start)
    )


def findings(rows: list[dict], labels: str = "1%") -> list[tuple[str, bool, str]]:
    """(finding, holds, the numbers) for each of the three checks at `labels`."""
    encoder = _find(rows, labels, "fine-tune from the encoder")["top1"]
    head = _find(rows, labels, "fine-tune from head layer")["top1"]
    teacher = head
    student = _find(rows, labels, "distillation into")["top1"]
    supervised = _find(rows, labels, "supervised from scratch")["top1"]
    return [
        (
            f"fine-tune from head layer 1 >= from the encoder at {labels}",
            head >= encoder,
            f"{head:.2f} vs {encoder:.2f}",
        ),
        (
            "the small student keeps >= 90% of the teacher's top-1",
            student >= 0.9 * teacher,
            f"{student:.2f} vs teacher {teacher:.2f} ({100 * student / teacher:.1f}%)",
        ),
        (
            f"SimCLRv2 at {labels} >= supervised at {labels} + 5 points",
            head >= supervised + 5,
            f"{head:.2f} vs {supervised:.2f} (+{head - supervised:.2f})",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=SEMISUP_RECIPE)
    parser.add_argument("--resume", action="store_true")
    add_override_arguments(parser)
    args = parser.parse_args()
    overrides = overrides_from_args(args)
    config = prepare_run_dir(
        load_config(recipe_path(args.config), overrides), args.resume, overrides
    )
    started = time.perf_counter()
    rows = semisup(config, resume=args.resume, announce=lambda m: print(m, file=sys.stderr))
    print(f"selfsup semisup --config {args.config} ({time.perf_counter() - started:.0f} s)")
    print(format_table(rows, extra_columns=("parameters",)))
    labels = "1%" if any(r["labels"] == "1%" for r in rows) else rows[0]["labels"]
    for finding, holds, numbers in findings(rows, labels):
        print(f"{'reproduced' if holds else 'NOT reproduced'}: {finding}: {numbers}")


if __name__ == "__main__":
    main()
