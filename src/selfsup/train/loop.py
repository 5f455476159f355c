"""The one explicit training loop: it knows optimisation, not which method it runs.

Per step: draw a batch of uint8 images (kept on the device, or copied there one step ahead),
let the view maker turn it into normalised inputs there, `loss = method(views)`, backward,
optimiser step, then `method.on_step_end(step, total_steps)` if the method has one (momentum
targets, EMA schedules). With several processes each runs this loop on its share of every global
batch (see `train`). Per epoch: an atomic checkpoint that `--resume` restores exactly (weights,
optimiser, step, and the random generator that drives shuffling and views).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from selfsup.augment.makers import ViewMaker
from selfsup.augment.random import ShardedDraws
from selfsup.dist.batchnorm import global_batch_norm, local_batch_norm
from selfsup.dist.gather import rank, world_size
from selfsup.dist.launch import data_parallel, init_from_env, local_share, mean_over_processes
from selfsup.errors import SelfsupError
from selfsup.optim.lars import LARS
from selfsup.optim.param_groups import param_groups
from selfsup.optim.schedules import scaled_learning_rate, warmup_cosine
from selfsup.train.allocator import keep_freed_cpu_memory
from selfsup.train.batches import image_source
from selfsup.train.budget import MEASURE_AFTER, MEASURE_STEPS, parse_duration, steps_within_budget
from selfsup.train.checkpoint import (
    has_checkpoint,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)
from selfsup.train.metrics import MetricsLogger


def resolve_device(name: str = "auto") -> torch.device:
    """ "auto" picks cuda, then mps, then cpu."""
    if name != "auto":
        try:
            device = torch.device(name)
        except RuntimeError:
            raise SelfsupError(
                f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps"
            ) from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise SelfsupError(
                "device 'cuda' requested but CUDA is not available; use --train.device cpu"
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on GPU by default ("auto"), fp32 on CPU; "bf16"/"fp32" force it."""
    if precision not in ("auto", "bf16", "fp32"):
        raise SelfsupError(f"precision must be auto, bf16 or fp32, got {precision!r}")
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if not use_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def build_optimizer(model: nn.Module, optim_config: Any, batch_size: int) -> torch.optim.Optimizer:
    """LARS, SGD or AdamW over the shared decay/no-decay parameter groups."""
    lr = scaled_learning_rate(optim_config.lr, batch_size, optim_config.lr_scaling)
    groups = param_groups(model, optim_config.weight_decay)
    name = optim_config.optimizer
    if name == "lars":
        return LARS(
            groups, lr=lr, momentum=optim_config.momentum, weight_decay=optim_config.weight_decay
        )
    for group in groups:
        group.pop("lars_exclude", None)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=optim_config.momentum)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise SelfsupError(f"unknown optimizer {name!r}; choose lars, sgd or adamw")


@dataclass
class TrainSummary:
    """What a finished (or resumed-and-finished) run reports."""

    epochs: int
    steps: int
    final_loss: float
    images_per_second: float
    seconds: float


def train(
    method: nn.Module,
    images: torch.Tensor | torch.utils.data.Dataset,
    make_views: ViewMaker,
    config: Any,
    run_dir: str | Path,
    resume: bool = False,
) -> TrainSummary:
    """Pre-train `method` on uint8 `images` for `config.train.epochs` epochs.

    With several processes (`torchrun`, see `selfsup.dist.init_from_env`) every process runs
    this function: `train.batch_size` is the global batch, each process takes its contiguous
    share of every step's samples from the one permutation all of them draw, the views' random
    numbers come from the same shared generator (`ShardedDraws`), batch norm sees the global
    batch (`train.sync_batchnorm`) and DDP averages the gradients. A run is therefore the same
    run on any number of processes, up to floating-point sums, and resumes on a different number.
    Rank 0 alone writes checkpoints and metrics.

    Args:
        method: module whose `forward(views) -> loss`; optional `on_step_end(step, total_steps)`.
        images: the whole unlabeled training set as a uint8 (N, C, H, W) tensor (kept on the
            device unless `train.data_on_device` is false), or a map-style dataset of uint8
            (C, H, W) images of one size, decoded in `train.workers` DataLoader workers.
        make_views: turns a uint8 batch (and its dataset indices) into the method's normalised
            inputs, on the device (e.g. `AugmentedViews.from_config(config.augment, 2, mean, std)`).
        config: a `RunConfig` (train, optim sections are read).
        run_dir: where checkpoints/, metrics.jsonl and tensorboard/ go.
        resume: continue from the newest checkpoint in `run_dir/checkpoints` that loads.
    """
    train_config, optim_config = config.train, config.optim
    run_dir = Path(run_dir)
    device = init_from_env(resolve_device(train_config.device))
    world, this_rank = world_size(), rank()
    main_process = this_rank == 0
    if train_config.threads:
        torch.set_num_threads(train_config.threads)
    if device.type == "cpu" and train_config.keep_cpu_memory:
        keep_freed_cpu_memory()  # see selfsup.train.allocator: 1.7x faster steps on 2 cores
    batch_size = train_config.batch_size  # global: the same schedule on any number of processes
    local_batch = local_share(batch_size)
    if batch_size > len(images):
        raise SelfsupError(
            f"batch size {batch_size} is larger than the dataset ({len(images)} images); "
            f"use --train.batch_size {max(1, len(images) // 2)} or less"
        )
    steps_per_epoch = len(images) // batch_size  # drop the ragged last batch: BN needs full batches
    total_steps = steps_per_epoch * train_config.epochs  # with a time budget: the upper bound
    warmup_steps = min(total_steps, round(optim_config.warmup_epochs * steps_per_epoch))
    budget = None if train_config.time_budget is None else parse_duration(train_config.time_budget)
    # With a budget the step count is planned once, after timing steps measure_from..until.
    measure_from, measure_until = MEASURE_AFTER, MEASURE_AFTER + MEASURE_STEPS
    planned = False

    torch.manual_seed(train_config.seed + this_rank)  # anything random outside the views
    # Shared by every process: the sample order and the views' random numbers.
    generator = torch.Generator().manual_seed(train_config.seed)
    draws = generator if world == 1 else ShardedDraws(generator, this_rank, world)
    global_norm = world > 1 and train_config.sync_batchnorm
    if global_norm:
        global_batch_norm(method, device.type)
    method.to(device)
    memory_format = torch.channels_last if train_config.channels_last else torch.contiguous_format
    method.to(memory_format=memory_format)
    optimizer = build_optimizer(method, optim_config, batch_size)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    final_fraction = optim_config.final_lr_fraction

    checkpoints = run_dir / "checkpoints"
    start_epoch, step = 0, 0
    if resume:
        state = load_checkpoint(checkpoints)
        load_model_state(method, state["method"], checkpoints)
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        start_epoch, step = state["epoch"], state["step"]
        if budget is not None and state.get("total_steps") is not None:
            total_steps = min(total_steps, int(state["total_steps"]))  # the schedule it was on
            planned = True
        elif budget is not None:  # stopped before planning: plan for the budget from here
            measure_from, measure_until = step + MEASURE_AFTER, step + MEASURE_AFTER + MEASURE_STEPS
        if start_epoch >= train_config.epochs or step >= total_steps:
            if global_norm:
                local_batch_norm(method)
            return TrainSummary(start_epoch, step, state.get("loss", math.nan), 0.0, 0.0)

    model: nn.Module = method
    if world > 1:
        model = data_parallel(method, device)
    if train_config.compile:
        model.compile()  # in place: state_dict keys and the checkpoints stay the same
    source = image_source(images, device, train_config.data_on_device, train_config.workers)
    logger = MetricsLogger(run_dir) if main_process else None
    on_step_end = getattr(method, "on_step_end", None)
    started = time.perf_counter()
    measure_start = started
    images_seen = 0
    final_loss = math.nan
    progress = None
    if train_config.progress and main_process:
        from tqdm.auto import tqdm

        progress = tqdm(total=total_steps, initial=step, unit="step", dynamic_ncols=True)
    try:
        for epoch in range(start_epoch, train_config.epochs):
            method.train()
            order = torch.randperm(len(images), generator=generator)
            mine = slice(this_rank * local_batch, (this_rank + 1) * local_batch)
            step_indices = [
                order[index * batch_size : (index + 1) * batch_size][mine]
                for index in range(steps_per_epoch)
            ]
            epoch_loss = torch.zeros((), device=device)
            window_start, window_images = time.perf_counter(), 0
            for batch_index, (indices, batch) in enumerate(
                zip(step_indices, source.batches(step_indices), strict=True)
            ):
                views = [
                    view.contiguous(memory_format=memory_format) if view.ndim == 4 else view
                    for view in make_views(batch, indices, draws)
                ]
                lr_scale = warmup_cosine(step, total_steps, warmup_steps, 1.0, final_fraction)
                for group, base_lr in zip(optimizer.param_groups, base_lrs, strict=True):
                    group["lr"] = base_lr * lr_scale
                with autocast_context(train_config.precision, device):
                    loss = model(views)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if on_step_end is not None:
                    on_step_end(step, total_steps)
                epoch_loss += loss.detach()
                step += 1
                images_seen += batch_size
                window_images += batch_size
                if step % train_config.log_every == 0 or batch_index == steps_per_epoch - 1:
                    # The only host sync, every log_every steps (an all-reduce with processes).
                    loss_value = mean_over_processes(loss.detach()).item()
                    if not math.isfinite(loss_value):
                        _stop_non_finite(epoch, step, checkpoints)
                    rate = window_images / max(1e-9, time.perf_counter() - window_start)
                    window_start, window_images = time.perf_counter(), 0
                    lr_now = optimizer.param_groups[0]["lr"]
                    if logger is not None:
                        logger.log(
                            step,
                            {"loss": loss_value, "lr": lr_now, "img_per_s": rate, "epoch": epoch},
                        )
                    if progress is not None:
                        progress.set_postfix(
                            loss=f"{loss_value:.4f}", lr=f"{lr_now:.3g}", img_s=f"{rate:.0f}"
                        )
                if progress is not None:
                    progress.update(1)
                if budget is not None and not planned and step == measure_from:
                    measure_start = time.perf_counter()
                if budget is not None and not planned and step == measure_until:
                    total_steps = _plan_budget(
                        budget,
                        started,
                        measure_start,
                        step - measure_from,
                        step,
                        total_steps,
                        device,
                    )
                    planned = True
                    if progress is not None:
                        progress.total = total_steps
                if step >= total_steps:
                    break
            steps_this_epoch = max(1, batch_index + 1)
            final_loss = (mean_over_processes(epoch_loss) / steps_this_epoch).item()
            if not math.isfinite(final_loss):
                _stop_non_finite(epoch, step, checkpoints)
            if logger is not None:
                logger.log(step, {"epoch_loss": final_loss, "epoch": epoch + 1})
            if main_process:
                save_checkpoint(
                    {
                        "method": method.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "generator": generator.get_state(),
                        "epoch": epoch + 1,
                        "step": step,
                        "loss": final_loss,
                        "world_size": world,
                        "total_steps": total_steps if planned else None,
                    },
                    checkpoints,
                )
            if step >= total_steps:
                break
    finally:
        if progress is not None:
            progress.close()
        if logger is not None:
            logger.close()
    if global_norm:
        local_batch_norm(method)  # export and evaluation see ordinary batch norm
    seconds = time.perf_counter() - started
    epochs_done = math.ceil(step / steps_per_epoch)
    return TrainSummary(epochs_done, step, final_loss, images_seen / max(seconds, 1e-9), seconds)


def _plan_budget(
    budget: float,
    started: float,
    measure_start: float,
    timed_steps: int,
    step: int,
    cap: int,
    device: torch.device,
) -> int:
    """The run's total steps under a time budget, from the time of the last `timed_steps` steps
    (since `measure_start`); every process takes the mean estimate, so all agree."""
    now = time.perf_counter()
    seconds = [(now - measure_start) / max(1, timed_steps), now - started]
    timed = torch.tensor(seconds, device=device)
    step_seconds, elapsed = mean_over_processes(timed).tolist()
    total = steps_within_budget(budget, elapsed, step, step_seconds, cap)
    if rank() == 0:
        print(
            f"selfsup: time budget {budget:.0f} s: {step_seconds:.3f} s/step over {timed_steps} "
            f"steps -> {total} steps{' (the train.epochs cap)' if total == cap else ''}",
            file=sys.stderr,
            flush=True,
        )
    return total


def _stop_non_finite(epoch: int, step: int, checkpoints: Path) -> None:
    kept = (
        f"the last good checkpoint is kept in {checkpoints}"
        if has_checkpoint(checkpoints)
        else "no checkpoint had been written yet"
    )
    raise SelfsupError(
        f"loss became NaN/inf at epoch {epoch + 1}, step {step}; {kept}; lower --optim.lr or "
        "raise --method.temperature, then run again"
    )
