"""`selfsup embed` under 2 processes (torchrun's environment, gloo): each embeds its share of
the chunks, and the folder equals the one a single process writes."""

from __future__ import annotations

import os
import socket

import numpy as np
import torch
import torch.multiprocessing as mp

from selfsup.cli import main
from selfsup.embeddings import EmbeddingStore
from selfsup.models import build_encoder, save_encoder

WORLD = 2


def _command(run_dir: str, out: str) -> list[str]:
    return [
        "embed", "--run-dir", run_dir, "--data.dataset", "digits", "--split", "train",
        "--train.device", "cpu", "--chunk-rows", "100", "--out", out,
    ]  # fmt: skip


def _worker(rank: int, port: int, run_dir: str, out: str) -> None:
    os.environ.update(
        {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(WORLD),
         "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    )  # fmt: skip
    torch.set_num_threads(1)
    assert main(_command(run_dir, out)) == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_write_the_one_process_folder(tmp_path) -> None:
    torch.manual_seed(0)
    kwargs = {"in_channels": 1, "base_width": 4, "stem": "cifar"}
    architecture = {"name": "resnet18", "kwargs": kwargs, "mean": [0.3], "std": [0.4]}
    save_encoder(build_encoder("resnet18", **kwargs), {**architecture, "image_size": 8}, tmp_path)
    torch.set_num_threads(1)
    assert main(_command(str(tmp_path), str(tmp_path / "one"))) == 0
    mp.spawn(_worker, args=(_free_port(), str(tmp_path), str(tmp_path / "two")), nprocs=WORLD)
    one, two = EmbeddingStore(tmp_path / "one"), EmbeddingStore(tmp_path / "two")
    assert two.complete() and two.meta().rows == one.meta().rows > 1000
    assert two.meta().num_chunks > WORLD  # both processes had chunks to write
    np.testing.assert_allclose(two.vectors(), one.vectors(), atol=2e-3)  # float16 rows
    assert two.items()["label"].tolist() == one.items()["label"].tolist()
    assert (tmp_path / "two" / "failed.csv").is_file()  # rank 0 finished the tables
