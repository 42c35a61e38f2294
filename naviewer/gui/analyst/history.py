"""Review history: the audit log as a list of decision batches (who, when, what, how many), with undo.

One row per batch, newest first, read from the session's store (``audit_log()``: the workspace's
append-only SQLite log, or the in-memory one). *Undo my last* is the store's own undo (one batch);
*Revert batch* puts the samples of any batch that still carry its decision back to what they were
before it, recorded as new decisions with the note ``revert of batch N`` (the log stays append-only).
*Show samples* selects a batch's samples everywhere.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from typing import Optional

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from naviewer.analysis.session import AnalysisSession
from naviewer.errors import NaviewerError
from naviewer.gui.analyst import common
from naviewer.gui.analyst.common import STATE_COLOURS, SessionBridge, keyed_shortcuts, plural
from naviewer.gui.flow_layout import FlowLayout

COLUMNS = ("batch", "when", "who", "what", "samples", "before", "note")
MAX_BATCHES = 2000


def batches(log: list[dict]) -> list[dict]:
    """Audit rows grouped by batch, newest first: id, time, reviewer, note, ids, new/old state counts."""
    grouped: dict[int, dict] = {}
    for row in log:
        b = grouped.setdefault(int(row["batch"]), {"batch": int(row["batch"]), "time": row.get("time"),
                                                   "reviewer": row.get("reviewer", ""), "note": row.get("note", "") or "",
                                                   "rows": []})
        b["rows"].append(row)
    out = []
    for b in grouped.values():
        rows = b.pop("rows")
        b["ids"] = np.array([int(r["sample_id"]) for r in rows], np.int64)
        b["new"] = Counter(str(r["new"]) for r in rows)
        b["old"] = Counter(str(r["old"]) for r in rows)
        b["pairs"] = [(int(r["sample_id"]), str(r["old"]), str(r["new"])) for r in rows]
        b["undo"] = "undoes" in rows[0] or str(b["note"]).startswith("undo")
        out.append(b)
    out.sort(key=lambda b: -b["batch"])
    return out


def _counts(counter: Counter) -> str:
    return ", ".join(f"{n:,} {state}" for state, n in counter.most_common())


class ReviewHistory(QWidget):
    """``ReviewHistory(session, parent=None)``. Signal ``status_message(str)``."""

    status_message = Signal(str)

    def __init__(self, session: AnalysisSession, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.session = session
        self.bridge = SessionBridge.of(session)
        self._batches: list[dict] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.doubleClicked.connect(lambda _i: self.show_samples())
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.buttons: dict[str, QPushButton] = {}
        bar = FlowLayout(spacing=4)
        for key, text, tip, slot in (
            ("undo", "Undo my last", "undo your latest decision batch (U / Ctrl+Z in the gallery)", self.undo_last),
            ("revert", "Revert batch", "put the samples of the selected batch back to what they were before it (Delete)",
             self.revert_selected),
            ("show", "Show samples", "select the samples of the selected batch in the map and the gallery (Enter)",
             self.show_samples),
        ):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(lambda _c=False, f=slot: f())
            self.buttons[key] = button
            bar.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.summary)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)

        self.shortcuts: list[QShortcut] = keyed_shortcuts(self.table, (
            ("Return", self.show_samples, "Select the samples of the highlighted batch"),
            ("Delete", self.revert_selected, "Revert the highlighted batch"),
        ), Qt.ShortcutContext.WidgetShortcut)
        # C / R / L here decided nothing and said nothing (a newcomer, session 21): where they act, in a word
        self.shortcuts += keyed_shortcuts(self.table, [(key, self._decide_elsewhere, "Said: decisions are made in the "
                                                         "gallery (Ctrl+2)") for key in ("C", "R", "L")],
                                          Qt.ShortcutContext.WidgetShortcut)
        self.bridge.review_changed.connect(lambda _ids: self.refresh())
        self.refresh()

    # -- contents -----------------------------------------------------------------------------------
    def refresh(self) -> None:
        try:
            log = self.session.store.audit_log()
        except Exception as exc:  # noqa: BLE001 - a store without a log: say so rather than fail
            self.summary.setText(f"No review history: {exc}")
            self._name_undo_target()
            return
        selected = self.selected_batch()
        newest_before = self._batches[0]["batch"] if self._batches else None
        self._batches = batches(log)[:MAX_BATCHES]
        self.table.setRowCount(len(self._batches))
        for row, b in enumerate(self._batches):
            when = b["time"]
            when_s = (_dt.datetime.fromtimestamp(float(when)).strftime("%Y-%m-%d %H:%M:%S")
                      if isinstance(when, (int, float)) else str(when or ""))
            if b["undo"]:
                what = "undo: " + ", ".join(f"{n:,} → {state}" for state, n in b["new"].most_common())
            elif len(b["new"]) == 1:
                state = next(iter(b["new"]))
                what = f"→ {state}"
            else:
                what = ", ".join(f"{n:,} → {state}" for state, n in b["new"].most_common())
            shown_ids = ", ".join(f"#{i}" for i in b["ids"][:6].tolist()) + (" …" if len(b["ids"]) > 6 else "")
            cells = (str(b["batch"]), when_s, str(b["reviewer"]), what, f"{len(b['ids']):,}: {shown_ids}",
                     _counts(b["old"]), str(b["note"]))
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 0:
                    item.setData(Qt.ItemDataRole.UserRole, b["batch"])
                if col == 3 and not b["undo"] and len(b["new"]) == 1:
                    item.setForeground(STATE_COLOURS[next(iter(b["new"]))])
                self.table.setItem(row, col, item)
        n_rows = sum(len(b["ids"]) for b in self._batches)
        self.summary.setText(f"{plural(len(self._batches), 'decision batch')}, {plural(n_rows, 'audit row')} "
                             "(newest first; the log is append-only: undo and revert add rows)")
        if selected is not None:
            self.select_batch(selected)
        if self._batches and self._batches[0]["batch"] != newest_before:
            # newest first: new batches come in at the top, where the kept selection had scrolled the table away from
            # (a newcomer saw batch 11 on top of "16 decision batches", session 21)
            self.table.scrollToTop()
        self._update_buttons()
        self._name_undo_target()

    def batch(self, batch_id: int) -> Optional[dict]:
        return next((b for b in self._batches if b["batch"] == batch_id), None)

    def selected_batch(self) -> Optional[int]:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return int(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None

    def select_batch(self, batch_id: int) -> bool:
        for row in range(self.table.rowCount()):
            if int(self.table.item(row, 0).data(Qt.ItemDataRole.UserRole)) == batch_id:
                self.table.selectRow(row)
                return True
        return False

    def _update_buttons(self) -> None:
        has = self.selected_batch() is not None
        self.buttons["revert"].setEnabled(has)
        self.buttons["show"].setEnabled(has)

    def _decide_elsewhere(self) -> None:
        self.status_message.emit("The review history lists decisions; C · R · L decide in the gallery (Ctrl+2). Here "
                                 "Enter shows a batch's samples and Delete reverts it.")

    # -- actions ------------------------------------------------------------------------------------
    def _name_undo_target(self) -> None:
        """The button names the batch it would undo: after U had undone the newest, "Undo my last" undid a batch of
        an earlier sitting, on a sample out of view, and only the status bar said so (a newcomer, session 26)."""
        button = self.buttons["undo"]
        try:
            target = self.session.undo_target()
        except Exception:  # noqa: BLE001 - a store that cannot say: the plain button
            target = None if not self.session.can_undo() else -1
        button.setEnabled(target is not None)
        if target is None or target < 0:
            button.setText("Undo my last")
            button.setToolTip("undo your latest decision batch (U / Ctrl+Z in the gallery)")
            return
        b = self.batch(target)
        when = b["time"] if b is not None else None
        when_s = (_dt.datetime.fromtimestamp(float(when)).strftime("%H:%M") if isinstance(when, (int, float)) else "")
        what = "" if b is None else ", ".join(f"{n:,} → {state}" for state, n in b["new"].most_common())
        button.setText(f"Undo batch {target}")
        button.setToolTip(f"undo your latest decision batch still in force: batch {target}"
                          + (f" ({when_s}, {what})" if b is not None else "") + "; U / Ctrl+Z in the gallery undo it too")

    def undo_last(self) -> np.ndarray:
        question = common.undo_question(self.session)
        if question and not common.ask_user(self, "Undo", question, default_yes=False):
            return np.zeros(0, np.int64)
        try:
            ids = self.session.undo()
        except NaviewerError as exc:  # a read-only workspace
            common.say_not_recorded(self, str(exc))
            return np.zeros(0, np.int64)
        self._name_undo_target()
        self.status_message.emit(common.undo_words(self.session, ids))
        return ids

    def show_samples(self) -> np.ndarray:
        b = self.batch(self.selected_batch()) if self.selected_batch() is not None else None
        if b is None:
            return np.zeros(0, np.int64)
        ids = np.unique(b["ids"])
        self.session.set_selection(ids, source=self)
        self.session.set_current(int(ids[0]), source=self)
        return ids

    def revert_selected(self) -> np.ndarray:
        batch_id = self.selected_batch()
        return self.revert(batch_id) if batch_id is not None else np.zeros(0, np.int64)

    def revert(self, batch_id: int) -> np.ndarray:
        """Put the samples of batch ``batch_id`` that still carry its decision back to their state before
        it (one new batch per earlier state, noted ``revert of batch N``); returns the reverted ids."""
        b = self.batch(batch_id)
        if b is None:
            return np.zeros(0, np.int64)
        self.session.sync_with_store()  # the question counts from the store as it is now, not a poll ago
        codes = self.session.states()
        back: dict[str, dict[int, str]] = {}  # the state before -> {id: the state the batch set}
        for sid, old, new in b["pairs"]:
            if codes[sid] == new and old != new:
                back.setdefault(old, {})[int(sid)] = new
        total = sum(len(v) for v in back.values())
        if total == 0:
            self.status_message.emit(f"Batch {batch_id}: every sample has been decided again since; nothing to revert.")
            return np.zeros(0, np.int64)
        skipped = len(b["pairs"]) - total
        question = (f"Revert batch {batch_id}: put {plural(total)} back to " + _counts(Counter({k: len(v) for k, v in back.items()}))
                    + "?" + (f" {plural(skipped)} decided again since stay as they are." if skipped else ""))
        if not common.ask_user(self, f"Revert batch {batch_id}", question):
            return np.zeros(0, np.int64)
        done = []
        try:
            for old, expected in back.items():  # one batch an earlier state, as before
                # only those the store still holds in the state the batch set, read inside the write: this window's
                # copy is up to a poll old, and a revert put back a decision another reviewer had made since (a probe)
                self.session.review(np.asarray(sorted(expected), np.int64), old, note=f"revert of batch {batch_id}",
                                    only_from=expected)
                done.append(self.session.last_written)
        except NaviewerError as exc:  # a read-only workspace
            common.say_not_recorded(self, str(exc))
            if not done:
                return np.zeros(0, np.int64)
        ids = np.unique(np.concatenate(done)) if done else np.zeros(0, np.int64)
        late = total - len(ids)
        self.status_message.emit(f"Reverted batch {batch_id}: {plural(len(ids))}."
                                 + (f" {plural(late)} decided again meanwhile elsewhere stay as they are." if late else ""))
        return ids

