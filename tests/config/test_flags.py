"""`--help` describes every config field from its dataclass: a description, a type, a default."""

import dataclasses

import pytest

from selfsup.cli import main
from selfsup.config import RunConfig, field_descriptions
from selfsup.methods import METHODS


def _sections() -> list[type]:
    defaults = RunConfig()
    sections = [type(getattr(defaults, f.name)) for f in dataclasses.fields(defaults)]
    sections = [s for s in sections if dataclasses.is_dataclass(s)]
    return [RunConfig, *sections, *(plugin.config for plugin in METHODS.values())]


@pytest.mark.parametrize("section", _sections(), ids=lambda section: section.__name__)
def test_every_field_has_a_description(section: type) -> None:
    docs = field_descriptions(section)
    missing = [f.name for f in dataclasses.fields(section) if not docs.get(f.name)]
    assert not missing, f"{section.__name__} lacks descriptions of {missing}"
    assert set(docs) <= {f.name for f in dataclasses.fields(section)}, "describes a non-field"


def test_descriptions_are_read_from_the_attributes_section() -> None:
    class Example:
        """Something.

        Attributes:
            alpha: the first
                value, continued.
            beta, gamma: shared by two.

        Examples:
            not: a field
        """

    assert field_descriptions(Example) == {
        "alpha": "the first value, continued",
        "beta": "shared by two",
        "gamma": "shared by two",
    }


def test_help_shows_type_default_and_description(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--train.epochs INT passes over the training set" in text
    assert "(default: 100)" in text
    assert "--data.image_size INT|NULL" in text
    # A field several methods share says what it means for each of them.
    assert (
        "--method.momentum FLOAT [byol, dino, moco, simclr] byol: the target network's base" in text
    )
    assert " V " not in text
