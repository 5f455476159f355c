"""The tiny study settings both study test modules run with."""

import pytest

TINY = {
    "data.dataset": "digits",
    "data.train_subset": None,
    "model.base_width": 4,
    "model.head_widths": [16, 8],
    "augment.size": 8,
    "train.time_budget": None,
    "train.epochs": 1,
    "train.batch_size": 64,
    "train.device": "cpu",
    "train.progress": False,
    "eval.linear_max_iter": 20,
}


@pytest.fixture
def tiny() -> dict:
    """Config overrides for a study cell of seconds: scikit-learn's digits, a base-width-4
    ResNet on 8 px views, one epoch, on the CPU."""
    return dict(TINY)
