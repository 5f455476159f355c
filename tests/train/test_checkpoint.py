"""Checkpoints: the previous one is kept and used when the newest is truncated, changed or torn by
a crash mid-write; files that would run code when unpickled are refused, and nothing of them runs.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from selfsup.cli import main
from selfsup.errors import SelfsupError
from selfsup.train import load_checkpoint, read_checkpoint, save_checkpoint

TINY = [
    "--data.dataset", "digits", "--data.train_subset", "128", "--model.base_width", "2",
    "--model.head_widths", "[8, 8]", "--train.batch_size", "64", "--train.progress", "false",
]  # fmt: skip


def _state(epoch: int, size: int = 1000) -> dict:
    return {"epoch": epoch, "weights": torch.full((size,), float(epoch)), "name": "run"}


def _two_checkpoints(directory, size: int = 1000) -> None:
    save_checkpoint(_state(1, size), directory)
    save_checkpoint(_state(2, size), directory)


def test_two_are_kept_and_the_newest_loads(tmp_path) -> None:
    _two_checkpoints(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "previous.pt"]
    assert load_checkpoint(tmp_path)["epoch"] == 2
    assert read_checkpoint(tmp_path / "previous.pt")["epoch"] == 1


def test_truncated_newest_falls_back_and_says_why(tmp_path) -> None:
    _two_checkpoints(tmp_path, size=1_500_000)  # 6 MB of float32
    last = tmp_path / "last.pt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])
    expected = r"previous\.pt \(epoch 1\): last\.pt truncated: 3\.0 of 6\.0 MB"
    with pytest.warns(UserWarning, match=expected):
        state = load_checkpoint(tmp_path)
    assert state["epoch"] == 1 and torch.equal(state["weights"], torch.ones(1_500_000))


def test_flipped_bytes_fall_back(tmp_path) -> None:
    _two_checkpoints(tmp_path)
    last = tmp_path / "last.pt"
    data = bytearray(last.read_bytes())
    data[len(data) // 2] ^= 0xFF
    last.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="last.pt corrupt: its bytes changed"):
        assert load_checkpoint(tmp_path)["epoch"] == 1


def test_neither_loads_is_one_error_naming_both(tmp_path) -> None:
    _two_checkpoints(tmp_path)
    (tmp_path / "last.pt").write_bytes((tmp_path / "last.pt").read_bytes()[:100])
    (tmp_path / "previous.pt").write_bytes(b"not a checkpoint")
    expected = r"last\.pt truncated: 11 of .* bytes; previous\.pt not a checkpoint"
    with pytest.raises(SelfsupError, match=expected):
        load_checkpoint(tmp_path)


_WRITER = textwrap.dedent(
    """
    import sys, torch
    from selfsup.train import save_checkpoint
    epoch = 0
    while True:
        epoch += 1
        weights = torch.full((400_000,), float(epoch))
        save_checkpoint({"epoch": epoch, "weights": weights}, sys.argv[1])
        print(epoch, flush=True)
    """
)


def test_a_process_killed_while_writing_leaves_a_checkpoint_that_loads(tmp_path) -> None:
    for trial in range(4):
        directory = tmp_path / f"trial{trial}"
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(directory)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        for _ in range(2 + trial):  # let it finish a few checkpoints, then kill it mid-stream
            writer.stdout.readline()
        time.sleep(0.003 * trial)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        state = load_checkpoint(directory)
        assert state["epoch"] >= 1
        assert torch.equal(state["weights"], torch.full((400_000,), float(state["epoch"])))


class _RunsCode:
    """Unpickling this creates the file `marker`: the shape of an attack through a checkpoint."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain-torch-file", "with-header"])
def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, wrapped) -> None:
    marker = tmp_path / "code-ran"
    directory = tmp_path / "checkpoints"
    directory.mkdir()
    state = {"epoch": 1, "method": _RunsCode(marker)}
    if wrapped:  # a valid header and checksum do not make it loadable
        save_checkpoint(state, directory)
    else:
        torch.save(state, directory / "last.pt")
    with pytest.raises(SelfsupError, match="refused"):
        read_checkpoint(directory / "last.pt")
    assert not marker.exists()


def test_resume_from_a_crafted_checkpoint_is_one_line_and_runs_nothing(tmp_path, capsys) -> None:
    run_dir = tmp_path / "run"
    assert main(["pretrain", "--run-dir", str(run_dir), *TINY, "--train.epochs", "2"]) == 0
    marker = tmp_path / "code-ran"
    checkpoints = run_dir / "checkpoints"
    for name in ("last.pt", "previous.pt"):
        torch.save({"epoch": 1, "method": _RunsCode(marker)}, checkpoints / name)
    capsys.readouterr()
    assert main(["pretrain", "--run-dir", str(run_dir), "--resume", "--train.epochs", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("selfsup: error: cannot resume"), err
    assert "refused" in err[0]
    assert not marker.exists()


def test_resume_after_a_truncated_last_checkpoint_uses_the_previous(tmp_path, capsys) -> None:
    run_dir = tmp_path / "run"
    assert main(["pretrain", "--run-dir", str(run_dir), *TINY, "--train.epochs", "2"]) == 0
    last = run_dir / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    capsys.readouterr()
    assert main(["pretrain", "--run-dir", str(run_dir), "--resume", "--train.epochs", "3"]) == 0
    err = capsys.readouterr().err
    assert "selfsup: warning: resuming from" in err and "previous.pt (epoch 1)" in err
    assert "last.pt truncated" in err
    assert load_checkpoint(run_dir / "checkpoints")["epoch"] == 3
