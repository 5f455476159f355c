"""Index and search at 10^5, 10^6 and 10^7 vectors of the main job's width, next to brute-force
torch and scikit-learn's `NearestNeighbors` wherever those fit in memory.

The collection: the main job's 60,000 Fashion-MNIST training embeddings (an embeddings folder
from `selfsup embed`), tiled to the size asked. Row i < 60,000 is embedding i itself; row i
above is embedding i mod 60,000 moved by `--sigma` times another embedding's deviation from
the mean (embedding (i mod 60,000 + 7919 * (i div 60,000)) mod 60,000), then L2-normalised: a
near copy (cosine about 0.96 to its original at sigma 0.5) that stays in the span of real
embeddings. The rows are computed on demand, so 10^7 rows need no 41 GB file; the re-ranking
of IVF-PQ reads them through the same function, where a real collection reads its chunks.
The queries: the first `--queries` test-split embeddings, none of which is in the collection;
the approximate indexes tune their search breadth on the next `--tune-queries` of them (as
`selfsup index --tune-queries` does), not on indexed rows: in a tiled collection their
near-copies make them a poor guide to held-out queries.

Each (size, method) runs in its own process, so that its memory is its own: "memory" is the
resident memory the built index added, "peak" the process's high-water mark above what it held
before building. Recall@10 is against exact search over the same rows. QPS is one batch of all
queries, after a warm-up batch of 10.

    python benchmarks/index_scale.py --base runs/simclr-fashion-mnist/embeddings-train \
        --queries-from runs/simclr-fashion-mnist/embeddings-test
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from selfsup.embeddings import EmbeddingStore, build_index
from selfsup.embeddings.index import chunk_rows, exact_neighbours, recall_at_k

METHODS = ("selfsup-flat", "selfsup-ivfpq", "selfsup-hnsw", "torch", "sklearn")


class TiledRows:
    """A (count, D) float32 array computed on demand from real `base` rows (see the module
    docstring for how row i is made)."""

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, base: np.ndarray, count: int, sigma: float, stride: int = 7919) -> None:
        self.base = np.ascontiguousarray(base, dtype=np.float32)
        self.mean = self.base.mean(0)
        self.count, self.sigma, self.stride = count, sigma, stride
        self.shape = (count, base.shape[1])

    def __len__(self) -> int:
        return self.count

    def read(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        copy, own = np.divmod(rows, len(self.base))
        other = (own + copy * self.stride) % len(self.base)
        out = self.base[own] + self.sigma * (self.base[other] - self.mean)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        original = copy == 0
        out[original] = self.base[own[original]]
        return out

    def __getitem__(self, key: slice | np.ndarray) -> np.ndarray:
        if isinstance(key, slice):
            return self.read(np.arange(*key.indices(self.count)))
        return self.read(np.asarray(key))


def memory_kib(field: str) -> int:
    """VmRSS (resident now) or VmHWM (high-water mark) of this process, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def dense(rows: TiledRows) -> np.ndarray:
    """All rows as one float32 array, filled a chunk at a time."""
    out = np.empty(rows.shape, dtype=np.float32)
    step = chunk_rows(rows.shape[1])
    for start in range(0, len(rows), step):
        out[start : start + step] = rows[start : start + step]
    return out


def torch_searcher(rows: TiledRows):
    import torch

    matrix = torch.from_numpy(dense(rows))

    def search(queries: np.ndarray, k: int) -> np.ndarray:
        q = torch.from_numpy(queries)
        best_scores = torch.full((len(q), 0), -float("inf"))
        best_ids = torch.zeros((len(q), 0), dtype=torch.int64)
        step = chunk_rows(matrix.shape[1])
        for start in range(0, len(matrix), step):
            scores, ids = (q @ matrix[start : start + step].T).topk(k, dim=1)
            best_scores = torch.cat([best_scores, scores], 1)
            best_ids = torch.cat([best_ids, ids + start], 1)
            best_scores, keep = best_scores.topk(k, dim=1)
            best_ids = best_ids.gather(1, keep)
        return best_ids.numpy()

    return search, None


def sklearn_searcher(rows: TiledRows):
    from sklearn.neighbors import NearestNeighbors

    # Euclidean ranks unit rows as cosine does, and takes scikit-learn's chunked GEMM path
    # (its cosine metric would normalise a copy of all N rows for every block of queries)
    model = NearestNeighbors(algorithm="brute", metric="euclidean").fit(dense(rows))
    return (lambda queries, k: model.kneighbors(queries, k, return_distance=False)), None


def selfsup_searcher(rows: TiledRows, kind: str, tune: np.ndarray):
    index = build_index(rows, kind=kind, rows=rows.read, recall_target=0.95, queries=tune)
    with tempfile.TemporaryDirectory() as scratch:  # on disk: serialising would copy it in RAM
        saved = index.save(scratch)
        size = saved.stat().st_size + index.ids.nbytes
    spec = index.spec
    return (lambda queries, k: index.search(queries, k)[1]), {
        "index_bytes": size,
        "spec": {
            key: getattr(spec, key)
            for key in ("kind", "nlist", "reduce_dim", "pq_m", "nprobe", "ef_search", "rerank")
        },
        "build_recall": spec.recall,
    }


def run_one(args: argparse.Namespace) -> dict:
    """Build one method's index over `args.size` rows and measure it; returns its row."""
    base = EmbeddingStore(args.base).vectors()
    held_out = EmbeddingStore(args.queries_from).vectors()
    queries = np.ascontiguousarray(held_out[: args.queries])
    tune = np.ascontiguousarray(held_out[args.queries : args.queries + args.tune_queries])
    truth = np.load(args.truth)
    rows = TiledRows(base, args.size, args.sigma)
    before = memory_kib("VmRSS")
    started = time.perf_counter()
    if args.method == "torch":
        search, extra = torch_searcher(rows)
    elif args.method == "sklearn":
        search, extra = sklearn_searcher(rows)
    else:
        search, extra = selfsup_searcher(rows, args.method.removeprefix("selfsup-"), tune)
    build = time.perf_counter() - started
    held = memory_kib("VmRSS") - before
    peak = memory_kib("VmHWM") - before
    search(queries[:10], 10)  # warm-up
    started = time.perf_counter()
    found = search(queries, 10)
    seconds = time.perf_counter() - started
    return {
        "size": args.size,
        "method": args.method,
        "build_s": round(build, 1),
        "memory_mib": round(held / 1024),
        "peak_mib": round(peak / 1024),
        "qps": round(len(queries) / seconds, 1),
        "recall@10": round(recall_at_k(found, truth), 4),
        **(extra or {}),
    }


def fits(size: int, dim: int) -> bool:
    """Whether N x D float32 rows fit in half of this machine's memory."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return size * dim * 4 < total / 2


def plan(size: int, dim: int, hnsw_up_to: int) -> dict[str, str | None]:
    """Which methods run at `size`, or why not."""
    dense_bytes = f"{size * dim * 4 / 2**30:.0f} GiB"
    reasons: dict[str, str | None] = {}
    for method in METHODS:
        if method in ("selfsup-flat", "torch", "sklearn") and not fits(size, dim):
            reasons[method] = f"not run: the float32 rows alone take {dense_bytes}"
        elif method == "selfsup-hnsw" and size > hnsw_up_to:
            reasons[method] = f"not run: HNSW over full {dim}-d vectors above {hnsw_up_to:,} rows"
        else:
            reasons[method] = None
    return reasons


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="embeddings folder tiled into the collection")
    parser.add_argument("--queries-from", required=True, help="embeddings folder of the queries")
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e5, 1e6, 1e7])
    parser.add_argument("--queries", type=int, default=1000, help="queries per measurement")
    parser.add_argument(
        "--tune-queries", type=int, default=500, help="held-out queries the indexes tune on"
    )
    parser.add_argument("--sigma", type=float, default=0.5, help="how far tiled copies move")
    parser.add_argument("--cache", default=None, help="folder keeping exact neighbours per size")
    parser.add_argument("--hnsw-up-to", type=int, default=100_000, help="largest HNSW size")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", default="benchmarks/index_scale.json", help="JSON of all rows")
    parser.add_argument("--method", help=argparse.SUPPRESS)  # one measurement, in a child
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--truth", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        print(json.dumps(run_one(args)), flush=True)
        return
    base = EmbeddingStore(args.base).vectors()
    queries = np.ascontiguousarray(EmbeddingStore(args.queries_from).vectors()[: args.queries])
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for size in (int(s) for s in args.sizes):
            cached = Path(args.cache or scratch) / f"truth-{size}-{args.sigma}-{args.queries}.npy"
            if cached.is_file():
                truth = np.load(cached)
            else:
                started = time.perf_counter()
                truth = exact_neighbours(TiledRows(base, size, args.sigma), queries, 10)
                exact = {"size": size, "method": "exact (faiss.knn, streamed)"}
                exact["search_s"] = round(time.perf_counter() - started, 1)
                print(json.dumps(exact), flush=True)
                results.append(exact)
                cached.parent.mkdir(parents=True, exist_ok=True)
                np.save(cached, truth)
            np.save(Path(scratch) / "truth.npy", truth)
            for method, reason in plan(size, base.shape[1], args.hnsw_up_to).items():
                if method not in args.methods:
                    continue
                if reason:
                    row = {"size": size, "method": method, "skipped": reason}
                else:
                    child = [sys.executable, __file__, "--base", args.base, "--queries-from"]
                    child += [args.queries_from, "--queries", str(args.queries), "--sigma"]
                    child += [str(args.sigma), "--tune-queries", str(args.tune_queries)]
                    child += ["--method", method, "--size", str(size)]
                    child += ["--truth", str(Path(scratch) / "truth.npy")]
                    done = subprocess.run(child, capture_output=True, text=True)
                    if done.returncode:
                        tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
                        row = {"size": size, "method": method, "failed": tail[0]}
                    else:
                        row = json.loads(done.stdout.strip().splitlines()[-1])
                print(json.dumps(row), flush=True)
                results.append(row)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
