"""Every loss that casts, fed bf16 (what autocast hands it), returns a float32 loss and bf16
gradients of its inputs.

Losses that cast their inputs first equal the float32 loss of the same (bf16-rounded) values.
NT-Xent and CPC keep the similarity matmul in the inputs' dtype (under autocast that matmul is
what bf16 speeds up) and cast the logits before the softmax; their loss is within the bound that
one bf16 rounding of each logit allows: |Δlogit| <= |logit| 2^-8, and the loss (a log-sum-exp
minus a logit) moves by at most twice the largest |Δlogit|. The bound is taken 2x looser, so it
holds for any build that rounds a matmul's result to bf16 once."""

import pytest
import torch

from selfsup.losses import (
    barlow_twins_loss,
    cpc_info_nce,
    distillation_loss,
    drlim_batch_loss,
    info_nce_loss,
    negative_cosine_loss,
    nt_xent_loss,
)

BF16_ROUNDING = 2.0**-8  # relative error of one rounding to bf16 (8 significand bits)


def _inputs(*shapes: tuple[int, ...]) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    return [torch.randn(*shape, generator=generator) for shape in shapes]


def _nt_xent_bound(a: torch.Tensor, b: torch.Tensor) -> float:
    return 4 * BF16_ROUNDING / 0.2  # normalised embeddings: |logit| <= 1 / τ


def _cpc_bound(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    largest = predictions.float().norm(dim=-1).max() * targets.float().norm(dim=-1).max()
    return 4 * BF16_ROUNDING * largest.item()  # |p·t| <= |p| |t|, τ = 1


# name: (loss, input shapes, which inputs get gradients, None or the bound of bf16 logits)
CASES = {
    "info_nce": (lambda *x: info_nce_loss(*x, 0.2), [(8, 16), (8, 16), (32, 16)], 3, None),
    "negative_cosine": (negative_cosine_loss, [(8, 16), (8, 16)], 2, None),
    "barlow_twins": (lambda a, b: barlow_twins_loss(a, b, 5e-3), [(8, 16), (8, 16)], 2, None),
    "drlim_batch": (lambda a, b: drlim_batch_loss(a, b, 1.0), [(8, 2), (8, 2)], 2, None),
    "distillation": (lambda s, t: distillation_loss(s, t, 2.0), [(8, 10), (8, 10)], 1, None),
    "nt_xent": (lambda a, b: nt_xent_loss(a, b, 0.2), [(8, 16), (8, 16)], 2, _nt_xent_bound),
    "cpc": (lambda p, t: cpc_info_nce(p, t, 1), [(2, 3, 4, 8), (2, 4, 4, 8)], 2, _cpc_bound),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_bf16_inputs_give_a_float32_loss_and_bf16_gradients(name: str) -> None:
    loss_fn, shapes, with_grad, logit_bound = CASES[name]
    low = [x.bfloat16().requires_grad_() for x in _inputs(*shapes)]
    full = [x.detach().float().requires_grad_() for x in low]  # the same values, exactly
    low_loss, full_loss = loss_fn(*low), loss_fn(*full)
    assert low_loss.dtype == torch.float32, name
    assert torch.isfinite(low_loss)
    if logit_bound is None:
        # The same float32 arithmetic on the same values; only the order of sums may differ.
        torch.testing.assert_close(low_loss, full_loss, rtol=1e-5, atol=1e-6)
    else:
        assert abs(low_loss.item() - full_loss.item()) <= logit_bound(*low), name
    low_loss.backward()
    full_loss.backward()
    for x_low, x_full in zip(low[:with_grad], full[:with_grad], strict=True):
        assert x_low.grad is not None and x_low.grad.dtype == torch.bfloat16
        assert torch.isfinite(x_low.grad).all()
        if logit_bound is None:
            # The float32 gradient rounded once to bf16: within 2^-8 relative (2^-7 to spare).
            torch.testing.assert_close(
                x_low.grad.float(), x_full.grad, rtol=2 * BF16_ROUNDING, atol=1e-7
            )
    for x_low in low[with_grad:]:
        assert x_low.grad is None  # detached inside the loss (distillation's teacher)
