"""ImageStore: size buckets, the whole-array fast path, vectorised subsets, progress and cancel."""

from __future__ import annotations

import numpy as np
import pytest

from naviewer.data.base import ArrayDataset, SubsetDataset
from naviewer.data.store import ImageStore
from naviewer.errors import JobCancelled, NaviewerError
from naviewer.jobs import JobContext, RecordingReporter


def _mixed(n: int = 12) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    shapes = [(32, 32), (32, 64), (64, 32)]
    return [rng.integers(0, 256, size=(*shapes[i % 3], 3), dtype=np.uint8) for i in range(n)]


def test_buckets_by_size_and_subset_keeps_order() -> None:
    images = _mixed()
    store = ImageStore.from_images(images, np.arange(12) % 4, ["a", "b", "c", "d"])
    assert len(store.buckets) == 3 and store.fixed_size is None
    assert [tuple(s) for s in store.sizes[:3]] == [(32, 32), (32, 64), (64, 32)]
    order = [11, 0, 4, 4, 7, 2]
    sub = store.subset(order)
    assert len(sub) == 6
    for k, i in enumerate(order):
        np.testing.assert_array_equal(sub.image(k), images[i])
        assert tuple(sub.sizes[k]) == images[i].shape[:2]
    np.testing.assert_array_equal(sub.labels, np.asarray(order) % 4)
    assert len(store.subset([0, 3]).buckets) == 1
    assert len(store.subset([])) == 0
    with pytest.raises(IndexError):
        store.subset([12])


def test_from_dataset_takes_a_whole_array_without_copy_or_loop() -> None:
    array = np.random.default_rng(0).integers(0, 256, size=(10, 8, 8, 3), dtype=np.uint8)
    data = ArrayDataset(array, np.arange(10) % 2, ["x", "y"])
    store = ImageStore.from_dataset(data)
    assert np.shares_memory(store.buckets[0].images, array)
    sub_store = ImageStore.from_dataset(SubsetDataset(data, [9, 1]))
    np.testing.assert_array_equal(sub_store.image(0), array[9])


def test_from_dataset_loop_reports_progress_and_honours_cancel() -> None:
    images = _mixed(5)
    data = ArrayDataset(images, None, [])
    reporter = RecordingReporter()
    store = ImageStore.from_dataset(data, JobContext(reporter))
    assert len(store) == 5 and reporter.progresses[-1][:2] == (5, 5)
    ctx = JobContext()
    ctx.cancel()
    with pytest.raises(JobCancelled):
        ImageStore.from_dataset(data, ctx)
    with pytest.raises(NaviewerError, match="no images"):
        ImageStore.from_dataset(ArrayDataset([], None, []))
