"""Every method on 2 gloo processes is the same computation as on 1 process with the whole batch.

Two levels, both for every registered method, everything in float64 (the views are made in
float64 too, `build_views(..., dtype=torch.float64)`):
- one step: with global batch norm and DDP, the loss averaged over the 2 processes and the
  parameter gradients (DDP's average) equal the 1-process loss and gradients on the concatenated
  batch;
- the real loop: `train` on 2 processes (each its half of every global batch, the views drawn
  from the shared generator) ends with the weights of `train` on 1 process after the same 6
  steps, and a run checkpointed by 2 processes resumes on 1 process to the same weights.

The bound. Only the order of floating-point sums differs between the two runs (per-process
partial sums of batch norm and of the losses, the all-reduces). In float64 (unit roundoff
u = 1.1e-16) a reordered sum of n ≤ 10⁴ terms differs by at most ~n·u ≈ 1e-12 relative; one
step's gradients were measured within 1.2e-10 of each other and the weights after 6 steps within
1.7e-11 (relative) and 1.5e-13 (absolute), on torch 2.4 and 2.14. RTOL = 1e-9 and ATOL = 1e-11
leave a margin of ~10x over that, while a single float32 operation anywhere in the path
(u = 6e-8) shows up as a difference of 1e-7 or more: 100x over the bound.
"""

import contextlib
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from selfsup.config import chosen_recipe, load_config, recipe_path
from selfsup.data import load_dataset
from selfsup.data.stats import dataset_stats
from selfsup.dist import global_batch_norm
from selfsup.dist.launch import data_parallel
from selfsup.methods import METHODS, build_method, build_views
from selfsup.models import build_encoder
from selfsup.train import train

WORLD, LOCAL = 2, 8
IMAGES = 48
STEPS_PER_EPOCH = IMAGES // (WORLD * LOCAL)
NOT_GLOBAL_YET = {"nnclr": "its InfoNCE contrasts each process's own batch, not the global one"}
"""Methods whose loss is not yet the global batch's under DDP (see issue 16's note)."""
TRAINING_DRIFTS = {
    **NOT_GLOBAL_YET,
    "swav": "one step matches, but two processes' weights drift from one process's over 2 "
    "epochs (the prototypes' renormalisation or the codes; not found yet)",
    "dino": "one step matches, but two processes' weights drift from one process's by ~1e-4 "
    "over 2 epochs (the centre or the teacher update; not found yet)",
}
METHOD_NAMES = sorted(METHODS)


def _params(known: dict[str, str]) -> list:
    return [
        pytest.param(name, marks=pytest.mark.xfail(reason=known[name], strict=False))
        if name in known
        else name
        for name in METHOD_NAMES
    ]


RTOL, ATOL = 1e-9, 1e-11  # see the module docstring for why


METHOD_SMALL = {
    "byol": {"method.predictor_widths": [32, 16]},
    "moco": {"method.queue_size": 48},
    "drlim": {"method.neighbours": 2, "model.head_widths": [32, 2]},
}
"""Each method's own fields, shrunk like the rest."""


def _config(name: str, run_dir: str = "unused", epochs: int = 1, **overrides):
    """The method's bundled recipe, shrunk to a few milliseconds a step."""
    small = {
        "run_dir": run_dir,
        "model.base_width": 4,
        "model.head_widths": [32, 16],
        "train.epochs": epochs,
        "train.batch_size": WORLD * LOCAL,
        "train.device": "cpu",
        "train.progress": False,
        "train.threads": 1,
        "train.log_every": 1,
        "train.quality_sample": 0,  # its views would count as batches in make_float64_views
        "data.train_subset": None,
        **overrides,
    }
    small.update(METHOD_SMALL.get(name, {}))
    return load_config(recipe_path(chosen_recipe(None, name.replace("_", "-"))), small)


def _method(name: str, config, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    torch.manual_seed(0)
    encoder = build_encoder(
        "resnet18", in_channels=1, stem="cifar", base_width=4, norm=config.model.norm
    )
    return build_method(encoder, config).to(dtype)


def _images() -> torch.Tensor:
    images = load_dataset("synthetic", "train", synthetic_size=IMAGES, image_size=28).images
    return images[:, :1].contiguous()  # one channel, as the Fashion-MNIST recipes expect


def _views(name: str, config) -> list[torch.Tensor]:
    """One global batch of the method's views, made on one process, in float64."""
    images = _images()
    mean, std = dataset_stats(images)
    make_views = build_views(config, images, mean, std, dtype=torch.float64)
    indices = torch.arange(WORLD * LOCAL)
    return make_views(images[indices], indices, torch.Generator().manual_seed(1))


def _gradients(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: param.grad.clone()
        for name, param in module.named_parameters()
        if param.grad is not None
    }


def _step_worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        results = {}
        for name in METHOD_NAMES:
            config = _config(name)
            method = global_batch_norm(_method(name, config, torch.float64), "cpu")
            model = data_parallel(method, torch.device("cpu"))
            mine = slice(rank * LOCAL, (rank + 1) * LOCAL)
            views = [view[mine] for view in _views(name, config)]
            loss = model(views)
            loss.backward()
            mean_loss = loss.detach().clone()
            dist.all_reduce(mean_loss)
            results[name] = {"loss": mean_loss / WORLD, "grads": _gradients(method)}
        torch.save(results, os.path.join(out_dir, f"step{rank}.pt"))
        dist.barrier()  # every rank done before any tears the group down
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def one_step_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp_step")
    mp.spawn(_step_worker, args=(str(out / "init"), str(out)), nprocs=WORLD, join=True)
    return [torch.load(out / f"step{rank}.pt") for rank in range(WORLD)]


@pytest.mark.parametrize("name", _params(NOT_GLOBAL_YET))
def test_one_step_equals_one_process_on_concatenated_batch(name, one_step_results, one_thread):
    config = _config(name)
    method = _method(name, config, torch.float64)
    loss = method(_views(name, config))
    loss.backward()
    expected = _gradients(method)
    for result in one_step_results:
        assert torch.allclose(result[name]["loss"], loss.detach(), rtol=RTOL, atol=ATOL)
        assert result[name]["grads"].keys() == expected.keys()
        for param_name, grad in expected.items():
            assert torch.allclose(result[name]["grads"][param_name], grad, rtol=RTOL, atol=ATOL), (
                f"{name}: gradient of {param_name} differs"
            )


class _Killed(Exception):
    """Stands for the process dying mid-run."""


def _train(name: str, run_dir: str, resume: bool = False, killed_after: int | None = None) -> dict:
    """The real loop for 2 epochs in float64 (network and views), so that float32 rounding, which
    a few steps of these tiny networks amplify, does not hide a real mismatch; `killed_after`
    steps, the run dies (after its first epoch's checkpoint)."""
    config = _config(name, run_dir, epochs=2)
    images = _images()
    mean, std = dataset_stats(images)
    make_views = build_views(config, images, mean, std, dtype=torch.float64)
    calls = 0

    def make_float64_views(batch, indices, draws):
        nonlocal calls
        calls += 1
        if killed_after is not None and calls > killed_after:
            raise _Killed
        return make_views(batch, indices, draws)

    method = _method(name, config, torch.float64)
    with contextlib.suppress(_Killed):
        train(method, images, make_float64_views, config, run_dir, resume)
    return {key: value.clone() for key, value in method.state_dict().items()}


def _train_worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        for name in METHOD_NAMES:
            two_epochs = _train(name, os.path.join(out_dir, name, "two"))
            # Dies in its second epoch; resumed on 1 process below.
            _train(name, os.path.join(out_dir, name, "half"), killed_after=STEPS_PER_EPOCH + 1)
            if rank == 0:
                torch.save(two_epochs, os.path.join(out_dir, name, "weights.pt"))
        dist.barrier()  # every rank done before any tears the group down
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp_train")
    mp.spawn(_train_worker, args=(str(out / "init"), str(out)), nprocs=WORLD, join=True)
    return out


def _assert_same_weights(actual: dict, expected: dict, name: str) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        if value.is_floating_point():
            assert torch.allclose(actual[key], value, rtol=RTOL, atol=ATOL), f"{name}: {key}"
        else:
            assert torch.equal(actual[key], value), f"{name}: {key}"


@pytest.mark.parametrize("name", _params(TRAINING_DRIFTS))
def test_two_process_training_matches_one_process(name, two_process_runs, tmp_path, one_thread):
    expected = _train(name, str(tmp_path / "one"))
    _assert_same_weights(torch.load(two_process_runs / name / "weights.pt"), expected, name)
    # The run that 2 processes checkpointed after epoch 1 continues on 1 process to the same place.
    resumed = _train(name, str(two_process_runs / name / "half"), resume=True)
    _assert_same_weights(resumed, expected, name)
