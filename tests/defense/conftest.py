"""Small generated embeddings shared by the DIFT tests."""

from __future__ import annotations

import numpy as np
import pytest

from naviewer.defense.anchors import draw_anchors
from naviewer.defense.config import DiftConfig
from naviewer.defense.synthetic import make_embeddings


@pytest.fixture(scope="session")
def poisoned():
    """3,000 x 64 clustered embeddings with a 1% tight poison cluster and benign near-duplicates."""
    return make_embeddings(3000, 64, n_classes=10, intrinsic_dim=12, duplicate_groups=10, seed=1)


@pytest.fixture(scope="session")
def poisoned_anchors(poisoned):
    return draw_anchors(poisoned.clean_labels, 10, seed=0, candidates=np.flatnonzero(~poisoned.poison))


@pytest.fixture()
def small_config() -> DiftConfig:
    return DiftConfig(knn_backend="exact", num_threads=2, gmm_n_init=2)
