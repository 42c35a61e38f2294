"""Running core jobs in the background and turning their reports into throttled Qt signals.

A job is any callable taking a :class:`naviewer.jobs.JobContext` (the same functions the CLI
runs). :class:`JobManager.start` runs it in a :class:`QThread`. The worker never touches widgets:
it writes reports into a :class:`BufferedReporter` (a lock and three slots), and a timer on the GUI
thread drains that buffer 15 times a second, so a job that reports every batch costs the GUI at
most 15 signal deliveries a second: progress is coalesced to the latest value, metric records are
queued and delivered as a list, events are delivered in order.

Jobs declare the resources they use ("training", a workspace path...). Starting a job whose
resources overlap a running job's raises :class:`JobConflict` with the reason, before anything
runs.
"""

from __future__ import annotations

import itertools
import threading
import time
import traceback
from enum import Enum
from typing import Any, Callable, Iterable, Optional

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from naviewer.errors import JobCancelled, NaviewerError
from naviewer.jobs import JobContext

JobFunction = Callable[[JobContext], Any]

UPDATE_HZ = 15.0

#: the job context of the job running on this thread (set by its worker), for :func:`route_naviewer_warnings`
_running = threading.local()


def route_naviewer_warnings() -> None:
    """Installed by every JobManager: naviewer's own warnings raised inside a job (a dataset's unreadable images, empty classes,
    duplicate list entries) become that job's ``warning`` events, which the window shows, and are said every time;
    before, they went to the terminal, where a person at the window never saw them (newcomer session 16). Other
    warnings, and naviewer's outside a job, go where they went."""
    import warnings

    from naviewer.data.base import DatasetWarning

    # said again when the same folder is opened again (Python's default: once per message and place)
    warnings.filterwarnings("always", category=DatasetWarning)
    default = warnings.showwarning
    if getattr(default, "naviewer_route", False):  # installed (and not undone since, as a test's capture does)
        return

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 - warnings' signature
        ctx = getattr(_running, "ctx", None)
        if ctx is None or not getattr(category, "__module__", "").startswith("naviewer"):
            return default(message, category, filename, lineno, file, line)
        ctx.event("warning", message=str(message))

    show.naviewer_route = True  # type: ignore[attr-defined]
    warnings.showwarning = show


class JobState(str, Enum):
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLING = "cancelling"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.FINISHED, JobState.FAILED, JobState.CANCELLED)


class JobConflict(NaviewerError):
    """A job was refused because a running job already uses one of its resources."""


class BufferedReporter:
    """Thread-safe reporter the worker writes into and the GUI thread drains.

    Progress keeps only the latest value (nobody needs to see 1,000 intermediate ones); metric
    records and events are kept in order until drained.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._progress: Optional[tuple[float, Optional[float], str]] = None
        self._metrics: list[dict[str, Any]] = []
        self._events: list[tuple[str, dict[str, Any]]] = []

    def progress(self, done: float, total: Optional[float], message: str) -> None:
        with self._lock:
            self._progress = (float(done), None if total is None else float(total), str(message))

    def metric(self, values: dict[str, Any]) -> None:
        with self._lock:
            self._metrics.append(dict(values))

    def event(self, kind: str, data: dict[str, Any]) -> None:
        with self._lock:
            self._events.append((str(kind), dict(data)))

    def drain(self) -> tuple[Optional[tuple[float, Optional[float], str]], list[dict[str, Any]], list[tuple[str, dict[str, Any]]]]:
        with self._lock:
            progress, self._progress = self._progress, None
            metrics, self._metrics = self._metrics, []
            events, self._events = self._events, []
        return progress, metrics, events


def _number(value: Any, default: Optional[float]) -> Optional[float]:
    """``value`` as a finite float (the monitor model's reading of a record's field), else ``default``."""
    from naviewer.analysis.monitor_model import number

    out = number(value)
    return default if out is None else out


class _Worker(QThread):
    """Runs the job function once and records how it ended; never touches widgets."""

    def __init__(self, function: JobFunction, ctx: JobContext, torch_threads: Optional[int]) -> None:
        super().__init__()
        self.function = function
        self.ctx = ctx
        self.torch_threads = torch_threads
        self.outcome: JobState = JobState.FAILED
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.details = ""

    def run(self) -> None:  # noqa: D401 - QThread entry point
        _running.ctx = self.ctx
        try:
            if self.torch_threads is not None:
                # Leave a core to the GUI thread. torch's intra-op pool is process-wide, so this is
                # set by the job that needs torch, inside the worker, never at startup; imported while no
                # other thread imports it (the device probe: a half-initialised torchvision otherwise)
                from naviewer.gui.environment import TORCH_IMPORT_LOCK

                with TORCH_IMPORT_LOCK:
                    import torch

                torch.set_num_threads(max(1, int(self.torch_threads)))
            self.result = self.function(self.ctx)
            self.outcome = JobState.CANCELLED if self.ctx.cancelled else JobState.FINISHED
        except JobCancelled:
            self.outcome = JobState.CANCELLED
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the user, not kill the thread
            self.outcome = JobState.FAILED
            self.error = exc
            self.details = traceback.format_exc()
        finally:
            _running.ctx = None


class Job(QObject):
    """One background job: its state, latest progress, remaining time, outcome, and its signals.

    Signals are emitted on the GUI thread only.
    """

    progress = Signal(float, object, str)  # done, total (float or None), message
    metrics = Signal(list)  # list of metric dicts, in order, since the last delivery
    event = Signal(str, dict)  # kind, data
    state_changed = Signal(str)  # JobState value
    finished = Signal(str)  # terminal JobState value
    worker_stopped = Signal()  # internal: the worker thread ended (emitted on the GUI thread)

    _ids = itertools.count(1)

    def __init__(
        self,
        function: JobFunction,
        name: str,
        resources: Iterable[str] = (),
        kind: str = "job",
        torch_threads: Optional[int] = None,
        parent: Optional[QObject] = None,
    ) -> None:
        super().__init__(parent)
        self.id = next(Job._ids)
        self.name = name
        self.kind = kind
        self.resources = frozenset(str(r) for r in resources)
        self.reporter = BufferedReporter()
        self.ctx = JobContext(self.reporter)
        self.state = JobState.RUNNING
        self.started_at = time.monotonic()
        self.ended_at: Optional[float] = None
        self.done = 0.0
        self.total: Optional[float] = None
        self.message = ""
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.error_details = ""
        #: naviewer's warnings raised in the job, in order (:func:`route_naviewer_warnings`)
        self.warnings: list[str] = []
        self._eta_origin: Optional[tuple[str, float, float]] = None  # (message, time, fraction)
        # Training jobs report per-epoch progress; their metric records (docs/workspace-format.md, metrics.jsonl: run_start
        # with total_epochs x steps_per_epoch, then step records) give the whole run's position.
        self._run_total_epochs: Optional[float] = None
        self._run_base = 0.0  # the epoch the run restarted at after a review (its progress counts from there)
        self._run_steps_per_epoch: Optional[float] = None
        self._run_step: Optional[float] = None  # the latest step record's step
        self._run_epoch: Optional[float] = None  # the epoch of the latest step record, and its first step seen
        self._run_epoch_first = 0.0
        self._run_position: Optional[float] = None  # epochs done, with the current one's share
        self._run_origin: Optional[tuple[float, float]] = None  # (time, position) of the first step seen
        # the time spent paused is no work: the estimate grew while paused ("1:17 (37:15 left)"; a newcomer, session 22)
        self._paused_total = 0.0
        self._paused_since: Optional[float] = None
        self._worker = _Worker(function, self.ctx, torch_threads)
        # A bound slot of this GUI-thread object: Qt queues the call onto the GUI thread.
        self._worker.finished.connect(self._on_worker_finished)

    # -- control (GUI thread) -------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the job to stop at its next ``ctx.check()``; it ends in the CANCELLED state."""
        if self.state.terminal:
            return
        self.ctx.cancel()
        self._set_state(JobState.CANCELLING)

    def pause(self) -> None:
        if self.state is JobState.RUNNING:
            self.ctx.pause()
            self._paused_since = time.monotonic()
            self._set_state(JobState.PAUSED)

    def resume(self) -> None:
        if self.state is JobState.PAUSED:
            self.ctx.resume()
            if self._paused_since is not None:
                self._paused_total += time.monotonic() - self._paused_since
                self._paused_since = None
            self._set_state(JobState.RUNNING)

    def _paused_s(self, until: float) -> float:
        """Seconds spent paused up to ``until`` (a pause still on counts to it)."""
        return self._paused_total + (max(0.0, until - self._paused_since) if self._paused_since is not None else 0.0)

    def _working_clock(self) -> float:
        """Seconds of the monotonic clock less the time spent paused: what the remaining-time estimate divides by."""
        now = time.monotonic()
        return now - self._paused_s(now)

    def wait(self, timeout_s: Optional[float] = None) -> bool:
        """Block until the worker thread ends (the GUI still needs a drain to see the outcome)."""
        if timeout_s is None:
            return self._worker.wait()
        return self._worker.wait(int(timeout_s * 1000))

    @property
    def running(self) -> bool:
        return not self.state.terminal

    @property
    def elapsed_s(self) -> float:
        end = self.ended_at if self.ended_at is not None else time.monotonic()
        return end - self.started_at

    @property
    def working_s(self) -> float:
        """Seconds the job has run, less the time it spent paused (the Jobs list's Time; it counted on while a
        training was paused: a newcomer, session 26)."""
        end = self.ended_at if self.ended_at is not None else time.monotonic()
        return max(0.0, end - self.started_at - self._paused_s(end))

    @property
    def fraction(self) -> Optional[float]:
        if not self.total:
            return None
        return min(max(self.done / self.total, 0.0), 1.0)

    @property
    def run_fraction(self) -> Optional[float]:
        """How far a training run is (0..1) from its step records, or None for other jobs."""
        if not self._run_total_epochs or self._run_position is None:
            return None
        if self.state is JobState.FINISHED:  # a run that ended is whole: its last step records read 98 % (seen
            return 1.0                       # in the Jobs list at 1920x1080, session 19)
        span = self._run_total_epochs - self._run_base
        if span <= 0:
            return 1.0
        return min(max((self._run_position - self._run_base) / span, 0.0), 1.0)

    @property
    def remaining_s(self) -> Optional[float]:
        """Remaining time: of the whole run for training jobs, else of the current task (progress message)."""
        if (self._run_origin is not None and self._run_total_epochs and self._run_position is not None
                and not self.state.terminal):
            t0, p0 = self._run_origin
            spent, gained = self._working_clock() - t0, self._run_position - p0
            if gained > 0 and spent >= 0.5:
                return max(spent / gained * (self._run_total_epochs - self._run_position), 0.0)
        fraction = self.fraction
        if fraction is None or self._eta_origin is None or self.state.terminal:
            return None
        _, t0, f0 = self._eta_origin
        spent = self._working_clock() - t0
        gained = fraction - f0
        if gained <= 1e-9 or spent < 0.5:
            return None
        return max(spent / gained * (1.0 - fraction), 0.0)

    # -- internals (GUI thread) -----------------------------------------------------------
    def _start(self) -> None:
        self._worker.start()

    @Slot()
    def _on_worker_finished(self) -> None:
        self.worker_stopped.emit()

    def _set_state(self, state: JobState) -> None:
        if state is not self.state:
            self.state = state
            self.state_changed.emit(state.value)

    def _deliver(self) -> None:
        """Move what the worker reported since the last call into signals."""
        progress, metrics, events = self.reporter.drain()
        if progress is not None:
            done, total, message = progress
            if self._eta_origin is None or self._eta_origin[0] != message or (total and done / total < self._eta_origin[2]):
                self._eta_origin = (message, self._working_clock(), done / total if total else 0.0)
            self.done, self.total, self.message = done, total, message
            self.progress.emit(done, total, message)
        if metrics:
            self._follow_run(metrics)
            self.metrics.emit(metrics)
        for kind, data in events:
            if kind == "warning" and isinstance(data, dict) and data.get("message"):
                self.warnings.append(str(data["message"]))
            self.event.emit(kind, data)

    def _follow_run(self, records: list[dict[str, Any]]) -> None:
        """The run's position in epochs, from its step records: the epoch plus the share of it done. Counted in
        steps over the whole run, a retrain on fewer samples (fewer steps an epoch, the run's step count going on)
        read 55 % at epoch 44 of 84 and "100 %" at 81 (newcomer session 16)."""
        for record in records:
            kind = record.get("kind")
            if kind == "run_start":
                try:
                    self._run_total_epochs = float(record["total_epochs"])
                    self._run_steps_per_epoch = max(float(record["steps_per_epoch"]), 1.0)
                except (KeyError, TypeError, ValueError):
                    self._run_total_epochs = self._run_steps_per_epoch = None
                self._run_base = _number(record.get("restart_epoch"), 0.0)
                self._run_origin = None
                self._run_epoch = None
                # a new run begins at its start: a job that trains twice showed the second's "epoch 1 of 50" at the
                # first one's 91 % until its first step (a newcomer saw a stale 91 %, session 26)
                self._run_position = (_number(record.get("resumed_from_epoch"), self._run_base)
                                      if self._run_total_epochs else None)
            elif kind == "event" and record.get("event") == "restart":
                # after the review: "epoch 15 of 50 after the restart (49 of 84 in all)" read 57 %, counting the
                # epochs before the review (a newcomer, session 18); the bar and the time left follow the retrain
                self._run_base = _number(record.get("restart_epoch"), self._run_base)
                self._run_total_epochs = _number(record.get("total_epochs"), self._run_total_epochs)
                steps = _number(record.get("steps_per_epoch"), self._run_steps_per_epoch)
                self._run_steps_per_epoch = None if steps is None else max(steps, 1.0)
                self._run_origin = None
                self._run_epoch = None
            elif kind == "step" and isinstance(record.get("step"), (int, float)):
                step = float(record["step"])
                epoch = record.get("epoch")
                self._run_step = step
                if not isinstance(epoch, (int, float)) or not self._run_steps_per_epoch:
                    continue
                if self._run_epoch != epoch:  # its first step logged: where the epoch began
                    self._run_epoch, self._run_epoch_first = epoch, step
                done = min((step - self._run_epoch_first + 1) / self._run_steps_per_epoch, 1.0)
                self._run_position = float(epoch) + done
                if self._run_origin is None:
                    self._run_origin = (self._working_clock(), self._run_position)

    def _complete(self) -> None:
        worker = self._worker
        self._deliver()
        self.ended_at = time.monotonic()
        self.result = worker.result
        self.error = worker.error
        self.error_details = worker.details
        self._set_state(worker.outcome)
        self.finished.emit(worker.outcome.value)

    def error_message(self) -> str:
        """What to tell the user: a NaviewerError's own message, else the exception type and text."""
        if self.error is None:
            return ""
        if isinstance(self.error, NaviewerError):
            return str(self.error)
        text = str(self.error) or "(no message)"
        return f"{type(self.error).__name__}: {text}"


class JobManager(QObject):
    """Starts jobs, refuses conflicting ones, delivers their reports, and knows which still run."""

    job_started = Signal(object)  # Job
    job_finished = Signal(object)  # Job, in any terminal state
    job_failed = Signal(object)  # Job that raised
    jobs_changed = Signal()  # the set of jobs or a state changed

    def __init__(self, parent: Optional[QObject] = None, update_hz: float = UPDATE_HZ) -> None:
        super().__init__(parent)
        route_naviewer_warnings()
        self._jobs: list[Job] = []
        self._timer = QTimer(self)
        self._timer.setInterval(max(1, int(1000 / update_hz)))
        self._timer.timeout.connect(self._deliver_all)

    @property
    def jobs(self) -> list[Job]:
        return list(self._jobs)

    def running_jobs(self) -> list[Job]:
        return [job for job in self._jobs if job.running]

    def conflict(self, resources: Iterable[str]) -> Optional[str]:
        """Why a job using ``resources`` cannot start now, or None."""
        wanted = {str(r) for r in resources}
        for job in self.running_jobs():
            shared = sorted(job.resources & wanted)
            if shared:
                return f"'{job.name}' is still running and uses {', '.join(shared)}; wait for it or cancel it first."
        return None

    def start(
        self,
        function: JobFunction,
        name: str,
        resources: Iterable[str] = (),
        kind: str = "job",
        torch_threads: Optional[int] = None,
    ) -> Job:
        """Run ``function(ctx)`` in a worker thread; raise :class:`JobConflict` if resources are busy.

        ``torch_threads``: if set, the worker calls ``torch.set_num_threads`` before the job, so
        a CPU-heavy job leaves a core to the GUI.
        """
        resources = tuple(resources)
        reason = self.conflict(resources)
        if reason is not None:
            raise JobConflict(f"Cannot start '{name}': {reason}")
        job = Job(function, name, resources, kind=kind, torch_threads=torch_threads, parent=self)
        job.worker_stopped.connect(lambda job=job: self._on_worker_finished(job))
        job.state_changed.connect(lambda _state: self.jobs_changed.emit())
        self._jobs.append(job)
        if not self._timer.isActive():
            self._timer.start()
        job._start()
        self.job_started.emit(job)
        self.jobs_changed.emit()
        return job

    def cancel_all(self) -> None:
        for job in self.running_jobs():
            job.cancel()

    def wait_all(self, timeout_s: float = 30.0) -> bool:
        """Wait for every worker thread to end (processing their completion); True if all ended."""
        from PySide6.QtCore import QCoreApplication

        deadline = time.monotonic() + timeout_s
        while self.running_jobs():
            for job in self.running_jobs():
                job.wait(0.05)
            QCoreApplication.processEvents()
            self._complete_stopped_workers()
            if time.monotonic() > deadline:
                return False
        return True

    def clear_finished(self) -> None:
        # Finished Job objects are only forgotten, not deleteLater()'d: views may still hold them
        # and their worker threads' wrappers, and they are small.
        self._jobs = [job for job in self._jobs if job.running]
        self.jobs_changed.emit()

    # -- internals ------------------------------------------------------------------------
    def _deliver_all(self) -> None:
        for job in self.running_jobs():
            job._deliver()
        if not self.running_jobs():
            self._timer.stop()

    def _complete_stopped_workers(self) -> None:
        for job in self.running_jobs():
            if job._worker.isFinished():
                self._on_worker_finished(job)

    def _on_worker_finished(self, job: Job) -> None:
        if job.state.terminal:
            return
        job._complete()
        self.job_finished.emit(job)
        if job.state is JobState.FAILED:
            self.job_failed.emit(job)
        self.jobs_changed.emit()
