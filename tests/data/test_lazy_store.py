"""LazyImageStore: a one-visit pass decodes a bounded chunk at a time, in order, and gives the same rows."""

from __future__ import annotations

import numpy as np
import pytest

from naviewer.data.base import ArrayDataset, SubsetDataset
from naviewer.data.store import ImageStore, LazyImageStore, store_rows, streaming_store
from naviewer.errors import JobCancelled, NaviewerError
from naviewer.jobs import JobContext


class CountingDataset(ArrayDataset):
    """A list-backed dataset (no whole array) that counts its decodes and the most held at once."""

    def __init__(self, images, labels):
        super().__init__(list(images), labels, ["a", "b", "c"])
        self.decoded = 0

    def as_array(self):
        return None

    def image(self, index):
        self.decoded += 1
        return super().image(index)


def _mixed(n: int = 40) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    shapes = [(16, 16), (16, 32), (32, 16)]
    return [rng.integers(0, 256, size=(*shapes[i % 3], 3), dtype=np.uint8) for i in range(n)]


def test_chunks_cover_every_row_in_order_within_the_budget() -> None:
    images = _mixed()
    data = CountingDataset(images, np.arange(40) % 3)
    budget_mb = 3 * 16 * 32 * 3 / 2**20  # about three images a chunk
    lazy = LazyImageStore(data, decode_mb=budget_mb)
    seen = []
    for offset, chunk in lazy.chunks():
        assert isinstance(chunk, ImageStore)
        assert chunk.nbytes < lazy.decode_bytes + 32 * 16 * 3  # at most one image past the budget
        for k in range(len(chunk)):
            np.testing.assert_array_equal(chunk.image(k), images[offset + k])
            assert chunk.labels[k] == (offset + k) % 3
        seen.extend(range(offset, offset + len(chunk)))
    assert seen == list(range(40))
    assert data.decoded == 40  # each image once


def test_subset_and_rows_decode_only_what_is_asked() -> None:
    images = _mixed()
    data = CountingDataset(images, np.arange(40) % 3)
    lazy = LazyImageStore(data)
    sub = lazy.subset([7, 3, 3])
    assert data.decoded == 3 and len(sub) == 3
    np.testing.assert_array_equal(sub.image(0), images[7])
    part = store_rows(lazy, 10, 20)
    assert isinstance(part, LazyImageStore) and len(part) == 10 and data.decoded == 3
    np.testing.assert_array_equal(part.subset([0]).image(0), images[10])
    np.testing.assert_array_equal(part.labels, np.arange(10, 20) % 3)
    with pytest.raises(IndexError):
        lazy.subset([40])


def test_streaming_store_reads_an_in_memory_array_as_it_is() -> None:
    array = np.zeros((6, 8, 8, 3), dtype=np.uint8)
    store = streaming_store(ArrayDataset(array, np.zeros(6, dtype=np.int64), ["x"]))
    assert isinstance(store, ImageStore) and np.shares_memory(store.buckets[0].images, array)
    assert isinstance(streaming_store(SubsetDataset(CountingDataset(_mixed(6), np.zeros(6)), [0, 1])), LazyImageStore)
    with pytest.raises(NaviewerError):
        streaming_store(ArrayDataset(np.zeros((0, 8, 8, 3), np.uint8), np.zeros(0, np.int64), ["x"]))
    with pytest.raises(NaviewerError, match="decode budget"):
        LazyImageStore(CountingDataset(_mixed(2), np.zeros(2)), decode_mb=float("nan"))


def test_chunks_stop_on_cancel() -> None:
    ctx = JobContext()
    ctx.cancel()
    with pytest.raises(JobCancelled):
        next(LazyImageStore(CountingDataset(_mixed(4), np.zeros(4))).chunks(ctx))
