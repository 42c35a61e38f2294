"""Fixtures for the analyst views: a planted-cluster demo session and a real workspace holding it."""

from __future__ import annotations

import numpy as np
import pytest

from naviewer.analysis.demo import make_demo_session
from naviewer.analysis.session import AnalysisSession


@pytest.fixture()
def demo_session() -> AnalysisSession:
    return make_demo_session(2000, 60, seed=11)


@pytest.fixture()
def workspace_session(tmp_path):
    """(workspace path, session) for a real workspace whose latest pass is the demo's scores."""
    from naviewer.data.base import ArrayDataset
    from naviewer.workspace import Workspace

    demo = make_demo_session(600, 25, seed=12)
    images = np.asarray(demo.images)
    ws = Workspace.create(tmp_path / "ws", ArrayDataset(images, demo.labels, demo.class_names))
    ws.store.add_detection_pass("dift", {k: v for k, v in demo.scores.items()}, {"k": 10}, run="r", epoch=0)
    session = AnalysisSession.from_workspace(ws, images=images, embeddings=demo.embeddings, reviewer="tester")
    return tmp_path / "ws", ws, session
