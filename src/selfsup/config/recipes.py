"""Bundled recipes: find one by name or path, or the one `--method NAME` stands for."""

from __future__ import annotations

from pathlib import Path

from selfsup.errors import SelfsupError
from selfsup.methods.plugin import method_recipes

RECIPES = Path(__file__).parent.parent / "configs"
DEFAULT_RECIPE = "simclr-fashion-mnist"
DRLIM_MAP_RECIPE = "drlim-map-fashion-mnist"
SEMISUP_RECIPE = "simclr-v2-fashion-mnist"


def recipe_path(name_or_path: str | None) -> Path | None:
    """A YAML path as given, or the bundled recipe of that name (None passes through)."""
    if name_or_path is None:
        return None
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = RECIPES / f"{name_or_path.removesuffix('.yaml')}.yaml"
    if bundled.is_file():
        return bundled
    names = ", ".join(sorted(p.stem for p in RECIPES.glob("*.yaml")))
    raise SelfsupError(f"config {name_or_path!r} is neither a file nor a bundled recipe ({names})")


def chosen_recipe(config: str | None, method: str | None) -> str:
    """`--config` if given, else the bundled recipe `--method` names (each method declares its
    own), else the default recipe."""
    if method is None:
        return config or DEFAULT_RECIPE
    if config is not None:
        raise SelfsupError(
            "give either --config or --method (which picks a bundled recipe), not both; "
            "to change the method of a recipe use --method.name"
        )
    recipes = method_recipes()
    if method not in recipes:
        raise SelfsupError(f"unknown method {method!r}; choose one of {', '.join(sorted(recipes))}")
    return recipes[method]
