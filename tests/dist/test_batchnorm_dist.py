"""Global batch norm: 2 processes on gloo normalise, back-propagate and track running statistics
as 1 process running plain BatchNorm on the concatenated batch; with 1 process it is plain BN;
converting a model to global BN and back keeps its state."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from selfsup.dist import GlobalBatchNorm, global_batch_norm, local_batch_norm

WORLD, LOCAL, CHANNELS, STEPS = 2, 3, 4, 2
SHAPES = {
    nn.BatchNorm1d: (WORLD * LOCAL, CHANNELS),
    nn.BatchNorm2d: (WORLD * LOCAL, CHANNELS, 3, 2),
}
MOMENTA = (0.1, None)


def _steps(shape: tuple[int, ...]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(global input, upstream gradient) per training step, float64, channels off-centre."""
    generator = torch.Generator().manual_seed(len(shape))
    per_channel = (1, CHANNELS) + (1,) * (len(shape) - 2)
    scale = torch.rand(per_channel, generator=generator, dtype=torch.float64) + 0.5
    shift = torch.randn(per_channel, generator=generator, dtype=torch.float64) * 3
    return [
        (
            torch.randn(shape, generator=generator, dtype=torch.float64) * scale + shift,
            torch.randn(shape, generator=generator, dtype=torch.float64),
        )
        for _ in range(STEPS)
    ]


def _layer(kind: type[nn.Module], momentum: float | None) -> nn.Module:
    layer = kind(CHANNELS, momentum=momentum).double()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        layer.weight.copy_(torch.rand(CHANNELS, generator=generator, dtype=torch.float64) + 0.5)
        layer.bias.copy_(torch.randn(CHANNELS, generator=generator, dtype=torch.float64))
    return layer


def _train(layer: nn.Module, steps, rows: slice) -> dict[str, object]:
    """Forward and backward of Σ out ⊙ g on `rows` of each step's batch; state after the steps."""
    record: dict[str, list[torch.Tensor]] = {"out": [], "grad_x": [], "grad_w": [], "grad_b": []}
    for x, upstream in steps:
        x = x[rows].clone().requires_grad_(True)
        layer.zero_grad()
        out = layer(x)
        (out * upstream[rows]).sum().backward()
        for key, value in zip(
            record, (out, x.grad, layer.weight.grad, layer.bias.grad), strict=True
        ):
            record[key].append(value.detach().clone())
    layer.eval()
    return {
        **record,
        "running_mean": layer.running_mean.clone(),
        "running_var": layer.running_var.clone(),
        "num_batches_tracked": layer.num_batches_tracked.clone(),
        "eval_out": layer(steps[0][0][rows]).detach(),
    }


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        rows = slice(rank * LOCAL, (rank + 1) * LOCAL)
        results = {}
        for kind, shape in SHAPES.items():
            for momentum in MOMENTA:
                layer = global_batch_norm(_layer(kind, momentum), "cpu")
                results[kind.__name__, momentum] = _train(layer, _steps(shape), rows)
        # bf16 input: statistics in float32, output back in bf16.
        low = GlobalBatchNorm(CHANNELS)(_steps(SHAPES[nn.BatchNorm2d])[0][0][rows].bfloat16())
        results["bf16"] = low.detach()
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.barrier()  # every rank done before any tears the group down
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def distributed(tmp_path_factory) -> list[dict]:
    out_dir = tmp_path_factory.mktemp("global_bn")
    mp.spawn(_worker, args=(str(out_dir / "init"), str(out_dir)), nprocs=WORLD, join=True)
    return [torch.load(out_dir / f"rank{rank}.pt") for rank in range(WORLD)]


@pytest.mark.parametrize("momentum", MOMENTA)
@pytest.mark.parametrize("kind", list(SHAPES))
def test_two_processes_match_plain_batch_norm_on_concatenated_batch(
    distributed: list[dict], kind: type[nn.Module], momentum: float | None
) -> None:
    """Rank r's loss is L_r = Σ out_r ⊙ g_r, so Σ_r L_r is the 1-process loss L = Σ out ⊙ g.

    all_reduce_with_grad sums every rank's gradient of the statistics, so rank r's input gradient
    is ∂(Σ_r' L_r')/∂x_r = ∂L/∂x_r: the 1-process rows, with no factor. Weight and bias act
    locally, so their gradients summed over ranks (before DDP's averaging) are ∂L/∂w, ∂L/∂b.
    """
    expected = _train(_layer(kind, momentum), _steps(SHAPES[kind]), slice(None))
    results = [result[kind.__name__, momentum] for result in distributed]
    close = {"rtol": 1e-10, "atol": 1e-10}  # float64: only the order of the sums differs
    for step in range(STEPS):
        for rank, result in enumerate(results):
            rows = slice(rank * LOCAL, (rank + 1) * LOCAL)
            torch.testing.assert_close(result["out"][step], expected["out"][step][rows], **close)
            torch.testing.assert_close(
                result["grad_x"][step], expected["grad_x"][step][rows], **close
            )
        for key in ("grad_w", "grad_b"):
            summed = sum(result[key][step] for result in results)
            torch.testing.assert_close(summed, expected[key][step], **close)
    for rank, result in enumerate(results):
        rows = slice(rank * LOCAL, (rank + 1) * LOCAL)
        for key in ("running_mean", "running_var"):
            torch.testing.assert_close(result[key], expected[key], **close)
        assert result["num_batches_tracked"].item() == STEPS
        torch.testing.assert_close(result["eval_out"], expected["eval_out"][rows], **close)


def test_bf16_input_is_normalised_globally_in_float32(distributed: list[dict]) -> None:
    x = _steps(SHAPES[nn.BatchNorm2d])[0][0].bfloat16().float()
    expected = nn.BatchNorm2d(CHANNELS)(x).detach()
    for rank, result in enumerate(distributed):
        assert result["bf16"].dtype == torch.bfloat16
        rows = slice(rank * LOCAL, (rank + 1) * LOCAL)
        # Only the output's bf16 rounding (8 bits of mantissa) separates the two.
        torch.testing.assert_close(result["bf16"].float(), expected[rows], rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("momentum", MOMENTA)
def test_one_process_is_plain_batch_norm_exactly(momentum: float | None) -> None:
    steps = _steps(SHAPES[nn.BatchNorm2d])
    ours = _train(global_batch_norm(_layer(nn.BatchNorm2d, momentum), "cpu"), steps, slice(None))
    expected = _train(_layer(nn.BatchNorm2d, momentum), steps, slice(None))
    for key, want in expected.items():
        pairs = zip(ours[key], want, strict=True) if isinstance(want, list) else [(ours[key], want)]
        assert all(torch.equal(a, b) for a, b in pairs), key


def test_eval_mode_normalises_with_the_running_statistics() -> None:
    layer = GlobalBatchNorm(CHANNELS, eps=1e-3).double().eval()
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(5, CHANNELS, 3, dtype=torch.float64, generator=generator)
    with torch.no_grad():
        for tensor in (layer.running_mean, layer.running_var, layer.weight, layer.bias):
            tensor.copy_(torch.rand(CHANNELS, dtype=torch.float64, generator=generator) + 0.1)
    expected = (x - layer.running_mean[:, None]) / (layer.running_var[:, None] + 1e-3).sqrt()
    expected = expected * layer.weight[:, None] + layer.bias[:, None]
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="2 or more dims"):
        layer(torch.randn(CHANNELS))


def _model() -> nn.Module:
    model = nn.Sequential(
        nn.BatchNorm1d(3),
        nn.Sequential(nn.BatchNorm2d(4, momentum=None), nn.BatchNorm3d(2, affine=False)),
        nn.BatchNorm2d(5, eps=1e-3, track_running_stats=False),
        nn.Linear(2, 2),
    ).double()
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, dtype=tensor.dtype, generator=generator))
            else:
                tensor.fill_(len(name))  # num_batches_tracked
    model[0].weight.requires_grad_(False)
    model[1].eval()
    return model


@pytest.mark.parametrize(
    ("device_type", "global_kind"), [("cpu", GlobalBatchNorm), ("cuda", nn.SyncBatchNorm)]
)
def test_conversion_round_trip_keeps_classes_state_and_keys(
    device_type: str, global_kind: type[nn.Module]
) -> None:
    model = _model()
    state = {key: value.clone() for key, value in model.state_dict().items()}
    parameters = list(model.parameters())
    plain = [
        (type(m), m.eps, m.momentum, m.affine, m.track_running_stats, m.training)
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]

    converted = global_batch_norm(model, device_type)
    assert converted is model  # in place below the root
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert [type(m) for m in norms] == [global_kind] * len(plain)
    assert [(m.eps, m.momentum, m.affine, m.track_running_stats, m.training) for m in norms] == [
        settings[1:] for settings in plain
    ]
    assert all(a is b for a, b in zip(model.parameters(), parameters, strict=True))
    assert not model[0].weight.requires_grad and model[2].weight.requires_grad
    assert list(model.state_dict()) == list(state)
    for key, value in model.state_dict().items():
        assert value.dtype == state[key].dtype and torch.equal(value, state[key]), key

    restored = local_batch_norm(model)
    assert restored is model
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert [
        (type(m), m.eps, m.momentum, m.affine, m.track_running_stats, m.training) for m in norms
    ] == plain
    assert all(a is b for a, b in zip(model.parameters(), parameters, strict=True))
    assert list(model.state_dict()) == list(state)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_a_batch_norm_root_is_replaced_and_unknown_classes_become_2d() -> None:
    root = nn.BatchNorm1d(3)
    converted = global_batch_norm(root, "cpu")
    assert type(converted) is GlobalBatchNorm and converted.weight is root.weight
    assert type(local_batch_norm(converted)) is nn.BatchNorm1d
    # Switching devices keeps the class to restore; layers of unknown origin become BatchNorm2d.
    assert type(local_batch_norm(global_batch_norm(converted, "cuda"))) is nn.BatchNorm1d
    assert type(local_batch_norm(GlobalBatchNorm(3))) is nn.BatchNorm2d
    assert type(local_batch_norm(nn.SyncBatchNorm(3))) is nn.BatchNorm2d
