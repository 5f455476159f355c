"""The embeddings folder: chunks shared among processes give the single-process folder, a
folder is never continued by another encoder, and what is read back is what was written."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from selfsup.data.base import ImageDataset
from selfsup.embeddings import EmbeddingStore, embed
from selfsup.errors import SelfsupError


def _images(count: int = 50) -> ImageDataset:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 1, 6, 6), dtype=torch.uint8, generator=generator)
    return ImageDataset(images, torch.arange(count) % 3, ["a", "b", "c"], "tiny")


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(36, 5))


def test_processes_sharing_the_chunks_write_the_single_process_folder(tmp_path) -> None:
    images = _images()
    alone = embed(_model(), images, tmp_path / "alone", chunk_rows=8, dtype="float32")
    for rank in (0, 1):  # as two torchrun processes would, each its every-other chunk
        embed(
            _model(), images, tmp_path / "shared", chunk_rows=8, dtype="float32", rank=rank, world=2
        )
    shared = EmbeddingStore(tmp_path / "shared")
    assert shared.complete()
    shared.finish()
    np.testing.assert_array_equal(shared.vectors(), alone.vectors())
    assert shared.items()["label"].tolist() == images.labels.tolist()
    assert shared.items()["path"][3] == "tiny[3]"


def test_rows_are_the_models_normalised_features_in_input_order(tmp_path) -> None:
    images = _images(20)
    store = embed(_model(), images, tmp_path / "emb", chunk_rows=6, dtype="float32")
    with torch.no_grad():
        expected = _model()(images.images.float() / 255)
    expected = torch.nn.functional.normalize(expected, dim=1).numpy()
    np.testing.assert_allclose(store.vectors(), expected, rtol=1e-5, atol=1e-6)
    raw = embed(_model(), images, tmp_path / "raw", normalize=False, dtype="float16")
    assert raw.meta().dtype == "float16" and not raw.meta().normalized
    assert not np.allclose(np.linalg.norm(raw.vectors(), axis=1), 1.0, atol=1e-2)


def test_a_folder_is_not_continued_by_another_encoder(tmp_path) -> None:
    images = _images(10)
    embed(_model(), images, tmp_path / "emb", encoder_info={"fingerprint": "aaaa"})
    with pytest.raises(SelfsupError, match="another run"):
        embed(_model(), images, tmp_path / "emb", encoder_info={"fingerprint": "bbbb"})
    with pytest.raises(SelfsupError, match="already holds"):
        embed(
            _model(), images, tmp_path / "emb", encoder_info={"fingerprint": "aaaa"}, resume=False
        )


def test_an_incomplete_folder_is_not_read_as_if_whole(tmp_path) -> None:
    store = embed(_model(), _images(30), tmp_path / "emb", chunk_rows=10)
    store.chunk_path(2).unlink()
    with pytest.raises(SelfsupError, match="incomplete"):
        store.vectors()
    assert store.missing_chunks() == [2]


def test_stored_rows_read_across_chunks_like_the_whole_array(tmp_path) -> None:
    store = embed(_model(), _images(30), tmp_path / "emb", chunk_rows=7, dtype="float32")
    whole = store.vectors()
    rows = store.rows()
    assert rows.shape == whole.shape and len(rows) == 30
    np.testing.assert_array_equal(rows[5:23], whole[5:23])
    picked = np.array([29, 0, 14, 7, 7, 13])  # unsorted, repeated, across chunk borders
    np.testing.assert_array_equal(rows[picked], whole[picked])
    for picked in ([8, 8, 10], [10, 9, 8], [3, 4, 5, 6, 7, 8], [22]):  # a run is read as a block
        np.testing.assert_array_equal(rows[np.array(picked)], whole[picked])
    subset = store.rows(np.array([3, 20, 8]))  # position p holds row ids[p]
    np.testing.assert_array_equal(subset[:], whole[[3, 20, 8]])
    np.testing.assert_array_equal(subset[np.array([2, 0])], whole[[8, 3]])
    with pytest.raises(SelfsupError, match="outside"):
        store.rows(np.array([30]))


def test_items_of_chosen_rows_come_in_the_order_asked(tmp_path) -> None:
    images = _images(12)
    store = embed(_model(), images, tmp_path / "emb", chunk_rows=5)
    whole = store.items()
    picked = store.items([9, 2, 9, 0])  # unsorted and repeated
    assert picked["path"] == [whole["path"][i] for i in (9, 2, 9, 0)]
    assert picked["label"].tolist() == [9 % 3, 2 % 3, 9 % 3, 0]
    assert picked["ok"].tolist() == [True] * 4
    assert store.labels().tolist() == whole["label"].tolist() == images.labels.tolist()
    assert store.ok_ids().tolist() == list(range(12))
    with pytest.raises(SelfsupError, match=r"row ids \[12\]"):
        store.items([3, 12])


def test_rows_that_did_not_decode_are_left_out_of_ok_ids(tmp_path) -> None:
    store = embed(_model(), _images(12), tmp_path / "emb", chunk_rows=5)
    store.write_chunk(1, store.rows()[5:10], failed=[6, 8])
    store.finish()
    assert store.ok_ids().tolist() == [0, 1, 2, 3, 4, 5, 7, 9, 10, 11]
    assert np.flatnonzero(store.items()["ok"]).tolist() == store.ok_ids().tolist()
