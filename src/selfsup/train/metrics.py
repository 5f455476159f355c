"""Where training numbers go: metrics.jsonl (one JSON object a line) and TensorBoard scalars."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class MetricsLogger:
    """Append scalars to `run_dir/metrics.jsonl` and, when available, TensorBoard."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a")  # noqa: SIM115 - kept open for the run
        self._writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(Path(run_dir) / "tensorboard"))
            except ImportError:  # tensorboard not installed: JSONL only
                self._writer = None

    def log(self, step: int, values: dict[str, Any]) -> None:
        self._handle.write(json.dumps({"step": step, **values}) + "\n")
        self._handle.flush()
        if self._writer is not None:
            for name, value in values.items():
                if isinstance(value, (int, float)) and name not in ("epoch",):
                    self._writer.add_scalar(name, value, step)

    def close(self) -> None:
        self._handle.close()
        if self._writer is not None:
            self._writer.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl file."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_metrics(
    path: str | Path, output: str | Path, keys: tuple[str, ...] = ("loss", "lr")
) -> Path | None:
    """Plot the named series of a metrics.jsonl against step into one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(path)
    present = [key for key in keys if any(key in r for r in records)]
    if not present:
        return None
    figure, axes = plt.subplots(1, len(present), figsize=(5 * len(present), 3.5), squeeze=False)
    for axis, key in zip(axes[0], present, strict=True):
        points = [(r["step"], r[key]) for r in records if key in r]
        axis.plot([p[0] for p in points], [p[1] for p in points])
        axis.set_xlabel("step")
        axis.set_title(key)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)
    return Path(output)
