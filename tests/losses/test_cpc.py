"""CPC's InfoNCE against a float64 loop written straight from CPC v2's Eq. (2)-(3)."""

import math

import pytest
import torch

from selfsup.losses import CPCInfoNCELoss, cpc_info_nce


def reference_cpc_info_nce(
    predictions: torch.Tensor, targets: torch.Tensor, step: int, temperature: float
) -> torch.Tensor:
    """−log exp(ẑᵀz_pos/τ) / (exp(ẑᵀz_pos/τ) + Σ_l exp(ẑᵀz_l/τ)), z_l every other patch of the
    batch, averaged over the predictions ẑ_{i+k,j} made at every context position (i, j)."""
    batch, rows, cols, _ = targets.shape
    candidates = [
        (b, r, c) for b in range(batch) for r in range(rows) for c in range(cols)
    ]  # every patch of every image
    terms = []
    for b in range(batch):
        for i in range(rows - step):
            for j in range(cols):
                prediction = predictions[b, i, j]
                positive = (b, i + step, j)
                score = torch.exp(prediction @ targets[positive] / temperature)
                negatives = sum(
                    torch.exp(prediction @ targets[other] / temperature)
                    for other in candidates
                    if other != positive
                )
                terms.append(-torch.log(score / (score + negatives)))
    return sum(terms) / len(terms)


@pytest.mark.parametrize(
    ("batch", "rows", "cols", "step"), [(1, 2, 1, 1), (2, 3, 2, 1), (2, 4, 3, 2), (3, 4, 2, 3)]
)
@pytest.mark.parametrize("temperature", [0.5, 1.0])
def test_matches_reference_values_and_gradients(
    batch: int, rows: int, cols: int, step: int, temperature: float
) -> None:
    generator = torch.Generator().manual_seed(batch * 1000 + rows * 100 + cols * 10 + step)
    predictions = torch.randn(
        batch, rows - step, cols, 5, dtype=torch.float64, generator=generator, requires_grad=True
    )
    targets = torch.randn(
        batch, rows, cols, 5, dtype=torch.float64, generator=generator, requires_grad=True
    )
    ours = cpc_info_nce(predictions, targets, step, temperature)
    grads = torch.autograd.grad(ours, (predictions, targets))
    expected = reference_cpc_info_nce(predictions, targets, step, temperature)
    expected_grads = torch.autograd.grad(expected, (predictions, targets))
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, expected)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("scale", [3.0, 50.0])
def test_positive_above_all_negatives_exact_value(scale: float) -> None:
    # Orthonormal patch embeddings and ẑ = scale · z_pos: the positive scores `scale`, the
    # M − 1 negatives 0, so the loss is log(1 + (M − 1) e^−scale) exactly (≈ 0 for a large one).
    batch, rows, cols, step = 2, 4, 3, 2
    count = batch * rows * cols
    targets = torch.eye(count, dtype=torch.float64).view(batch, rows, cols, count)
    predictions = scale * targets[:, step:]
    loss = cpc_info_nce(predictions, targets, step)
    assert loss.item() == pytest.approx(math.log1p((count - 1) * math.exp(-scale)), rel=1e-12)
    if scale == 50.0:
        assert loss.item() < 1e-18


def test_uninformative_predictions_give_log_of_the_candidate_count() -> None:
    targets = torch.randn(3, 5, 4, 6, dtype=torch.float64)
    loss = cpc_info_nce(torch.zeros(3, 4, 4, 6, dtype=torch.float64), targets, step=1)
    assert loss.item() == pytest.approx(math.log(3 * 5 * 4), rel=1e-12)


def test_negatives_come_from_every_image_and_position() -> None:
    # Image 1 makes only zero predictions, which put no gradient on any target; so every
    # gradient on image 1's patches comes from image 0's predictions, as negatives.
    generator = torch.Generator().manual_seed(0)
    predictions = torch.randn(2, 2, 3, 4, generator=generator)
    predictions[1] = 0
    targets = torch.randn(2, 3, 3, 4, generator=generator, requires_grad=True)
    (grad,) = torch.autograd.grad(cpc_info_nce(predictions, targets, step=1), targets)
    assert (grad[1].abs().sum(-1) > 0).all()  # every patch of the other image
    assert (grad[0, 0].abs().sum(-1) > 0).all()  # image 0's top row is nobody's positive


def test_module_and_validation() -> None:
    predictions, targets = torch.randn(2, 2, 3, 4), torch.randn(2, 4, 3, 4)
    assert CPCInfoNCELoss(0.3)(predictions, targets, 2).item() == pytest.approx(
        cpc_info_nce(predictions, targets, 2, 0.3).item()
    )
    with pytest.raises(ValueError, match="temperature"):
        CPCInfoNCELoss(temperature=0.0)
    with pytest.raises(ValueError, match="temperature"):
        cpc_info_nce(predictions, targets, 2, temperature=-1.0)
    with pytest.raises(ValueError, match="must have shape"):
        cpc_info_nce(predictions, targets, 1)  # 1 row ahead needs 3 prediction rows
    with pytest.raises(ValueError, match="must have shape"):
        cpc_info_nce(torch.randn(2, 2, 3, 5), targets, 2)
    with pytest.raises(ValueError, match="step"):
        cpc_info_nce(torch.randn(2, 0, 3, 4), targets, 4)
    with pytest.raises(ValueError, match="step"):
        cpc_info_nce(torch.randn(2, 4, 3, 4), targets, 0)
    with pytest.raises(ValueError, match="expected"):
        cpc_info_nce(predictions.flatten(0, 1), targets, 2)
