"""GUI test fixtures: offscreen Qt, settings in a temporary folder, fake jobs."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    """Every GUI test reads and writes its own settings file, never the user's."""
    monkeypatch.setenv("NAVIEWER_SETTINGS_DIR", str(tmp_path / "settings"))
