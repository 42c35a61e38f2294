"""The state of a workspace's training runs and the review decisions they act on.

A DIFT training run (:mod:`naviewer.workflows.dift_training`) keeps ``<ws>/runs/<run>/dift_state.json``
up to date: where it is (:class:`RunStatus`), the detection pass it stopped at, what the fine-tuning
did. The CLI (``naviewer finetune``), the GUI's analyst dock and the demo read it through
:func:`read_state`; :func:`pending_review_runs` lists the runs that wait for an analyst.

The review side lives here too, because fine-tuning and removal act only on what the analyst
confirmed: :func:`confirm_flags` (accept-all) and :func:`confirmed_ids`.
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from naviewer.errors import NaviewerError
from naviewer.io import atomic_write_json

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
    finetune: Optional[dict] = None     # what finetune_and_restart did
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
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise NaviewerError(f"garbled DIFT run state ({exc})", path) from exc
    return value if isinstance(value, dict) else None


def read_state(ws: "Workspace", run: str) -> Optional[RunState]:
    """The run's state, or None when it has none (not a DIFT-tracked run, or not started)."""
    record = _read_record(ws, run)
    return None if record is None else RunState.from_json(record, _state_path(ws, run))


def write_state(ws: "Workspace", run: str, /, **values: Any) -> RunState:
    """Merge ``values`` into the run's state file (atomically) and stamp ``updated``."""
    record = _read_record(ws, run) or {}
    record.update({k: (v.value if isinstance(v, RunStatus) else v) for k, v in values.items()})
    record["updated"] = time.time()
    atomic_write_json(ws.run_dir(run) / STATE_FILE, record)
    return RunState.from_json(record, _state_path(ws, run))


def pending_review_runs(ws: "Workspace") -> list[str]:
    """Runs of the workspace that stopped (or wait) for a DIFT review."""
    root = ws.path / "runs"
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        state = read_state(ws, folder.name)
        if state and state.status is RunStatus.AWAITING_REVIEW:
            out.append(folder.name)
    return out


def confirm_flags(ws: "Workspace", pass_id: int, reviewer: str = AUTO_REVIEWER) -> np.ndarray:
    """Accept-all: confirm every flag of the pass that nobody rejected (or already confirmed)."""
    scores = ws.store.pass_scores(pass_id)
    flagged = np.flatnonzero(np.asarray(scores.get("flagged", []), dtype=bool))
    states = ws.store.review_states()
    todo = flagged[np.isin(states[flagged], ("unreviewed", "later"))]
    if todo.size:
        ws.store.set_review(todo, "confirmed", reviewer, note=f"accept-all of detection pass {pass_id}")
    return todo


def confirmed_ids(ws: "Workspace") -> np.ndarray:
    """Workspace ids the analyst confirmed as poisons (the only ones fine-tuning and removal use)."""
    return np.flatnonzero(ws.store.review_states() == "confirmed").astype(np.int64)
