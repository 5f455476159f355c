"""MoCo: InfoNCE of queries against keys and the queue; the key encoder is a frozen momentum copy
moved only by `on_step_end`; the queue holds the last K keys."""

import pytest
import torch
import torch.nn.functional as F

from selfsup.losses import info_nce_loss
from selfsup.methods import MoCo
from selfsup.models import build_encoder


def _moco(**kwargs) -> MoCo:
    torch.manual_seed(0)
    options = {"head_widths": [16, 8], "temperature": 0.2, "momentum": 0.9, "queue_size": 10}
    return MoCo(build_encoder("resnet18", base_width=4), **{**options, **kwargs})


def _views(seed: int, batch: int = 4) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, 16, 16, generator=generator) for _ in range(2)]


def test_loss_is_info_nce_against_the_queue_before_this_batch() -> None:
    moco = _moco()
    views = _views(0)
    queue_before = moco.queue.keys.clone()
    loss = moco(views)
    # Train-mode BN uses batch statistics, so recomputing gives the same embeddings.
    queries = moco.projection_head(moco.encoder(views[0]))
    keys = F.normalize(moco.key_head(moco.key_encoder(views[1])), dim=1)
    torch.testing.assert_close(loss, info_nce_loss(queries, keys, queue_before, 0.2))


def test_key_encoder_gets_no_gradient_and_moves_by_the_momentum_formula() -> None:
    moco = _moco()
    optimizer = torch.optim.SGD([p for p in moco.parameters() if p.requires_grad], lr=0.5)
    key_before = [p.clone() for p in moco.key_encoder.parameters()]
    moco(_views(0)).backward()
    assert all(p.grad is None for p in moco.key_encoder.parameters())
    assert all(p.grad is None for p in moco.key_head.parameters())
    optimizer.step()
    # Before on_step_end the key encoder has not moved, whatever the optimiser did.
    for before, now in zip(key_before, moco.key_encoder.parameters(), strict=True):
        assert torch.equal(before, now)
    moco.on_step_end(0, 10)
    for before, now, query in zip(
        key_before, moco.key_encoder.parameters(), moco.encoder.parameters(), strict=True
    ):
        torch.testing.assert_close(now, 0.9 * before + 0.1 * query)


def test_queue_holds_the_last_k_keys_after_several_steps() -> None:
    moco = _moco(queue_size=10)  # 4 keys per step: the queue wraps around mid-batch
    initial = moco.queue.ordered().clone()
    seen = []
    for step in range(4):
        views = _views(step)
        with torch.no_grad():
            # The keys this step will enqueue: computed by the same key encoder, in train mode.
            keys = moco.keys(views[1])
        moco(views)
        seen.append(keys)
        moco.on_step_end(step, 4)
        torch.testing.assert_close(moco.queue.ordered(), torch.cat([initial, *seen])[-10:])


def test_eval_mode_leaves_the_queue_alone_and_v1_head_is_linear() -> None:
    moco = _moco()
    moco.eval()
    before = moco.queue.keys.clone()
    moco(_views(0))
    assert torch.equal(before, moco.queue.keys)
    v1 = _moco(head_widths=[8])
    assert len(v1.projection_head.layers) == 1
    with pytest.raises(ValueError, match="2 views"):
        moco(_views(0)[:1])


def test_symmetric_loss_averages_both_directions_and_enqueues_both_keys() -> None:
    moco = _moco(symmetric=True, queue_size=16)
    views = _views(0)
    queue_before = moco.queue.keys.clone()
    loss = moco(views)
    queries = moco.projection_head(moco.encoder(torch.cat(views)))
    keys = F.normalize(moco.key_head(moco.key_encoder(torch.cat([views[1], views[0]]))), dim=1)
    expected = (
        info_nce_loss(queries[:4], keys[:4], queue_before, 0.2)
        + info_nce_loss(queries[4:], keys[4:], queue_before, 0.2)
    ) / 2
    torch.testing.assert_close(loss, expected)
    assert int(moco.queue.pointer) == 8
