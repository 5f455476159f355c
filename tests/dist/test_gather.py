"""2 processes on gloo see the same NT-Xent loss and gradients as 1 process on the whole batch."""

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from selfsup.dist import gather_with_grad
from selfsup.losses import nt_xent_loss

WORLD, LOCAL, DIM, TEMPERATURE = 2, 4, 6, 0.3


def _global_batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    shape = (WORLD * LOCAL, DIM)
    return (
        torch.randn(shape, generator=generator, dtype=torch.float64),
        torch.randn(shape, generator=generator, dtype=torch.float64),
    )


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        z_a, z_b = _global_batch()
        rows = slice(rank * LOCAL, (rank + 1) * LOCAL)
        local_a = z_a[rows].clone().requires_grad_(True)
        local_b = z_b[rows].clone().requires_grad_(True)
        loss = nt_xent_loss(local_a, local_b, TEMPERATURE, gather_distributed=True)
        loss.backward()
        gathered = gather_with_grad(local_a.detach())
        mean_loss = loss.detach().clone()
        dist.all_reduce(mean_loss)
        torch.save(
            {
                "loss": mean_loss / WORLD,
                "grad_a": local_a.grad,
                "grad_b": local_b.grad,
                "gathered": gathered,
            },
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
        dist.barrier()  # every rank done before any tears the group down
    finally:
        dist.destroy_process_group()


def test_two_processes_match_one_process_on_concatenated_batch(tmp_path) -> None:
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    z_a, z_b = (z.clone().requires_grad_(True) for z in _global_batch())
    expected = nt_xent_loss(z_a, z_b, TEMPERATURE)
    expected.backward()
    for rank in range(WORLD):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        rows = slice(rank * LOCAL, (rank + 1) * LOCAL)
        torch.testing.assert_close(result["gathered"], z_a.detach())
        # The mean over processes of the local losses is the global loss (tolerance: float64 eps).
        torch.testing.assert_close(result["loss"], expected.detach(), rtol=1e-12, atol=1e-12)
        # DDP averages parameter gradients over processes, so each rank's embedding gradient
        # divided by the world size must equal the one-process gradient of those rows.
        torch.testing.assert_close(result["grad_a"] / WORLD, z_a.grad[rows], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(result["grad_b"] / WORLD, z_b.grad[rows], rtol=1e-10, atol=1e-12)
