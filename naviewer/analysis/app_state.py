"""The application's state, Qt-free and evented: what is open and what the log says.

The main window (:mod:`naviewer.gui.main_window`) and its panels are views of one :class:`AppState`:
they connect to its events and redraw; controllers (the window's own actions, the demo, the analyst
dock, scripts, tests) change the state and never call the views. In the spirit of napari's models,
with :class:`naviewer.analysis.events.Signal` for the callbacks, so no Qt is imported here.

What it holds:

* the open **workspace** (a path) and the summary its opening job returned (samples, runs, latest
  detection pass, ...);
* the open **dataset** (a path) and its summary; the open **encoder** checkpoint;
* the **run** the window shows (a run folder, or a short text such as ``"starting…"``; None: none);
* the **training** job: an opaque handle (the GUI keeps its ``Job`` here), None when none runs;
* the **log**: time-stamped lines, the latest :data:`LOG_LINES` kept.

Events (``state.events.<name>.connect(callback)``), emitted after the state changed:

* ``workspace(previous)``: :meth:`AppState.set_workspace` was called, also when the same workspace
  is opened again (its summary may be new); ``previous`` is the path before, so a view tells a
  switch from a reopen with :meth:`AppState.workspace_switched`;
* ``dataset()``, ``encoder()``, ``run()``, ``training()``: emitted only when the value changed;
* ``message(line)``: a line was logged (``line`` carries its time stamp).

Callbacks run synchronously on the caller's thread: change the state from one thread (in the GUI,
the GUI thread, where job callbacks run too).
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Optional

from naviewer.analysis.events import Signal

LOG_LINES = 2000  #: log lines kept (the window's Log panel keeps as many)


def _path(value: "Optional[os.PathLike[str] | str]") -> Optional[Path]:
    return None if value is None else Path(value)


class AppEvents:
    """The state's signals (see the module docstring for their arguments)."""

    def __init__(self) -> None:
        self.workspace = Signal()
        self.dataset = Signal()
        self.encoder = Signal()
        self.run = Signal()
        self.training = Signal()
        self.message = Signal()


class AppState:
    """What the application has open; views observe ``events``, controllers call the setters."""

    def __init__(self, clock: Callable[[], str] = lambda: time.strftime("%H:%M:%S")) -> None:
        self.events = AppEvents()
        self.workspace: Optional[Path] = None
        self.workspace_summary: dict[str, Any] = {}
        self.dataset: Optional[Path] = None
        self.dataset_summary: dict[str, Any] = {}
        self.encoder: Optional[Path] = None
        self.run: Optional[str] = None
        self.training: Any = None
        self.messages: deque[str] = deque(maxlen=LOG_LINES)
        self._clock = clock

    # -- what is open --------------------------------------------------------------------------
    def set_workspace(self, path: "Optional[os.PathLike[str] | str]", summary: Optional[dict] = None) -> None:
        """The open workspace (None: none) with its summary; always emits ``workspace(previous)``."""
        previous = self.workspace
        self.workspace = _path(path)
        self.workspace_summary = dict(summary or {})
        self.events.workspace.emit(previous)

    def workspace_switched(self, previous: Optional[Path]) -> bool:
        """True when the workspace now open is another than ``previous`` (the ``workspace`` event's argument)."""
        return previous is None or self.workspace is None or Path(previous) != Path(self.workspace)

    def set_dataset(self, path: "Optional[os.PathLike[str] | str]", summary: Optional[dict] = None) -> None:
        """The open dataset (None: none) with its summary (samples, kind, ...)."""
        path, summary = _path(path), dict(summary or {})
        if path == self.dataset and summary == self.dataset_summary:
            return
        self.dataset, self.dataset_summary = path, summary
        self.events.dataset.emit()

    def set_encoder(self, path: "Optional[os.PathLike[str] | str]") -> None:
        """The open encoder checkpoint (None: none)."""
        path = _path(path)
        if path == self.encoder:
            return
        self.encoder = path
        self.events.encoder.emit()

    def set_run(self, run: "Optional[os.PathLike[str] | str]") -> None:
        """The run the window shows: a run folder, a short text (``"starting…"``), or None."""
        run = None if run is None else str(run)
        if run == self.run:
            return
        self.run = run
        self.events.run.emit()

    def set_training(self, job: Any) -> None:
        """The running training job (an opaque handle; None: none)."""
        if job is self.training:
            return
        self.training = job
        self.events.training.emit()

    # -- the log -------------------------------------------------------------------------------
    def log(self, text: str) -> str:
        """Log ``text`` with a time stamp; returns the line as stored and emitted."""
        line = f"{self._clock()}  {text}"
        self.messages.append(line)
        self.events.message.emit(line)
        return line

    # -- reading -------------------------------------------------------------------------------
    @property
    def samples(self) -> Optional[int]:
        """The open workspace's sample count, else the open dataset's, else None."""
        return self.workspace_summary.get("samples") or self.dataset_summary.get("samples")

    def training_source(self) -> str:
        """What training would read: ``"Workspace: PATH"``, ``"Dataset: PATH"`` or ``""``."""
        if self.workspace is not None:
            return f"Workspace: {self.workspace}"
        if self.dataset is not None:
            return f"Dataset: {self.dataset}"
        return ""

    def title(self) -> str:
        """The window title: ``"<workspace> — naviewer"``, or ``"naviewer"`` with none open."""
        return f"{self.workspace.name} — naviewer" if self.workspace is not None else "naviewer"
