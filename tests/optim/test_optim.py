"""LARS against a hand-computed step; schedule endpoints; parameter groups; lr scaling."""

import itertools
import math

import pytest
import torch
from torch import nn

from selfsup.optim import LARS, param_groups, scaled_learning_rate, warmup_cosine


def test_lars_step_matches_hand_computation() -> None:
    weight = nn.Parameter(torch.tensor([[3.0, 4.0]]))  # ‖w‖ = 5
    bias = nn.Parameter(torch.tensor([1.0]))
    weight.grad = torch.tensor([[0.6, 0.8]])
    bias.grad = torch.tensor([0.5])
    lr, decay, eta, momentum = 0.1, 0.01, 0.001, 0.9
    optimizer = LARS(
        [{"params": [weight]}, {"params": [bias], "weight_decay": 0.0, "lars_exclude": True}],
        lr=lr,
        momentum=momentum,
        weight_decay=decay,
        trust_coefficient=eta,
        eps=0.0,
    )
    optimizer.step()
    direction = torch.tensor([[0.6 + 0.03, 0.8 + 0.04]])  # g + λw
    trust = eta * 5.0 / direction.norm()
    expected_weight = torch.tensor([[3.0, 4.0]]) - lr * trust * direction
    torch.testing.assert_close(weight.data, expected_weight)
    torch.testing.assert_close(bias.data, torch.tensor([1.0 - lr * 0.5]))  # plain SGD, no decay
    # Second step: momentum buffer v = μ·v + lr·trust·d.
    weight.grad = torch.tensor([[0.6, 0.8]])
    bias.grad = torch.tensor([0.5])
    previous = weight.data.clone()
    optimizer.step()
    direction2 = weight.grad + decay * previous
    trust2 = eta * previous.norm() / direction2.norm()
    velocity = momentum * lr * trust * direction + lr * trust2 * direction2
    torch.testing.assert_close(weight.data, previous - velocity)
    torch.testing.assert_close(
        bias.data, torch.tensor([1.0 - lr * 0.5 - (momentum * lr * 0.5 + lr * 0.5)])
    )


def test_param_groups_exclude_biases_and_norms() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    decay, no_decay = param_groups(model, weight_decay=1e-4)
    assert {p.ndim for p in decay["params"]} == {2, 4}
    assert all(p.ndim == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert no_decay["weight_decay"] == 0.0 and no_decay["lars_exclude"] is True


def test_warmup_cosine_endpoints() -> None:
    total, warmup, base = 100, 10, 2.0
    assert warmup_cosine(0, total, warmup, base) == pytest.approx(base / warmup)
    assert warmup_cosine(warmup - 1, total, warmup, base) == pytest.approx(base)
    assert warmup_cosine(warmup, total, warmup, base) == pytest.approx(base)
    assert warmup_cosine(total - 1, total, warmup, base) == pytest.approx(0.0, abs=1e-12)
    assert warmup_cosine(total - 1, total, warmup, base, final=0.1) == pytest.approx(0.1)
    middle = warmup + (total - 1 - warmup) / 2
    assert warmup_cosine(int(middle), total, warmup, base) == pytest.approx(
        base * 0.5 * (1 + math.cos(math.pi * (int(middle) - warmup) / (total - 1 - warmup)))
    )
    values = [warmup_cosine(s, total, warmup, base) for s in range(warmup, total)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_lr_scaling_rules() -> None:
    assert scaled_learning_rate(0.3, 512, "linear") == pytest.approx(0.6)
    assert scaled_learning_rate(0.075, 4096, "sqrt") == pytest.approx(0.075 * 64)
    assert scaled_learning_rate(0.1, 999, "none") == 0.1
    with pytest.raises(ValueError):
        scaled_learning_rate(0.1, 256, "cubic")
