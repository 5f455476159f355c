"""DrLIM's loss against a float64 loop written straight from Eq. (4) of Hadsell et al. 2006."""

import pytest
import torch

from selfsup.losses import DrLIMLoss, drlim_batch_loss, drlim_margin_loss


def reference_drlim(
    x_a: torch.Tensor, x_b: torch.Tensor, dissimilar: list[bool], margin: float
) -> torch.Tensor:
    """L = (1 − Y) ½ D² + Y ½ max(0, m − D)², D the Euclidean distance, averaged over pairs."""
    total = 0.0 * (x_a.sum() + x_b.sum())  # in the graph even if every term below vanishes
    for i, y in enumerate(dissimilar):
        distance = sum((x_a[i, d] - x_b[i, d]) ** 2 for d in range(x_a.shape[1])) ** 0.5
        loss_similar = 0.5 * distance**2  # L_S
        loss_dissimilar = 0.5 * max(0.0, margin - distance) ** 2  # L_D
        total = total + (loss_dissimilar if y else loss_similar)
    return total / len(dissimilar)


@pytest.mark.parametrize("pairs", [1, 4, 9])
@pytest.mark.parametrize("margin", [0.5, 1.0, 2.5])
@pytest.mark.parametrize("dim", [2, 5])
def test_matches_reference_values_and_gradients(pairs: int, margin: float, dim: int) -> None:
    generator = torch.Generator().manual_seed(pairs * 100 + dim * 10 + int(margin * 2))
    x_a = torch.randn(pairs, dim, dtype=torch.float64, generator=generator, requires_grad=True)
    x_b = torch.randn(pairs, dim, dtype=torch.float64, generator=generator, requires_grad=True)
    dissimilar = torch.rand(pairs, generator=generator) < 0.5
    ours = drlim_margin_loss(x_a, x_b, dissimilar, margin)
    grads = torch.autograd.grad(ours, (x_a, x_b))
    expected = reference_drlim(x_a, x_b, dissimilar.tolist(), margin)
    expected_grads = torch.autograd.grad(expected, (x_a, x_b))
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, expected)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want)


def reference_drlim_batch(anchors: torch.Tensor, partners: torch.Tensor, margin: float):
    """The batch loss as the DrLIM method defines it, pair by pair: the mean L_S over the B
    similar pairs (a_i, b_i) plus the mean L_D over the B(B − 1) cross pairs (a_i, b_j), j ≠ i."""
    batch = anchors.shape[0]
    similar = reference_drlim(anchors, partners, [False] * batch, margin)
    rows = [i for i in range(batch) for j in range(batch) if j != i]
    columns = [j for i in range(batch) for j in range(batch) if j != i]
    dissimilar = reference_drlim(anchors[rows], partners[columns], [True] * len(rows), margin)
    return similar + dissimilar


@pytest.mark.parametrize("batch", [2, 3, 7])
@pytest.mark.parametrize("margin", [0.5, 2.0])
def test_batch_loss_matches_reference_values_and_gradients(batch: int, margin: float) -> None:
    generator = torch.Generator().manual_seed(batch * 10 + int(margin))
    anchors = torch.randn(batch, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    partners = torch.randn(batch, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    ours = drlim_batch_loss(anchors, partners, margin)
    expected = reference_drlim_batch(anchors, partners, margin)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12)
    got = torch.autograd.grad(ours, (anchors, partners))
    want = torch.autograd.grad(expected, (anchors, partners))
    for ours_grad, reference_grad in zip(got, want, strict=True):
        torch.testing.assert_close(ours_grad, reference_grad, rtol=1e-12, atol=1e-12)


def test_reference_sees_both_terms_inside_and_beyond_the_margin() -> None:
    # Half the dissimilar pairs within the margin, half beyond; similar pairs at every distance.
    x_a = torch.zeros(6, 2, dtype=torch.float64, requires_grad=True)
    x_b = torch.tensor(
        [[0.3, 0.4], [3.0, 4.0], [0.0, 0.6], [0.0, 1.5], [0.2, 0.0], [2.0, 0.0]],
        dtype=torch.float64,
        requires_grad=True,
    )
    dissimilar = torch.tensor([False, False, True, True, True, True])
    ours = drlim_margin_loss(x_a, x_b, dissimilar, margin=1.0)
    expected = reference_drlim(x_a, x_b, dissimilar.tolist(), 1.0)
    # ½·0.25 + ½·25 + ½·0.4² + 0 + ½·0.8² + 0, over 6 pairs.
    assert ours.item() == pytest.approx((0.125 + 12.5 + 0.08 + 0.32) / 6, rel=1e-12)
    torch.testing.assert_close(ours, expected)
    grads = torch.autograd.grad(ours, (x_a, x_b))
    expected_grads = torch.autograd.grad(expected, (x_a, x_b))
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_similar_pair_at_distance_zero_has_zero_loss_and_finite_zero_gradient(dtype) -> None:
    x_a = torch.tensor([[0.7, -1.2, 3.0]], dtype=dtype, requires_grad=True)
    x_b = x_a.detach().clone().requires_grad_(True)
    loss = drlim_margin_loss(x_a, x_b, torch.tensor([False]), margin=1.0)
    loss.backward()
    assert loss.item() == 0.0
    for grad in (x_a.grad, x_b.grad):
        assert grad is not None and torch.isfinite(grad).all() and (grad == 0).all()


def test_dissimilar_pair_at_distance_zero_costs_half_margin_squared_with_finite_gradient() -> None:
    x_a = torch.ones(2, 4, requires_grad=True)
    loss = drlim_margin_loss(x_a, x_a.detach().clone(), torch.tensor([True, True]), margin=2.0)
    loss.backward()
    assert loss.item() == pytest.approx(0.5 * 2.0**2)
    assert x_a.grad is not None and torch.isfinite(x_a.grad).all()


def test_dissimilar_pair_beyond_the_margin_costs_nothing() -> None:
    x_a = torch.zeros(3, 2, requires_grad=True)
    x_b = torch.tensor([[1.0, 0.0], [0.0, -5.0], [3.0, 4.0]], requires_grad=True)
    loss = drlim_margin_loss(x_a, x_b, torch.ones(3, dtype=torch.bool), margin=1.0)
    loss.backward()
    assert loss.item() == 0.0
    assert (x_a.grad == 0).all() and (x_b.grad == 0).all()


def test_symmetric_and_invariant_to_rigid_motions() -> None:
    # D is Euclidean, so swapping the pair's members or rotating and translating both changes
    # nothing.
    generator = torch.Generator().manual_seed(0)
    x_a, x_b = torch.randn(8, 2, generator=generator), torch.randn(8, 2, generator=generator)
    dissimilar = torch.arange(8) % 2 == 0
    loss = drlim_margin_loss(x_a, x_b, dissimilar, 1.5)
    torch.testing.assert_close(drlim_margin_loss(x_b, x_a, dissimilar, 1.5), loss)
    angle = torch.tensor(0.7)
    rotation = torch.stack(
        [torch.stack([angle.cos(), -angle.sin()]), torch.stack([angle.sin(), angle.cos()])]
    )
    shift = torch.tensor([3.0, -2.0])
    moved = drlim_margin_loss(x_a @ rotation.T + shift, x_b @ rotation.T + shift, dissimilar, 1.5)
    torch.testing.assert_close(moved, loss)


def test_low_precision_inputs_are_computed_in_float32() -> None:
    generator = torch.Generator().manual_seed(1)
    x_a, x_b = torch.randn(16, 2, generator=generator), torch.randn(16, 2, generator=generator)
    dissimilar = torch.rand(16, generator=generator) < 0.5
    low = drlim_margin_loss(x_a.bfloat16(), x_b.bfloat16(), dissimilar)
    full = drlim_margin_loss(x_a.bfloat16().float(), x_b.bfloat16().float(), dissimilar)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, full)


def test_module_matches_function() -> None:
    generator = torch.Generator().manual_seed(2)
    x_a, x_b = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    dissimilar = torch.tensor([True, False, True, False, False])
    assert DrLIMLoss(margin=0.8)(x_a, x_b, dissimilar).item() == pytest.approx(
        drlim_margin_loss(x_a, x_b, dissimilar, 0.8).item()
    )


@pytest.mark.parametrize(
    ("x_a", "x_b", "dissimilar"),
    [
        (torch.zeros(4, 2), torch.zeros(5, 2), torch.zeros(4, dtype=torch.bool)),
        (torch.zeros(4, 2), torch.zeros(4, 3), torch.zeros(4, dtype=torch.bool)),
        (torch.zeros(4), torch.zeros(4), torch.zeros(4, dtype=torch.bool)),
        (torch.zeros(4, 2, 1), torch.zeros(4, 2, 1), torch.zeros(4, dtype=torch.bool)),
        (torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(3, dtype=torch.bool)),
        (torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(4, 1, dtype=torch.bool)),
        (torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(4)),  # labels must be bool
        (torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(4, dtype=torch.long)),
        (torch.zeros(0, 2), torch.zeros(0, 2), torch.zeros(0, dtype=torch.bool)),
    ],
)
def test_bad_shapes_raise(x_a: torch.Tensor, x_b: torch.Tensor, dissimilar: torch.Tensor) -> None:
    with pytest.raises(ValueError):
        drlim_margin_loss(x_a, x_b, dissimilar)


@pytest.mark.parametrize("margin", [0.0, -1.0])
def test_non_positive_margin_raises(margin: float) -> None:
    with pytest.raises(ValueError, match="margin"):
        drlim_margin_loss(
            torch.zeros(2, 2), torch.ones(2, 2), torch.ones(2, dtype=torch.bool), margin
        )
    with pytest.raises(ValueError, match="margin"):
        DrLIMLoss(margin)


def test_margin_sets_the_scale_of_the_push() -> None:
    # Coincident dissimilar pairs cost ½ m², whatever m.
    x = torch.zeros(3, 2)
    for margin in (0.5, 1.0, 3.0):
        loss = drlim_margin_loss(x, x, torch.ones(3, dtype=torch.bool), margin)
        assert loss.item() == pytest.approx(0.5 * margin**2, rel=1e-6)
