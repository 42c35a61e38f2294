"""GUI test fixtures: offscreen Qt, settings in a temporary folder, fake jobs."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    """Every GUI test reads and writes its own settings file, never the user's."""
    monkeypatch.setenv("NAVIEWER_SETTINGS_DIR", str(tmp_path / "settings"))


@pytest.fixture(autouse=True)
def _light_plot_defaults():
    """pyqtgraph's global background is black until a theme is applied, and a window applies one for the rest of
    the process: the map's colours (lifted on a dark background) then depended on which tests ran before, and
    test_open_same_as_before failed when run alone. Every test starts from the light theme's plot colours."""
    import sys

    if "pyqtgraph" in sys.modules:
        from naviewer.gui.resources import load_theme
        from naviewer.gui.theme import configure_pyqtgraph

        configure_pyqtgraph(load_theme("light"))
    yield


@pytest.fixture(autouse=True)
def bulk_answers(monkeypatch):
    """The questions the analyst views ask before a bulk decision (``.asked``), answered with
    ``.answer`` (yes unless a test says otherwise) instead of a modal box nobody would close."""
    from naviewer.gui.analyst import common

    record = SimpleNamespace(asked=[], answer=True, defaults=[])

    def ask(_parent, _title, text, default_yes=True):
        record.asked.append(text)
        record.defaults.append(default_yes)
        return record.answer

    monkeypatch.setattr(common, "ask_user", ask)
    return record


@pytest.fixture
def window(qtbot):
    """A shown main window, torn down with its jobs cancelled and waited for.

    Not ``qtbot.addWidget``: pytest-qt would close the window before this fixture's teardown, and
    closing with jobs still running asks a (blocking) question.
    """
    from naviewer.gui.main_window import MainWindow

    win = MainWindow()
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.jobs.cancel_all()
    win.jobs.wait_all(30)
    if win.analyst_dock is not None:
        win.analyst_dock.close()
    win.close()
    win.deleteLater()
