"""The one DIFT review gate: where a run waits for the analyst, and what was decided.

:class:`ReviewGate` is used by the in-training hook (:class:`~naviewer.defense.pipeline.DiftHook`)
and by the workspace workflow (``naviewer.workflows.dift_training``, which re-exports it): a job
that needs a review blocks in its worker thread in :meth:`ReviewGate.wait` (``ctx.check()`` keeps
cancel/pause working) until the analyst (GUI thread) calls :meth:`release` / :meth:`accept`
(go on and fine-tune) or :meth:`cancel_review` / :meth:`reject` (keep every sample). Without a
gate, a run that needs a review stops instead. No other mechanism (e.g. pausing the job) exists.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from naviewer.jobs import JobContext

#: decisions reported in ``dift_decision`` events: only "accepted" means the flags were acted on
DECISIONS = ("accepted", "rejected", "awaiting_review", "noop")


@dataclass
class ReviewDecision:
    """What became of a detection: ``decision`` in DECISIONS; ``ids`` the samples acted on
    (None: the proposed flags), ``reviewer`` who decided (e.g. auto-accept, analyst)."""

    decision: str
    ids: Optional[np.ndarray] = None
    reviewer: str = ""

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"unknown review decision {self.decision!r}; choose one of {DECISIONS}")
        if self.ids is not None:
            self.ids = np.unique(np.asarray(self.ids, dtype=np.int64))


class ReviewGate:
    """Where a DIFT run waits for the analyst (GUI). Without a gate, a run that needs a review stops.

    ``on_review(info)`` (optional) is called in the worker thread when the flags are saved and a
    review is needed (``info``: e.g. workspace, run, pass_id, flagged, epoch); the GUI forwards it to
    its main thread (e.g. a queued signal) and opens the analyst view. When the analyst is done, the
    GUI calls :meth:`release` (thread-safe), or :meth:`accept` with the ids to act on; the job then
    fine-tunes and goes on. :meth:`cancel_review` (= :meth:`reject`) makes the job skip fine-tuning
    and finish training on the full data.
    """

    def __init__(self, on_review: Optional[Callable[[dict], None]] = None) -> None:
        self.on_review = on_review
        self._released = threading.Event()
        self._skip = False
        self.pending: Optional[dict] = None
        self.ids: Optional[np.ndarray] = None   # set by accept(ids): the analyst's edited set

    def release(self) -> None:
        self._released.set()

    def accept(self, ids: Optional[np.ndarray] = None) -> None:
        """Go on with ``ids`` (None: whatever the caller proposes, e.g. the confirmed samples)."""
        self.ids = None if ids is None else np.unique(np.asarray(ids, dtype=np.int64))
        self._skip = False
        self._released.set()

    def cancel_review(self) -> None:
        self._skip = True
        self._released.set()

    reject = cancel_review

    @property
    def waiting(self) -> bool:
        return self.pending is not None and not self._released.is_set()

    @property
    def decided(self) -> bool:
        """A decision was made before anyone waited (then :meth:`wait` returns at once)."""
        return self._released.is_set()

    def wait(self, info: dict, ctx: JobContext) -> bool:
        """Block until released (ctx.check() keeps cancel/pause working); False = skip fine-tuning."""
        self.pending = dict(info)
        if self.on_review is not None and not self._released.is_set():
            self.on_review(dict(info))
        while not self._released.wait(0.2):
            ctx.check()
        self.pending = None
        self._released.clear()
        skip, self._skip = self._skip, False
        return not skip
