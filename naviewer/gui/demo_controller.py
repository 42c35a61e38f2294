"""The demo's job in a window: :class:`DemoController` runs :func:`naviewer.workflows.demo.run_demo` as a training
job of a main window, follows its run as soon as the workspace exists, and docks the analyst at DIFT's flags.

Apart from :mod:`naviewer.gui.demo` (``naviewer demo``'s application) so that the window's Run ▸ Run the demo can use
it without importing the application module that imports the window.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QObject, Signal


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
        self.job.training_kind = "dift"
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
