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
import time
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QObject, QTimer, Signal

SCREENSHOTS_ENV = "NAVIEWER_DEMO_SCREENSHOTS"
QUIT_ENV = "NAVIEWER_DEMO_QUIT"


class DemoController(QObject):
    """Runs the demo in a window: ``DemoController(window, path, config, started=None).start()``.

    Signals: ``workspace_ready(str, str)`` (workspace, run dir; from the worker thread, queued),
    ``flags_ready(object)`` (the DemoOutcome, after the analyst panel is docked).
    """

    workspace_ready = Signal(str, str)
    flags_ready = Signal(object)

    def __init__(self, window, path: Path, config: Any, started: Optional[float] = None) -> None:
        super().__init__(window)
        self.window = window
        self.path = Path(path).absolute()
        self.config = config
        self.started = time.perf_counter() if started is None else started
        self.job = None
        self.outcome = None
        self.panel = None
        self.workspace_ready.connect(self._on_workspace)

    def start(self):
        """Start the demo job (a training job: Pause/Cancel act on it); returns the Job or None."""
        from naviewer.gui import tasks

        path, config, started = self.path, self.config, self.started
        emit = self.workspace_ready.emit

        def job(ctx):
            from naviewer.workflows.demo import run_demo

            return run_demo(path, config, ctx, on_workspace=lambda p, r: emit(str(p), str(r)), started=started)

        w = self.window
        self.job = w.start_job(job, "Demo: poisons → DIFT flags", resources=["training", f"workspace:{path}"],
                               kind="training", torch_threads=config.threads or tasks.training_threads(),
                               on_success=self._on_finished)
        if self.job is None:
            return None
        state = w.state
        state.set_training(self.job)
        state.log(f"demo: creating {path} (digits + Noisy Alignment poisons), then SimCLR with DIFT in the loop")
        state.set_run("starting…")
        w.docks["monitorDock"].show()
        w.docks["monitorDock"].raise_()
        return self.job

    def _summary(self, path: str) -> dict:
        """The Overview's facts of the demo's workspace (its dataset, the pass): it said "Dataset: none" while the
        demo trained on its own digits. A workspace that cannot be read yet gives the bare path."""
        from naviewer.errors import NaviewerError
        from naviewer.gui import tasks
        from naviewer.jobs import JobContext

        try:
            return tasks.workspace_summary(Path(path), JobContext())
        except (NaviewerError, OSError):
            return {"path": path, "runs": []}

    def _on_workspace(self, path: str, run_dir: str) -> None:
        w = self.window
        w.state.set_workspace(Path(path), self._summary(path))
        w.follow_run(run_dir)
        w.state.log(f"demo: training in {run_dir}; DIFT starts at epoch {self.config.dift_start + 1} and flags appear "
                    "when its buffer is stable")

    def _on_finished(self, job) -> None:
        out = job.result
        self.outcome = out
        w = self.window
        for line in out.summary_lines():
            w.state.log(f"demo: {line}")
        if out.pass_id is None:
            w.inform("Demo", "DIFT did not flag anything within the training run.\n\n" + "\n".join(out.summary_lines()))
            return
        w.state.set_workspace(Path(out.workspace), self._summary(str(out.workspace)))
        self.panel = w.show_analyst(out.workspace, out.pass_id, run=out.run)
        w.statusBar().showMessage(f"DIFT flagged {out.flagged} samples: review them in the Analyst panel, "
                                  "then fine-tune (Fine-tune tab)", 15000)
        self.flags_ready.emit(out)


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
        """Play the analyst: confirm every flag, press Fine-tune, grab the before/after table."""
        dock = self.window.analyst_dock
        if dock is None:
            return self._done()
        panel = dock.panel
        panel.session.confirm(panel.session.flagged_ids())
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
