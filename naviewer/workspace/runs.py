"""The state of a workspace's training runs and the review decisions they act on.

A DIFT training run (:mod:`naviewer.workflows.dift_training`) keeps ``<ws>/runs/<run>/dift_state.json``
up to date: where it is (:class:`RunStatus`), the detection pass it stopped at, what the fine-tuning
did. The CLI (``naviewer finetune``), the GUI's analyst dock and the demo read it through
:func:`read_state`; :func:`pending_review_runs` lists the runs that wait for an analyst.

The review side lives here too, because fine-tuning and removal act only on what the analyst
confirmed: :func:`confirm_flags` (accept-all) and :func:`confirmed_ids`; and what a fine-tuning did,
whichever of the three paths ran it (:class:`FinetuneOutcome`).
"""

from __future__ import annotations

import contextlib
import enum
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from naviewer.errors import NaviewerError
from naviewer.io import atomic_write_json, json_loads

if TYPE_CHECKING:
    from naviewer.workspace.workspace import Workspace

STATE_FILE = "dift_state.json"
AUTO_REVIEWER = "auto-accept"


class RunStatus(str, enum.Enum):
    """Where a run is. The values are the strings stored in ``dift_state.json`` (and compared equal to them)."""

    TRAINING = "training"                # training without DIFT
    DETECTING = "detecting"              # training with DIFT in the loop, no stable detection yet
    AWAITING_REVIEW = "awaiting_review"  # stopped (or waiting in the GUI) for the analyst's review
    REVIEW_SKIPPED = "review_skipped"    # the analyst cancelled the review: no fine-tuning, training goes on
    RESTARTED = "restarted"              # fine-tuned on the confirmed samples, training on the rest
    NOOP = "noop"                        # the detection found nothing to act on
    FINISHED = "finished"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


@dataclass
class RunState:
    """The contents of a run's ``dift_state.json``: the fields every reader uses, the rest in ``extra``.

    ``state.get(key)`` / ``state[key]`` read by the stored JSON key (plain JSON values, the status as
    its string), for code written against the file's dictionary.
    """

    status: RunStatus
    pass_id: Optional[int] = None       # the detection pass the run stopped at
    epoch: Optional[int] = None         # the epoch of that pass
    detection: Optional[dict] = None    # DetectionResult.summary()
    finetune: Optional[dict] = None     # what finetune_and_restart did (FinetuneOutcome.to_dict())
    review: Optional[dict] = None       # review counts when the run resumed after a review
    epochs: Optional[int] = None        # epochs trained when it finished
    updated: Optional[float] = None     # time.time() of the last write
    extra: dict = field(default_factory=dict)  # everything else (dift, accept_all, workspace, run, buffer, flagged, note)

    @classmethod
    def from_json(cls, record: dict, path: Any = None) -> "RunState":
        known = {f.name for f in fields(cls)} - {"extra"}
        try:
            status = RunStatus(record.get("status"))
        except ValueError:
            raise NaviewerError(f"garbled DIFT run state (unknown status {record.get('status')!r})", path) from None
        values = {k: v for k, v in record.items() if k in known and k != "status"}
        return cls(status=status, **values, extra={k: v for k, v in record.items() if k not in known})

    def to_json(self) -> dict:
        out: dict[str, Any] = {"status": self.status.value}
        for f in fields(self):
            if f.name not in ("status", "extra") and getattr(self, f.name) is not None:
                out[f.name] = getattr(self, f.name)
        out.update(self.extra)
        return out

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_json().get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.to_json()[key]


def _state_path(ws: "Workspace", run: str):
    return ws.path / "runs" / run / STATE_FILE


def _read_record(ws: "Workspace", run: str) -> Optional[dict]:
    path = _state_path(ws, run)
    from naviewer.io import check_regular_file

    # a folder or a device there read as "the state file is missing (was it deleted?)" or "status: unknown" (a
    # bad-input probe, session 30); a pipe would block the read for ever
    check_regular_file(path, "DIFT run state file")
    try:
        if not path.is_file():
            return None
        value = json_loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # (UnicodeDecodeError is one)
        raise NaviewerError(f"garbled DIFT run state ({exc})", path) from exc
    except OSError as exc:  # an unreadable run folder raised PermissionError out of the window's open (a GUI sweep)
        from naviewer.io import describe_os_error

        raise NaviewerError(f"cannot read the DIFT run state: {describe_os_error(exc)}", path) from None
    if not isinstance(value, dict):  # a JSON list read as "no state": Fine-tune said "Status unknown" (a GUI sweep)
        raise NaviewerError(f"garbled DIFT run state (a JSON {type(value).__name__}, not an object)", path)
    return value


def read_state(ws: "Workspace", run: str) -> Optional[RunState]:
    """The run's state, or None when it has none (not a DIFT-tracked run, or not started)."""
    record = _read_record(ws, run)
    return None if record is None else RunState.from_json(record, _state_path(ws, run))


def _listed_state(ws: "Workspace", run: str) -> Optional[RunState]:
    """``read_state`` for the lists over every run (resumable, awaiting review): a damaged state file is said as a
    warning and that run left out, not the whole list refused (one run's file blocked finetune, run --resume and
    the window's resume list for every run)."""
    try:
        return read_state(ws, run)
    except NaviewerError as exc:
        import warnings

        from naviewer.errors import WorkspaceWarning

        warnings.warn(f"{exc}; run {run!r} is left out", WorkspaceWarning, stacklevel=3)
        return None


def write_state(ws: "Workspace", run: str, /, **values: Any) -> RunState:
    """Merge ``values`` into the run's state file (atomically) and stamp ``updated``."""
    record = _read_record(ws, run) or {}
    record.update({k: (v.value if isinstance(v, RunStatus) else v) for k, v in values.items()})
    record["updated"] = time.time()
    atomic_write_json(ws.run_dir(run) / STATE_FILE, record)
    return RunState.from_json(record, _state_path(ws, run))


def interrupted_runs(ws: "Workspace") -> list[str]:
    """Runs that stopped while training (Ctrl-C, a closed window, a crash) with a checkpoint and no detection pass
    yet, or after their review's fine-tune / retrain before its end (:func:`stopped_after_review`): what :func:`naviewer.workflows.dift_training.resume_interrupted` can go on with (the command line, the GUI
    and the refusals agree). Here, beside the run state, so the GUI's workspace summary does not import torch."""
    # DIFT's pass only: the trigger check saves its PatchSearch pass under the run just before DIFT's, and a run
    # stopped between the two is still one to resume (a review, session 31)
    passes = {p.get("run") for p in ws.store.passes() if p.get("method") == "dift"}
    out = []
    for record in ws.store.runs():
        name = record["name"]
        status = getattr(_listed_state(ws, name), "status", None)
        if not (ws.path / "checkpoints" / name / "last.pt").is_file():
            continue
        if status in (RunStatus.DETECTING, RunStatus.TRAINING) and name not in passes:
            out.append(name)
        elif continued_past_verdict(ws, name):
            out.append(name)
        elif status is not None and stopped_after_review(ws, name):  # training on the kept samples after its
            out.append(name)  # review's fine-tune / retrain (no state, or a damaged one said above: not that)
    return out


def continued_past_verdict(ws: "Workspace", run: str) -> bool:
    """DIFT saved a verdict that changed nothing (no flags to act on, or the review skipped), the training went on
    past it and stopped before its end: the rest of the training is resumable (it was lost: "nothing to resume"
    after a Ctrl-C at epoch 43 of 300; a bad-input probe, session 27). ``past_verdict`` marks such a run while its
    resumed training runs, so a second stop is resumable too."""
    state = _listed_state(ws, run)
    status = getattr(state, "status", None)
    if not (status in (RunStatus.NOOP, RunStatus.REVIEW_SKIPPED)
            or (status is RunStatus.TRAINING and (getattr(state, "extra", None) or {}).get("past_verdict"))):
        return False
    return (training_ended(ws.path / "runs" / run / "metrics.jsonl") is False and not being_trained(ws, run)
            and (ws.path / "checkpoints" / run / "last.pt").is_file())


#: the encoder DIFT flagged with, kept beside ``last.pt`` when the review's fine-tune / retrain starts: the
#: restart overwrites ``last.pt``, and a cancelled retrain left a half-trained encoder in its place
REVIEW_CHECKPOINT = "at-review.pt"


def stopped_after_review(ws: "Workspace", run: str) -> bool:
    """The run was fine-tuned (or re-initialised) on its review's decisions and stopped before training on the
    kept samples ended (a cancelled retrain, a closed window): not done, and resumable. It read as done before,
    and its half-trained encoder as the defense's result."""
    # (a damaged state file leaves this run out, said: one made a folder failed finetune for every run; a review)
    return (getattr(_listed_state(ws, run), "status", None) is RunStatus.RESTARTED and not being_trained(ws, run)
            and (ws.path / "checkpoints" / run / "last.pt").is_file())


def interrupted_trainings(ws: "Workspace") -> list[str]:
    """Plain trainings of the workspace (the window's Train: no DIFT, no run record or state) that stopped before
    their last epoch (a closed window, a crash, Cancel) and have a checkpoint: what
    :func:`naviewer.workflows.dift_training.resume_plain_training` goes on with. A training that ends writes a
    ``finished`` event into its ``metrics.jsonl``; one that has none after its last start did not end."""
    root = ws.path / "runs"
    recorded = {record["name"] for record in ws.store.runs()}
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        name = folder.name
        if (name in recorded or _listed_state(ws, name) is not None
                or not (ws.path / "checkpoints" / name / "last.pt").is_file()):
            continue
        if training_ended(folder / "metrics.jsonl") is False and not being_trained(ws, name):
            out.append(name)
    return out


def _lock_path(ws: "Workspace", run: str) -> Path:
    return ws.path / "runs" / f".{run}.lock"


def training_lock(ws: "Workspace", run: str, advice: str = "wait for it",
                  unguarded: Optional[Any] = None) -> contextlib.AbstractContextManager:
    """Held while this process trains run ``run`` (a DIFT run, the window's plain Train, a resume): two trainings
    of one run would write its files mixed. A NaviewerError (ending in ``advice``) names the lock when another
    holds it; on a file system without locks the training goes on unguarded, after ``unguarded(exc)``."""
    from naviewer.io import held_alone

    return held_alone(_lock_path(ws, run), f"run {run!r} is being trained by another process now: {advice}",
                      unguarded)


def being_trained(ws: "Workspace", run: str) -> bool:
    """Another process holds the run's training lock now (its training is live, not interrupted)."""
    from filelock import FileLock, Timeout

    path = _lock_path(ws, run)
    if not path.exists():
        return False
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    except (OSError, NotImplementedError):
        return False
    lock.release()
    return False


def resumable_runs(ws: "Workspace") -> list[str]:
    """Every run of the workspace that can go on: DIFT runs (:func:`interrupted_runs`), then plain trainings."""
    return interrupted_runs(ws) + interrupted_trainings(ws)


#: how much of a metrics.jsonl's end is read for its last start or end (an epoch writes a few lines a step)
_TAIL_BYTES = 4 << 20


def finished_checkpoints(workspace: Path) -> list[Path]:
    """``checkpoints/RUN/last.pt`` of the workspace's trainings that ended (a ``finished`` event last in their
    metrics), newest first: what Detect… starts from when no pass names an encoder (it started empty after a
    Train had finished; a newcomer, session 19). A training still running, or cut short, is not offered."""
    found = []
    for checkpoint in Path(workspace).glob("checkpoints/*/last.pt"):
        if training_ended(Path(workspace) / "runs" / checkpoint.parent.name / "metrics.jsonl"):
            try:
                found.append((checkpoint.stat().st_mtime, checkpoint))
            except OSError:
                continue
    return [path for _mtime, path in sorted(found, reverse=True)]


def first_start_config(metrics: Path) -> dict:
    """The training settings a run's first start logged in its ``metrics.jsonl`` ({} when none, or unreadable)."""
    try:
        with open(metrics, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if '"run_start"' not in line:
                    continue
                try:
                    record = json_loads(line)
                except ValueError:
                    continue
                if record.get("kind") == "run_start" and isinstance(record.get("config"), dict):
                    return record["config"]
    except OSError:
        pass
    return {}


def training_ended(metrics: Path) -> Optional[bool]:
    """Whether the training logged in ``metrics`` ended (True), stopped before (False), or cannot be told (None:
    no file, or neither a start nor an end in its last few MB, or it cannot be read)."""
    try:
        if not Path(metrics).is_file():  # a pipe in its place blocked the open for ever
            return None
    except OSError:  # its folder unreadable: is_file raised, out of the window's refresh (a GUI sweep)
        return None
    try:
        with open(metrics, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - _TAIL_BYTES))
            tail = handle.read()
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        if b'"event"' not in line and b'"run_start"' not in line:
            continue
        try:
            record = json_loads(line)
        except ValueError:
            continue
        if record.get("kind") == "event" and record.get("event") == "finished":
            return True
        if record.get("kind") == "run_start":
            return False
    return None


def pending_review_runs(ws: "Workspace") -> list[str]:
    """Runs of the workspace that stopped (or wait) for a DIFT review."""
    root = ws.path / "runs"
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        state = _listed_state(ws, folder.name)
        if state and state.status is RunStatus.AWAITING_REVIEW:
            out.append(folder.name)
    return out


def confirm_flags(ws: "Workspace", pass_id: int, reviewer: str = AUTO_REVIEWER,
                  leave: "np.ndarray | tuple" = ()) -> np.ndarray:
    """Accept-all: confirm every flag of the pass that nobody rejected (or already confirmed), but those in
    ``leave`` (the trigger check's cleared flags: they stay as they are, for a person to decide)."""
    todo = undecided_flags(ws, pass_id, leave)
    if todo.size:
        ws.store.set_review(todo, "confirmed", reviewer, note=f"accept-all of detection pass {pass_id}")
        from naviewer.interrupts import note_saved

        note_saved(f"{todo.size:,} flags of detection pass {pass_id} confirmed")  # said if a signal stops what follows
    return todo


def undecided_flags(ws: "Workspace", pass_id: int, leave: "np.ndarray | tuple" = ()) -> np.ndarray:
    """The flags of the pass nobody has decided on (unreviewed, or marked for later), but those in ``leave``: what
    accept-all confirms, and what the window's check after the retrain proposes."""
    scores = ws.store.pass_scores(pass_id)
    flagged = np.flatnonzero(np.asarray(scores.get("flagged", []), dtype=bool))
    flagged = flagged[~np.isin(flagged, np.asarray(leave, dtype=np.int64))]
    states = ws.store.review_states()
    return flagged[np.isin(states[flagged], ("unreviewed", "later"))]


def confirmed_ids(ws: "Workspace") -> np.ndarray:
    """Workspace ids the analyst confirmed as poisons (the only ones fine-tuning and removal use)."""
    return np.flatnonzero(ws.store.review_states() == "confirmed").astype(np.int64)


@dataclass
class FinetuneOutcome:
    """What one fine-tuning on the confirmed flags did, for all three paths that run one:

    * in training, once the review gate accepted (accept-all, or the GUI's gate), and
    * on resuming a run that stopped for review (``naviewer finetune WS``): both
      :func:`naviewer.workflows.dift_training.finetune_and_restart` (Eq. 7, then training restarts
      without the confirmed samples; they fill ``pass_id`` to ``seconds``);
    * post hoc, on a finished encoder (:func:`naviewer.workflows.posthoc.finetune_posthoc`: a new
      checkpoint; it fills ``source`` to ``floor``).

    ``finetune`` is the Eq. 7 result (``FinetuneResult.to_dict()``: steps, lam, lr, diverged, ...), None
    when no step ran. :meth:`to_dict` is the record the workspace keeps (a run state's ``finetune``) and
    the job results carry; :meth:`from_dict` reads one back.
    """

    confirmed: int                       # samples the review confirmed
    finetune: Optional[dict] = None      # the Eq. 7 result
    # in training (finetune_and_restart)
    pass_id: Optional[int] = None        # the detection pass whose reference set fed the stop rule
    removed: Optional[int] = None        # confirmed samples taken out of the training set
    kept: Optional[int] = None           # samples training goes on with
    remaining_epochs: Optional[int] = None
    restart_mode: Optional[str] = None   # DiftConfig.restart_mode when Eq. 7 ran or the encoder was re-initialised
    skipped: bool = False                # nothing to act on: no confirmed sample in the training set
    seconds: Optional[float] = None
    # post hoc (finetune_posthoc)
    source: Optional[Path] = None        # the finished encoder's checkpoint
    checkpoint: Optional[Path] = None    # the fine-tuned one
    run: Optional[str] = None            # the ``<run>-finetune`` run it was registered as
    before: Optional[dict] = None        # the fine-tune gate's measures before / after
    after: Optional[dict] = None
    embeddings: dict = field(default_factory=dict)   # before/after -> path of the saved embeddings
    timings: dict = field(default_factory=dict)
    protocol: Optional[str] = None       # the test-time protocol of ``asr``
    floor: Optional[dict] = None         # the workspace's no-poison floor ([floor]), when measured

    @property
    def kind(self) -> str:
        """``posthoc`` (a finished encoder), ``retrain`` (restart_mode=retrain: the encoder was
        re-initialised, no Eq. 7 step) or ``finetune``."""
        if self.source is not None:
            return "posthoc"
        return "retrain" if self.restart_mode == "retrain" else "finetune"

    def to_dict(self) -> dict:
        if self.source is not None:
            return {"source": str(self.source), "checkpoint": str(self.checkpoint), "run": self.run,
                    "confirmed": self.confirmed, "before": self.before, "after": self.after, "finetune": self.finetune,
                    "embeddings": {k: str(v) for k, v in self.embeddings.items()}, "timings": self.timings,
                    "protocol": self.protocol, "floor": self.floor}
        out: dict[str, Any] = {"pass_id": self.pass_id, "confirmed": self.confirmed, "removed": self.removed}
        if self.skipped:
            out["skipped"] = True
        else:
            out["finetune"] = self.finetune
            if self.restart_mode is not None:
                out["restart_mode"] = self.restart_mode
            out.update(kept=self.kept, remaining_epochs=self.remaining_epochs)
        out["seconds"] = self.seconds
        return out

    @classmethod
    def from_dict(cls, record: dict) -> "FinetuneOutcome":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in record.items() if k in known}
        for key in ("source", "checkpoint"):
            if values.get(key) is not None:
                values[key] = Path(values[key])
        values.setdefault("confirmed", 0)
        return cls(**values)
