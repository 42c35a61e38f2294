"""Shared helper of the workspace tests, under its own module name (see tests/workflows/workflow_kit.py)."""

from __future__ import annotations

import numpy as np

from naviewer.data.base import ArrayDataset


def make_dataset(n: int = 40, seed: int = 0, size: int = 8) -> ArrayDataset:
    """Random RGB images with 3 classes and file-like source keys."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, n)
    keys = [f"class{labels[i]}/img_{i:05d}.png" for i in range(n)]
    return ArrayDataset(images, labels, ["cat", "dog", "bird"], source_keys=keys)
