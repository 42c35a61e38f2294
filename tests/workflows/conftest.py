"""Tiny on-disk datasets and settings for the workflow tests (a ResNet-10 at width 8 on 16 px)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common_kit import one_torch_thread
from workflow_kit import PATCH, TINY_BACKBONE, attacked_workspace, dift_config, train_config, write_folder  # noqa: F401


_few_threads = pytest.fixture(autouse=True, name="_few_threads")(one_torch_thread)


@pytest.fixture(scope="session", autouse=True)
def _quick_patchsearch():
    """PatchSearch's classifier at one member and 40 steps in the workflow tests (its quality is tests/defense's):
    the trigger check runs it inside the demo recipe's trainings, and at 3 x 600 steps it made the matrix and
    trigger-check tests 60-110 s each, a third of CI's time (session 33). Session-wide, so the module fixtures that
    train (the matrix's) get it too."""
    from dataclasses import dataclass

    from naviewer.defense.detectors.patchsearch import PatchSearchDetector, PatchSearchSettings

    @dataclass
    class QuickSettings(PatchSearchSettings):
        ensemble: int = 1
        iterations: int = 40

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PatchSearchDetector, "Settings", QuickSettings)
        yield


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> tuple[Path, Path]:
    """(train folder with 4 x 60 images, test folder with 4 x 15 images)."""
    base = tmp_path_factory.mktemp("tinydata")
    return write_folder(base / "train", 60), write_folder(base / "test", 15, seed=1)


@pytest.fixture(scope="session")
def accepted_run(tmp_path_factory, tiny_data):
    """(workspace path, outcome) of a 4-epoch DIFT run with accept-all (shared: it is the slow part)."""
    from naviewer.workflows.dift_training import train_with_dift

    setup = attacked_workspace(tmp_path_factory.mktemp("accepted") / "ws", tiny_data)
    with setup.workspace as ws:
        outcome = train_with_dift(ws, train_config(4), dift_config(), accept_all=True)
    return setup.workspace.path, outcome
