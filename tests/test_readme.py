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


def test_readme_embeddings_example_runs() -> None:
    import numpy as np

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    code = next(block for block in blocks if "find_duplicates(vectors" in block)
    vectors = np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    namespace: dict = {"vectors": vectors, "queries": vectors[:4]}
    exec(code, namespace)
    assert namespace["ids"][:, 0].tolist() == [0, 1, 2, 3]  # each row finds itself first
    assert len(namespace["clusters"].sizes) == 100
