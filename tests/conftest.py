"""Fixtures shared across the test tree."""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny tensors: one thread avoids spin-waiting on a shared, busy CPU and fixes the float
    reduction order; the process's thread count is restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
