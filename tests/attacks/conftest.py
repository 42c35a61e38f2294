"""Small generated datasets for the attack tests."""

from __future__ import annotations

import numpy as np
import pytest

from naviewer.data.base import ArrayDataset


def make_dataset(n: int = 60, size: int = 32, classes: int = 3, seed: int = 0) -> ArrayDataset:
    """``n`` random RGB images, labels cycling over ``classes`` (so every class is present)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    labels = np.arange(n) % classes
    return ArrayDataset(images, labels, [f"class{c}" for c in range(classes)])


@pytest.fixture
def tiny() -> ArrayDataset:
    return make_dataset()
