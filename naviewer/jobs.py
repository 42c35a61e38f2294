"""The job protocol shared by the CLI and the GUI.

A job is a plain core function that takes a :class:`JobContext`. It reports progress, metrics and
events through ``ctx`` and calls ``ctx.check()`` between batches. ``check()`` raises
:class:`~naviewer.errors.JobCancelled` once cancel is requested and blocks while the job is
paused, so every job is cancellable and pausable without knowing who drives it. The CLI renders
the reports as a progress bar (``naviewer.cli.progress``); the GUI runs the same function in a
worker thread and turns the reports into throttled Qt signals. Nothing here imports torch or Qt.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

from naviewer.errors import JobCancelled


class Reporter(Protocol):
    """Receives what a job says. Implementations must be cheap and thread-safe."""

    def progress(self, done: float, total: Optional[float], message: str) -> None: ...

    def metric(self, values: dict[str, Any]) -> None: ...

    def event(self, kind: str, data: dict[str, Any]) -> None: ...


class NullReporter:
    """Discards everything: the default for scripted use and tests that do not care."""

    def progress(self, done: float, total: Optional[float], message: str) -> None:
        pass

    def metric(self, values: dict[str, Any]) -> None:
        pass

    def event(self, kind: str, data: dict[str, Any]) -> None:
        pass


@dataclass
class RecordingReporter:
    """Keeps every report in memory, for tests and for small scripted runs."""

    progresses: list[tuple[float, Optional[float], str]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def progress(self, done: float, total: Optional[float], message: str) -> None:
        self.progresses.append((done, total, message))

    def metric(self, values: dict[str, Any]) -> None:
        self.metrics.append(dict(values))

    def event(self, kind: str, data: dict[str, Any]) -> None:
        self.events.append((kind, dict(data)))


class JobContext:
    """What a running job holds: where to report, and the cancel/pause flags it must honour."""

    def __init__(self, reporter: Optional[Reporter] = None) -> None:
        self.reporter: Reporter = reporter if reporter is not None else NullReporter()
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.started_at = time.monotonic()

    # -- control, called from any thread -------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()  # a paused job must wake up to notice the cancel

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    # -- called by the job ----------------------------------------------------------------
    def check(self) -> None:
        """Block while paused; raise JobCancelled if cancel was requested."""
        if not self._running.is_set():
            self.reporter.event("paused", {})
            while not self._running.wait(0.1):
                pass
            if not self._cancel.is_set():
                self.reporter.event("resumed", {})
        if self._cancel.is_set():
            raise JobCancelled()

    def progress(self, done: float, total: Optional[float] = None, message: str = "") -> None:
        self.reporter.progress(done, total, message)

    def metric(self, **values: Any) -> None:
        self.reporter.metric(values)

    def event(self, kind: str, **data: Any) -> None:
        self.reporter.event(kind, data)


def ensure_context(ctx: Optional[JobContext]) -> JobContext:
    """Core functions accept ``ctx=None`` for scripted use; this gives them a silent context."""
    return ctx if ctx is not None else JobContext()
