"""The CPU allocator setting applies on glibc and is harmless to call twice."""

import platform

import pytest
import torch

from selfsup.train.allocator import keep_freed_cpu_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_keep_freed_memory_applies_on_glibc() -> None:
    assert keep_freed_cpu_memory() is True
    assert keep_freed_cpu_memory() is True
    big = torch.empty(64 * 2**20, dtype=torch.uint8)  # above any mmap threshold: from the heap
    del big
