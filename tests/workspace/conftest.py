"""Fixtures for workspace tests: small generated datasets (no dependency on the data sources)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from naviewer.data.base import ArrayDataset
from naviewer.workspace import Workspace


from workspace_kit import make_dataset  # noqa: E402


@pytest.fixture
def dataset() -> ArrayDataset:
    return make_dataset()


@pytest.fixture
def ws(tmp_path: Path, dataset: ArrayDataset):
    workspace = Workspace.create(tmp_path / "ws", dataset, settings={"seed": 1})
    yield workspace
    workspace.close()
