"""Application start: the window is on screen before torch (or pyqtgraph) is imported."""

from __future__ import annotations

import os
import subprocess
import sys

from naviewer.bench import startup
from naviewer.gui import app


def test_window_is_shown_before_torch_is_imported(tmp_path):
    env = dict(os.environ, NAVIEWER_STARTUP_PROBE="1", NAVIEWER_SETTINGS_DIR=str(tmp_path), QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-m", "naviewer"], env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in out.stdout.splitlines() if line.startswith(app.PROBE_TAG)]
    assert out.returncode == 0 and lines, out.stderr[-2000:]
    assert lines[0].endswith("torch=0"), "torch was imported before the main window appeared"


def test_a_settings_folder_that_cannot_be_made_starts_the_window_on_a_temporary_one(tmp_path):
    """An unwritable settings folder ended the start in a PermissionError traceback (a permission probe, session 34);
    a file where the folder goes fails the same way for root too."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = dict(os.environ, NAVIEWER_STARTUP_PROBE="1", NAVIEWER_SETTINGS_DIR=str(blocker / "settings"),
               QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-m", "naviewer"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert f"the settings folder {blocker / 'settings'} cannot be made" in out.stderr
    assert any(line.startswith(app.PROBE_TAG) for line in out.stdout.splitlines())


def test_gui_modules_import_neither_torch_nor_pyqtgraph():
    code = (
        "import sys\n"
        "import naviewer.gui.app, naviewer.gui.main_window, naviewer.gui.jobs, naviewer.gui.train_dialog\n"
        "import naviewer.gui.about, naviewer.gui.tasks, naviewer.gui.training\n"
        "print(sorted(m for m in ('torch', 'pyqtgraph', 'torchvision') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_startup_benchmark_speaks_the_apps_probe():
    assert startup.PROBE_TAG == app.PROBE_TAG
    text = startup.format_result(
        {"floor_s": 0.2, "window_s": 0.5, "floor_all": [0.2], "window_all": [0.5], "torch_loaded_at_window": False,
         "platform": "offscreen"}
    )
    assert "2.50x" in text and "torch imported when the window appeared: no" in text


RUN_APP_SCRIPT = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from naviewer.gui import app

def check_and_quit():
    window = next((w for w in QApplication.topLevelWidgets() if w.objectName() == "mainWindow"), None)
    if window is None or window.monitor is None or not window.monitor.data:
        QTimer.singleShot(50, check_and_quit)
        return
    print("LOSS", window.monitor.data[("loss", "epoch")], window.theme_manager.theme.name, flush=True)
    window.close()
    QApplication.instance().quit()

qapp = QApplication(sys.argv[:1])  # run_app reuses it
QTimer.singleShot(100, check_and_quit)
sys.exit(app.run_app([sys.argv[1], "--theme", "dark"]))
"""


def test_run_app_follows_a_run_folder_given_on_the_command_line(tmp_path):
    """run_app with a run folder (in its own process, as it runs the event loop to the end)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"kind":"run_start","time":0,"total_epochs":2,"steps_per_epoch":1,"method":"simclr"}\n'
                                       '{"kind":"epoch","time":0,"epoch":0,"loss":3.0}\n')
    env = dict(os.environ, NAVIEWER_SETTINGS_DIR=str(tmp_path / "settings"), QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", RUN_APP_SCRIPT, str(run)], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LOSS ([1.0], [3.0]) dark" in out.stdout


def test_probe_with_a_workspace_quits_by_itself(tmp_path):
    """Opening a workspace starts a job; the probe must not hang on the 'jobs still running' question."""
    import numpy as np

    from naviewer.data.base import ArrayDataset
    from naviewer.workspace import Workspace

    images = np.zeros((6, 8, 8, 3), np.uint8)
    Workspace.create(tmp_path / "ws", ArrayDataset(images, [0, 1, 0, 1, 0, 1], ["a", "b"])).close()
    env = dict(os.environ, NAVIEWER_STARTUP_PROBE="1", NAVIEWER_SETTINGS_DIR=str(tmp_path), QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-m", "naviewer.gui.app", str(tmp_path / "ws")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert any(line.startswith(app.PROBE_TAG) for line in out.stdout.splitlines())


def test_an_error_in_a_slot_is_said_in_the_log_and_a_box_not_only_on_stderr(qtbot, window, monkeypatch):
    """The Analyst panel failed to open after a detection with a traceback on stderr and no word in the window (a
    newcomer, session 25): the app's hook logs it and says it in a box opened after the event, still prints it; a
    paint that raises at every repaint gives one box and one traceback, not one a repaint (a review)."""
    from PySide6.QtWidgets import QMessageBox

    printed, boxes = [], []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, title, text: boxes.append((title, text)))
    hook = app.unexpected_error_hook(window, lambda kind, value, tb: printed.append(kind))
    for _ in range(7):
        try:
            raise AttributeError("'SessionBridge' object has no attribute 'image_readable_again'")
        except AttributeError as exc:
            hook(type(exc), exc, exc.__traceback__)
    assert boxes == []  # not inside the event that raised
    qtbot.waitUntil(lambda: len(boxes) == 1, timeout=3000)
    qtbot.wait(50)
    assert len(boxes) == 1 and "AttributeError" in boxes[0][1] and "stay in the workspace" in boxes[0][1]
    assert printed == [AttributeError]
    logged = [line for line in window.state.messages if "unexpected error" in line]
    assert len(logged) == 2 and "Traceback" in logged[0] and "again (2 times so far)" in logged[1]
    hook(KeyboardInterrupt, KeyboardInterrupt(), None)  # Ctrl+C: printed only
    qtbot.wait(50)
    assert len(boxes) == 1 and printed[-1] is KeyboardInterrupt
