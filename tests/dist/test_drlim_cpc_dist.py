"""2 processes on gloo see the same DrLIM and CPC losses and gradients as 1 process on the whole
batch, when the negatives are gathered from every process."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from selfsup.losses import cpc_info_nce, drlim_batch_loss

WORLD, LOCAL = 2, 3
DIM, MARGIN = 2, 1.5  # 2-d outputs of unit scale: some dissimilar pairs inside m, some beyond
ROWS, COLS, PATCH_DIM, TEMPERATURE = 4, 2, 5, 0.7
STEPS = (1, 2)


def _embeddings() -> tuple[torch.Tensor, torch.Tensor]:
    """DrLIM's global (W·B, D) anchors and partners, float64."""
    generator = torch.Generator().manual_seed(0)
    shape = (WORLD * LOCAL, DIM)
    return (
        torch.randn(shape, generator=generator, dtype=torch.float64),
        torch.randn(shape, generator=generator, dtype=torch.float64),
    )


def _patches(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CPC's global predictions (W·B, rows − k, cols, D) and targets (W·B, rows, cols, D)."""
    generator = torch.Generator().manual_seed(step)
    return (
        torch.randn(
            WORLD * LOCAL, ROWS - step, COLS, PATCH_DIM, generator=generator, dtype=torch.float64
        ),
        torch.randn(WORLD * LOCAL, ROWS, COLS, PATCH_DIM, generator=generator, dtype=torch.float64),
    )


def _losses(rows: slice, gather_distributed: bool) -> dict[str, tuple[torch.Tensor, ...]]:
    """name → (loss, gradient of each input) on `rows` of the global batch."""
    cases = {
        "drlim": (_embeddings(), lambda a, b: drlim_batch_loss(a, b, MARGIN, gather_distributed))
    }
    for step in STEPS:
        cases[f"cpc{step}"] = (
            _patches(step),
            lambda p, t, step=step: cpc_info_nce(p, t, step, TEMPERATURE, gather_distributed),
        )
    results = {}
    for name, (tensors, loss_fn) in cases.items():
        inputs = [tensor[rows].clone().requires_grad_(True) for tensor in tensors]
        loss = loss_fn(*inputs)
        loss.backward()
        results[name] = (loss.detach(), *(tensor.grad for tensor in inputs))
    return results


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        results = _losses(slice(rank * LOCAL, (rank + 1) * LOCAL), gather_distributed=True)
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.barrier()  # every rank done before any tears the group down
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def distributed(tmp_path_factory) -> list[dict]:
    out_dir = tmp_path_factory.mktemp("drlim_cpc")
    mp.spawn(_worker, args=(str(out_dir / "init"), str(out_dir)), nprocs=WORLD, join=True)
    return [torch.load(out_dir / f"rank{rank}.pt") for rank in range(WORLD)]


@pytest.mark.parametrize("name", ["drlim", *(f"cpc{step}" for step in STEPS)])
def test_two_processes_match_one_process_on_concatenated_batch(
    distributed: list[dict], name: str
) -> None:
    """With W processes of B rows each, and L the 1-process loss on the W·B rows:

    L is a mean over the global batch and rank r's loss L_r the mean over its local rows (DrLIM:
    B similar and B(W·B − 1) dissimilar pairs of W·B and W·B(W·B − 1); CPC: B(rows − k)cols
    predictions of W·B(rows − k)cols), so L = (1/W) Σ_r L_r. The gather's backward sums every
    process's gradient, so rank r's input gradient is ∂(Σ_r' L_r')/∂x_r = W ∂L/∂x_r; DDP's
    average over ranks then gives ∂L/∂θ. Tested: mean_r L_r = L and grad_r / W = the matching
    rows of ∂L/∂x.
    """
    expected = _losses(slice(None), gather_distributed=False)[name]
    mean_loss = sum(result[name][0] for result in distributed) / WORLD
    # float64; the sums are only reordered (tolerance far below a wrong pair count or factor).
    torch.testing.assert_close(mean_loss, expected[0], rtol=1e-12, atol=1e-12)
    for rank, result in enumerate(distributed):
        rows = slice(rank * LOCAL, (rank + 1) * LOCAL)
        for got, want in zip(result[name][1:], expected[1:], strict=True):
            torch.testing.assert_close(got / WORLD, want[rows], rtol=1e-10, atol=1e-12)


def test_one_process_gather_changes_nothing() -> None:
    # With torch.distributed not initialised, gathering is the identity: same values, bit for bit.
    for name, (loss, *grads) in _losses(slice(None), gather_distributed=True).items():
        want_loss, *want_grads = _losses(slice(None), gather_distributed=False)[name]
        assert torch.equal(loss, want_loss), name
        assert all(torch.equal(a, b) for a, b in zip(grads, want_grads, strict=True)), name
