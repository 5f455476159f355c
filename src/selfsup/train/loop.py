"""The one explicit training loop: it knows optimisation, not which method it runs.

Per step: draw a batch of uint8 images (kept on the device, or copied there one step ahead),
let the view maker turn it into normalised inputs there, `loss = method(views)`, backward,
optimiser step, then `method.on_step_end(step, total_steps)` if the method has one (momentum
targets, EMA schedules). With several processes each runs this loop on its share of every global
batch (see `train`). Per epoch: an atomic checkpoint that `--resume` restores exactly (weights,
optimiser, step, and the random generator that drives shuffling and views).
"""

from __future__ import annotations

import math
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
from selfsup.optim.schedules import warmup_cosine
from selfsup.train.allocator import keep_freed_cpu_memory
from selfsup.train.batches import image_source
from selfsup.train.budget import (
    MEASURE_AFTER,
    MEASURE_STEPS,
    Schedule,
    follow_budget,
    parse_duration,
)
from selfsup.train.checkpoint import (
    has_checkpoint,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)
from selfsup.train.metrics import MetricsLogger
from selfsup.train.monitor import quality_probe
from selfsup.train.setup import autocast_context, build_optimizer, resolve_device


@dataclass
class TrainSummary:
    """What a finished (or resumed-and-finished) run reports."""

    epochs: int
    steps: int
    final_loss: float
    images_per_second: float
    seconds: float


@dataclass
class _Run:
    """What the loop carries from step to step: the networks, optimiser and random stream."""

    method: nn.Module
    model: nn.Module  # the method, or its DDP wrapper (compiled in place if asked)
    optimizer: torch.optim.Optimizer
    base_lrs: list[float]
    generator: torch.Generator  # shared by every process: sample order and views
    draws: torch.Generator | ShardedDraws
    device: torch.device
    memory_format: torch.memory_format
    world: int
    rank: int
    global_norm: bool
    checkpoints: Path
    epoch: int = 0
    step: int = 0


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
    train_config = config.train
    run_dir = Path(run_dir)
    run, schedule = _set_up(method, images, config, run_dir / "checkpoints")
    if resume:
        finished = _resume(run, schedule, train_config.epochs)
        if finished is not None:
            return finished
    if run.world > 1:
        run.model = data_parallel(method, run.device)
    if train_config.compile:
        run.model.compile()  # in place: state_dict keys and the checkpoints stay the same
    source = image_source(images, run.device, train_config.data_on_device, train_config.workers)
    logger = MetricsLogger(run_dir) if run.rank == 0 else None
    progress = None
    if train_config.progress and run.rank == 0:
        from tqdm.auto import tqdm

        progress = tqdm(
            total=schedule.total_steps, initial=run.step, unit="step", dynamic_ncols=True
        )
    started = time.perf_counter()
    schedule.measure_start = started
    start_step, final_loss = run.step, math.nan
    try:
        for epoch in range(run.epoch, train_config.epochs):
            final_loss = _train_epoch(
                run, schedule, source, len(images), make_views, config, logger, progress, started
            )
            run.epoch = epoch + 1
            if not math.isfinite(final_loss):
                _stop_non_finite(epoch, run.step, run.checkpoints)
            if logger is not None:
                logger.log(run.step, {"epoch_loss": final_loss, "epoch": run.epoch})
                quality = quality_probe(
                    method, images, make_views, train_config.quality_sample, run.device,
                    run.memory_format,
                )  # fmt: skip
                if quality:
                    logger.log(run.step, quality)
            if run.rank == 0:
                _save(run, schedule, final_loss)
            if run.step >= schedule.total_steps:
                break
    finally:
        if progress is not None:
            progress.close()
        if logger is not None:
            logger.close()
    if run.global_norm:
        local_batch_norm(method)  # export and evaluation see ordinary batch norm
    seconds = time.perf_counter() - started
    images_seen = (run.step - start_step) * train_config.batch_size
    epochs_done = math.ceil(run.step / schedule.steps_per_epoch)
    return TrainSummary(
        epochs_done, run.step, final_loss, images_seen / max(seconds, 1e-9), seconds
    )


def _set_up(
    method: nn.Module,
    images: torch.Tensor | torch.utils.data.Dataset,
    config: Any,
    checkpoints: Path,
) -> tuple[_Run, Schedule]:
    """Device, threads, the step schedule, seeds, global BN, placement and the optimiser."""
    train_config, optim_config = config.train, config.optim
    device = init_from_env(resolve_device(train_config.device))
    world, this_rank = world_size(), rank()
    if train_config.threads:
        torch.set_num_threads(train_config.threads)
    if device.type == "cpu" and train_config.keep_cpu_memory:
        keep_freed_cpu_memory()  # see selfsup.train.allocator: 1.7x faster steps on 2 cores
    batch_size = train_config.batch_size  # global: the same schedule on any number of processes
    if batch_size > len(images):
        raise SelfsupError(
            f"batch size {batch_size} is larger than the dataset ({len(images)} images); "
            f"use --train.batch_size {max(1, len(images) // 2)} or less"
        )
    steps_per_epoch = len(images) // batch_size  # drop the ragged last batch: BN needs full batches
    total_steps = steps_per_epoch * train_config.epochs
    schedule = Schedule(
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        cap=total_steps,
        warmup_steps=min(total_steps, round(optim_config.warmup_epochs * steps_per_epoch)),
        budget=None
        if train_config.time_budget is None
        else parse_duration(train_config.time_budget),
    )
    torch.manual_seed(train_config.seed + this_rank)  # anything random outside the views
    generator = torch.Generator().manual_seed(train_config.seed)
    global_norm = world > 1 and train_config.sync_batchnorm
    if global_norm:
        global_batch_norm(method, device.type)
    method.to(device)
    memory_format = torch.channels_last if train_config.channels_last else torch.contiguous_format
    method.to(memory_format=memory_format)
    optimizer = build_optimizer(method, optim_config, batch_size)
    run = _Run(
        method=method,
        model=method,
        optimizer=optimizer,
        base_lrs=[group["lr"] for group in optimizer.param_groups],
        generator=generator,
        draws=generator if world == 1 else ShardedDraws(generator, this_rank, world),
        device=device,
        memory_format=memory_format,
        world=world,
        rank=this_rank,
        global_norm=global_norm,
        checkpoints=checkpoints,
    )
    return run, schedule


def _resume(run: _Run, schedule: Schedule, epochs: int) -> TrainSummary | None:
    """Restore the newest checkpoint that loads; a summary if that run had already finished."""
    state = load_checkpoint(run.checkpoints)
    load_model_state(run.method, state["method"], run.checkpoints)
    run.optimizer.load_state_dict(state["optimizer"])
    run.generator.set_state(state["generator"])
    run.epoch, run.step = state["epoch"], state["step"]
    if schedule.budget is not None and state.get("total_steps") is not None:
        schedule.total_steps = min(schedule.total_steps, int(state["total_steps"]))
        schedule.planned = True  # the schedule it was on
        schedule.final = state.get("budget_final", True)
        if not schedule.final:  # time again from here for the next plan
            schedule.plans = int(state["budget_plans"])
            schedule.measure_from = run.step
            schedule.replan_at = max(int(state["replan_at"]), run.step + MEASURE_STEPS)
    elif schedule.budget is not None:  # stopped before planning: plan for the budget from here
        schedule.measure_from = run.step + MEASURE_AFTER
        schedule.measure_until = run.step + MEASURE_AFTER + MEASURE_STEPS
    if run.epoch < epochs and run.step < schedule.total_steps:
        return None
    if run.global_norm:
        local_batch_norm(run.method)
    return TrainSummary(run.epoch, run.step, state.get("loss", math.nan), 0.0, 0.0)


def _train_epoch(
    run: _Run,
    schedule: Schedule,
    source: Any,
    num_images: int,
    make_views: ViewMaker,
    config: Any,
    logger: MetricsLogger | None,
    progress: Any,
    started: float,
) -> float:
    """One pass over a fresh permutation (or until the schedule ends); the mean loss."""
    train_config = config.train
    batch_size = train_config.batch_size
    local_batch = local_share(batch_size)
    run.method.train()
    order = torch.randperm(num_images, generator=run.generator)
    mine = slice(run.rank * local_batch, (run.rank + 1) * local_batch)
    step_indices = [
        order[index * batch_size : (index + 1) * batch_size][mine]
        for index in range(schedule.steps_per_epoch)
    ]
    epoch_loss = torch.zeros((), device=run.device)
    window_start, window_images = time.perf_counter(), 0
    steps = 0
    for indices, batch in zip(step_indices, source.batches(step_indices), strict=True):
        views = [
            view.contiguous(memory_format=run.memory_format) if view.ndim == 4 else view
            for view in make_views(batch, indices, run.draws)
        ]
        loss = _step(run, schedule, views, config)
        epoch_loss += loss.detach()
        steps += 1
        window_images += batch_size
        if run.step % train_config.log_every == 0 or steps == schedule.steps_per_epoch:
            # The only host sync, every log_every steps (an all-reduce with processes).
            loss_value = mean_over_processes(loss.detach()).item()
            if not math.isfinite(loss_value):
                _stop_non_finite(run.epoch, run.step, run.checkpoints)
            rate = window_images / max(1e-9, time.perf_counter() - window_start)
            window_start, window_images = time.perf_counter(), 0
            lr_now = run.optimizer.param_groups[0]["lr"]
            if logger is not None:
                record = {"loss": loss_value, "lr": lr_now, "img_per_s": rate, "epoch": run.epoch}
                logger.log(run.step, record)
            if progress is not None:
                progress.set_postfix(
                    loss=f"{loss_value:.4f}", lr=f"{lr_now:.3g}", img_s=f"{rate:.0f}"
                )
        if progress is not None:
            progress.update(1)
        if schedule.budget is not None and not schedule.final:
            follow_budget(schedule, run.step, started, run.device, progress)
        if run.step >= schedule.total_steps:
            break
    return (mean_over_processes(epoch_loss) / max(1, steps)).item()


def _step(run: _Run, schedule: Schedule, views: list[torch.Tensor], config: Any) -> torch.Tensor:
    """One optimiser step at the schedule's learning rate, then the method's own update."""
    lr_scale = warmup_cosine(
        run.step, schedule.total_steps, schedule.warmup_steps, 1.0, config.optim.final_lr_fraction
    )
    for group, base_lr in zip(run.optimizer.param_groups, run.base_lrs, strict=True):
        group["lr"] = base_lr * lr_scale
    with autocast_context(config.train.precision, run.device):
        loss = run.model(views)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    on_step_end = getattr(run.method, "on_step_end", None)
    if on_step_end is not None:
        on_step_end(run.step, schedule.total_steps)
    run.step += 1
    return loss


def _save(run: _Run, schedule: Schedule, loss: float) -> None:
    """The end-of-epoch checkpoint: everything `_resume` needs to continue exactly."""
    save_checkpoint(
        {
            "method": run.method.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "generator": run.generator.get_state(),
            "epoch": run.epoch,
            "step": run.step,
            "loss": loss,
            "world_size": run.world,
            "total_steps": schedule.total_steps if schedule.planned else None,
            "budget_final": schedule.final,
            "budget_plans": schedule.plans,
            "replan_at": schedule.replan_at,
        },
        run.checkpoints,
    )


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
