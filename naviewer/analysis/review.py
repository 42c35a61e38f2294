"""Review states and the store protocol the analysis session writes decisions through.

The real implementation is the workspace's SQLite store (``ws.store``, contract section 2); the
in-memory store here serves array-only sessions (scripts, demos) with the same semantics: every
decision is a batch, logged per sample, and ``undo_last`` reverts the last batch as a new batch.
"""

from __future__ import annotations

import time
from typing import Optional, Protocol, Sequence

import numpy as np

from naviewer.errors import NaviewerError
from naviewer.workspace.store import OwnBatches, UndoResult

REVIEW_STATES = ("unreviewed", "confirmed", "rejected", "later")
STATE_CODE = {name: code for code, name in enumerate(REVIEW_STATES)}


class ReviewStore(Protocol):
    """What the session needs from a store (a subset of the workspace store's API)."""

    def set_review(self, sample_ids: Sequence[int] | np.ndarray, state: str, reviewer: str, note: str = "", *,
                   skip_unchanged: bool = False, only_from: "Optional[str | dict[int, str]]" = None
                   ) -> tuple[Optional[int], np.ndarray]: ...

    def last_batch_id(self) -> int: ...

    def review_states(self) -> np.ndarray: ...

    def undo_last(self, reviewer: Optional[str] = None, mine: Optional[OwnBatches] = None) -> list[int]: ...

    def undo_last_detail(self, reviewer: Optional[str] = None, mine: Optional[OwnBatches] = None) -> UndoResult: ...

    def has_undoable(self, reviewer: Optional[str] = None, mine: Optional[OwnBatches] = None) -> bool: ...

    def undoable_batch(self, reviewer: Optional[str] = None, mine: Optional[OwnBatches] = None) -> Optional[int]: ...

    def audit_log(self, limit: Optional[int] = None) -> list[dict]: ...


def check_state(state: str) -> str:
    if state not in STATE_CODE:
        raise NaviewerError(f"unknown review state {state!r}; expected one of {', '.join(REVIEW_STATES)}")
    return state


def state_codes(states: Sequence[str] | np.ndarray) -> np.ndarray:
    """uint8 codes (index into REVIEW_STATES) for an array of state names; unknown names count as unreviewed."""
    states = np.asarray(states)
    codes = np.zeros(len(states), dtype=np.uint8)
    for name, code in STATE_CODE.items():
        codes[states == name] = code
    return codes


class MemoryReviewStore:
    """Review states and an append-only audit log kept in memory (same semantics as the workspace store)."""

    def __init__(self, n: int) -> None:
        self._states = np.array(["unreviewed"] * n, dtype=object)
        self._log: list[dict] = []
        self._batch = 0
        self._undone_empty: set[int] = set()  # batches undone with every sample decided again since

    def set_review(self, sample_ids, state: str, reviewer: str, note: str = "", *, skip_unchanged: bool = False,
                   only_from: "Optional[str | dict[int, str]]" = None) -> tuple[Optional[int], np.ndarray]:
        """As the workspace store's: (the batch's id or None when nothing was written, the ids written)."""
        check_state(state)
        expected = None if only_from is None else (
            {} if isinstance(only_from, str) else {int(k): str(v) for k, v in dict(only_from).items()})
        for value in ([only_from] if isinstance(only_from, str) else list((expected or {}).values())):
            check_state(value)
        ids = np.unique(np.asarray(sample_ids, dtype=np.int64))
        if len(ids) and (ids.min() < 0 or ids.max() >= len(self._states)):
            raise NaviewerError(f"sample ids out of range 0..{len(self._states) - 1}")
        if skip_unchanged:
            ids = ids[self._states[ids].astype(str) != state]
        if isinstance(only_from, str):
            ids = ids[self._states[ids].astype(str) == only_from]
        elif expected is not None:
            ids = ids[np.asarray([self._states[i] == expected.get(int(i)) for i in ids.tolist()], dtype=bool)]
        if len(ids) == 0:
            return None, ids
        self._batch += 1
        now = time.time()
        for i in ids.tolist():
            old = self._states[i]
            self._states[i] = state
            self._log.append(
                {"sample_id": i, "old": old, "new": state, "reviewer": reviewer, "time": now, "note": note, "batch": self._batch}
            )
        return self._batch, ids

    def last_batch_id(self) -> int:
        return self._batch

    def review_states(self) -> np.ndarray:
        return self._states.astype(str)

    def _undoable_batches(self, reviewer: Optional[str], mine: Optional[OwnBatches] = None) -> list[int]:
        undone_batches = {row["undoes"] for row in self._log if "undoes" in row} | self._undone_empty
        return [
            row["batch"]
            for row in self._log
            if "undoes" not in row and row["batch"] not in undone_batches and (reviewer is None or row["reviewer"] == reviewer)
            and (mine is None or mine.holds(row["batch"]))
        ]

    def has_undoable(self, reviewer: Optional[str] = None, mine: Optional[OwnBatches] = None) -> bool:
        return bool(self._undoable_batches(reviewer, mine))

    def undoable_batch(self, reviewer: Optional[str] = None, mine: Optional[OwnBatches] = None) -> Optional[int]:
        batches = self._undoable_batches(reviewer, mine)
        return max(batches) if batches else None

    def batch_summary(self, batch: int) -> Optional[tuple[str, int, float]]:
        """As the workspace store's: (the state it set, how many samples, when), None when there is no such batch."""
        rows = [row for row in self._log if row.get("batch") == int(batch) and "undoes" not in row]
        if not rows:
            return None
        from collections import Counter

        state = Counter(row["new"] for row in rows).most_common(1)[0][0]
        return str(state), len(rows), float(rows[0]["time"])

    def undo_last(self, reviewer: Optional[str] = None, mine: Optional[OwnBatches] = None) -> list[int]:
        return self.undo_last_detail(reviewer, mine).reverted

    def undo_last_detail(self, reviewer: Optional[str] = None, mine: Optional[OwnBatches] = None) -> UndoResult:
        batches = self._undoable_batches(reviewer, mine)
        if not batches:
            return UndoResult(None, [], [])
        target = max(batches)
        rows = [row for row in self._log if row["batch"] == target]
        self._batch += 1
        now = time.time()
        reverted, skipped = [], []
        for row in rows:
            current = self._states[row["sample_id"]]
            if current != row["new"]:  # decided again since: left as it is, as the workspace store does
                skipped.append(int(row["sample_id"]))
                continue
            self._states[row["sample_id"]] = row["old"]
            reverted.append(int(row["sample_id"]))
            self._log.append(
                {
                    "sample_id": row["sample_id"], "old": current, "new": row["old"], "reviewer": row["reviewer"],
                    "time": now, "note": "undo", "batch": self._batch, "undoes": target,
                }
            )
        if not reverted:  # the undo is still recorded (no sample row), so the next one takes the batch before
            self._undone_empty.add(target)
        return UndoResult(target, sorted(reverted), sorted(skipped))

    def audit_log(self, limit: Optional[int] = None) -> list[dict]:
        """Audit rows oldest first; with ``limit``, the most recent ``limit`` rows (as the workspace store)."""
        return list(self._log[-limit:] if limit else self._log) if limit != 0 else []
