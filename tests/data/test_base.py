"""The dataset interface helpers: pixel hashes and subset views."""

from __future__ import annotations

import numpy as np
import pytest

from naviewer.data.base import UNLABELED, ArrayDataset, SubsetDataset, pixel_hash


def test_pixel_hash_depends_on_pixels_and_shape_only() -> None:
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert pixel_hash(image) == pixel_hash(image.copy()) == pixel_hash(np.asfortranarray(image))
    assert pixel_hash(image) != pixel_hash(image.reshape(3, 2, 3))
    changed = image.copy()
    changed[0, 0, 0] += 1
    assert pixel_hash(image) != pixel_hash(changed)


def test_subset_view_keeps_identity() -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(6, 4, 4, 3), dtype=np.uint8)
    base = ArrayDataset(images, [0, 1, 2, 0, 1, UNLABELED], ["a", "b", "c"], [f"k/{i}" for i in range(6)])
    view = SubsetDataset(base, [5, 2, -1])
    assert len(view) == 3 and view.base_index(2) == 5
    np.testing.assert_array_equal(view.labels, [UNLABELED, 2, UNLABELED])
    assert [view.source_key(i) for i in range(3)] == ["k/5", "k/2", "k/5"]
    assert view.content_hash(1) == base.content_hash(2)
    np.testing.assert_array_equal(view.as_array(), images[[5, 2, 5]])
    assert view.describe()["indices"] == [5, 2, 5] and view.class_names == ["a", "b", "c"]
    with pytest.raises(IndexError):
        SubsetDataset(base, [6])


def test_list_backed_array_dataset_has_no_whole_array() -> None:
    data = ArrayDataset([np.zeros((2, 2, 3), np.uint8), np.zeros((3, 2, 3), np.uint8)], None, [])
    assert data.as_array() is None
    assert data.labels.tolist() == [UNLABELED, UNLABELED]
