"""Fine-tune gate: fine-tuning on the confirmed poisons is offered only once the flags are reviewed.

Shows confirmed / rejected / later / unreviewed counts; the button emits ``finetune_requested``
with the confirmed ids (the main window runs the job); a before/after panel shows what the
fine-tuning changed (confirmed-cluster density, kNN accuracy, ASR when ground truth exists).

Accuracy and ASR are in percent, as the training monitor shows them; the ASR row names its
test-time protocol (how the trigger was pasted on the test images: the workspace's
``[attack] test_protocol``), and a *no-poison floor* column and line give what the same recipe
reaches without any poison (``[floor]``, :func:`naviewer.workflows.floor.floor_text`): an ASR "after"
near the floor is as low as this encoder can go, not a failed defence.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from naviewer.analysis.review import STATE_CODE
from naviewer.analysis.session import AnalysisSession
from naviewer.gui.analyst.common import STATE_COLOURS, SessionBridge, deciding, fmt, plural, say_not_recorded

#: the attack success rate first: at 1280x720 the tab shows two rows, and the ASR (what the retrain is for) stood
#: third, below the fold (a newcomer, session 31)
RESULT_ROWS = (
    ("asr", "attack success rate", "lower is better"),
    ("asr_all", "attack success rate, target-class test images included", "lower is better"),
    ("knn_acc", "kNN accuracy", "higher is better"),
    ("confirmed_density", "the removed samples' neighbourhood density", "lower: the pile dissolved"),
)
#: rows shown in percent (fractions in the results), with changes in percentage points
PERCENT_ROWS = ("knn_acc", "asr", "asr_all")
RESULT_COLUMNS = ("metric", "before", "after", "change", "no-poison floor")
#: what a row's short name leaves out (its tooltip): at 1280x720 the long names wrapped and the table showed two rows
ROW_TIPS = {"confirmed_density": "the mean kNN density of the confirmed samples, in the encoder before and after: "
                                 "a poison pile that dissolved reads lower after",
            "knn_acc": "kNN accuracy of the encoder on the test set (clean images)",
            "asr": "the share of triggered test images of other classes the encoder puts in the target class",
            "asr_all": "the attack success rate counting the target class's own triggered test images too"}


def earlier_text(earlier: Any) -> str:
    """"Before this one: the first retrain (run demo, 117 removed) read ASR 21.3 %, kNN accuracy 93.1 %; ..." from a
    retrain again's ``earlier`` records ("" without any)."""
    if not isinstance(earlier, list):
        return ""
    parts = []
    for record in (r for r in earlier if isinstance(r, Mapping)):
        after = record.get("after") if isinstance(record.get("after"), Mapping) else {}
        figures = [f"{name} {percent(after[key])}" for key, name in (("asr", "ASR"), ("knn_acc", "kNN accuracy"))
                   if isinstance(after.get(key), (int, float)) and not isinstance(after.get(key), bool)]
        if not figures:
            continue
        removed = record.get("confirmed")
        what = "the first retrain" if record.get("first") else "the retrain again"
        count = f", {int(removed):,} removed" if isinstance(removed, int) and not isinstance(removed, bool) else ""
        parts.append(f"{what} (run {record.get('run')}{count}) read {', '.join(figures)}")
    return ("Before this one, " + "; ".join(parts) + " (two trainings of one kept set differed by up to 20 points of "
            "ASR on the demo: compare more than one draw).") if parts else ""


def density_verdict(before: Any, after: Any, confirmed: int) -> str:
    """A word when the confirmed samples sit denser after the step than before ("" otherwise): the fine-tune pulled
    their pile together instead of dissolving it, so the encoder is no cleaner for it."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in (before, after)):
        return ""
    if float(after) <= float(before) or float(before) <= 0:
        return ""
    rise = 100.0 * (float(after) - float(before)) / float(before)
    return (f"The {plural(confirmed, 'confirmed sample')} sit {rise:.0f} % denser after this step than before: it did "
            "not dissolve their pile, so this encoder is no cleaner for it. A fine-tune on few confirmed poisons, or "
            "on an encoder that never crowded them, can do this. Train a fresh encoder without them instead "
            "(Run ▸ Train…, leaving out the confirmed poisons), or confirm more of the pile first.")


def percent(value: Any) -> str:
    """``0.228`` -> ``22.8 %`` (the monitor's format); ``–`` when not a number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
        return f"{100 * float(value):.1f} %"
    return "–"


class FineTuneGate(QWidget):
    """``FineTuneGate(session, parent=None)``.

    Signal ``finetune_requested(object)``: np.ndarray of confirmed sample ids. Feed the outcome
    back with ``set_result({"before": {...}, "after": {...}})`` (keys of RESULT_ROWS) and show a
    running job with ``set_running(True/False)``.
    """

    finetune_requested = Signal(object)
    #: the decisions changed after the retrain: train the run's recipe again without the samples confirmed now
    again_requested = Signal(object)
    #: after a retrain: look for triggers in the retrained encoder (PatchSearch), proposing what it finds still kept
    check_requested = Signal()
    #: the check's pass, to look at its flags one by one (its id)
    open_pass_requested = Signal(int)

    def __init__(self, session: AnalysisSession, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.session = session
        self.bridge = SessionBridge.of(session)
        self._running = False
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # holds the keys while its job runs (set_running)
        self.counts = QLabel()
        self.counts.setWordWrap(True)  # wraps rather than widening the panel
        self.counts.setTextFormat(Qt.TextFormat.RichText)
        self.reason = QLabel()
        self.reason.setWordWrap(True)
        self.override = QCheckBox("Go on while some flags still await a decision")
        self.override.toggled.connect(lambda _on: self.update_gate())
        self.button = QPushButton()
        self.button.clicked.connect(self._request)
        self.again_button = QPushButton()
        self.again_button.setObjectName("retrainAgainButton")
        self.again_button.setToolTip("A new run of this run's recipe, trained from scratch without DIFT on the samples "
                                     "the review keeps now; the table then compares it with the encoder DIFT flagged with")
        self.again_button.clicked.connect(self._request_again)
        self.again_button.hide()
        # the review loop's second round, one click away: a retrain can leave poisons the first encoder hid (the
        # demo's miss kept 4; PatchSearch on the retrained encoder found 3 and no clean sample; session 34)
        self.check_button = QPushButton("Look for triggers in the retrained encoder (PatchSearch)")
        self.check_button.setObjectName("checkRetrainedButton")
        self.check_button.setToolTip("PatchSearch looks for a pasted trigger in every image, embedded by the "
                                     "retrained encoder, and names the images it finds one in that are still in the "
                                     "training set. It decides nothing: confirm them (here, or in its pass), then "
                                     "Retrain again. About a minute on the demo.")
        self.check_button.clicked.connect(self._request_check)
        self.check_button.hide()
        self.check_line = QLabel()
        self.check_line.setObjectName("checkLine")
        self.check_line.setWordWrap(True)
        self.check_line.setTextFormat(Qt.TextFormat.RichText)
        self.check_line.linkActivated.connect(self._open_check_pass)
        self.check_line.hide()
        self.confirm_check_button = QPushButton()
        self.confirm_check_button.setObjectName("confirmCheckButton")
        self.confirm_check_button.clicked.connect(self._confirm_check)
        self.confirm_check_button.hide()
        self._checking = False
        self._check: Optional[dict] = None
        self._check_text = ""
        self.result = QTableWidget(0, len(RESULT_COLUMNS))
        self.result.setHorizontalHeaderLabels(list(RESULT_COLUMNS))
        self.result.verticalHeader().hide()
        self.result.horizontalHeader().setStretchLastSection(False)
        self.result.setWordWrap(False)  # one line a row, elided in a narrow tab (the tooltip has it whole): a row
        # wrapped at a width the table had before it was shown stood two lines tall and pushed the ASR out of sight
        self.result.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.result.hide()
        self.floor_line = QLabel()
        self.floor_line.setObjectName("floorLine")
        self.floor_line.setWordWrap(True)
        self.floor_line.hide()
        # the table's verdict when it goes against the step's purpose: a post-hoc fine-tune left the confirmed
        # samples 55 % denser while the row read "lower: the pile dissolved", and nothing said so (a newcomer, session 25)
        self.verdict = QLabel()
        self.verdict.setObjectName("warningLabel")
        self.verdict.setWordWrap(True)
        self.verdict.hide()
        # a retrain again's table replaced the first retrain's figures (a newcomer compared 40.4 % with nothing)
        self.earlier_line = QLabel()
        self.earlier_line.setObjectName("earlierLine")
        self.earlier_line.setWordWrap(True)
        self.earlier_line.hide()
        self.protocol: Optional[str] = None
        self.floor: Optional[dict] = None
        # the table is as tall as its rows and the whole tab scrolls: on a 720 px screen the tab is short,
        # and a squeezed table would show one row of four
        self.result.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.result.setSizeAdjustPolicy(QTableWidget.SizeAdjustPolicy.AdjustToContents)
        body = QWidget()
        self.body = body
        layout = QVBoxLayout(body)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(self.counts)
        layout.addWidget(self.reason)
        layout.addWidget(self.again_button)  # right under the words that point to it (below the table it was
        # out of sight at 1280x720)
        layout.addWidget(self.check_line)
        layout.addWidget(self.confirm_check_button)
        layout.addWidget(self.check_button)
        layout.addWidget(self.earlier_line)  # above the table: under it, it stood out of sight at 1920x1080 too
        layout.addWidget(self.result)  # (shown once there is a result: right under "Done: ...")
        layout.addWidget(self.verdict)
        layout.addWidget(self.floor_line)
        layout.addWidget(self.override)
        layout.addWidget(self.button)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
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
            return False, ("Retraining from scratch on the kept samples is running (see the training monitor)."
                           if self.retrains else "Fine-tuning is running.")
        if self.blocked:
            return False, self.blocked
        if confirmed == 0:
            return False, "Confirm at least one flagged sample as a poison first."
        if pending and not self.override.isChecked():
            return False, (f"{plural(pending, 'flag')} still {'awaits' if pending == 1 else 'await'} a decision (unreviewed "
                           "or later); review them first or allow it below.")
        if self.retrains:
            return True, (f"Ready: remove the {plural(confirmed, 'confirmed poison')} and retrain the encoder from scratch on "
                          "the rest, with this run's recipe (a fresh encoder, not a fine-tune of this one). It takes "
                          "about as long as the original training did.")
        # the other way out said before the click, not only after a fine-tune that did nothing (a newcomer, session 27)
        return True, (f"Ready: fine-tune the encoder to push the {plural(confirmed, 'confirmed poison')} apart (DIFT Eq. "
                      "7). Or train a fresh encoder without them: Run ▸ Train… with \"Leave out the samples confirmed "
                      "as poisons\".")

    def update_gate(self) -> None:
        c = self.session.review_counts()
        parts = []
        for state in ("confirmed", "rejected", "later", "unreviewed"):
            parts.append(f"<span style='color:{STATE_COLOURS[state].name()}'>■</span> {state} <b>{c[state]:,}</b>")
        # the step acts on every confirmed sample of the workspace; "Flags: confirmed 5" above "the 80 confirmed
        # poisons" read as two counts of one thing (a newcomer, session 32): the workspace's beyond the flags is said
        beyond = len(self.confirmed_ids()) - c["confirmed"]
        self.counts.setText("This pass's flags: " + " &nbsp; ".join(parts)
                            + (f" &nbsp; (and {beyond:,} more confirmed outside its flags, by other passes or by hand: "
                               "the step acts on all of them)" if beyond > 0 else ""))
        enabled, why = self.gate()
        self.button.setEnabled(enabled)
        verb = "Remove and retrain without" if self.retrains else "Fine-tune on"
        self.button.setText(f"{verb} {plural(len(self.confirmed_ids()), 'confirmed poison')}")
        self.reason.setText(why)
        self.override.setVisible((c["unreviewed"] + c["later"]) > 0)
        if self.done_text:  # the step was done: say so, never offer it again
            self.button.setEnabled(False)
            self.reason.setText(self.done_text + self._changed_since())
        self._update_again()
        self._update_check()

    def _again_offered(self) -> bool:
        """A retrain was done, the decisions changed since, and at least one sample is confirmed now."""
        return bool(self.done_text) and self.retrains and bool(self._changed_since()) and len(self.confirmed_ids()) > 0

    def _update_again(self) -> None:
        offered = self._again_offered()
        self.again_button.setVisible(offered)
        if not offered:
            return
        c = self.session.review_counts()
        pending = c["unreviewed"] + c["later"]
        self.again_button.setText(f"Retrain again without {plural(len(self.confirmed_ids()), 'confirmed poison')} "
                                  "(a new run)")
        self.again_button.setEnabled(not self._running and not self._checking and not self.blocked
                                     and (not pending or self.override.isChecked()))

    def _update_check(self) -> None:
        """The check is offered once a retrain is done and while no job runs; its finding stays under it."""
        offered = bool(self.done_text) and self.retrains and not self.blocked
        self.check_button.setVisible(offered)
        self.check_button.setEnabled(offered and not self._running and not self._checking)
        if self._checking:
            self.check_button.setText("Looking for triggers in the retrained encoder… (see Jobs)")
        else:
            self.check_button.setText("Look for triggers in the retrained encoder (PatchSearch)" if self._check is None
                                      else "Look again (PatchSearch on the newest retrained encoder)")
        pending = self._check_pending()
        if self._check is not None and self._check.get("added"):  # the proposal, or (all decided) that it is done
            link = f'<a href="pass:{int(self._check.get("pass_id") or 0)}">pass {int(self._check.get("pass_id") or 0)}</a>'
            count = len(self._check["added"])
            self.check_line.setText(self._check_text if pending.size else
                                    f"PatchSearch on the retrained encoder ({link}) found a trigger in "
                                    f"{plural(count, 'image')} that {'was' if count == 1 else 'were'} still in the "
                                    "training set; every one is decided now.")
        self.confirm_check_button.setVisible(bool(pending.size))
        self.confirm_check_button.setEnabled(bool(pending.size) and not self._running and not self.blocked)
        if pending.size:
            self.confirm_check_button.setText(f"Confirm {'this one' if pending.size == 1 else f'these {pending.size:,}'} "
                                              "as poisons (then Retrain again)")

    def _check_pending(self) -> np.ndarray:
        """The check's proposals nobody has decided on yet."""
        if not self._check or not self._check.get("added"):
            return np.zeros(0, np.int64)
        ids = np.asarray(self._check["added"], dtype=np.int64)
        ids = ids[(ids >= 0) & (ids < len(self.session.state_codes))]
        undecided = (STATE_CODE["unreviewed"], STATE_CODE["later"])
        return ids[np.isin(self.session.state_codes[ids], undecided)]

    def set_checking(self, checking: bool) -> None:
        self._checking = checking
        self.update_gate()

    def show_check(self, result: Mapping) -> None:
        """What the check found: its pass (a link), how many of its flags are still in the training set, which."""
        import html

        from naviewer.workflows.trigger_check import id_ranges

        self._checking = False
        self._check = dict(result)
        pass_id, added = int(result.get("pass_id") or 0), list(result.get("added") or [])
        link = f'<a href="pass:{pass_id}">pass {pass_id}</a>'
        flagged = int(result.get("flagged") or 0)
        if not added:
            text = (f"PatchSearch on the retrained encoder ({link}) flagged {plural(flagged, 'image')}, every one "
                    "removed already or kept by your decision: nothing more to take out.")
        else:
            ids = id_ranges(np.asarray(added))
            shown = ids if len(ids) <= 120 else ids[:120].rsplit(",", 1)[0] + ", …"
            truth = result.get("truth_added")
            said = (f" ({truth} of them poisons by the ground truth)" if isinstance(truth, int) else "")
            text = (f"PatchSearch on the retrained encoder ({link}) found a trigger in "
                    f"{plural(len(added), 'image')} still in the training set{said}: {html.escape(shown)}. Look at "
                    f"them in {link}, or confirm them here; Retrain again then trains without them.")
        self._check_text = text  # said again when an undo leaves some of them undecided
        self.check_line.setText(text)
        self.check_line.setVisible(True)
        self.update_gate()

    def _open_check_pass(self, href: str) -> None:
        if href.startswith("pass:") and href[5:].isdigit():
            self.open_pass_requested.emit(int(href[5:]))

    def _confirm_check(self) -> None:
        pending = self._check_pending()
        if pending.size and not self._running and not self.blocked:  # the button names what it confirms: no question
            from naviewer.errors import NaviewerError

            try:
                self.session.confirm(pending)  # one batch: U undoes it
            except NaviewerError as exc:  # a read-only workspace
                say_not_recorded(self, str(exc))

    def _request_check(self) -> None:
        if self.check_button.isEnabled():
            self.check_requested.emit()

    def _request_again(self) -> None:
        if self._again_offered() and self.again_button.isEnabled():
            self.again_requested.emit(self.confirmed_ids())

    @property
    def done_text(self) -> str:
        return getattr(self, "_done_text", "")

    #: why the step cannot run whatever the review (the encoder it needs is gone); "" when it can
    blocked = ""

    def block(self, reason: str) -> None:
        """The step cannot run: ``reason`` says why and what to do (a deleted checkpoint read "Ready" until the
        click; newcomer session 16). An empty reason lifts it."""
        self.blocked = reason
        self.update_gate()

    def mark_done(self, text: str, confirmed: Optional[int] = None) -> None:
        """The fine-tune / retrain of this pass is done (now or in an earlier session): ``text`` stays.
        ``confirmed``: how many confirmed poisons it used; decisions that differ from it (or change later) are
        said under the text, since the encoder and its table did not see them."""
        self._done_text = text
        self._done_ids = self.confirmed_ids()
        self._done_used = confirmed
        self.button.setEnabled(False)
        self.reason.setText(text + self._changed_since())
        self._update_again()
        self._update_check()

    def acted_on_these_decisions(self) -> bool:
        """The fine-tune / retrain of this pass is done, on the decisions as they are now."""
        return bool(self.done_text) and not self._changed_since()

    def _changed_since(self) -> str:
        now = self.confirmed_ids()
        used = getattr(self, "_done_used", None)
        if np.array_equal(now, getattr(self, "_done_ids", now)) and (used is None or used == len(now)):
            return ""
        when = f", {used:,} when it ran" if used is not None else ""
        if used == len(now):  # "110 confirmed now, 110 when it ran" read as no change at all (a newcomer, session 30)
            before = getattr(self, "_done_ids", now)
            other = int(np.setdiff1d(now, before).size)
            when += (f": as many, but {plural(other, 'sample')} confirmed now that {'was' if other == 1 else 'were'} "
                     "not then" if other else ": as many, other samples")
        how = ("Retrain again (the button below) trains this recipe on them (a new run); or export (Ctrl+E) and train on its "
               "kept.txt" if self.retrains and len(now) else
               "To train without them, Run ▸ Train… with \"Leave out the samples confirmed as poisons\" (naviewer run "
               "WORKSPACE --leave-out-confirmed), or run Run ▸ Detect again on a new encoder")
        return (f"\n\nThe decisions changed since: {len(now):,} confirmed now{when}. The encoder and the result table "
                f"did not see the change; an export writes the decisions as they are now. {how}.")

    def _request(self) -> None:
        enabled, _ = self.gate()
        if enabled:
            self.finetune_requested.emit(self.confirmed_ids())

    def show_done(self, confirmed: int, fell_back: bool = False) -> None:
        """The gate's last word after the in-training job: what was done, in this run's recipe (``fell_back``: the
        paper's restart retrained from scratch because its fine-tune took no step)."""
        self.button.setEnabled(False)
        if fell_back and not self.retrains:
            did = (f"Done: removed {plural(confirmed, 'confirmed poison')} and retrained the encoder from scratch on the "
                   "rest: the fine-tune took no step (the confirmed samples were already as spread out as clean ones), "
                   "and going on from its weights would have kept what the poisons taught")
        elif self.retrains:
            did = f"Done: removed {plural(confirmed, 'confirmed poison')} and retrained the encoder from scratch on the rest"
        else:
            did = f"Done: fine-tuned on {plural(confirmed, 'confirmed poison')}, removed them and finished training"
        # the table is there only when the job measured before and after (a newcomer read the promise over no table)
        self.mark_done(did + ("; the table compares before and after." if self.result.rowCount() else "."), confirmed)

    def set_running(self, running: bool) -> None:
        had_focus = self.isAncestorOf(QApplication.focusWidget())
        self._running = running
        self.update_gate()
        if running and had_focus and not self.button.isEnabled():
            # the pressed button greys out and Qt handed the keys to the next widget, the inspector, where a C then
            # confirmed the sample it shows (a newcomer, session 29): they stay here, where no key decides
            self.setFocus(Qt.FocusReason.OtherFocusReason)

    #: the status bar's answer to a review key pressed while the retrain holds the keys
    HELD_KEYS_NOTICE = "{key}: no decision here while the {step} runs (Ctrl+2: the gallery)"  # short: the job's
    # progress shares the status bar, and the longer words were cut after "while…" at 1280 px (a newcomer, session 30)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt's name)
        """A review key pressed while the job runs says why it does nothing: the tab keeps the keys (set_running),
        and C, R, L, U had done nothing without a word (a newcomer, session 29)."""
        sequence = QKeySequence(event.keyCombination())
        if self._running and deciding(sequence):
            bar = getattr(self.window(), "statusBar", None)
            if callable(bar):
                step = "retrain" if self.retrains else "fine-tune"
                bar().showMessage(self.HELD_KEYS_NOTICE.format(
                    key=sequence.toString(QKeySequence.SequenceFormat.NativeText), step=step), 10000)
            event.accept()
            return
        super().keyPressEvent(event)

    def set_result(self, result: Mapping[str, Any]) -> None:
        """Show ``{"before": {...}, "after": {...}, "protocol": NAME, "floor": {...}}`` (``protocol`` and
        ``floor`` optional: the result records of ``finetune_posthoc`` and the demo carry them); rows
        whose metric neither side has are left out."""
        from naviewer.workflows.floor import floor_text

        before, after = dict(result.get("before") or {}), dict(result.get("after") or {})
        floor = result.get("floor") or None
        protocol = result.get("protocol") or (floor or {}).get("protocol")
        self.protocol, self.floor = protocol, (dict(floor) if floor else None)
        rows = [(k, name, hint) for k, name, hint in RESULT_ROWS if k in before or k in after]
        self.result.setRowCount(len(rows))
        has_asr = False
        for r, (key, name, hint) in enumerate(rows):
            b, a = before.get(key), after.get(key)
            numbers = isinstance(b, (int, float)) and isinstance(a, (int, float))
            if key in PERCENT_ROWS:
                shown_b, shown_a = percent(b), percent(a)
                change = f"{100 * (a - b):+.1f} pp" if numbers else "–"
            else:
                shown_b, shown_a = fmt(b), fmt(a)
                change = f"{a - b:+.4g}" if numbers else "–"
            label = f"{name} ({hint})"
            floor_cell = "–"
            if key.startswith("asr"):
                has_asr = True
                label = f"{name}, test-time protocol {protocol or 'uniform'} ({hint})"
                if floor is not None:
                    floor_cell = percent(floor.get(key))
                else:
                    floor_cell = "not measured"
            elif key == "knn_acc" and floor is not None:
                floor_cell = percent(floor.get("knn_acc"))
            items = [label, shown_b, shown_a, change, floor_cell]
            for col, text in enumerate(items):
                item = QTableWidgetItem(text)
                if col == 4 and key.startswith("asr"):
                    item.setToolTip(floor_text(floor))
                elif col == 0:
                    item.setToolTip(f"{text}: {ROW_TIPS.get(key, hint)}")
                self.result.setItem(r, col, item)
        self.result.resizeColumnsToContents()
        self.result.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # the metric's name
        self.result.resizeRowsToContents()
        height = self.result.horizontalHeader().height() + sum(self.result.rowHeight(r) for r in range(len(rows)))
        self.result.setFixedHeight(height + 2 * self.result.frameWidth() + 2)
        self.result.setVisible(bool(rows))
        self.verdict.setText(density_verdict(before.get("confirmed_density"), after.get("confirmed_density"),
                                             len(self.confirmed_ids())))
        self.verdict.setVisible(bool(self.verdict.text()))
        self.earlier_line.setText(earlier_text(result.get("earlier")))
        self.earlier_line.setVisible(bool(self.earlier_line.text()))
        if has_asr:
            text = ("No-poison " + floor_text(floor) + ": the same recipe trained on the clean set, measured with the "
                    "same trigger and protocol. An ASR after removal near it is as low as this encoder goes.")
            if floor is None:
                text = ("No-poison " + floor_text(floor) + ": without it an ASR after removal cannot be told from what "
                        "the trigger does to an encoder that never saw a poison (Run ▸ Measure the no-poison floor "
                        "measures it here).")
            self.floor_line.setText(text)
        self.floor_line.setVisible(has_asr)
