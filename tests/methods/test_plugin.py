"""A method is one module: a throw-away method defined here trains through the CLI's code path
with no other edit, and every registered method is a plug-in with a config of its own."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import selfsup
from selfsup.checks import check_float
from selfsup.cli import main
from selfsup.config import field_descriptions, load_config
from selfsup.errors import SelfsupError
from selfsup.methods import METHODS, MethodConfig, MethodPlugin, register_method
from selfsup.models.heads import ProjectionHead
from selfsup.models.registry import feature_dim


@dataclass
class ShrinkConfig(MethodConfig):
    """A toy objective: pull both views' projections together and keep their norms at `scale`.

    Attributes:
        name: shrink.
        scale: the projections' target norm.
    """

    name: str = "shrink"
    scale: float = 1.0

    def __post_init__(self) -> None:
        check_float("scale", self.scale, 0, 100, low_open=True)


class Shrink(nn.Module):
    """Not a method anyone should use: only what a plug-in must provide."""

    def __init__(self, encoder: nn.Module, head_widths: Sequence[int], scale: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.projection_head = ProjectionHead(feature_dim(encoder), head_widths)
        self.scale = scale

    def forward(self, views: Sequence[torch.Tensor]) -> torch.Tensor:
        first, second = (self.projection_head(self.encoder(view)) for view in views)
        norms = torch.cat([first, second]).norm(dim=1)
        return (first - second).square().sum(1).mean() + (norms - self.scale).square().mean()


def build_shrink(encoder: nn.Module, config: ShrinkConfig, head_widths: Sequence[int]) -> Shrink:
    return Shrink(encoder, head_widths, config.scale)


@pytest.fixture
def shrink_registered():
    register_method(MethodPlugin("shrink", ShrinkConfig, build_shrink, exports={"Shrink": Shrink}))
    yield
    del METHODS["shrink"]


TINY = [
    "--data.dataset", "digits", "--data.train_subset", "128", "--model.base_width", "2",
    "--model.head_widths", "[16, 8]", "--train.epochs", "2", "--train.batch_size", "32",
    "--train.threads", "1", "--train.progress", "false", "--optim.warmup_epochs", "0.5",
]  # fmt: skip


def test_a_method_defined_in_one_module_trains_through_the_cli(
    tmp_path, shrink_registered, capsys
) -> None:
    run_dir = tmp_path / "shrink"
    args = ["pretrain", "--run-dir", str(run_dir), "--method.name", "shrink"]
    assert main([*args, "--method.scale", "2.5", *TINY]) == 0
    saved = load_config(run_dir / "config.yaml")
    assert isinstance(saved.method, ShrinkConfig) and saved.method.scale == 2.5
    assert (run_dir / "encoder.safetensors").is_file()
    capsys.readouterr()
    # Its fields are its own: another method's field is refused, and its own is checked.
    assert main([*args, "--method.temperature", "0.1", *TINY]) == 2
    assert "method.temperature is not a field of shrink" in capsys.readouterr().err
    assert main([*args, "--method.scale", "0", *TINY]) == 2
    assert "scale" in capsys.readouterr().err
    # --help shows it with its description, type and default.
    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--method.scale FLOAT [shrink] the projections' target norm (default: shrink 1.0)" in (
        help_text
    )


def test_every_registered_method_is_a_plug_in_with_its_own_config() -> None:
    assert set(METHODS) >= {"simclr", "moco", "byol", "barlow_twins", "drlim", "cpc"}
    for name, plugin in METHODS.items():
        config = load_config(None, {"method.name": name}).method
        assert type(config) is plugin.config and config.name == name
        assert issubclass(plugin.config, MethodConfig) and plugin.config is not MethodConfig
        for export_name, value in plugin.exports.items():
            assert getattr(selfsup, export_name) is value  # the package exports it
        docs = field_descriptions(plugin.config)
        for field in dataclasses.fields(plugin.config):
            assert docs.get(field.name), f"{name}.{field.name} has no description"


def test_a_field_of_another_method_is_an_error_naming_its_owner() -> None:
    with pytest.raises(SelfsupError, match=r"queue_size is not a field of simclr.*belongs to moco"):
        load_config(None, {"method.queue_size": 4096})
    with pytest.raises(SelfsupError, match="no method has it"):
        load_config(None, {"method.name": "byol", "method.bogus": 1})
    # A new method name starts from that method's defaults.
    assert load_config(None, {"method.name": "moco"}).method.queue_size == 4096


def test_registering_a_clashing_method_is_refused(shrink_registered) -> None:
    @dataclass
    class OtherConfig(MethodConfig):
        """Attributes:
        name: shrink."""

        name: str = "shrink"

    with pytest.raises(ValueError, match="already registered"):
        register_method(MethodPlugin("shrink", OtherConfig, build_shrink))
    with pytest.raises(ValueError, match="defaults to 'shrink'"):
        register_method(MethodPlugin("other", OtherConfig, build_shrink))
