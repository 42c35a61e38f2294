"""The training monitor's Qt-free part: reading a growing ``metrics.jsonl``, placing step records
inside their epoch, what each plot shows, and which phase the run is in (training, retraining).

:mod:`naviewer.gui.monitor` draws these with pyqtgraph; everything here is plain Python so it is
tested without a display (``tests/analysis/test_monitor_model.py``) and never imports Qt.

Records are those of ``metrics.jsonl`` (:mod:`naviewer.workspace.metrics`): ``run_start``,
``step``, ``epoch`` and ``event`` records. The x axis counts epochs the way people do (1-based):
epoch N's record sits at x = N and its step records between N - 1 and N (:class:`StepPlacer`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

METRICS_FILE = "metrics.jsonl"
#: events drawn as a dashed line on the loss, kNN and DIFT plots, with their label
EVENT_LINES = {"restart": "restart", "dift_stop": "DIFT stop", "finetune": "fine-tune"}


def metrics_file(path: "os.PathLike[str] | str") -> Path:
    """``path`` itself if it is a file, else ``path/metrics.jsonl`` (a run directory)."""
    path = Path(path)
    return path / METRICS_FILE if path.is_dir() or path.suffix != ".jsonl" else path


def number(value: Any) -> Optional[float]:
    """A finite float from a record's field, else None (bools, text, NaN and inf are not numbers)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def readable_record(record: Any) -> bool:
    """Whether a metrics record can be what a naviewer run wrote: a dict with a ``kind``, and for the kinds the
    monitor plots (step, epoch) at least one finite number. Other kinds pass (a newer naviewer may write more);
    records of the wrong types are counted and said, not dropped in silence (a GUI sweep, session 21)."""
    if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
        return False
    if record["kind"] in ("step", "epoch"):
        return any(number(value) is not None for key, value in record.items() if key not in ("kind", "time"))
    return True


def epoch_of(x: float, total: Optional[float] = None) -> str:
    """"epoch N of M" for the end of the N-th epoch (x = N on the monitor's axis), 1-based like
    everything a person reads."""
    n = max(1, int(math.ceil(x - 1e-9)))
    return f"epoch {n}" + (f" of {int(total)}" if total else "")


class MetricsTail:
    """Reads what was appended to a ``metrics.jsonl`` since the last call (by byte offset).

    A half-written last line is left for the next call (the reader consumes only up to the last
    newline); a file that got shorter was rewritten, so reading restarts from the top and
    :meth:`poll` says so.
    """

    def __init__(self, path: "os.PathLike[str] | str") -> None:
        self.path = metrics_file(path)
        self.offset = 0

    def poll(self) -> tuple[list[dict[str, Any]], bool]:
        """``(new records, restarted)``; ``([], False)`` while the file is missing or unchanged."""
        from naviewer.workspace.metrics import read_metrics  # the workspace's own tolerant reader

        try:
            size = self.path.stat().st_size
        except OSError:
            return [], False
        restarted = size < self.offset
        if restarted:
            self.offset = 0
        if size == self.offset:
            return [], restarted
        records, self.offset = read_metrics(self.path, self.offset)
        return records, restarted


class StepPlacer:
    """Puts ``step`` records at their real position inside their epoch.

    ``step`` is the global step counter, which runs on across a DIFT restart, a resume and a
    retrain while the steps per epoch change (fewer samples after the restart), so ``step /
    steps_per_epoch`` drifts. The trainer always logs an epoch's last step, so the records
    themselves say where each epoch starts (the previous epoch's last step) and ends: a step is
    placed at ``epoch + (step - start) / steps``; while its epoch is still running the steps per
    epoch are the latest known (``run_start``, or the last finished epoch), and :meth:`close`
    gives the exact positions once the epoch record arrives. Positions are 0-based here
    (``epoch`` 0's steps lie in (0, 1]); the monitor draws them as they are, which puts epoch
    ``e``'s record (0-based in the file) at x = e + 1, i.e. "epoch e + 1" on screen.
    """

    def __init__(self) -> None:
        self.steps_per_epoch: Optional[float] = None
        self.ends: dict[int, float] = {}  # last logged step of each epoch seen
        self._resume: Optional[tuple[int, float]] = None
        self._new_segment = True
        self._max_epoch = -1

    def run_start(self, record: dict[str, Any]) -> None:
        spe = number(record.get("steps_per_epoch"))
        if spe and spe > 0:
            self.steps_per_epoch = spe
        epoch, step = number(record.get("resumed_from_epoch")), number(record.get("resumed_from_step"))
        self._resume = (int(epoch), step) if epoch is not None and step is not None else None
        self._new_segment = True

    def restart(self, new_samples: Optional[float], old_samples: Optional[float]) -> None:
        """An in-process restart on fewer samples: estimate the new steps per epoch until one ends."""
        if self.steps_per_epoch and new_samples and old_samples:
            self.steps_per_epoch = max(1.0, round(self.steps_per_epoch * new_samples / old_samples))

    def _start(self, epoch: int) -> Optional[float]:
        if epoch - 1 in self.ends:
            return self.ends[epoch - 1]
        if self._resume is not None and self._resume[0] == epoch:
            return self._resume[1]  # exact unless resumed mid-epoch; close() corrects it
        if epoch == 0:
            return 0.0
        return None

    def place(self, epoch: int, step: float) -> float:
        if self._new_segment:
            # A run that starts over (epoch numbers going back) forgets the epochs it replaces.
            if epoch <= self._max_epoch:
                for e in [e for e in self.ends if e >= epoch]:
                    del self.ends[e]
            self._new_segment = False
        self._max_epoch = max(self._max_epoch, epoch)
        self.ends[epoch] = step
        spe = self.steps_per_epoch or 1.0
        start = self._start(epoch)
        if start is None:
            start = epoch * spe  # nothing known about this epoch's start: the old estimate
        return epoch + min(1.0, max(0.0, (step - start) / spe))

    def close(self, epoch: int) -> Optional[tuple[float, float]]:
        """The epoch ended: its (start, end) steps, now known exactly; learns the steps per epoch."""
        end = self.ends.get(epoch)
        if end is None:
            return None
        start = self.ends.get(epoch - 1)
        if start is None or start >= end:
            start = end - self.steps_per_epoch if self.steps_per_epoch else self._start(epoch)
        if start is None or start >= end:
            return None
        self.steps_per_epoch = end - start
        return start, end


@dataclass
class SeriesSpec:
    key: str  # record field
    source: str  # "step" or "epoch"
    label: str
    color_index: int
    scale: float = 1.0  # e.g. 100 to show fractions as percent
    tip: str = ""  # what the series is, for its points' tooltips


@dataclass
class PlotSpec:
    name: str
    title: str
    unit: str
    series: tuple[SeriesSpec, ...]
    optional: bool = False  # hidden until one of its series has data
    y_floor: Optional[float] = None  # the y axis always starts here (0 for rates and counts)
    y_fixed: Optional[tuple[float, float]] = None  # e.g. percentages: 0..100
    #: a top band kept free of data for the event labels ("DIFT stop"): the range refits once data enters it (its
    #: share of the height is top_band / (1 + top_band)); 0: the range grows only when data leaves it, with 20 %
    #: headroom. (The legends are under the titles, outside the data: the monitor's ``title_html``.)
    top_band: float = 0.0
    #: the y range spans at least this much (a count of 0 or 1 samples was drawn on ticks of 0.1 samples; a newcomer)
    min_span: float = 0.0


#: DIFT's per-epoch precision / recall are the flag buffer's (before label spreading); the final flags'
#: (after label spreading) are added as single points once the pass is known (``spread_points``). The legend
#: says "spreading" for "label spreading": at 1280x720 the long names ran past the plot's left edge
BUFFER_TIP = "DIFT's flag buffer at this epoch, before label spreading (against the ground truth)"
SPREAD_TIP = "the pass's final flags, after label spreading (against the ground truth)"

PLOTS: tuple[PlotSpec, ...] = (
    # the band above the loss holds the event labels ("DIFT stop"), clear of the curve
    PlotSpec("loss", "Loss", "", (SeriesSpec("loss", "step", "step", 0), SeriesSpec("loss", "epoch", "epoch mean", 1)),
             top_band=0.3),
    PlotSpec("lr", "Learning rate", "", (SeriesSpec("lr", "step", "step", 0), SeriesSpec("lr", "epoch", "epoch", 1)),
             y_floor=0.0),
    PlotSpec(
        "throughput",
        "Throughput",
        "images/s",
        (SeriesSpec("images_per_s", "step", "step", 0), SeriesSpec("images_per_s", "epoch", "epoch", 1)),
        y_floor=0.0,
    ),
    PlotSpec("knn", "kNN accuracy", "%", (SeriesSpec("knn_acc", "epoch", "top-1", 2, 100.0),), y_fixed=(0.0, 100.0)),
    PlotSpec("asr", "Attack success rate", "%", (SeriesSpec("asr", "epoch", "ASR", 4, 100.0),), optional=True,
             y_fixed=(0.0, 100.0)),
    PlotSpec("dift", "DIFT detected", "samples",
             (SeriesSpec("dift_detected", "epoch", "in the buffer", 3, tip=BUFFER_TIP),
              SeriesSpec("final_flagged", "spread", "final flags", 3, tip=SPREAD_TIP)),
             optional=True, y_floor=0.0, min_span=5.0, top_band=0.25),
    PlotSpec(
        "dift_pr",
        "DIFT precision / recall",
        "%",
        (SeriesSpec("dift_precision", "epoch", "precision, before spreading", 0, 100.0, BUFFER_TIP),
         SeriesSpec("dift_recall", "epoch", "recall, before spreading", 1, 100.0, BUFFER_TIP),
         SeriesSpec("final_precision", "spread", "precision, after spreading", 0, 100.0, SPREAD_TIP),
         SeriesSpec("final_recall", "spread", "recall, after spreading", 1, 100.0, SPREAD_TIP)),
        optional=True,
        y_fixed=(0.0, 100.0),
    ),
)


def spread_points(summary: Optional[dict[str, Any]], epoch: Optional[int]) -> Optional[dict[str, Any]]:
    """A record for the ``spread`` series from a detection pass's summary (``final_precision`` /
    ``final_recall``, recorded when the workspace has a ground truth) at its 0-based ``epoch``;
    None when the pass has no such figures or no epoch."""
    if not isinstance(summary, dict) or epoch is None:
        return None
    values = {key: number(summary.get(key)) for key in ("final_precision", "final_recall")}
    flagged = number(summary.get("flagged", summary.get("final_count")))
    if flagged is not None:
        values["final_flagged"] = flagged
    if all(v is None for v in values.values()):
        return None
    return {"epoch": int(epoch), **{k: v for k, v in values.items() if v is not None}}


class RunPhase:
    """What the run is doing, from its event records: training, training on after a fine-tune, or retraining after
    the confirmed poisons were removed (``restart_mode`` retrain), with the epochs that restart set.

    ``text()`` is the words the monitor's header and the Fine-tune tab show while it lasts
    ("retraining from scratch on 1,380 kept samples"); empty while the run just trains.
    """

    def __init__(self) -> None:
        self.mode: Optional[str] = None  # None | "retrain" | "continue" (after a restart)
        self.kept: Optional[int] = None
        self.removed: Optional[int] = None
        self._pending_mode: Optional[str] = None
        self.over = False

    def add(self, record: dict[str, Any]) -> None:
        """Feed one record (any kind); events, and the start of a resumed run."""
        if record.get("kind") == "run_start":
            # a retrain cancelled and resumed goes on in its phase: after the "cancelled" event the header had
            # dropped "retraining ... on 1,404 kept samples" for the rest of the run (a newcomer, session 18)
            if self.mode is not None and (record.get("resumed_from_epoch") is not None
                                          or record.get("restart_epoch") is not None):
                self.over = False
            return
        if record.get("kind") != "event":
            return
        name = str(record.get("event", ""))
        if name == "finetune":
            self._pending_mode = record.get("restart_mode") or ("continue" if not record.get("skipped") else None)
            removed = number(record.get("removed"))
            if removed is not None:
                self.removed = int(removed)
        elif name == "restart":
            self.mode = self._pending_mode or "continue"
            kept = number(record.get("n_samples"))
            self.kept = int(kept) if kept is not None else None
            self.over = False
        elif name in ("finished", "cancelled"):
            self.over = True

    @property
    def retraining(self) -> bool:
        return self.mode == "retrain" and not self.over

    def text(self) -> str:
        if self.over or self.mode is None:
            return ""
        on = f" on {self.kept:,} kept samples" if self.kept is not None else " on the kept samples"
        removed = f" ({self.removed:,} confirmed poisons removed)" if self.removed else ""
        if self.mode == "retrain":
            return f"retraining from scratch{on}{removed}"
        return f"training on after fine-tuning{on}{removed}"


def event_text(name: str, record: dict[str, Any], restart_mode: Optional[str] = None) -> tuple[str, str]:
    """(label, tooltip line) of an event marker; ``restart_mode`` names a restart's kind."""
    label = EVENT_LINES[name]
    details = []
    if name == "dift_stop":
        if record.get("noop") or number(record.get("flagged")) == 0:
            # nothing flagged: DIFT is done but the training goes on ("DIFT stop" over a run that went on to its end
            # read as a training that stopped; a newcomer, session 27)
            label = "DIFT: none flagged"
        if record.get("reason"):
            details.append(str(record["reason"]))
        if number(record.get("flagged")) is not None:
            details.append(f"{int(record['flagged']):,} flagged")
    elif name == "finetune":
        if number(record.get("steps")) is not None:
            details.append(f"{int(record['steps']):,} steps")
    elif name == "restart":
        if restart_mode:
            label += f" ({restart_mode})"
        if number(record.get("n_samples")) is not None:
            details.append(f"on {int(record['n_samples']):,} samples")
        if number(record.get("remaining_epochs")) is not None:
            details.append(f"{int(record['remaining_epochs'])} more epochs")
    return label, label + (f": {', '.join(details)}" if details else "")
