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

With `--folder DIR`, the collection is also written out as a real embeddings folder (float16
chunks, as `selfsup embed` writes them: 41 GB at 10^7) and the library is measured the way a
user runs it: `selfsup index DIR --tune-queries` (`index_collection`) in one process, then in a
fresh process the saved index is opened (`open_index`) and searched, its re-ranking reading the
chunks from disk: first with a cold page cache (`--drop-caches`, root only), then warm. A third
process runs the k-means of `selfsup cluster` over all the folder's rows from disk. For these,
"anon" is the process's own resident memory (RssAnon), "file" the chunk pages it has mapped
(RssFile: page cache the kernel can take back), and recall is against the float32 rows, so it
includes the float16 storage.

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
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from selfsup.collection.search import index_collection, open_index
from selfsup.embeddings import EmbeddingStore, build_index, cluster, label_agreement
from selfsup.embeddings.exact import chunk_rows, exact_neighbours, recall_at_k
from selfsup.embeddings.store import EmbeddingsMeta

METHODS = ("selfsup-flat", "selfsup-ivfpq", "selfsup-hnsw", "torch", "sklearn")
FOLDER_STEPS = ("folder-index", "folder-search", "folder-cluster")


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


class TiledPaths(Sequence[str]):
    """The items table's paths of a tiled collection, made on demand."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index):  # type: ignore[override]
        if not 0 <= index < self.count:
            raise IndexError(index)
        return f"tile/{index}"


def write_folder(source: str | Path, rows: np.ndarray, folder: Path) -> float:
    """Write `rows` (array-like, float32) as an embeddings folder with the encoder and labels
    of the `source` folder (row i has source row i mod len(source)'s label); returns the seconds
    it took, or 0 when a complete folder of that size is already there."""
    store = EmbeddingStore(folder)
    if store.complete() and store.meta().rows == len(rows):
        return 0.0
    started = time.perf_counter()
    original = EmbeddingStore(source)
    template = original.meta()
    meta = EmbeddingsMeta(
        dim=template.dim,
        rows=len(rows),
        dtype="float16",
        encoder=template.encoder,
        source={**template.source, "tiled_from": str(source)},
    )
    base_labels = original.labels()
    labels = base_labels[np.arange(len(rows)) % len(base_labels)]
    store.create(meta, TiledPaths(len(rows)), labels)
    for chunk in store.missing_chunks():
        span = meta.chunk_range(chunk)
        store.write_chunk(chunk, rows[span.start : span.stop])
    store.finish()
    return time.perf_counter() - started


def drop_page_cache() -> bool:
    """Empty the kernel's page cache (root only), so that the next reads come from disk."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
    except OSError:
        return False
    return True


def folder_step(args: argparse.Namespace) -> dict:
    """One step of the folder measurement (see the module docstring), in its own process."""
    folder = Path(args.folder)
    row: dict = {"size": args.size, "method": args.method}
    row["start_anon_mib"] = round(memory_kib("RssAnon") / 1024)  # the interpreter, torch, faiss
    before = memory_kib("VmRSS")
    started = time.perf_counter()
    if args.method == "folder-index":
        spec = index_collection(folder, tune_queries=f"{folder}-tune").spec
        row.update(build_s=round(time.perf_counter() - started, 1), build_recall=spec.recall)
        row["spec"] = {key: getattr(spec, key) for key in ("kind", "nlist", "nprobe", "rerank")}
    elif args.method == "folder-search":
        queries = queries_and_tune(args)[0]
        truth = np.load(args.truth)
        _, index = open_index(folder)
        row["open_s"] = round(time.perf_counter() - started, 1)
        row["loaded_anon_mib"] = round(memory_kib("RssAnon") / 1024)
        for cache in ("cold", "warm"):
            started = time.perf_counter()
            found = index.search(queries, 10)[1]
            row[f"qps_{cache}"] = round(len(queries) / (time.perf_counter() - started), 1)
            row[f"recall@10_{cache}"] = round(recall_at_k(found, truth), 4)
    else:
        store = EmbeddingStore(folder)
        ok = store.ok_ids()
        clusters = cluster(store.rows(ok), args.cluster_k)
        row["cluster_s"] = round(time.perf_counter() - started, 1)
        row["k"] = args.cluster_k
        row["nmi"] = round(label_agreement(clusters.assignments, store.labels()[ok])["nmi"], 4)
    row["anon_mib"] = round(memory_kib("RssAnon") / 1024)
    row["file_mib"] = round(memory_kib("RssFile") / 1024)
    row["peak_mib"] = round((memory_kib("VmHWM") - before) / 1024)
    return row


def run_child(command: list[str], size: int, method: str) -> dict:
    """Run one measurement in its own process; its row (the JSON of its last output line), or
    a row saying it failed, with the last line of its errors."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        return {"size": size, "method": method, "failed": tail[0]}
    return json.loads(done.stdout.strip().splitlines()[-1])


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


def queries_and_tune(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """The measured queries (the first `--queries` held-out rows) and the tuning ones after."""
    held_out = EmbeddingStore(args.queries_from).vectors()
    queries = np.ascontiguousarray(held_out[: args.queries])
    return queries, np.ascontiguousarray(held_out[args.queries : args.queries + args.tune_queries])


def run_one(args: argparse.Namespace) -> dict:
    """Build one method's index over `args.size` rows and measure it; returns its row."""
    base = EmbeddingStore(args.base).vectors()
    queries, tune = queries_and_tune(args)
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
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", default="benchmarks/index_scale.json", help="JSON of all rows")
    parser.add_argument("--folder", help="also write the collection here and measure it there")
    parser.add_argument(
        "--drop-caches", action="store_true", help="search the folder with a cold page cache"
    )
    parser.add_argument("--cluster-k", type=int, default=100, help="k of the folder's k-means")
    parser.add_argument(
        "--steps",
        nargs="+",
        default=list(FOLDER_STEPS),
        choices=FOLDER_STEPS,
        help="which folder steps to run (folder-search and folder-cluster reuse a saved index)",
    )
    parser.add_argument("--method", help=argparse.SUPPRESS)  # one measurement, in a child
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--truth", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        one = folder_step if args.method in FOLDER_STEPS else run_one
        print(json.dumps(one(args)), flush=True)
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
            steps = [
                (method, reason)
                for method, reason in plan(size, base.shape[1], args.hnsw_up_to).items()
                if method in args.methods
            ]
            if args.folder:
                folder = Path(args.folder) / f"tiled-{size}"
                rows = TiledRows(base, size, args.sigma)
                seconds = write_folder(args.base, rows, folder)
                tune = queries_and_tune(args)[1]
                write_folder(args.queries_from, tune, Path(f"{folder}-tune"))
                written = {"size": size, "method": "folder written", "write_s": round(seconds, 1)}
                print(json.dumps(written), flush=True)
                results.append(written)
                steps += [(step, None) for step in args.steps]
            for method, reason in steps:
                if reason:
                    row = {"size": size, "method": method, "skipped": reason}
                else:
                    if method == "folder-search" and args.drop_caches and not drop_page_cache():
                        print("could not drop the page cache (needs root)", file=sys.stderr)
                    child = [sys.executable, __file__, "--base", args.base, "--queries-from"]
                    child += [args.queries_from, "--queries", str(args.queries), "--sigma"]
                    child += [str(args.sigma), "--tune-queries", str(args.tune_queries)]
                    child += ["--method", method, "--size", str(size)]
                    child += ["--truth", str(Path(scratch) / "truth.npy")]
                    child += ["--cluster-k", str(args.cluster_k)]
                    if args.folder:
                        child += ["--folder", str(Path(args.folder) / f"tiled-{size}")]
                    row = run_child(child, size, method)
                print(json.dumps(row), flush=True)
                results.append(row)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
