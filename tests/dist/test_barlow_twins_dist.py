"""2 processes on gloo see the same Barlow Twins loss and gradients as 1 process on the whole
batch, and all_reduce_with_grad sums values forwards and gradients backwards."""

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from selfsup.dist import all_reduce_with_grad
from selfsup.losses import barlow_twins_loss

WORLD, LOCAL, DIM, REDUNDANCY_WEIGHT = 2, 5, 6, 0.1


def _global_batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    shape = (WORLD * LOCAL, DIM)
    z_a = torch.randn(shape, generator=generator, dtype=torch.float64)
    # Correlated views with an offset, so that the global mean and diagonal of C matter.
    z_b = 0.8 * z_a + 0.4 * torch.randn(shape, generator=generator, dtype=torch.float64) + 2.0
    return z_a, z_b


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        z_a, z_b = _global_batch()
        rows = slice(rank * LOCAL, (rank + 1) * LOCAL)
        local_a = z_a[rows].clone().requires_grad_(True)
        local_b = z_b[rows].clone().requires_grad_(True)
        loss = barlow_twins_loss(local_a, local_b, REDUNDANCY_WEIGHT, gather_distributed=True)
        loss.backward()
        # all_reduce_with_grad alone: y = Σ_r x_r, then Σ_r sum(w ⊙ y) with w = rank + 1 has
        # gradient Σ_r (r + 1) w.r.t. every x_r, whatever the rank.
        values = torch.full((3,), float(rank + 1), dtype=torch.float64, requires_grad=True)
        summed = all_reduce_with_grad(values)
        (summed * (rank + 1)).sum().backward()
        torch.save(
            {
                "loss": loss.detach(),
                "grad_a": local_a.grad,
                "grad_b": local_b.grad,
                "summed": summed.detach(),
                "summed_grad": values.grad,
            },
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
        dist.barrier()  # every rank done before any tears the group down
    finally:
        dist.destroy_process_group()


def test_two_processes_match_one_process_on_concatenated_batch(tmp_path) -> None:
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    z_a, z_b = (z.clone().requires_grad_(True) for z in _global_batch())
    expected = barlow_twins_loss(z_a, z_b, REDUNDANCY_WEIGHT)
    expected.backward()
    rank_weights = sum(range(1, WORLD + 1))
    for rank in range(WORLD):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        rows = slice(rank * LOCAL, (rank + 1) * LOCAL)
        # Every process returns the global loss itself; the sums are only reordered, so float64
        # agrees to a few ulps (tolerance 1e-12, far below any real error such as a wrong N).
        torch.testing.assert_close(result["loss"], expected.detach(), rtol=1e-12, atol=1e-12)
        # DDP averages parameter gradients over processes, so each rank's embedding gradient
        # divided by the world size must equal the one-process gradient of those rows.
        torch.testing.assert_close(result["grad_a"] / WORLD, z_a.grad[rows], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(result["grad_b"] / WORLD, z_b.grad[rows], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(
            result["summed"], torch.full((3,), float(rank_weights), dtype=torch.float64)
        )
        torch.testing.assert_close(
            result["summed_grad"], torch.full((3,), float(rank_weights), dtype=torch.float64)
        )
