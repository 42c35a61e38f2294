"""The built-in digits demo set: size, shape, dtype, split and determinism."""

from __future__ import annotations

import numpy as np

from naviewer.data.demo import CLASS_NAMES, DigitsDemoDataset
from naviewer.data.store import ImageStore


def test_sizes_shapes_and_dtype() -> None:
    train, test = DigitsDemoDataset("train"), DigitsDemoDataset("test")
    assert (len(train), len(test)) == (1437, 360)
    assert train.class_names == CLASS_NAMES == [str(d) for d in range(10)]
    image = train.image(0)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert train.labels.dtype == np.int64 and set(np.unique(train.labels)) == set(range(10))
    assert train.image_size(5) == (32, 32)
    assert train.describe() == {"kind": "demo", "split": "train", "size": 1437}


def test_split_is_stratified_disjoint_and_complete() -> None:
    train, test = DigitsDemoDataset("train"), DigitsDemoDataset("test")
    keys_train = {train.source_key(i) for i in range(len(train))}
    keys_test = {test.source_key(i) for i in range(len(test))}
    assert not keys_train & keys_test and len(keys_train | keys_test) == 1797
    assert train.source_key(0).startswith("digits/")
    share = np.bincount(test.labels, minlength=10) / np.bincount(
        np.concatenate([train.labels, test.labels]), minlength=10
    )
    assert np.all(np.abs(share - 0.2) < 0.02)


def test_deterministic_and_coloured() -> None:
    a, b = DigitsDemoDataset("test"), DigitsDemoDataset("test")
    assert [a.content_hash(i) for i in range(20)] == [b.content_hash(i) for i in range(20)]
    image = a.image(3).astype(int)
    assert np.abs(image[..., 0] - image[..., 1]).max() > 0  # really colour, not grey in RGB
    grey = DigitsDemoDataset("test", tint=False).image(3)
    assert (grey[..., 0] == grey[..., 2]).all()
    assert grey.max() > 200 and grey.min() < 30


def test_becomes_a_store_in_one_piece() -> None:
    train = DigitsDemoDataset()
    store = ImageStore.from_dataset(train)
    assert store.fixed_size == (32, 32) and len(store) == len(train)
    np.testing.assert_array_equal(store.image(7), train.image(7))
