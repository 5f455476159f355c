"""Near-duplicate search at 10^5 and 10^6 rows: the exact index's range search against the
IVF-PQ index's candidates (each row's 32 nearest neighbours, re-ranked): what `selfsup dedup`
does on each index.

The collection is `index_scale.py`'s tiled one (the main job's training embeddings, each row
above 60,000 a near copy of one of them), so it holds many pairs at cosine 0.9-0.97; the
threshold is `selfsup dedup`'s default, 0.95. Pair recall is against the exact range search
where that ran. Rows are generated on demand (re-ranking and the exact check read them through
the same function a folder's chunks would be read through), and every measurement runs in its
own process.

    python benchmarks/dedup_scale.py --base runs/simclr-fashion-mnist/embeddings-train
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from index_scale import TiledRows, memory_kib, run_child

from selfsup.embeddings import EmbeddingStore, build_index, group_pairs
from selfsup.embeddings.duplicates import similar_pairs

METHODS = ("exact range", "ivfpq k-NN")


def run_one(args: argparse.Namespace) -> dict:
    """Build the method's index over `args.size` tiled rows and time its near-duplicate pairs."""
    base = EmbeddingStore(args.base).vectors()
    rows = TiledRows(base, args.size, args.sigma)
    started = time.perf_counter()
    kind = "flat" if args.method == "exact range" else "ivfpq"
    index = build_index(rows, kind=kind, rows=rows.read)
    build = time.perf_counter() - started
    started = time.perf_counter()
    pairs = similar_pairs(index, rows, args.threshold)
    seconds = time.perf_counter() - started
    np.save(args.pairs, pairs)
    return {
        "size": args.size,
        "method": args.method,
        "build_s": round(build, 1),
        "pairs_s": round(seconds, 1),
        "rows_per_s": round(args.size / seconds, 1),
        "pairs": len(pairs),
        "groups": len(group_pairs(pairs)),
        "peak_mib": round(memory_kib("VmHWM") / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="embeddings folder tiled into the collection")
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e5, 1e6])
    parser.add_argument("--threshold", type=float, default=0.95, help="cosine threshold")
    parser.add_argument("--sigma", type=float, default=0.5, help="how far tiled copies move")
    parser.add_argument(
        "--exact-up-to", type=int, default=100_000, help="largest size the N^2 exact search runs at"
    )
    parser.add_argument("--out", default="benchmarks/dedup_scale.json", help="JSON of all rows")
    parser.add_argument("--method", help=argparse.SUPPRESS)  # one measurement, in a child
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pairs", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        print(json.dumps(run_one(args)), flush=True)
        return
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for size in (int(s) for s in args.sizes):
            found: dict[str, set] = {}
            for method in METHODS:
                if method == "exact range" and size > args.exact_up_to:
                    row = {"size": size, "method": method, "skipped": "N^2 search not run"}
                    print(json.dumps(row), flush=True)
                    results.append(row)
                    continue
                pairs = Path(scratch) / f"{method.replace(' ', '-')}-{size}.npy"
                child = [sys.executable, __file__, "--base", args.base, "--sigma", str(args.sigma)]
                child += ["--threshold", str(args.threshold), "--method", method]
                child += ["--size", str(size), "--pairs", str(pairs)]
                row = run_child(child, size, method)
                if "failed" not in row:
                    found[method] = set(map(tuple, np.load(pairs).tolist()))
                    if "exact range" in found and method != "exact range":
                        truth = found["exact range"]
                        row["pair_recall"] = round(len(found[method] & truth) / len(truth), 4)
                print(json.dumps(row), flush=True)
                results.append(row)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
