"""SimCLR, and SimCLRv2's memory: momentum-encoded keys join the NT-Xent denominator."""

import pytest
import torch
import torch.nn.functional as F

from selfsup.losses import nt_xent_loss
from selfsup.methods import SimCLR
from selfsup.models import build_encoder


def _simclr(**kwargs) -> SimCLR:
    torch.manual_seed(0)
    options = {"head_widths": [16, 16, 8], "temperature": 0.2}
    return SimCLR(build_encoder("resnet18", base_width=4), **{**options, **kwargs})


def _views(seed: int, batch: int = 4) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, 16, 16, generator=generator) for _ in range(2)]


def _plain_loss(simclr: SimCLR, views: list[torch.Tensor]) -> torch.Tensor:
    projections = simclr.projection_head(simclr.encoder(torch.cat(views)))
    batch = views[0].shape[0]
    return nt_xent_loss(projections[:batch], projections[batch:], simclr.temperature)


def test_without_memory_it_is_nt_xent_over_one_pass() -> None:
    simclr = _simclr()
    views = _views(0)
    assert simclr.memory is None
    torch.testing.assert_close(simclr(views), _plain_loss(simclr, views))


def test_memory_starts_empty_then_adds_the_momentum_keys_as_negatives() -> None:
    simclr = _simclr(memory_size=12, momentum=0.9)
    first, second = _views(0), _views(1)
    # Step 1: the memory is empty, so the loss is plain NT-Xent.
    torch.testing.assert_close(simclr(first), _plain_loss(simclr, first))
    with torch.no_grad():
        keys = F.normalize(simclr.memory_head(simclr.memory_encoder(torch.cat(first))), dim=1)
    assert int(simclr.memory.filled) == 8
    torch.testing.assert_close(simclr.memory.ordered(), keys)
    # Step 2: the first batch's 2N keys are extra negatives.
    projections = simclr.projection_head(simclr.encoder(torch.cat(second)))
    expected = nt_xent_loss(projections[:4], projections[4:], 0.2, memory=keys)
    loss = simclr(second)
    torch.testing.assert_close(loss, expected)
    assert loss > _plain_loss(simclr, second)  # more negatives, larger denominator
    assert int(simclr.memory.filled) == 12  # full: 16 keys pushed into 12 slots


def test_memory_network_gets_no_gradient_and_follows_the_momentum_update() -> None:
    simclr = _simclr(memory_size=8, momentum=0.9)
    simclr(_views(0))
    simclr(_views(1)).backward()
    assert all(p.grad is None for p in simclr.memory_encoder.parameters())
    assert all(p.grad is None for p in simclr.memory_head.parameters())
    with torch.no_grad():
        for parameter in simclr.encoder.parameters():
            parameter.add_(1.0)
    before = [p.clone() for p in simclr.memory_encoder.parameters()]
    simclr.on_step_end(0, 10)
    for old, new, online in zip(
        before, simclr.memory_encoder.parameters(), simclr.encoder.parameters(), strict=True
    ):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * online)


def test_eval_mode_does_not_write_the_memory() -> None:
    simclr = _simclr(memory_size=8).eval()
    simclr(_views(0))
    assert int(simclr.memory.filled) == 0


def test_rejects_bad_memory_settings() -> None:
    with pytest.raises(ValueError, match="memory_size"):
        _simclr(memory_size=-1)
    with pytest.raises(ValueError, match="momentum"):
        _simclr(memory_size=4, momentum=1.5)
