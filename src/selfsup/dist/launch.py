"""Joining the process group that `torchrun` describes, and the few rank-aware helpers around it.

`torchrun --nproc_per_node G [--nnodes N --rdzv_endpoint HOST:PORT] -m selfsup pretrain ...`
starts one process per device with RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT
set; `init_from_env` turns that into an initialised process group (NCCL on CUDA, gloo on CPU)
and this process's device. Without those variables it does nothing: one process, as before.
"""

from __future__ import annotations

import inspect
import os

import torch
import torch.distributed as torch_dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from selfsup.dist.gather import rank, world_size
from selfsup.errors import SelfsupError


def launched_by_torchrun() -> bool:
    """Whether the environment describes more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: torch.device) -> torch.device:
    """Initialise the process group from torchrun's variables (once) and pick this process's
    device: `cuda:LOCAL_RANK` when `device` is CUDA, else `device` itself (gloo).

    With one process (no torchrun, or WORLD_SIZE=1) this returns `device` unchanged.
    """
    if not launched_by_torchrun():
        return device
    if device.type == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if local_rank >= torch.cuda.device_count():
            raise SelfsupError(
                f"LOCAL_RANK {local_rank} but this node has {torch.cuda.device_count()} GPUs; "
                "give torchrun --nproc_per_node at most the number of GPUs"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not torch_dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        torch_dist.init_process_group(backend, **kwargs)
    return device


def data_parallel(module: nn.Module, device: torch.device) -> DistributedDataParallel:
    """DDP around `module` that averages gradients but does not re-broadcast buffers each step:
    queues are gathered and BN statistics are global (or deliberately per process), so rank 0's
    copy adds nothing but a collective. Buffers are still synced once, at construction."""
    parameters = inspect.signature(DistributedDataParallel.__init__).parameters
    # torch ≥ 2.12 renamed the switch; the old name still works there but warns.
    no_buffer_sync = (
        {"forward_sync_buffers": False}
        if "forward_sync_buffers" in parameters
        else {"broadcast_buffers": False}
    )
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids, **no_buffer_sync)


def shutdown() -> None:
    """Leave the process group, if this process joined one."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def is_main_process() -> bool:
    """Rank 0 writes files, logs and evaluates; the others only train."""
    return rank() == 0


def barrier() -> None:
    """Wait for every process (no-op with one)."""
    if world_size() > 1:
        torch_dist.barrier()


def mean_over_processes(value: torch.Tensor) -> torch.Tensor:
    """The mean of a (detached) tensor over processes; itself with one process."""
    if world_size() == 1:
        return value
    total = value.detach().clone()
    torch_dist.all_reduce(total, op=torch_dist.ReduceOp.SUM)
    return total / world_size()


def local_share(batch_size: int) -> int:
    """This process's part of a global batch, which must divide evenly among processes."""
    world = world_size()
    if batch_size % world:
        raise SelfsupError(
            f"train.batch_size {batch_size} is the global batch and must divide by the "
            f"{world} processes; use --train.batch_size {batch_size - batch_size % world or world}"
        )
    return batch_size // world
