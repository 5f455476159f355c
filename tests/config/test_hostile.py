"""Every field of every config section, set to hostile values on the command line, gives one of
two outcomes: a one-line `selfsup: error:` with exit status 2, or a run that is valid and listed
in VALID below with the reason. Never a traceback, never a silent success the list does not name.
"""

import dataclasses

import pytest

from selfsup.cli import main
from selfsup.config import RunConfig
from selfsup.methods import METHODS

HOSTILE = ["0", "-1", "nan", "inf", "1000000000000", "1e30", "", "''", "bogus"]
"""As typed after `--section.field`: an empty word is YAML null, '' the empty string."""

VALID = {
    ("run_dir", "nan"): "any folder name is a run directory",
    ("run_dir", "inf"): "any folder name is a run directory",
    ("run_dir", "1e30"): "any folder name is a run directory",
    ("run_dir", "bogus"): "any folder name is a run directory",
    ("data.data_dir", ""): "null: the dataset's default location",
    ("data.image_size", ""): "null: the images' own size",
    ("data.train_subset", ""): "null: the whole training split",
    ("augment.size", ""): "null: views keep the input size",
    ("augment.flip_p", "0"): "probability 0 turns the flip off",
    ("augment.jitter_strength", "0"): "strength 0 turns colour jitter off",
    ("augment.jitter_p", "0"): "probability 0 turns colour jitter off",
    ("augment.grayscale_p", "0"): "probability 0 turns grayscale off",
    ("augment.blur_p", "0"): "probability 0 turns blur off",
    ("augment.solarize_p", "0"): "probability 0 turns solarize off",
    ("augment.solarize_threshold", "0"): "threshold 0 inverts every pixel when solarizing",
    ("augment.second_blur_p", "0"): "the second view without blur (BYOL's asymmetry)",
    ("augment.second_blur_p", ""): "null: both views share blur_p",
    ("augment.second_solarize_p", "0"): "the second view without solarize",
    ("augment.second_solarize_p", ""): "null: both views share solarize_p",
    ("method.momentum", "0"): "m = 0: the momentum network copies the online one every step",
    ("method.memory_size", "0"): "0: no memory (plain SimCLR; SwAV's codes from the batch alone)",
    ("method.redundancy_weight", "0"): "λ = 0: Barlow Twins' invariance term alone",
    ("method.weight", "0"): "λ = 0: the generalized loss's alignment term alone (the ablation)",
    ("optim.weight_decay", "0"): "no weight decay",
    ("optim.momentum", "0"): "plain (momentum-free) SGD / LARS steps",
    ("optim.warmup_epochs", "0"): "no warm-up",
    ("optim.final_lr_fraction", "0"): "the cosine decays to zero (the default)",
    ("train.seed", "0"): "any non-negative seed",
    ("train.seed", "1000000000000"): "any non-negative seed below 2**63",
    ("train.threads", ""): "null: torch's own thread count",
    ("train.time_budget", ""): "null: train for train.epochs",
    ("train.workers", "0"): "0: streamed images are decoded in the main process",
    ("train.quality_sample", "0"): "0: no label-free quality after each epoch",
    ("eval.finetune_weight_decay", "0"): "fine-tuning without weight decay",
    ("eval.finetune_min_steps", "0"): "no minimum: the epochs alone set the steps",
    ("eval.seed", "0"): "any non-negative seed",
    ("eval.seed", "1000000000000"): "any non-negative seed below 2**63",
    ("semisup.head_depth", "0"): "fine-tune from the encoder, as SimCLR (v1) does",
    ("semisup.distill_weight", "0"): "α = 0: the students learn from the labels alone",
    ("semisup.distill_weight_decay", "0"): "students without weight decay",
    ("semisup.student_encoder", "''"): "the empty name skips the small student",
    ("augment.local_crops", "0"): "0 small crops: the plain pair of views",
    ("method.invariance_weight", "0"): "λ = 0: VICReg without its invariance term",
    ("method.variance_weight", "0"): "μ = 0: VICReg without its variance term",
    ("method.covariance_weight", "0"): "ν = 0: VICReg without its covariance term",
    ("method.freeze_prototypes_steps", "0"): "0: SwAV's prototypes train from the first step",
    ("method.center_momentum", "0"): "m = 0: DINO's centre is the last batch's mean",
    ("model.patch_size", ""): "null: a timm ViT keeps its own patch size",
}

TINY = [
    "--data.dataset", "digits", "--data.train_subset", "256",
    "--model.base_width", "2", "--model.head_widths", "[16, 8]",
    "--train.epochs", "1", "--train.batch_size", "64", "--train.threads", "1",
    "--train.progress", "false", "--optim.warmup_epochs", "0.5",
    "--eval.k", "20", "--eval.label_fractions", '["5-per-class"]', "--eval.finetune_epochs", "1",
    "--eval.finetune_min_steps", "2",
    "--semisup.distill_epochs", "1", "--semisup.distill_batch_size", "64",
    "--semisup.student_base_width", "2", "--semisup.head_depth", "1",
]  # fmt: skip


METHOD_ARGS = {
    "byol": ["--method.predictor_widths", "[16, 8]"],  # its output is the head's width
    "moco": ["--method.queue_size", "128"],
    "cpc": ["--data.image_size", "16", "--method.prediction_steps", "1"],  # a 3-row patch grid
}
"""What each method needs besides TINY to train on 8x8 digits."""


def _keys() -> list[str]:
    keys = []
    defaults = RunConfig()
    for section in dataclasses.fields(defaults):
        value = getattr(defaults, section.name)
        if section.name == "method":
            names = {f.name for p in METHODS.values() for f in dataclasses.fields(p.config)}
            keys += [f"method.{name}" for name in sorted(names)]
        elif dataclasses.is_dataclass(value):
            keys += [f"{section.name}.{field.name}" for field in dataclasses.fields(value)]
        else:
            keys.append(section.name)
    return keys


def _methods_with(key: str) -> list[list[str]]:
    """The method flags to walk `key` under: every method that has the field (each field of a
    method is walked with that method chosen), or the default method for other sections."""
    if not key.startswith("method.") or key == "method.name":
        return [[]]
    field_name = key.removeprefix("method.")
    return [
        ["--method.name", name, *METHOD_ARGS.get(name, [])]
        for name, plugin in sorted(METHODS.items())
        if field_name in {f.name for f in dataclasses.fields(plugin.config)}
    ]


def _flag(key: str) -> str:
    return "--run-dir" if key == "run_dir" else f"--{key}"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> str:
    """A tiny pre-trained run for the eval fields."""
    run_dir = str(tmp_path_factory.mktemp("hostile") / "base")
    assert main(["pretrain", "--run-dir", run_dir, *TINY]) == 0
    return run_dir


@pytest.mark.slow
@pytest.mark.parametrize("key", _keys())
def test_hostile_values_fail_in_one_line_or_run_as_documented(
    key, tmp_path, monkeypatch, capsys, trained_run, one_thread
) -> None:
    monkeypatch.chdir(tmp_path)  # run_dir values are folders made here
    section = key.split(".")[0]
    for method_args in _methods_with(key):
        for index, text in enumerate(HOSTILE):
            if section == "eval":
                args = ["eval", "--run-dir", trained_run, *TINY]
            else:
                verb = "semisup" if section == "semisup" else "pretrain"
                run_dir = tmp_path / f"run{index}{''.join(method_args[1:2])}"
                args = [verb, "--run-dir", str(run_dir), *TINY, *method_args]
            status = main([*args, _flag(key), text])
            err = capsys.readouterr().err.strip().splitlines()
            errors = [line for line in err if line.startswith("selfsup: error: ")]
            what = f"{key} {text!r} {' '.join(method_args[:2])}"
            if status == 0:
                assert (key, text) in VALID, f"{what} ran without complaint; {err}"
                assert not errors
            else:
                assert status == 2, f"{what}: exit status {status}"
                assert len(errors) == 1 and errors == err[-1:], f"{what}: {err}"
                assert (key, text) not in VALID, f"{what} is listed valid but failed: {err}"


def test_every_documented_valid_value_names_a_real_field() -> None:
    keys = set(_keys())
    assert {key for key, _ in VALID} <= keys
    assert {text for _, text in VALID} <= set(HOSTILE)
