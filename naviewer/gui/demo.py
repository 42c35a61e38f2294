"""The window side of ``naviewer demo``: start the demo job, follow its run, dock the analyst at the flags.

:class:`DemoController` runs :func:`naviewer.workflows.demo.run_demo` as a training job of the main
window. As soon as the workspace exists the monitor follows ``<ws>/runs/demo`` (so the plots
continue across the review and the fine-tuning, which append to the same ``metrics.jsonl``); when
DIFT's flags are saved the job ends and the window docks the analyst panel on that detection pass
with the embeddings DIFT ranked. Fine-tuning is wired by the window (:meth:`MainWindow.show_analyst`).

``NAVIEWER_DEMO_SCREENSHOTS=DIR`` saves ``demo-training-light.png``, ``demo-training-dark.png``
(during training) and ``demo-analyst.png`` (after the flags) and, after confirming every flag and pressing Fine-tune, ``demo-finetune.png`` with ``QWidget.grab()``;
``NAVIEWER_DEMO_QUIT=1`` quits after the last one (scripted screenshots).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PySide6.QtCore import QObject, QTimer

from naviewer.gui.demo_controller import DemoController

__all__ = ["DemoController", "DemoScreenshots", "run_demo_gui"]

SCREENSHOTS_ENV = "NAVIEWER_DEMO_SCREENSHOTS"
QUIT_ENV = "NAVIEWER_DEMO_QUIT"


class DemoScreenshots(QObject):
    """Grabs the window at the demo's moments (see the module docstring)."""

    def __init__(self, window, controller: DemoController, out_dir: Path, training_epochs: Optional[int] = None,
                 quit_after: bool = False) -> None:
        super().__init__(window)
        self.window, self.controller = window, controller
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        # a few DIFT epochs in: the detection plots are on screen
        self.training_epochs = training_epochs or int(controller.config.dift_start) + 3
        self.quit_after = quit_after
        self.taken: list[Path] = []
        self._training_done = False
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._poll)
        self._timer.start()
        controller.flags_ready.connect(lambda _out: QTimer.singleShot(4000, self._analyst))

    def save(self, name: str) -> Path:
        path = self.out / name
        self.window.grab().save(str(path))
        self.taken.append(path)
        return path

    def _poll(self) -> None:
        monitor = self.window.monitor
        if self._training_done or monitor is None:
            return
        epochs = len(monitor.data.get(("loss", "epoch"), ([], []))[0])
        if epochs >= self.training_epochs:
            self._training_done = True
            self._timer.stop()
            theme = self.window.theme_manager.theme.name
            self.window.set_theme("light")
            QTimer.singleShot(800, lambda: self._training_shots(theme))

    def _training_shots(self, theme: str) -> None:
        self.save("demo-training-light.png")
        self.window.set_theme("dark")

        def dark() -> None:
            self.save("demo-training-dark.png")
            self.window.set_theme(theme)

        QTimer.singleShot(800, dark)

    def _analyst(self) -> None:
        dock = self.window.docks.get("analystDock")
        if dock is not None:
            dock.raise_()
        self.save("demo-analyst.png")
        self._finetune()

    def _finetune(self) -> None:
        """Play the analyst: confirm every flag (as accept-all: but those the pass's trigger check clears), press
        Fine-tune, grab the before/after table."""
        dock = self.window.analyst_dock
        if dock is None:
            return self._done()
        panel = dock.panel
        panel.session.confirm(np.setdiff1d(panel.session.flagged_ids(), panel.cleared_by_check()))
        panel.tabs.setCurrentWidget(panel.finetune_gate)
        panel.finetune_gate.button.click()
        job = dock.finetune_job
        if job is None:
            return self._done()
        job.finished.connect(lambda _state: QTimer.singleShot(2500, self._after_finetune))

    def _after_finetune(self) -> None:
        self.save("demo-finetune.png")
        self._done()

    def _done(self) -> None:
        if self.quit_after:
            QTimer.singleShot(200, self._quit)

    def _quit(self) -> None:
        w = self.window
        if w.training_job is not None and w.training_job.running:
            w.training_job.cancel()
        w.jobs.cancel_all()
        w.jobs.wait_all(timeout_s=60.0)
        from PySide6.QtWidgets import QApplication

        QApplication.instance().quit()


def run_demo_gui(path: Path, config: Any, started: Optional[float] = None, theme: Optional[str] = None) -> int:
    """``naviewer demo``: the application with the demo running in it; returns the exit code."""
    from naviewer.gui.app import create_application, exec_with_ctrl_c
    from naviewer.gui.main_window import MainWindow

    app, themes = create_application(theme)
    window = MainWindow(themes)
    if not window.settings.value("window/geometry"):
        # first run: the analyst views want room; as large as the screen allows, up to 1600 x 1000
        area = app.primaryScreen().availableGeometry()
        window.resize(min(1600, area.width()), min(1000, area.height()))
    window.show()
    controller = DemoController(window, path, config, started)
    window.demo_controller = controller
    shots_dir = os.environ.get(SCREENSHOTS_ENV)
    if shots_dir:
        window.demo_screenshots = DemoScreenshots(window, controller, Path(shots_dir),
                                                  quit_after=bool(os.environ.get(QUIT_ENV)))
    QTimer.singleShot(0, controller.start)
    return exec_with_ctrl_c(app, window)
