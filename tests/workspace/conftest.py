"""Fixtures for workspace tests: small generated datasets (no dependency on the data sources)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from naviewer.data.base import ArrayDataset
from naviewer.workspace import Workspace


def make_dataset(n: int = 40, seed: int = 0, size: int = 8) -> ArrayDataset:
    """Random RGB images with 3 classes and file-like source keys."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, n)
    keys = [f"class{labels[i]}/img_{i:05d}.png" for i in range(n)]
    return ArrayDataset(images, labels, ["cat", "dog", "bird"], source_keys=keys)


@pytest.fixture
def dataset() -> ArrayDataset:
    return make_dataset()


@pytest.fixture
def ws(tmp_path: Path, dataset: ArrayDataset):
    workspace = Workspace.create(tmp_path / "ws", dataset, settings={"seed": 1})
    yield workspace
    workspace.close()
