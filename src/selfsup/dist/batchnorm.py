"""Global batch norm: statistics over the batch of every process, with gradients through them.

[0] SimCLR, Chen et al. 2020, arXiv:2002.05709, Sec. 2.2 "Global BN": with BN statistics
    aggregated per device, the positives of a pair share statistics that leak their match and the
    model can cheat the contrastive task; aggregating mean and variance over all devices removes
    the shortcut.

`torch.nn.SyncBatchNorm` does this on CUDA only; `GlobalBatchNorm` does it with any backend
(gloo on CPU included) through one gradient-carrying all-reduce per layer.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from selfsup.dist.gather import gather_with_grad, world_size

_LOCAL_CLASS = "selfsup_local_class"
"""Attribute of a converted layer naming the plain BatchNorm class it replaced."""


class GlobalBatchNorm(_BatchNorm):
    """Batch norm whose training statistics are the mean and variance of the global batch [0].

    In training mode with several processes, each process computes its input's per-channel
    count, mean and sum of squared deviations M2 = Σ(x − mean)²; one gradient-carrying all-gather
    (`gather_with_grad`) shares them, and every process merges them in rank order with Chan et
    al.'s parallel rule, mean = Σ nᵢ·meanᵢ / n and M2 = Σ [M2ᵢ + nᵢ·(meanᵢ − mean)²], which
    avoids the cancellation of E[x²] − E[x]². The output and gradients are those of one process
    running plain batch norm on the concatenated batch. Statistics are computed in the input's
    dtype (float16/bf16 inputs in float32). Running statistics are updated as torch's BatchNorm
    updates them. In eval mode, or with one process, this is plain BatchNorm. Every process must
    call it the same number of times in training mode.

    Accepts any (N, C, ...) input: as BatchNorm1d on (N, C) or (N, C, L), as BatchNorm2d/3d on
    images and volumes. Build one from a model with `global_batch_norm`.

    >>> layer = GlobalBatchNorm(3)
    >>> layer(torch.randn(4, 3, 5, 5)).shape
    torch.Size([4, 3, 5, 5])
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected an (N, C, ...) input of 2 or more dims, got {input.dim()}D")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(input)
        if not self.training or world_size() == 1:
            return super().forward(input)
        channels = input.shape[1]
        dims = [0, *range(2, input.dim())]
        shape = (1, channels) + (1,) * (input.dim() - 2)  # broadcast per channel
        x = input.to(torch.promote_types(input.dtype, torch.float32))
        local_count = torch.full((1,), input.numel() // channels, dtype=x.dtype, device=x.device)
        local_mean = x.mean(dims)
        local_m2 = (x - local_mean.view(shape)).square().sum(dims)
        # [n, mean, M2] of every process in one collective: world x (1 + 2C).
        parts = gather_with_grad(torch.cat([local_count, local_mean, local_m2])[None])
        counts, means, m2s = parts[:, :1], parts[:, 1 : 1 + channels], parts[:, 1 + channels :]
        total = counts.sum()
        mean = (counts * means).sum(0) / total
        var = (m2s.sum(0) + (counts * (means - mean).square()).sum(0)) / total  # biased, as BN
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), total.detach())
        out = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.weight is not None:
            out = out * self.weight.view(shape)
        if self.bias is not None:
            out = out + self.bias.view(shape)
        return out.to(input.dtype)

    @torch.no_grad()
    def _update_running_stats(
        self, mean: torch.Tensor, var: torch.Tensor, count: torch.Tensor
    ) -> None:
        """torch's rule: r ← (1 − m)·r + m·x, unbiased variance, m = 1/t when momentum is None."""
        factor: float | torch.Tensor = 0.0 if self.momentum is None else self.momentum
        if self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative average, without a host sync
                factor = self.num_batches_tracked.to(self.running_mean.dtype).reciprocal()
        unbiased_var = var * count / (count - 1)
        for running, batch in ((self.running_mean, mean), (self.running_var, unbiased_var)):
            running.mul_(1 - factor).add_(factor * batch.to(running.dtype))


_LOCAL_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_GLOBAL_BATCH_NORMS = (nn.SyncBatchNorm, GlobalBatchNorm)


def _rebuild(source: _BatchNorm, kind: type[_BatchNorm]) -> _BatchNorm:
    """A `kind` layer with `source`'s settings, parameters and buffers (the same tensors), mode."""
    target = kind(
        source.num_features, source.eps, source.momentum, source.affine, source.track_running_stats
    )
    target.weight = source.weight
    target.bias = source.bias
    target.running_mean = source.running_mean
    target.running_var = source.running_var
    target.num_batches_tracked = source.num_batches_tracked
    target.training = source.training
    if hasattr(source, "qconfig"):
        target.qconfig = source.qconfig
    return target


def _replace(
    module: nn.Module, kinds: tuple[type, ...], convert: Callable[[_BatchNorm], _BatchNorm]
) -> nn.Module:
    """Replace every sub-module of a type in `kinds` by `convert(it)`, in place below the root."""
    if isinstance(module, kinds):
        return convert(module)
    for name, child in module.named_children():
        module.add_module(name, _replace(child, kinds, convert))
    return module


def global_batch_norm(module: nn.Module, device_type: str) -> nn.Module:
    """Make every BatchNorm1d/2d/3d of `module` normalise over the global batch [0].

    On "cuda" the layers become `torch.nn.SyncBatchNorm` (`convert_sync_batchnorm`), on any other
    device `GlobalBatchNorm`; either kind already there is switched to the device's kind. The new
    layers hold the same parameter and buffer tensors (so device, dtype, requires_grad and an
    optimizer's references carry over) and remember the class they replaced, for
    `local_batch_norm`.

    Args:
        module: the model, changed in place.
        device_type: `torch.device(...).type` of the model, e.g. "cuda" or "cpu".

    Returns:
        `module`, or a new layer if `module` itself is a batch norm.

    >>> model = global_batch_norm(nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8)), "cpu")
    >>> type(model[1]).__name__
    'GlobalBatchNorm'
    """
    target = nn.SyncBatchNorm if device_type == "cuda" else GlobalBatchNorm

    def convert(layer: _BatchNorm) -> _BatchNorm:
        if type(layer) is target:
            return layer
        local_class = getattr(layer, _LOCAL_CLASS, type(layer))
        if target is nn.SyncBatchNorm:
            converted = nn.SyncBatchNorm.convert_sync_batchnorm(layer)
        else:
            converted = _rebuild(layer, GlobalBatchNorm)
        if local_class not in _GLOBAL_BATCH_NORMS:
            setattr(converted, _LOCAL_CLASS, local_class)
        return converted

    return _replace(module, _LOCAL_BATCH_NORMS + _GLOBAL_BATCH_NORMS, convert)


def local_batch_norm(module: nn.Module) -> nn.Module:
    """Undo `global_batch_norm`: every GlobalBatchNorm or SyncBatchNorm becomes plain BatchNorm.

    Each layer gets back the class it replaced, or BatchNorm2d when that is unknown (a layer not
    made by `global_batch_norm`), with the same parameters, buffers and state_dict keys: a model
    trained with global BN exports and evaluates as an ordinary one.

    Args:
        module: the model, changed in place.

    Returns:
        `module`, or a new layer if `module` itself is a global batch norm.
    """

    def convert(layer: _BatchNorm) -> _BatchNorm:
        return _rebuild(layer, getattr(layer, _LOCAL_CLASS, nn.BatchNorm2d))

    return _replace(module, _GLOBAL_BATCH_NORMS, convert)
