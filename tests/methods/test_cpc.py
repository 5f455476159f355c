"""CPC: the context network is causal top to bottom, the loss is the mean InfoNCE over steps,
and gradients reach the encoder, the context network and every predictor."""

import pytest
import torch

from selfsup.losses import cpc_info_nce
from selfsup.methods.cpc import CPC, MaskedContextNetwork
from selfsup.models import build_encoder
from selfsup.models.patches import PatchGrid


def _cpc(prediction_steps: int = 3, **kwargs: object) -> CPC:
    torch.manual_seed(0)
    encoder = build_encoder("resnet18", in_channels=1, base_width=4, norm="layer")
    return CPC(encoder, 8, 4, prediction_steps, context_channels=16, **kwargs)


def _patches(rows: int = 6, cols: int = 5, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(3, rows, cols, 1, 8, 8, generator=generator)


@pytest.mark.parametrize("row", range(6))
def test_context_network_sees_only_its_row_and_the_rows_above(row: int) -> None:
    torch.manual_seed(0)
    network = MaskedContextNetwork(dim=8, channels=12, layers=5)
    latents = torch.randn(2, 6, 5, 8, dtype=torch.float64)
    network = network.double()
    context = network(latents)
    below = latents.clone()
    below[:, row + 1 :] += torch.randn_like(below[:, row + 1 :])
    changed = network(below)
    torch.testing.assert_close(changed[:, : row + 1], context[:, : row + 1], rtol=0, atol=1e-12)
    if row < 5:
        assert (changed[:, row + 1 :] - context[:, row + 1 :]).abs().amax() > 1e-3
    # Not blind either: a change to this row reaches the context of this row.
    own = latents.clone()
    own[:, row] += 1.0
    assert (network(own)[:, row] - context[:, row]).abs().amax() > 1e-3


def test_context_reaches_up_and_sideways() -> None:
    torch.manual_seed(0)
    network = MaskedContextNetwork(dim=8, channels=12, layers=5).double()
    latents = torch.randn(1, 6, 6, 8, dtype=torch.float64)
    moved = latents.clone()
    moved[:, 0, 0] += 1.0  # the top-left patch
    difference = (network(moved) - network(latents)).abs().amax(-1)[0]
    # Exactly 0 where the patch is out of reach; ReLUs make the far reach small, not zero.
    assert difference[5, 0] > 0  # five blocks reach five rows down from the patch
    assert difference[0, 5] > 0  # and five columns sideways
    assert (difference[:, 0] > 0).all() and (difference[0] > 0).all()


@pytest.mark.parametrize("row", [0, 2, 4])
def test_cpc_context_is_causal_in_the_patches(row: int) -> None:
    # End to end: layer norm encodes each patch alone, so perturbing the patches below row r
    # leaves the context of rows <= r unchanged, in training mode.
    method = _cpc().double().train()
    patches = _patches().double()
    latents, context = method.encode(patches)
    perturbed = patches.clone()
    perturbed[:, row + 1 :] = torch.randn_like(perturbed[:, row + 1 :])
    latents_after, context_after = method.encode(perturbed)
    torch.testing.assert_close(latents_after[:, : row + 1], latents[:, : row + 1])
    torch.testing.assert_close(context_after[:, : row + 1], context[:, : row + 1])
    assert (context_after[:, row + 1 :] - context[:, row + 1 :]).abs().amax() > 1e-6


def test_loss_is_the_mean_info_nce_over_prediction_steps() -> None:
    method = _cpc(temperature=0.5)
    patches = _patches()
    latents, context = method.encode(patches)
    expected = torch.stack(
        [
            cpc_info_nce(predictor(context[:, :-step]), latents, step, temperature=0.5)
            for step, predictor in enumerate(method.predictors, start=1)
        ]
    ).mean()
    torch.testing.assert_close(method([patches]), expected)


def test_forward_finite_and_gradients_reach_every_part() -> None:
    method = _cpc()
    assert isinstance(method.encoder, PatchGrid)
    loss = method([_patches()])
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    for name, parameter in method.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name
    parts = {name.split(".")[0] for name, _ in method.named_parameters()}
    assert parts == {"encoder", "context_network", "predictors"}
    assert len(method.predictors) == 3


def test_encoder_features_are_the_patch_grid_mean() -> None:
    method = _cpc().eval()
    images = torch.randn(2, 1, 28, 28)
    latents, _ = method.encode(method.encoder.grid(images))
    assert latents.shape == (2, 6, 6, method.encoder.feature_dim)
    torch.testing.assert_close(method.encoder(images), latents.mean(dim=(1, 2)))


def test_grid_too_small_and_wrong_views() -> None:
    method = _cpc(prediction_steps=3)
    with pytest.raises(ValueError, match="more than 3 rows"):
        method([_patches(rows=3)])
    assert torch.isfinite(method([_patches(rows=4, cols=1)]))  # the smallest grid that works
    with pytest.raises(ValueError, match="one view"):
        method([_patches(), _patches()])
    with pytest.raises(ValueError, match="one view"):
        method([torch.randn(3, 1, 28, 28)])
    with pytest.raises(ValueError, match="prediction_steps"):
        _cpc(prediction_steps=0)
    with pytest.raises(ValueError, match="temperature"):
        _cpc(temperature=0.0)
    with pytest.raises(ValueError, match="positive"):
        MaskedContextNetwork(8, channels=0)
