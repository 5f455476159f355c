"""The shared momentum pieces: the update formula, BYOL's schedule, freezing, the key queue."""

import copy
import itertools
import math

import pytest
import torch
from torch import nn

from selfsup.methods import KeyQueue, cosine_momentum, freeze, momentum_copy, update_momentum


def _pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    target = momentum_copy(online)
    with torch.no_grad():
        for parameter in online.parameters():
            parameter.add_(torch.randn_like(parameter))
    return online, target


@pytest.mark.parametrize("momentum", [0.0, 0.9, 0.999, 1.0])
def test_update_momentum_matches_formula(momentum: float) -> None:
    online, target = _pair()
    before = copy.deepcopy(target)
    target.get_submodule("1").running_mean.fill_(7.0)  # buffers are left alone
    update_momentum(target, online, momentum)
    for new, old, theta in zip(
        target.parameters(), before.parameters(), online.parameters(), strict=True
    ):
        torch.testing.assert_close(new, momentum * old + (1 - momentum) * theta)
    assert torch.all(target.get_submodule("1").running_mean == 7.0)
    with pytest.raises(ValueError, match="momentum"):
        update_momentum(target, online, 1.5)


def test_momentum_copy_is_frozen_and_independent() -> None:
    online, target = _pair()
    assert all(not p.requires_grad for p in target.parameters())
    assert all(p.requires_grad for p in online.parameters())
    assert all(
        a.data_ptr() != b.data_ptr()
        for a, b in zip(online.parameters(), target.parameters(), strict=True)
    )
    assert freeze(online) is online and not any(p.requires_grad for p in online.parameters())


def test_cosine_momentum_endpoints_and_midpoint() -> None:
    assert cosine_momentum(0, 100, 0.996) == pytest.approx(0.996)
    assert cosine_momentum(100, 100, 0.996) == pytest.approx(1.0)
    assert cosine_momentum(50, 100, 0.996) == pytest.approx(1 - 0.004 * 0.5)
    values = [cosine_momentum(k, 100, 0.99) for k in range(101)]
    assert all(b >= a for a, b in itertools.pairwise(values))
    assert cosine_momentum(25, 100, 0.9) == pytest.approx(1 - 0.1 * (math.cos(math.pi / 4) + 1) / 2)


@pytest.mark.parametrize(("size", "batch"), [(8, 4), (10, 4), (6, 7), (5, 5), (7, 3)])
def test_queue_holds_exactly_the_last_k_keys_in_order(size: int, batch: int) -> None:
    queue = KeyQueue(size, 3, generator=torch.Generator().manual_seed(0))
    initial = queue.ordered().clone()
    assert torch.allclose(initial.norm(dim=1), torch.ones(size))
    pushed = []
    for step in range(5):
        keys = torch.full((batch, 3), float(step)) + torch.arange(batch)[:, None] / 100
        queue.enqueue(keys)
        pushed.append(keys)
        history = torch.cat([initial, *pushed])
        torch.testing.assert_close(queue.ordered(), history[-size:])
    assert queue.keys.shape == (size, 3)


def test_queue_is_saved_in_the_state_dict() -> None:
    queue = KeyQueue(4, 2)
    queue.enqueue(torch.ones(3, 2))
    restored = KeyQueue(4, 2)
    restored.load_state_dict(queue.state_dict())
    torch.testing.assert_close(restored.ordered(), queue.ordered())
    assert int(restored.pointer) == 3


@pytest.mark.parametrize(("size", "batch"), [(8, 3), (6, 7)])
def test_an_empty_queue_fills_up_then_holds_the_last_k_keys(size: int, batch: int) -> None:
    queue = KeyQueue(size, 2, start_empty=True)
    assert int(queue.filled) == 0 and queue.ordered().shape == (0, 2)
    pushed = []
    for step in range(4):
        keys = torch.full((batch, 2), float(step)) + torch.arange(batch)[:, None] / 100
        queue.enqueue(keys)
        pushed.append(keys)
        history = torch.cat(pushed)
        assert int(queue.filled) == min(size, len(history))
        torch.testing.assert_close(queue.ordered(), history[-size:])
        # until it is full, the keys written so far are the leading rows
        filled = int(queue.filled)
        torch.testing.assert_close(
            queue.keys[:filled].sort(0).values, history[-filled:].sort(0).values
        )
