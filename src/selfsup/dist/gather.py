"""Collectives for losses that must see the global batch, with gradients that flow back."""

from __future__ import annotations

import torch
import torch.distributed as torch_dist


def world_size() -> int:
    """Number of processes, 1 when torch.distributed is not initialised."""
    return (
        torch_dist.get_world_size()
        if torch_dist.is_available() and torch_dist.is_initialized()
        else 1
    )


def rank() -> int:
    """This process's index, 0 when torch.distributed is not initialised."""
    return torch_dist.get_rank() if torch_dist.is_available() and torch_dist.is_initialized() else 0


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums every process's gradient and returns this rank's slice.

    Each process computes its loss on its local rows against the gathered batch, so the gradient of
    the global loss w.r.t. this rank's embeddings is the sum over all processes' losses; DDP then
    averages the parameter gradients. Forgetting the sum gives gradients off by the world size.
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        gathered = [torch.empty_like(tensor) for _ in range(torch_dist.get_world_size())]
        torch_dist.all_gather(gathered, tensor.contiguous())
        return torch.cat(gathered, dim=0)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad_output.contiguous().clone()
        torch_dist.all_reduce(grad, op=torch_dist.ReduceOp.SUM)
        size = grad.shape[0] // torch_dist.get_world_size()
        start = torch_dist.get_rank() * size
        return grad[start : start + size]


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate `tensor` (B, ...) from all processes along dim 0 → (B·world, ...), keeping grads.

    All processes must pass the same B. With one process this returns `tensor` unchanged.
    """
    if world_size() == 1:
        return tensor
    return _GatherWithGrad.apply(tensor)


class _AllReduceWithGrad(torch.autograd.Function):
    """all_reduce (sum) whose backward is the all_reduce (sum) of the incoming gradient.

    Every process computes the same global loss L from the reduced sum y = Σ_r x_r, so the objective
    DDP sees is Σ_r L_r and its gradient w.r.t. x_r is Σ_r' ∂L_r'/∂y: the sum of every process's
    gradient of y. After DDP divides by the world size this is ∂L/∂x_r. Returning only the local
    gradient (plain `torch.distributed.all_reduce` has no backward at all) is off by the world size.
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        reduced = tensor.contiguous().clone()
        torch_dist.all_reduce(reduced, op=torch_dist.ReduceOp.SUM)
        return reduced

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad_output.contiguous().clone()
        torch_dist.all_reduce(grad, op=torch_dist.ReduceOp.SUM)
        return grad


def all_reduce_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over all processes, keeping grads; every process gets the same sum.

    All processes must pass the same shape. With one process this returns `tensor` unchanged.
    """
    if world_size() == 1:
        return tensor
    return _AllReduceWithGrad.apply(tensor)
