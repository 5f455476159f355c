"""The README's own-loop example runs as printed (with fewer steps)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_loop_example_runs() -> None:
    if not Path("/usr/share/datasets/fashion-mnist").is_dir():
        pytest.skip("Fashion-MNIST is not installed (scripts/setup.sh installs it)")
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    code = next(block for block in blocks if "steps = 200" in block)
    namespace: dict = {}
    exec(code.replace("steps = 200", "steps = 2"), namespace)
    assert namespace["loss"].item() > 0
