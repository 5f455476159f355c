"""MoCo's shuffled BN on 2 gloo processes: the shuffled shares are a permutation of the global
batch that mixes the processes, and unshuffling restores each process's own rows."""

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from selfsup.dist.shuffle import batch_shuffle, batch_unshuffle

WORLD, LOCAL = 2, 8


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        torch.manual_seed(rank)  # only rank 0's permutation may count
        rows = torch.arange(rank * LOCAL, (rank + 1) * LOCAL, dtype=torch.float64)[:, None]
        shuffled, unshuffle = batch_shuffle(rows)
        restored = batch_unshuffle(shuffled * 10, unshuffle)
        torch.save(
            {"rows": rows, "shuffled": shuffled, "restored": restored},
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
        dist.barrier()  # every rank done before any tears the group down
    finally:
        dist.destroy_process_group()


def test_shuffle_is_a_global_permutation_and_unshuffle_inverts_it(tmp_path) -> None:
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    results = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(WORLD)]
    shares = torch.cat([r["shuffled"] for r in results]).flatten()
    assert sorted(shares.tolist()) == list(range(WORLD * LOCAL))
    # With 16 rows the chance that a random permutation keeps every row on its process is 1/12870.
    assert any((r["shuffled"] // LOCAL != rank).any() for rank, r in enumerate(results))
    for result in results:
        torch.testing.assert_close(result["restored"], result["rows"] * 10)


def test_one_process_is_the_identity() -> None:
    batch = torch.randn(4, 3)
    shuffled, unshuffle = batch_shuffle(batch)
    assert shuffled is batch and unshuffle is None
    assert batch_unshuffle(batch, unshuffle) is batch
