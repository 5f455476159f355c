"""Fine-tuning: learns a trivial problem, leaves the caller's encoder alone, is seeded."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfsup.eval import choose_finetune_lr, finetune, random_crop_flip, supervised_baseline

SMALL = dict(epochs=2, lr=0.1, batch_size=16, weight_decay=0.0, min_steps=25)


def test_finetune_learns_without_touching_the_encoder(make_encoder, make_bright_dark) -> None:
    encoder = make_encoder(declare_dim=False).train()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    train, test = make_bright_dark(32, seed=0), make_bright_dark(40, seed=1)

    first = finetune(encoder, train, test, seed=5, **SMALL)
    second = finetune(encoder, train, test, seed=5, **SMALL)

    assert first["top1"] >= 90.0  # chance is 50%
    assert first == second
    assert encoder.training
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_the_learning_rate_is_chosen_on_held_out_labelled_images(
    make_encoder, make_bright_dark, monkeypatch
) -> None:
    """Each rate is trained on a stratified 80% of the labelled set and scored on the other
    20%; the best score wins (ties: the earlier rate)."""
    import importlib

    module = importlib.import_module("selfsup.eval.finetune")  # the package exports a finetune()

    train = make_bright_dark(40, seed=0)
    seen = []

    def fake_fit(encoder, fit_set, preprocess, num_classes, lr, **settings):
        seen.append((lr, fit_set))
        return lr

    def fake_score(model, held_out, preprocess, device="cpu"):
        seen.append(("held out", held_out))
        return {"top1": {0.3: 70.0, 0.01: 90.0, 0.002: 90.0}[model]}

    monkeypatch.setattr(module, "fit_classifier", fake_fit)
    monkeypatch.setattr(module, "classifier_accuracy", fake_score)
    choice = choose_finetune_lr(make_encoder(), train, [0.3, 0.01, 0.002], seed=3)
    assert choice == {"lr": 0.01, "validation_top1": {0.3: 70.0, 0.01: 90.0, 0.002: 90.0}}
    fit_set, held_out = seen[0][1], seen[1][1]
    assert len(fit_set) == 32 and len(held_out) == 8
    assert held_out.labels.tolist().count(0) == held_out.labels.tolist().count(1) == 4
    fit_rows = {tuple(image.flatten().tolist()) for image in fit_set.images}
    assert not any(tuple(image.flatten().tolist()) in fit_rows for image in held_out.images)


def test_finetuning_on_a_grid_equals_finetuning_at_the_chosen_rate(
    make_encoder, make_bright_dark
) -> None:
    encoder = make_encoder(declare_dim=False)
    train, test = make_bright_dark(40, seed=0), make_bright_dark(40, seed=1)
    settings = {key: value for key, value in SMALL.items() if key != "lr"}
    chosen = finetune(encoder, train, test, seed=3, lr=(0.1,), **settings)
    given = finetune(encoder, train, test, seed=3, lr=0.1, **settings)
    assert chosen == given and chosen["lr"] == 0.1
    grid = finetune(encoder, train, test, seed=3, lr=(0.1, 0.05), **settings)
    assert grid["lr"] in (0.1, 0.05) and grid["top1"] >= 90.0


def test_supervised_baseline_builds_a_seeded_encoder(make_encoder, make_bright_dark) -> None:
    train, test = make_bright_dark(32, seed=0), make_bright_dark(40, seed=1)

    def build():
        return make_encoder(seed=torch.randint(0, 10**6, ()).item())  # draws from global RNG

    first = supervised_baseline(build, train, test, seed=2, augment=False, **SMALL)
    second = supervised_baseline(build, train, test, seed=2, augment=False, **SMALL)
    assert first == second
    assert first["top1"] >= 90.0


def test_random_crop_flip_matches_per_sample_loop() -> None:
    images = torch.randint(0, 256, (6, 2, 5, 7), dtype=torch.uint8)
    pad = 2
    out = random_crop_flip(images, pad, torch.Generator().manual_seed(4))

    g = torch.Generator().manual_seed(4)  # the same draws, in the function's order
    offsets = torch.randint(0, 2 * pad + 1, (2, 6), generator=g)
    flips = torch.rand(6, generator=g) < 0.5
    padded = F.pad(images, (pad,) * 4, mode="reflect")
    for b in range(6):
        oy, ox = offsets[0, b].item(), offsets[1, b].item()
        expected = padded[b, :, oy : oy + 5, ox : ox + 7]
        if flips[b]:
            expected = expected.flip(-1)
        assert torch.equal(out[b], expected)
    assert out.dtype == torch.uint8 and out.shape == images.shape
