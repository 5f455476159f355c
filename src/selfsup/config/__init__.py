"""Typed run configuration: dataclass sections, YAML recipes that say only what differs, and
`--section.field value` overrides. Unknown keys and wrong types are errors, never ignored."""

from selfsup.config.flags import add_override_arguments, field_descriptions, overrides_from_args
from selfsup.config.loading import (
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)
from selfsup.config.recipes import (
    DEFAULT_RECIPE,
    DRLIM_MAP_RECIPE,
    RECIPES,
    SEMISUP_RECIPE,
    chosen_recipe,
    recipe_path,
)
from selfsup.config.sections import (
    BUILT_IN,
    DOWNLOADABLE,
    LARGEST_EPOCHS,
    DataConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    SemisupConfig,
    TrainConfig,
)

__all__ = [
    "BUILT_IN",
    "DEFAULT_RECIPE",
    "DOWNLOADABLE",
    "DRLIM_MAP_RECIPE",
    "LARGEST_EPOCHS",
    "RECIPES",
    "SEMISUP_RECIPE",
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "SemisupConfig",
    "TrainConfig",
    "add_override_arguments",
    "apply_overrides",
    "chosen_recipe",
    "config_from_dict",
    "config_to_dict",
    "field_descriptions",
    "load_config",
    "overrides_from_args",
    "recipe_path",
    "save_config",
]
