"""Issue 17 item 4: a large workspace's session is read in a worker while the window keeps its timers and
paints running; the dock opened that way shows the same pass."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from naviewer.gui import analyst_dock
from naviewer.gui.analyst_dock import in_worker

from analyst_kit import folder_workspace


def test_in_worker_keeps_the_gui_thread_s_timers_running(qtbot) -> None:
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    threads: list[str] = []

    def slow() -> int:
        threads.append(threading.current_thread().name)
        time.sleep(0.3)
        return 42

    assert in_worker(slow) == 42
    timer.stop()
    assert threads == ["naviewer-analyst-open"] and len(ticks) >= 5  # the timer kept firing meanwhile

    def fails() -> None:
        raise ValueError("broken pass")

    with pytest.raises(ValueError, match="broken pass"):
        in_worker(fails)


def test_the_dock_reads_a_large_workspace_in_a_worker(qtbot, window, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(analyst_dock, "ASYNC_FROM", 0)  # every workspace counts as large
    used: list[str] = []
    real = analyst_dock.open_session

    def spy(*args, **kwargs):
        used.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(analyst_dock, "open_session", spy)
    path = folder_workspace(tmp_path)
    panel = window.show_analyst(path)
    assert panel is not None and used == ["naviewer-analyst-open"]
    from naviewer.analysis.session import AnalysisSession
    from naviewer.workspace import Workspace

    with Workspace.open(path) as ws:
        direct = AnalysisSession.from_workspace(ws, reviewer="t")
    assert panel.session.n == direct.n and set(direct.scores) <= set(panel.session.scores)
    for key, values in direct.scores.items():
        assert np.array_equal(panel.session.scores[key], values, equal_nan=values.dtype.kind == "f")
    first = int(panel.gallery.model.ids[0])
    panel.session.review([first], "confirmed")  # the GUI thread's connection writes the decision
    with Workspace.open(path) as ws:
        assert ws.store.review_codes()[first] == 1
    window.analyst_dock.close()
