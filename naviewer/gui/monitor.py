"""Live training monitor: loss, learning rate, throughput, kNN accuracy, ASR and DIFT per epoch.

The Qt-free part (reading the file, placing steps, the plots' specs, the run's phase) is
:mod:`naviewer.analysis.monitor_model`; this module draws it. Two sources feed the same plots, both
speaking the records of ``metrics.jsonl``:

* a running :class:`~naviewer.gui.jobs.Job` — its ``metrics`` signal (already throttled to 15 Hz);
* a run directory written by another process (a CLI run, torchrun rank 0) — :class:`MetricsFollower`
  polls the file with a timer and reads only the bytes appended since the last poll.

Records are appended to plain lists; a timer pushes changed series into pyqtgraph, one plot per
tick (each repaint is ~10 ms of GUI thread, so pauses stay short while training runs).
The x axis counts epochs the way people do (1-based): epoch N's record sits at x = N and its step
records between N - 1 and N, placed by their position inside that epoch (:class:`StepPlacer`), so a
DIFT restart that changes the steps per epoch keeps step and epoch curves together. ASR and DIFT
plots appear only once a record carries their values (a run with no attack or no DIFT never shows
them); an empty kNN plot says why in its centre instead of showing empty axes (kNN runs every few
epochs, and never with ``--no-monitor``). While the run retrains from scratch after the removal the
header says so. DIFT's precision / recall curves are the flag buffer's, before label spreading; the
pass's final figures (after it) are stars (:meth:`TrainingMonitor.add_spreading_result`). When the run
belongs to a workspace with a measured no-poison floor (``[floor]``, ``naviewer run WS --floor``), the
ASR plot draws it as a dashed horizontal line and the header names it beside the ASR
(:meth:`TrainingMonitor.set_floor`, :func:`workspace_floor`). This module imports pyqtgraph, which is slow
to import: the main window imports it only after the window is on screen.
"""

from __future__ import annotations

import html
import re
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from naviewer.analysis.monitor_model import (
    EVENT_LINES,
    PLOTS,
    MetricsTail,
    PlotSpec,
    RunPhase,
    SeriesSpec,
    StepPlacer,
    epoch_of,
    event_text,
    metrics_file,
    number,
    readable_record,
    spread_points,
)
from naviewer.gui.resources import Theme, load_theme

__all__ = ["MetricsFollower", "TrainingMonitor", "StepPlacer", "metrics_file", "epoch_of", "PLOTS", "workspace_floor"]

#: what the monitor shows before any run
NO_RUN_TEXT = ("No training run yet: the loss, learning rate, throughput and kNN accuracy are plotted here as one "
               "trains.\n\nRun ▸ Train… trains an encoder on the open workspace; Run ▸ Run the demo shows the whole "
               "workflow on built-in digits; File ▸ Follow run folder… watches a run started from a terminal.")
#: the header's state once DIFT stopped the run for the analyst's review (its "finished" event, reason dift_review)
STOPPED_FOR_REVIEW = "stopped for review"
#: states of a run that has ended (until a resume or a retrain appends to it)
ENDED = ("finished", "cancelled", STOPPED_FOR_REVIEW)
_LABEL_TOP = {"loss": 0.95, "knn": 0.4, "dift": 0.95}  # kNN accuracy runs high: its labels go lower; the loss's and
# DIFT's sit in the band their plots keep above the data (PlotSpec.top_band)
_number = number


def workspace_floor(path: "Optional[os.PathLike[str] | str]") -> Optional[dict[str, Any]]:
    """The no-poison floor (``[floor]``, :func:`naviewer.workflows.floor.read_floor`) of the workspace
    that holds ``path`` (the workspace folder, a run folder ``<ws>/runs/<run>`` or its ``metrics.jsonl``);
    None when there is no workspace there, it has no floor, or its ``workspace.toml`` cannot be read
    (the monitor then shows no floor: following a run never fails for it). Reads the toml only."""
    from types import SimpleNamespace

    from naviewer.errors import NaviewerError
    from naviewer.workflows.floor import read_floor
    from naviewer.workspace.config import CONFIG_NAME, read_config

    if path is None:
        return None
    start = Path(path)
    for folder in [start, *start.parents][:4]:  # <ws>/runs/<run>/metrics.jsonl is three levels down
        config = folder / CONFIG_NAME
        if config.is_file():
            try:
                return read_floor(SimpleNamespace(config=read_config(config)))
            except (NaviewerError, OSError, ValueError, TypeError, KeyError):
                return None
    return None


class MetricsFollower(QObject):
    """Follows a growing ``metrics.jsonl``: a timer polls a :class:`~naviewer.analysis.monitor_model.MetricsTail`
    (complete new lines from the last offset; a half-written last line waits for the next poll); a file
    that got shorter was rewritten, so reading restarts and ``restarted`` fires.
    """

    records = Signal(list)
    restarted = Signal()

    def __init__(self, path: os.PathLike | str, interval_ms: int = 250, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.tail = MetricsTail(path)
        self.path = self.tail.path
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.poll)

    @property
    def offset(self) -> int:
        return self.tail.offset

    def start(self) -> None:
        self.poll()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    @property
    def active(self) -> bool:
        return self._timer.isActive()

    def poll(self) -> int:
        records, restarted = self.tail.poll()
        if restarted:
            self.restarted.emit()
        if records:
            self.records.emit(records)
        return len(records)


@dataclass
class _MarkerGroup:
    """Event markers that fall at one epoch: one dashed line per plot, one merged label."""

    x: float
    slot: int  # vertical place of the label, stacked against nearby groups
    labels: list[str] = field(default_factory=list)
    tips: list[str] = field(default_factory=list)
    lines: list[Any] = field(default_factory=list)


class TrainingMonitor(QWidget):
    """Plots of one training run, fed by records from a job or a followed metrics file."""

    REDRAW_MS = 60  # one plot per tick (see redraw)

    def __init__(self, theme: Optional[Theme] = None, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingMonitor")
        self._theme = theme or load_theme("light")
        self._follower: Optional[MetricsFollower] = None
        self._job = None
        self.data: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
        self.run_info: dict[str, Any] = {}
        self.last_step: dict[str, Any] = {}
        self.last_epoch: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self.state = "idle"
        self._dirty: set[str] = set()
        self.placer = StepPlacer()
        self.phase = RunPhase()  # training, or retraining after the removal (said in the header)
        # step points of epochs still running: epoch -> [(step, [(data key, index)])], fixed by close()
        self._open_steps: dict[int, list[tuple[float, list[tuple[tuple[str, str], int]]]]] = {}
        self.marker_groups: list[_MarkerGroup] = []
        self._skipped_finetune: Optional[dict[str, Any]] = None
        self._restart: Optional[tuple[int, int]] = None  # (epochs before it, its budget) of the latest restart
        #: x of each retrain from scratch: the curves break there, the encoders before and after are two
        self._breaks: list[float] = []
        self.final_flags: Optional[int] = None  # the latest detection pass's flags (its dift_stop), for the header
        self.unread_records = 0  # records that cannot be a naviewer run's (wrong types): said in the header
        self.floor: Optional[dict[str, Any]] = None  # the workspace's no-poison floor ([floor]), if measured
        self.floor_line: Optional[pg.InfiniteLine] = None

        self.header = QLabel("")  # (before any run the placeholder below says what starts one)
        self.header.setObjectName("monitorHeader")
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.header.setWordWrap(True)  # a long header wraps: it never widens the window past a 1280 px screen
        self.source_label = QLabel("")
        self.source_label.setObjectName("hintLabel")
        self.source_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # a long run path is cut, not laid out in full (it widened the window past 1280 px); the tooltip has it
        self.source_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        top = QHBoxLayout()
        top.addWidget(self.header, 3)
        top.addWidget(self.source_label, 2)

        self.grid = QGridLayout()
        self.grid.setSpacing(6)
        self.plots: dict[str, pg.PlotWidget] = {}
        self.curves: dict[tuple[str, str, str], pg.PlotDataItem] = {}
        self._markers: list[tuple[pg.PlotWidget, pg.InfiniteLine]] = []
        self.notes: dict[str, pg.TextItem] = {}  # centred in a plot that has nothing to show, saying why
        self._note_text: dict[str, Optional[str]] = {}
        for spec in PLOTS:
            self.plots[spec.name] = self._make_plot(spec)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        # before any run: a line of what starts one, not four empty charts on 0-1 axes (a newcomer, session 21)
        self.plot_area = QWidget()
        self.plot_area.setLayout(self.grid)
        layout.addWidget(self.plot_area, 1)
        self.placeholder = QLabel(NO_RUN_TEXT)
        self.placeholder.setObjectName("hintLabel")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        layout.addWidget(self.placeholder, 1)
        self._relayout()
        self._show_plots_or_placeholder()

        self._last_drawn: Optional[str] = None
        self._ranges: dict[str, tuple[float, float, float, float]] = {}
        self._user_ranged: set[str] = set()  # plots the user zoomed/panned: we stop moving them
        self._timer = QTimer(self)
        self._timer.setInterval(self.REDRAW_MS)
        self._timer.timeout.connect(lambda: self.redraw(limit=1))
        self._timer.start()
        self.set_theme(self._theme)

    # -- sources --------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the current run (plots cleared) but keep following what is attached."""
        self.data.clear()
        self.run_info = {}
        self.last_step, self.last_epoch = {}, {}
        self.events = []
        self.state = "idle"
        self.placer = StepPlacer()
        self.phase = RunPhase()
        self._open_steps = {}
        self.marker_groups = []
        self._skipped_finetune = None
        self._restart = None
        self._breaks = []
        self.final_flags = None
        self.unread_records = 0
        for plot, line in self._markers:
            plot.removeItem(line)
        self._markers = []
        for curve in self.curves.values():
            curve.setData([], [])
        self._dirty.clear()
        self._ranges.clear()
        self._user_ranged.clear()
        self._relayout()
        self._update_header()

    def attach_job(self, job) -> None:
        """Plot a running job's metric records live (the job's own ``metrics`` signal)."""
        self.detach()
        self.reset()
        self._job = job
        job.metrics.connect(self.add_records)
        job.event.connect(self._on_job_event)
        job.state_changed.connect(self._on_job_state)
        self.state = job.state.value
        self.source_label.setText(f"job: {job.name}")
        self._update_header()

    def follow(self, path: os.PathLike | str, interval_ms: int = 250) -> MetricsFollower:
        """Plot a run directory's ``metrics.jsonl`` as another process appends to it."""
        self.detach()
        self.reset()
        follower = MetricsFollower(path, interval_ms, self)
        follower.records.connect(self.add_records)
        follower.restarted.connect(self.reset)
        self._follower = follower
        self.state = "following"
        short = Path(*follower.path.parts[-3:]) if len(follower.path.parts) > 3 else follower.path
        self.source_label.setText(f"following: …/{short}" if short != follower.path else f"following: {short}")
        self.source_label.setToolTip(f"following {follower.path}")
        follower.start()
        self._update_header()
        return follower

    def _follow_problem(self) -> str:
        """Why nothing may ever come, in words: no metrics.jsonl there, or one with no readable record."""
        follower = self._follower
        if follower is None:
            return ""
        path = follower.path
        if path.exists() and not path.is_file():  # a pipe was said to be missing (a GUI sweep, session 21)
            return f" {path} is not a regular file (a pipe, socket or device): a naviewer run writes a plain file."
        if not path.is_file():
            return (f" There is no {path.name} in {path.parent} yet: a naviewer run folder holds one "
                    "(naviewer train --out, or a workspace's runs/NAME).")
        try:
            size = path.stat().st_size
            with open(path, "rb") as handle:
                head = handle.read(512)  # (asked only while no record has come)
        except OSError as exc:
            return f" {path} cannot be read ({exc.strerror or exc})."
        # random bytes or one endless line never give a complete record: it "waited for the first records" for ever
        garbled = bool(head) and (b"\x00" in head or not head.lstrip().startswith(b"{"))
        if size and (follower.offset >= size or garbled):
            return f" {path.name} has {size:,} bytes but no readable record: is it a naviewer metrics file?"
        return ""

    def detach(self) -> None:
        if self._follower is not None:
            self._follower.stop()
            self._follower.deleteLater()
            self._follower = None
        if self._job is not None:
            for signal, slot in (
                (self._job.metrics, self.add_records),
                (self._job.event, self._on_job_event),
                (self._job.state_changed, self._on_job_state),
            ):
                try:
                    signal.disconnect(slot)
                except (RuntimeError, TypeError):
                    pass
            self._job = None
        self.source_label.setText("")
        self._show_plots_or_placeholder()

    @property
    def follower(self) -> Optional[MetricsFollower]:
        return self._follower

    # -- records --------------------------------------------------------------------------
    def add_records(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            kind = record.get("kind")
            if not readable_record(record):  # said in the header: records of the wrong types left it blank
                self.unread_records += 1
                continue
            if kind == "run_start":
                self.run_info = dict(record)
                self.placer.run_start(record)
                self._going_again(started=True)
            elif kind == "step":
                self._going_again()
                self._add_step(record)
                self.last_step = dict(record)
            elif kind == "epoch":
                epoch = _number(record.get("epoch"))
                if epoch is not None:
                    self._close_epoch(int(epoch))
                self._add_point("epoch", record, (epoch if epoch is not None else len(self.data.get(("loss", "epoch"), ([], []))[0])) + 1)
                self.last_epoch = dict(record)
            elif kind == "event":
                self._add_event(record)
        self._update_header()

    def set_floor(self, floor: Optional[dict[str, Any]]) -> None:
        """The no-poison floor of the run's workspace (``[floor]``: ``asr`` in 0..1, ``protocol``): a dashed
        horizontal line on the ASR plot, labelled with its value, and named in the header beside the ASR;
        None takes it away. It stays through :meth:`reset` (it belongs to the workspace, not the run)."""
        asr = _number((floor or {}).get("asr"))
        plot = self.plots["asr"]
        if self.floor_line is not None:
            plot.removeItem(self.floor_line)
            self.floor_line = None
        self.floor = dict(floor) if asr is not None else None
        if self.floor is not None:
            line = pg.InfiniteLine(pos=asr * 100.0, angle=0, movable=False, label=self.floor_label(),
                                   labelOpts={"position": 0.02, "anchors": [(0, 1), (0, 1)]})
            tip = (f"no-poison floor: the ASR of the same recipe trained on the clean set "
                   f"({self.floor.get('protocol') or 'uniform'} test-time protocol"
                   + (f", {self.floor['method']}" if self.floor.get("method") else "")
                   + (f", {int(self.floor['epochs'])} epochs" if self.floor.get("epochs") else "")
                   + "); an ASR near it means no backdoor effect")
            line.setToolTip(tip)
            line.label.setToolTip(tip)
            plot.addItem(line)
            self.floor_line = line
            self._style_floor()
        self._update_header()

    def floor_label(self) -> str:
        """"no-poison floor 21.3 %" (the line's label), or "" without a floor."""
        asr = _number((self.floor or {}).get("asr"))
        return f"no-poison floor {asr * 100:.1f} %" if asr is not None else ""

    def _style_floor(self) -> None:
        line = self.floor_line
        if line is None:
            return
        colour = self._theme.color(4)
        line.setPen(pg.mkPen(colour, width=1.5, style=Qt.PenStyle.DashLine))
        line.label.setColor(self._theme.plot_foreground)
        line.label.fill = self._label_fill()
        line.label.update()

    def add_spreading_result(self, summary: Optional[dict[str, Any]], epoch: Optional[int]) -> bool:
        """Put the detection pass's final precision / recall (after label spreading) beside the buffer's
        per-epoch curves (before it), at the pass's 0-based ``epoch``; False when the pass has none."""
        record = spread_points(summary, epoch)
        if record is None:
            return False
        for key in ("final_precision", "final_recall", "final_flagged"):  # one point per pass: a new one replaces it
            self.data.pop((key, "spread"), None)
        self._dirty.update(spec.name for spec in PLOTS if any(s.source == "spread" for s in spec.series))
        self._add_point("spread", record, record["epoch"] + 1)
        self._update_header()
        return True

    def _add_step(self, record: dict[str, Any]) -> None:
        epoch, step = _number(record.get("epoch")), _number(record.get("step"))
        if epoch is None or step is None:  # not from naviewer's trainer: at the end of its epoch
            self._add_point("step", record, (epoch or 0.0) + 1.0)
            return
        refs = self._add_point("step", record, self.placer.place(int(epoch), step))
        self._open_steps.setdefault(int(epoch), []).append((step, refs))

    def _close_epoch(self, epoch: int) -> None:
        """The epoch's record arrived: its step points move to their exact places."""
        points = self._open_steps.pop(epoch, [])
        bounds = self.placer.close(epoch)
        if bounds is None or not points:
            return
        start, end = bounds
        for step, refs in points:
            x = epoch + min(1.0, max(0.0, (step - start) / (end - start)))
            for key, index in refs:
                self.data[key][0][index] = x
        self._dirty.update(spec.name for spec in PLOTS if any(s.source == "step" for s in spec.series))

    def _add_point(self, source: str, record: dict[str, Any], x: float) -> list[tuple[tuple[str, str], int]]:
        refs: list[tuple[tuple[str, str], int]] = []
        for spec in PLOTS:
            for series in spec.series:
                if series.source != source:
                    continue
                value = _number(record.get(series.key))
                if value is None:
                    continue
                xs, ys = self.data.setdefault((series.key, source), ([], []))
                xs.append(x)
                ys.append(value * series.scale)
                refs.append(((series.key, source), len(xs) - 1))
                self._dirty.add(spec.name)
        return refs

    def _going_again(self, started: bool = False) -> None:
        """A run that started again after its "cancelled" or "finished" (a resume, the retrain after the review,
        both appending to the same metrics.jsonl) is live: the header read "cancelled" over a resumed run and
        "finished" over a running retrain (newcomer session 16). And after "paused": a process that ended while paused
        left that as the last event, and the resumed run's header read "paused" while it trained (a newcomer, session 30):
        cleared by a new ``run_start`` (``started``) only, as a step record read late may predate a pause just made."""
        if self.state in ENDED or (started and self.state == "paused"):
            self.state = "following" if self._follower is not None else "running"

    def _add_event(self, record: dict[str, Any]) -> None:
        self.events.append(dict(record))
        self.phase.add(record)
        name = str(record.get("event", ""))
        if name in ("paused", "resumed", "cancelled", "finished"):
            self.state = {"resumed": "running"}.get(name, name)
            if name == "finished" and record.get("reason") == "dift_review":  # "finished" at epoch 34 of 50 read
                self.state = STOPPED_FOR_REVIEW  # as a training that ended early (a newcomer, session 21)
        if name == "finetune" and (record.get("skipped") or record.get("fallback")):
            # nothing was fine-tuned (a fallback to a retrain neither): said on the restart's label, "restart
            # (retrain)", not as a "fine-tune: 0 steps" line of its own (a review, session 29)
            self._skipped_finetune = dict(record)
            return
        if name == "restart":
            self.placer.restart(_number(record.get("n_samples")), _number(self.run_info.get("n_samples")))
            # an in-process restart has no new run_start: the epoch it ends (its steps are done, its
            # record may follow the hook's restart) plus the new budget
            done = max((e for e in (_number(self.last_step.get("epoch")), _number(self.last_epoch.get("epoch")))
                        if e is not None), default=None)
            remaining = _number(record.get("remaining_epochs"))
            if done is not None and remaining is not None:
                self.run_info["total_epochs"] = int(done) + 1 + int(remaining)
            before = _number(record.get("restart_epoch"))
            before = before if before is not None else (done + 1 if done is not None else None)
            if before is not None and remaining is not None:
                self._restart = (int(before), int(remaining))
            if before is not None and (self._skipped_finetune or {}).get("restart_mode") == "retrain":
                # a re-initialised encoder: its ASR and loss were joined to the old one's, 100 % at epoch 30 straight
                # down to 4 % at 35, as if one encoder had unlearned it (a newcomer, session 30)
                self._breaks.append(float(before))
                self._dirty.update(spec.name for spec in PLOTS)
            if record.get("n_samples") is not None:
                self.run_info["n_samples"] = record["n_samples"]
        if name == "dift_stop" and not record.get("noop"):  # the pass's own flags, beside the buffer's curve
            epoch = _number(record.get("epoch"))
            self.final_flags = int(record["flagged"]) if _number(record.get("flagged")) is not None else None
            if epoch is not None:
                self.add_spreading_result(record, int(epoch))
        if name in EVENT_LINES:
            epoch = _number(record.get("epoch"))
            self._mark(epoch + 1 if epoch is not None else self._latest_x(), *self._event_text(name, record))

    def _event_text(self, name: str, record: dict[str, Any]) -> tuple[str, str]:
        """(label, tooltip line) of an event marker (a restart names its kind: "restart (retrain)")."""
        return event_text(name, record, (self._skipped_finetune or {}).get("restart_mode"))

    def _mark(self, x: float, label: str, tip: str) -> None:
        """A dashed line at ``x`` on the loss, kNN and DIFT plots; events at the same epoch share one
        line and one label (one event a line: "DIFT stop" over "restart"), labels of nearby lines are
        stacked, and a label sits on the side of its line with more room (see _place_labels)."""
        group = next((g for g in self.marker_groups if abs(g.x - x) < 0.5), None)
        if group is None:
            span = max(_number(self.run_info.get("total_epochs")) or 0.0, self._latest_x(), 1.0)
            near = {g.slot for g in self.marker_groups if abs(g.x - x) < max(1.5, 0.3 * span)}
            slot = next(i for i in range(len(near) + 1) if i not in near)
            group = _MarkerGroup(x=x, slot=slot)
            self.marker_groups.append(group)
            for plot_name in ("loss", "knn", "dift"):
                line = pg.InfiniteLine(
                    pos=x,
                    angle=90,
                    pen=pg.mkPen(self._theme.color(4), width=1, style=Qt.PenStyle.DashLine),
                    label=label,
                    labelOpts={"position": max(0.1, _LABEL_TOP[plot_name] - 0.3 * slot), "anchors": [(0, 0), (0, 0)],
                               "color": self._theme.plot_foreground, "fill": self._label_fill()},
                )
                self.plots[plot_name].addItem(line)
                self._markers.append((self.plots[plot_name], line))
                group.lines.append(line)
        group.labels.append(label)
        group.tips.append(tip)
        total = _number(self.run_info.get("total_epochs"))
        tooltip = f"{epoch_of(x, total)}\n" + "\n".join(group.tips)
        for line in group.lines:
            line.label.setFormat("\n".join(group.labels))
            line.setToolTip(tooltip)
            line.label.setToolTip(tooltip)
        self._place_labels()

    def _label_fill(self) -> Any:
        colour = pg.mkColor(self._theme.plot_background)
        colour.setAlpha(210)  # readable over the curves, which still show through
        return pg.mkBrush(colour)

    def _place_labels(self) -> None:
        """Labels run right of their line in the left part of the plot and left of it beyond the middle,
        so a label near the right edge is not cut off."""
        for group in self.marker_groups:
            for plot_name, line in zip(("loss", "knn", "dift"), group.lines):
                x1 = (self._ranges.get(plot_name) or (0.0, _number(self.run_info.get("total_epochs")) or 1.0))[1]
                anchor = (1, 0) if group.x > 0.55 * x1 else (0, 0)
                if line.label.anchors[0] != anchor:
                    line.label.anchors = [anchor, anchor]
                    line.label.setAnchor(anchor)

    def _latest_x(self) -> float:
        xs = [series[0][-1] for series in self.data.values() if series[0]]
        return max(xs) if xs else 0.0

    def _on_job_event(self, kind: str, data: dict) -> None:
        if kind in ("paused", "resumed"):
            self.state = "running" if kind == "resumed" else "paused"
            self._update_header()

    def _on_job_state(self, state: str) -> None:
        if not (state == "finished" and self.state == STOPPED_FOR_REVIEW):  # the job ends with the stop for review
            self.state = state
        self._update_header()

    # -- drawing --------------------------------------------------------------------------
    def _make_plot(self, spec: PlotSpec) -> pg.PlotWidget:
        plot = pg.PlotWidget()
        plot.setObjectName(f"plot_{spec.name}")
        plot.setMinimumSize(220, 150)
        item = plot.getPlotItem()
        item.setTitle(self.title_html(spec))
        item.setLabel("bottom", "epoch")
        if spec.unit:
            item.setLabel("left", units=None, text=spec.unit)
        item.showGrid(x=True, y=True, alpha=self._theme.plot_grid_alpha)
        item.setMenuEnabled(False)
        for axis in ("left", "bottom"):  # "samples (x1e-15)" over a curve of zeros (a newcomer, session 22)
            item.getAxis(axis).enableAutoSIPrefix(False)
        # Ranges are managed (see _fit_range): autorange would move the axes on every new point
        # and repaint their labels, the costliest part of a plot's repaint.
        item.disableAutoRange()
        item.getViewBox().sigRangeChangedManually.connect(lambda *_a, name=spec.name: self._user_ranged.add(name))
        # a legend whenever a plot has two series (a step-vs-epoch pair of one metric had none and a newcomer asked
        # what the line and the dots were). It is a line under the title, outside the data: inside the plot every
        # corner was under some curve or event label at some point of some run (newcomers, sessions 18, 21, 26)
        for series in spec.series:
            if series.source == "step":
                curve = item.plot([], [], antialias=False)  # dense: antialiasing costs, shows nothing
                curve.setDownsampling(auto=True, method="peak")
                curve.setClipToView(True)
            elif series.source == "spread":  # one point per detection pass: a star, no line
                curve = item.plot([], [], pen=None, symbol="star", symbolSize=14)
                curve.scatter.opts.update(hoverable=True, tip=lambda x, y, data, p=spec, s=series: self._point_tip(p, s, x, y))
            else:
                curve = item.plot([], [], symbol="o", symbolSize=6)
                # hovering an epoch point says which epoch it is, 1-based like the axis
                curve.scatter.opts.update(hoverable=True, tip=lambda x, y, data, p=spec, s=series: self._point_tip(p, s, x, y))
            self.curves[(spec.name, series.key, series.source)] = curve
        note = pg.TextItem("", anchor=(0.5, 0.5))
        note.setVisible(False)
        item.addItem(note, ignoreBounds=True)
        self.notes[spec.name] = note
        return plot

    @staticmethod
    def legend_names(spec: PlotSpec) -> list[str]:
        """The legend's entries of a plot with several series (none for one); a pair of one metric's series with
        the same label is told apart by its source ("ASR (each step)")."""
        if len(spec.series) < 2:
            return []
        same_label = len({s.label for s in spec.series}) < len(spec.series)
        where = {"step": "each step", "spread": "detection passes"}
        return [f"{s.label} ({where.get(s.source, 'each epoch')})" if same_label else s.label for s in spec.series]

    def title_html(self, spec: PlotSpec) -> str:
        """The plot's title, and under it its legend in a smaller type: each series' mark in its colour (a line for
        each step, a dot for each epoch, a star for a detection pass) and its name. Series named "metric, qualifier"
        share one entry a metric (both marks in its colour) and a second line says what each mark is, so that four
        series fit the width of a plot at 1280x720 (a title does not wrap: a long one squeezed the plot)."""
        names = self.legend_names(spec)
        if not names:
            return spec.title
        marks = {"step": "━", "spread": "★"}

        def coloured(series, text: str) -> str:
            return f'<span style="color:{pg.mkColor(self._theme.color(series.color_index)).name()}">{text}</span>'

        title = html.escape(spec.title)
        lines = []
        if all(", " in name for name in names):
            metrics: dict[str, list] = {}
            qualifiers: dict[str, str] = {}
            for series, name in zip(spec.series, names):
                metric, qualifier = name.split(", ", 1)
                metrics.setdefault(metric, []).append(series)
                qualifiers.setdefault(marks.get(series.source, "●"), qualifier)
            entries = []
            for metric, group in metrics.items():
                if re.search(rf"\b{re.escape(metric)}\b", title):  # "DIFT precision / recall": the words take the colours
                    title = re.sub(rf"\b{re.escape(metric)}\b", coloured(group[0], metric), title, count=1)
                else:
                    entries.append("".join(coloured(series, marks.get(series.source, "●")) for series in group)
                                   + "&nbsp;" + html.escape(metric))
            if entries:
                lines.append(" &nbsp; ".join(entries))
            words = [q.split(" ") for q in qualifiers.values()]
            shared = 0  # "before spreading", "after spreading": "● before ★ after spreading"
            while shared < min(map(len, words)) - 1 and len({tuple(w[len(w) - shared - 1:]) for w in words}) == 1:
                shared += 1
            tail = " ".join(words[0][len(words[0]) - shared:]) if shared else ""
            lines.append(" &nbsp; ".join(f"{mark}&nbsp;{html.escape(' '.join(w[:len(w) - shared]))}"
                                         for mark, w in zip(qualifiers, words)) + (f" {html.escape(tail)}" if tail else ""))
        else:
            lines.append(" &nbsp; ".join(coloured(series, marks.get(series.source, "●")) + "&nbsp;"
                                         + html.escape(name).replace(" ", "&nbsp;")
                                         for series, name in zip(spec.series, names)))
        return title + "".join(f'<br><span style="font-size:8pt">{line}</span>' for line in lines)

    def _point_tip(self, spec: PlotSpec, series: SeriesSpec, x: float, y: float) -> str:
        unit = f" {spec.unit}" if spec.unit else ""
        tip = f"\n{series.tip}" if series.tip else ""
        return f"{epoch_of(x, _number(self.run_info.get('total_epochs')))}\n{spec.title} ({series.label}): {y:.4g}{unit}{tip}"

    def _has_data(self, spec: PlotSpec) -> bool:
        return any(self.data.get((s.key, s.source), ([], []))[0] for s in spec.series)

    def visible_plots(self) -> list[str]:
        return [spec.name for spec in PLOTS if not spec.optional or self._has_data(spec)]

    def _relayout(self) -> None:
        visible = self.visible_plots()
        for name, plot in self.plots.items():
            self.grid.removeWidget(plot)
            plot.setVisible(name in visible)
        columns = 2 if len(visible) <= 4 else math.ceil(len(visible) / 2)
        rows = math.ceil(len(visible) / columns)
        for index, name in enumerate(visible):
            self.grid.addWidget(self.plots[name], index // columns, index % columns)
        for row in range(max(rows, self.grid.rowCount())):
            self.grid.setRowStretch(row, 1 if row < rows else 0)
        for column in range(max(columns, self.grid.columnCount())):
            self.grid.setColumnStretch(column, 1 if column < columns else 0)
        self._laid_out = tuple(visible)

    def redraw(self, limit: Optional[int] = None) -> None:
        """Push changed series into their curves: all of them, or at most ``limit`` plots.

        The timer redraws one plot per tick, round robin: repainting a plot (mostly its axis
        labels) takes ~10 ms of GUI thread, so one plot per tick keeps every pause short even
        when a training thread competes for the GIL and the CPU.
        """
        if not self._dirty:
            return
        if tuple(self.visible_plots()) != self._laid_out:
            self._relayout()
        order = [spec.name for spec in PLOTS]
        start = (order.index(self._last_drawn) + 1) if self._last_drawn in order else 0
        chosen = [name for name in order[start:] + order[:start] if name in self._dirty][:limit]
        self._dirty.difference_update(chosen)
        if chosen:
            self._last_drawn = chosen[-1]
        for spec in PLOTS:
            if spec.name not in chosen:
                continue
            for series in spec.series:
                xs, ys = self.data.get((series.key, series.source), ([], []))
                x = np.asarray(xs, dtype=float)
                self.curves[(spec.name, series.key, series.source)].setData(
                    x, np.asarray(ys, dtype=float), connect=self._connections(x))
            self._fit_range(spec)

    def _connections(self, x: np.ndarray) -> Any:
        """pyqtgraph's ``connect`` for a curve: "all", or per point whether its line goes on to the next, cut where
        a retrain from scratch began (:attr:`_breaks`)."""
        if not self._breaks or x.size < 2:
            return "all"
        joined = np.ones(x.size, dtype=bool)
        for at in self._breaks:
            joined[:-1] &= ~((x[:-1] <= at) & (x[1:] > at))
        return joined

    def _fit_range(self, spec: PlotSpec) -> None:
        """Grow the plot's range in coarse steps only when data leaves it (never on every point).

        x spans the run's total epochs when known; y has fixed bounds for percentages, a floor of
        0 for rates and counts, and 20 % headroom in the direction the data left the range.
        """
        if spec.name in self._user_ranged:
            return
        xs = [x for s in spec.series for x in self.data.get((s.key, s.source), ([], []))[0]]
        ys = [y for s in spec.series for y in self.data.get((s.key, s.source), ([], []))[1]]
        if not xs:
            return
        x_max, y_min, y_max = max(xs), min(ys), max(ys)
        total = _number(self.run_info.get("total_epochs"))
        current = self._ranges.get(spec.name)
        if current is not None:
            x0, x1, y0, y1 = current
            data_top = y0 + (y1 - y0) / (1.0 + spec.top_band)  # below the band a top legend keeps
            if x_max <= x1 and y0 <= y_min and y_max <= data_top:
                return
        x1 = total if total and x_max <= total else max(1.0, x_max * 1.3)
        if spec.y_fixed is not None:
            y0, y1 = spec.y_fixed
            y0, y1 = min(y0, y_min), max(y1, y_max)
        else:
            span = max(y_max - y_min, abs(y_max) * 0.1, 1e-12)
            lo = y_min - 0.2 * span if current is None or y_min < current[2] else current[2]
            grown = current is None or y_max > current[3] or (spec.top_band and y_max > data_top)
            hi = y_max + 0.2 * span if grown else current[3]
            y0 = spec.y_floor if spec.y_floor is not None and y_min >= spec.y_floor else lo
            hi = max(hi, y0 + spec.min_span)
            y1 = hi if not spec.top_band else y0 + (hi - y0) * (1.0 + spec.top_band)
        self._ranges[spec.name] = (0.0, x1, y0, y1)
        if spec.name in ("loss", "knn", "dift") and self.marker_groups:
            self._place_labels()
        self.plots[spec.name].getPlotItem().setRange(xRange=(0.0, x1), yRange=(y0, y1), padding=0.06)

    def set_theme(self, theme: Theme) -> None:
        self._theme = theme
        for _plot, line in self._markers:  # event lines drawn before a theme switch
            line.setPen(pg.mkPen(theme.color(4), width=1, style=Qt.PenStyle.DashLine))
            line.label.setColor(theme.plot_foreground)
            line.label.fill = self._label_fill()
            line.label.update()
        self._style_floor()
        for spec in PLOTS:
            plot = self.plots[spec.name]
            plot.setBackground(theme.plot_background)
            self._set_note_html(spec.name)
            item = plot.getPlotItem()
            item.titleLabel.setText(self.title_html(spec), color=theme.plot_foreground)
            for axis_name in ("left", "bottom"):
                axis = item.getAxis(axis_name)
                axis.setPen(pg.mkPen(theme.plot_foreground))
                axis.setTextPen(pg.mkPen(theme.plot_foreground))
            item.showGrid(x=True, y=True, alpha=theme.plot_grid_alpha)
            for series in spec.series:
                curve = self.curves[(spec.name, series.key, series.source)]
                color = theme.color(series.color_index)
                if series.source == "step":
                    curve.setPen(pg.mkPen(color, width=1.2))
                elif series.source == "spread":
                    curve.setPen(None)
                    curve.setSymbolBrush(pg.mkBrush(color))
                    curve.setSymbolPen(pg.mkPen(theme.plot_foreground, width=1))
                else:
                    curve.setPen(pg.mkPen(color, width=2))
                    curve.setSymbolBrush(pg.mkBrush(color))
                    curve.setSymbolPen(pg.mkPen(theme.plot_background, width=1))
        self._update_header()

    def _run_over(self) -> bool:
        """The run has ended (its ``finished`` event, a finished job, or its last epoch written)."""
        if self.state in ENDED + ("failed",):
            return True
        total, epoch = _number(self.run_info.get("total_epochs")), _number(self.last_epoch.get("epoch"))
        return total is not None and epoch is not None and epoch + 1 >= total

    def empty_note(self, name: str) -> Optional[str]:
        """Why plot ``name`` is empty while the run has records, or None (it has data, or no run yet).

        Only the kNN plot can stay empty for a reason: kNN runs every few epochs, and never in a run
        trained with ``--no-monitor`` or without evaluation sets. ASR and DIFT plots are not noted:
        they appear only once a run has an attack to measure or DIFT in the loop."""
        spec = next(s for s in PLOTS if s.name == name)
        if name != "knn" or self._has_data(spec) or not (self.last_epoch or self.last_step):
            return None
        every = int(_number((self.run_info.get("config") or {}).get("knn_every")) or 0)
        if self._run_over():
            total, epoch = _number(self.run_info.get("total_epochs")), _number(self.last_epoch.get("epoch"))
            if every > 0 and epoch is not None and epoch + 1 < every and (total is None or epoch + 1 < total):
                # a cancel at epoch 4 of a kNN every 5 blamed --no-monitor or a missing set (a newcomer, session 22)
                return (f"no kNN evaluation: the run stopped after epoch {int(epoch) + 1},\nbefore its first "
                        f"(every {every} epochs; never with --no-monitor)")
            return "no kNN or ASR evaluation in this run\n(--no-monitor, or no evaluation set)"
        when = f"every {every} epochs" if every > 0 else "at the end of the run"
        return f"no kNN evaluation yet: it runs {when}\n(never with --no-monitor)"

    def _update_notes(self) -> None:
        for spec in PLOTS:
            note, text = self.notes[spec.name], self.empty_note(spec.name)
            if text == self._note_text.get(spec.name):
                continue
            self._note_text[spec.name] = text
            item = self.plots[spec.name].getPlotItem()
            self._set_note_html(spec.name)
            note.setVisible(bool(text))
            for axis in ("left", "bottom"):  # no empty 0..1 axes behind the note
                item.showAxis(axis, not text)
            if text:
                item.setRange(xRange=(0.0, 1.0), yRange=(0.0, 1.0), padding=0)
                note.setPos(0.5, 0.5)
                self._ranges.pop(spec.name, None)

    def _set_note_html(self, name: str) -> None:
        lines = "<br>".join(html.escape(line) for line in (self._note_text.get(name) or "").split("\n"))
        note = self.notes[name]
        note.setTextWidth(-1)
        note.setHtml(f"<div style='text-align:center; color:{self._theme.plot_foreground}'>{lines}</div>")
        note.setTextWidth(note.textItem.document().idealWidth() + 2)  # a width, so the lines centre

    def _show_plots_or_placeholder(self) -> None:
        """The charts once a run is attached or has records; before, the placeholder saying how to start one."""
        has_run = bool(self.data) or bool(self.run_info) or self._job is not None or self._follower is not None
        self.plot_area.setVisible(has_run)
        self.placeholder.setVisible(not has_run)

    def _update_header(self) -> None:
        self._show_plots_or_placeholder()
        self._update_notes()
        info = self.run_info
        if not info and not self.last_step and not self.last_epoch and not self.unread_records:
            # a run forgotten (another workspace opened) left its header above "No training run yet" (session 22)
            self.header.setText("Waiting for the run to write its first records…" + self._follow_problem()
                                if self.state == "following" else "")
            return
        accent = self._theme.accent
        parts = []
        method = info.get("method") or (info.get("config") or {}).get("method")
        if method:
            parts.append(f"<b style='color:{accent}'>{str(method).upper()}</b>")
        epoch = _number(self.last_step.get("epoch", self.last_epoch.get("epoch")))
        total = _number(info.get("total_epochs"))
        if epoch is not None and self._restart is not None and epoch + 1 > self._restart[0]:
            # "epoch 55 of 84" over a retrain from scratch read as the poisoned run going on (a newcomer, session
            # 26): the epochs since the restart first, as the progress line says them
            before, budget = self._restart
            parts.append(f"epoch {int(epoch) + 1 - before} of {budget} after the restart "
                         f"({int(epoch) + 1} of {int(total) if total else before + budget} in all)")
        elif epoch is not None:
            parts.append(epoch_of(epoch + 1, total))
        loss = _number(self.last_step.get("loss", self.last_epoch.get("loss")))
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        speed = _number(self.last_step.get("images_per_s", self.last_epoch.get("images_per_s")))
        if speed is not None:
            parts.append(f"{speed:,.0f} img/s")
        knn = _number(self.last_epoch.get("knn_acc"))
        if knn is not None:
            parts.append(f"kNN {knn * 100:.1f} %")
        asr = _number(self.last_epoch.get("asr"))
        if asr is not None:
            floor = _number((self.floor or {}).get("asr"))
            parts.append(f"ASR {asr * 100:.1f} %" + (f" (no-poison floor {floor * 100:.1f} %)" if floor is not None else ""))
        detected = _number(self.last_epoch.get("dift_detected"))
        if self.final_flags is not None:  # the pass's flags: the buffer's count is what spreading started from
            parts.append(f"DIFT {self.final_flags:,} flagged")
        elif detected is not None:
            parts.append(f"DIFT {int(detected):,} in the buffer")
        phase = self.phase.text()
        if phase:
            parts.append(f"<b>{html.escape(phase)}</b>")
        if self.state not in ("idle", "following", "running"):
            parts.append(f"<i>{self.state}</i>")
        if self.unread_records:
            source = f" of {self._follower.path}" if self._follower is not None else ""
            count = self.unread_records
            parts.append(f"{count:,} record{'s' if count != 1 else ''}{source} skipped: not a naviewer run's "
                         "(no known kind, or no number where one belongs)")
        self.header.setText(" · ".join(parts))
