"""Fine-tune gate: fine-tuning on the confirmed poisons is offered only once the flags are reviewed.

Shows confirmed / rejected / later / unreviewed counts; the button emits ``finetune_requested``
with the confirmed ids (the main window runs the job); a before/after panel shows what the
fine-tuning changed (confirmed-cluster density, kNN accuracy, ASR when ground truth exists).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QLabel, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from naviewer.analysis.session import AnalysisSession
from naviewer.gui.analyst.common import STATE_COLOURS, SessionBridge, fmt

RESULT_ROWS = (
    ("confirmed_density", "mean density of the confirmed cluster", "lower is better"),
    ("knn_acc", "kNN accuracy", "higher is better"),
    ("asr", "attack success rate (ground truth)", "lower is better"),
)


class FineTuneGate(QWidget):
    """``FineTuneGate(session, parent=None)``.

    Signal ``finetune_requested(object)``: np.ndarray of confirmed sample ids. Feed the outcome
    back with ``set_result({"before": {...}, "after": {...}})`` (keys of RESULT_ROWS) and show a
    running job with ``set_running(True/False)``.
    """

    finetune_requested = Signal(object)

    def __init__(self, session: AnalysisSession, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.session = session
        self.bridge = SessionBridge.of(session)
        self._running = False
        self.counts = QLabel()
        self.counts.setWordWrap(True)  # wraps rather than widening the panel
        self.counts.setTextFormat(Qt.TextFormat.RichText)
        self.reason = QLabel()
        self.reason.setWordWrap(True)
        self.override = QCheckBox("Allow fine-tuning while some flags still await a decision")
        self.override.toggled.connect(lambda _on: self.update_gate())
        self.button = QPushButton()
        self.button.clicked.connect(self._request)
        self.result = QTableWidget(0, 4)
        self.result.setHorizontalHeaderLabels(["metric", "before", "after", "change"])
        self.result.verticalHeader().hide()
        self.result.horizontalHeader().setStretchLastSection(True)
        self.result.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.counts)
        layout.addWidget(self.reason)
        layout.addWidget(self.override)
        layout.addWidget(self.button)
        layout.addWidget(self.result, 1)
        layout.addStretch(0)
        self.bridge.review_changed.connect(lambda _ids: self.update_gate())
        self.update_gate()

    @property
    def retrains(self) -> bool:
        """The run's recipe removes the confirmed samples and retrains from scratch (no Eq. 7 step)."""
        return self.session.restart_mode == "retrain"

    def confirmed_ids(self) -> np.ndarray:
        return np.flatnonzero(self.session.state_codes == 1)

    def gate(self) -> tuple[bool, str]:
        """(enabled, why) from the review state."""
        c = self.session.review_counts()
        confirmed = len(self.confirmed_ids())
        pending = c["unreviewed"] + c["later"]
        if self._running:
            return False, "Fine-tuning is running."
        if confirmed == 0:
            return False, "Confirm at least one flagged sample as a poison first."
        if pending and not self.override.isChecked():
            return False, f"{pending:,} flags still await a decision (unreviewed or later); review them first or allow it below."
        if self.retrains:
            return True, (f"Ready: remove the {confirmed:,} confirmed poisons and retrain the encoder from scratch on "
                          "the rest (restart_mode=retrain, this run's recipe; no Eq. 7 step).")
        return True, f"Ready: fine-tune the encoder to push the {confirmed:,} confirmed poisons apart (DIFT Eq. 7)."

    def update_gate(self) -> None:
        c = self.session.review_counts()
        parts = []
        for state in ("confirmed", "rejected", "later", "unreviewed"):
            parts.append(f"<span style='color:{STATE_COLOURS[state].name()}'>■</span> {state} <b>{c[state]:,}</b>")
        self.counts.setText("Flags: " + " &nbsp; ".join(parts))
        enabled, why = self.gate()
        self.button.setEnabled(enabled)
        verb = "Remove and retrain without" if self.retrains else "Fine-tune on"
        self.button.setText(f"{verb} {len(self.confirmed_ids()):,} confirmed poisons")
        self.reason.setText(why)
        self.override.setVisible((c["unreviewed"] + c["later"]) > 0)

    def _request(self) -> None:
        enabled, _ = self.gate()
        if enabled:
            self.finetune_requested.emit(self.confirmed_ids())

    def show_done(self, confirmed: int) -> None:
        """The gate's last word after the in-training job: what was done, in this run's recipe."""
        self.button.setEnabled(False)
        if self.retrains:
            did = f"Done: removed {confirmed:,} confirmed poisons and retrained the encoder from scratch on the rest"
        else:
            did = f"Done: fine-tuned on {confirmed:,} confirmed poisons, removed them and finished training"
        self.reason.setText(did + "; the table compares before and after.")

    def set_running(self, running: bool) -> None:
        self._running = running
        self.update_gate()

    def set_result(self, result: Mapping[str, Any]) -> None:
        """Show ``{"before": {...}, "after": {...}}``; rows whose metric neither side has are left out."""
        before, after = dict(result.get("before") or {}), dict(result.get("after") or {})
        rows = [(k, name, hint) for k, name, hint in RESULT_ROWS if k in before or k in after]
        self.result.setRowCount(len(rows))
        for r, (key, name, hint) in enumerate(rows):
            b, a = before.get(key), after.get(key)
            change = "–"
            if isinstance(b, (int, float)) and isinstance(a, (int, float)):
                change = f"{a - b:+.4g}"
            items = [f"{name} ({hint})", fmt(b), fmt(a), change]
            for col, text in enumerate(items):
                self.result.setItem(r, col, QTableWidgetItem(text))
        self.result.resizeColumnsToContents()
        self.result.setVisible(bool(rows))
