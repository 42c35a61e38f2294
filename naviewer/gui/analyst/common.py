"""Shared pieces of the analyst views: the session->Qt signal bridge, colours, thumbnail cache."""

from __future__ import annotations

from collections import OrderedDict
import time
from typing import Any, Callable, Optional

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import QMessageBox, QWidget

from naviewer.analysis.review import REVIEW_STATES, STATE_CODE
from naviewer.analysis.session import AnalysisSession
from naviewer.errors import NaviewerError

STATE_COLOURS = {
    "unreviewed": QColor(150, 150, 150),
    "confirmed": QColor(211, 47, 47),
    "rejected": QColor(56, 142, 60),
    "later": QColor(249, 168, 37),
}
STATE_LETTER = {"unreviewed": "", "confirmed": "C", "rejected": "R", "later": "L"}
SELECTION_COLOUR = QColor(255, 140, 0)
FLAG_COLOUR = QColor(230, 30, 60)
CANDIDATE_COLOUR = QColor(255, 80, 200)

# Okabe-Ito + tab10-like palette: distinguishable, colour-blind friendlier for the first 8.
CLASS_PALETTE = [
    (0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233),
    (213, 94, 0), (240, 228, 66), (120, 120, 120), (148, 103, 189), (140, 86, 75),
    (23, 190, 207), (188, 189, 34),
]
# viridis samples for density bins (dense = bright yellow)
VIRIDIS = [(68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142),
           (31, 158, 137), (53, 183, 121), (109, 205, 89), (180, 222, 44), (253, 231, 37)]


def class_colour(label: int) -> QColor:
    if label < 0:
        return QColor(170, 170, 170)
    return QColor(*CLASS_PALETTE[label % len(CLASS_PALETTE)])


def state_colour_of_code(code: int) -> QColor:
    return STATE_COLOURS[REVIEW_STATES[int(code)]]


class SessionBridge(QObject):
    """Re-emits an AnalysisSession's callbacks as Qt signals (one bridge per session).

    Widgets connect to these signals rather than to the session's plain callbacks so that Qt
    disconnects them automatically when a widget is deleted.
    """

    selection_changed = Signal(object, object)  # ids (np.ndarray), source (object or None)
    review_changed = Signal(object)  # ids
    current_changed = Signal(object, object)  # sample id or None, source
    projection_changed = Signal(str)
    image_failed = Signal(int, str)  # sample id, problem: queued, since it is raised while a view paints
    image_readable_again = Signal(int)  # sample id: queued likewise

    def __init__(self, session: AnalysisSession) -> None:
        super().__init__()
        self.session = session
        # said after the paint that met it, never inside it (a notice resized the gallery while it painted)
        session.image_failed.connect(lambda sid, problem: QTimer.singleShot(0, self, lambda: self.image_failed.emit(
            int(sid), str(problem))))
        session.image_readable_again.connect(lambda sid: QTimer.singleShot(0, self, lambda: self.image_readable_again.emit(
            int(sid))))
        session.selection_changed.connect(self.selection_changed.emit)
        session.review_changed.connect(self.review_changed.emit)
        session.current_changed.connect(self.current_changed.emit)
        session.projection_changed.connect(self.projection_changed.emit)

    @classmethod
    def of(cls, session: AnalysisSession) -> "SessionBridge":
        bridge = getattr(session, "_qt_bridge", None)
        if bridge is None:
            bridge = cls(session)
            session._qt_bridge = bridge  # type: ignore[attr-defined]
        return bridge


def qimage_from_array(image: np.ndarray) -> QImage:
    """A deep-copied QImage of a uint8 (H, W, 3) array (the numpy buffer may go away afterwards)."""
    arr = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = arr.shape[:2]
    if arr.ndim == 2:
        return QImage(arr.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    return QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class ThumbnailCache:
    """Pixmaps of sample images at a given box size, built on demand from the uint8 store, LRU-bounded.

    Raw CIFAR-size data stays in numpy (3 KiB per image); only what is on screen becomes a pixmap.
    """

    def __init__(self, session: AnalysisSession, size: int = 64, capacity: int = 4096) -> None:
        self.session = session
        self.size = size
        self.capacity = capacity
        self._cache: "OrderedDict[tuple[int, int], QPixmap]" = OrderedDict()
        self.built = 0

    def get(self, sample_id: int, size: Optional[int] = None) -> Optional[QPixmap]:
        size = size or self.size
        key = (int(sample_id), size)
        pix = self._cache.get(key)
        if pix is not None:
            self._cache.move_to_end(key)
            return pix
        image = self.session.image(int(sample_id))
        if image is None:
            return None
        pix = QPixmap.fromImage(qimage_from_array(image)).scaled(
            size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
        )
        self._cache[key] = pix
        self.built += 1
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return pix

    def clear(self) -> None:
        self._cache.clear()


def fmt(value: Any, digits: int = 4) -> str:
    """Short display of a score value."""
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return "–" if not np.isfinite(value) else f"{value:.{digits}g}"
    return str(value)


# -- decisions ----------------------------------------------------------------------------------
#: a decision on more samples than this is asked about first (so is any bulk overwrite)
FEW = 5
STATE_VERB = {"confirmed": "Confirm", "rejected": "Reject", "later": "Mark for later", "unreviewed": "Reset"}
_QUESTION = {
    "confirmed": "Confirm {n} samples as poisons?",
    "rejected": "Reject {n} samples (benign)?",
    "later": "Mark {n} samples for later?",
    "unreviewed": "Reset {n} samples to unreviewed?",
}


def plural(n: int, word: str = "sample") -> str:
    """``1 sample``, ``2 samples``, ``3 decision batches``."""
    if n == 1:
        return f"{n:,} {word}"
    return f"{n:,} {word}{'es' if word.endswith(('ch', 'sh', 's', 'x')) else 's'}"


def bulk_question(session: AnalysisSession, ids: np.ndarray, state: str) -> Optional[str]:
    """What to ask before setting ``state`` on ``ids``, or None when no question is needed: a decision
    on more than :data:`FEW` samples, or on several samples some of which were decided otherwise
    before ("Confirm 49 samples as poisons? 5 were rejected before.")."""
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids)
    if n == 0:
        return None
    codes = session.state_codes[ids]
    overwritten = {name: int(((codes == code) & (code != STATE_CODE[state])).sum())
                   for name, code in STATE_CODE.items() if name != "unreviewed"}
    overwritten = {name: k for name, k in overwritten.items() if k}
    # said for later too: "Mark for later 20?" hid that 17 were never flagged (a newcomer, session 28); rejecting clean
    # samples is what they are, so no word there; only a confirm asks because of it
    outside = unflagged_count(session, ids) if state in ("confirmed", "later") else 0
    unflagged = outside if state == "confirmed" else 0
    if n <= FEW and not (n > 1 and (overwritten or unflagged)):  # three never-flagged confirmed: not a word (a newcomer)
        return None
    text = _QUESTION[state].format(n=f"{n:,}")
    already = int((codes == STATE_CODE[state]).sum())
    if already:  # "Confirm 46 samples as poisons?" of which one was (newcomer session 16)
        text += f" {already:,} of them {'is' if already == 1 else 'are'} {state} already."
    if overwritten:
        parts = [f"{k:,} {'was' if k == 1 else 'were'} {name} before" for name, k in overwritten.items()]
        text += " " + "; ".join(parts) + ": " + ("it" if sum(overwritten.values()) == 1 else "they") + " will be overwritten."
    if outside:  # Ctrl+A in All samples, a box over clean digits: "Confirm 1,514 samples?" said nothing of it
        text += (f" {'All' if outside == n else f'{outside:,}'} of them {'was' if outside == 1 else 'were'} "
                 "never flagged by the detection.")
    return text


def unflagged_count(session: AnalysisSession, ids: np.ndarray) -> int:
    """How many of ``ids`` the pass did not flag (0 when the session has no flags to tell)."""
    mask = getattr(session, "flagged_mask", None)
    if mask is None or len(mask) == 0:
        return 0
    return int((~np.asarray(mask, dtype=bool)[np.asarray(ids, dtype=np.int64)]).sum())


def undo_question(session: AnalysisSession) -> Optional[str]:
    """What to ask before an undo that would put back more than :data:`FEW` samples, or None: one stray U put a whole
    cluster's 108 confirmations back to unreviewed unasked, and there is no redo (a newcomer, session 29)."""
    import time as _time

    try:
        batch = session.undo_target()
        found = session.store.batch_summary(batch) if batch is not None else None
    except (NaviewerError, AttributeError, OSError):
        return None
    if not found:
        return None
    state, count, when = found
    if count <= FEW:
        return None
    stamp = _time.strftime("%H:%M", _time.localtime(when))
    return (f"Undo the decision on {count:,} samples ({state or 'decided'} at {stamp})? They go back to the states "
            "they had before it. There is no redo: deciding them again restores it. (Enter: Cancel.)")


def ask_user(parent: Optional[QWidget], title: str, text: str, default_yes: bool = True) -> bool:
    """A yes/cancel question (modal); True for yes; Enter answers ``default_yes``. Tests replace this function."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text,
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, parent)
    # wide enough for its title ("Reject 8 s…" was clipped): a spacer under the text, which wraps as before (a
    # min-width on every QLabel made the icon's 320 px wide too, the text far right of the icon; newcomer session 26)
    from PySide6.QtWidgets import QSizePolicy, QSpacerItem

    grid = box.layout()
    grid.addItem(QSpacerItem(400, 0, QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed), grid.rowCount(), 0, 1,
                 grid.columnCount())
    box.setDefaultButton(QMessageBox.StandardButton.Yes if default_yes else QMessageBox.StandardButton.Cancel)
    from PySide6.QtWidgets import QApplication

    before = QApplication.focusWidget()
    answer = box.exec() == QMessageBox.StandardButton.Yes
    # the keys go back where they were: without a window manager to re-activate the window, U after a confirmed
    # cluster reached nothing (the focus was gone with the box; newcomer session 18)
    if before is not None and QApplication.focusWidget() is None:
        before.activateWindow()
        before.setFocus()
    return answer


def decide(parent: Optional[QWidget], session: AnalysisSession, ids: Any, state: str) -> np.ndarray:
    """Record ``state`` on ``ids`` as one batch, asking first when :func:`bulk_question` says so;
    returns the ids decided (empty when the analyst declined or there was nothing to decide)."""
    ids = np.unique(np.asarray(ids, dtype=np.int64).ravel())
    if len(ids) == 0:
        return ids
    question = bulk_question(session, ids, state)
    # confirming samples the detection never flagged, or overwriting decisions made before: Enter must not be the
    # way it happens. One rule, said in the question: Enter meant Cancel for one question and Yes for another that
    # overwrote 50 rejections (a newcomer, session 25)
    codes = session.state_codes[ids]
    careful = ((state == "confirmed" and unflagged_count(session, ids) > 0)
               or bool(((codes != STATE_CODE["unreviewed"]) & (codes != STATE_CODE[state])).any()))
    if question is not None:
        question += " (Enter: Cancel.)" if careful else ""
        if not ask_user(parent, f"{STATE_VERB[state]} {plural(len(ids))}", question, default_yes=not careful):
            _say_nothing_decided(parent)
            return np.zeros(0, np.int64)
    try:
        return session.review(ids, state)
    except NaviewerError as exc:  # a read-only workspace: the decision was lost with a traceback on stderr only
        say_not_recorded(parent, str(exc))
        return np.zeros(0, np.int64)


def _say_nothing_decided(parent: Optional[QWidget]) -> None:
    """A declined question leaves a word in the status bar: Enter cancelled and nothing said so (a newcomer)."""
    window = parent.window() if parent is not None else None
    bar = getattr(window, "statusBar", None)
    if callable(bar):
        bar().showMessage("Nothing decided: the question was answered Cancel.", 10000)


def say_not_recorded(parent: Optional[QWidget], text: str) -> None:
    """A decision the workspace refused (read-only, locked, damaged), in the window's own message box."""
    window = parent.window() if parent is not None else None
    inform = getattr(window, "inform", None)
    message = f"The decision was not recorded: {text}"
    if callable(inform):
        inform("Decision not recorded", message, QMessageBox.Icon.Warning)
    else:
        box = QMessageBox(QMessageBox.Icon.Warning, "Decision not recorded", message, QMessageBox.StandardButton.Ok,
                          parent)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()


class _WheelWhenFocused(QObject):
    """Lets the mouse wheel change a control only once it has the focus; otherwise the wheel scrolls what holds it."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            event.ignore()  # filtered here, not accepted: Qt passes it on to the parent (the scroll area)
            return True
        return False


_WHEEL_FILTER: Optional[_WheelWhenFocused] = None


def wheel_only_when_focused(*widgets: QWidget) -> None:
    """Sliders, spin boxes and combo boxes in a scrolling pane: scrolling the pane over one of them silently
    changed its value (a crop layout's trigger went from 4 px to 1 px; newcomer session 16). Click or Tab to one,
    then the wheel changes it."""
    global _WHEEL_FILTER
    if _WHEEL_FILTER is None:
        _WHEEL_FILTER = _WheelWhenFocused()
    for widget in widgets:
        widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        widget.installEventFilter(_WHEEL_FILTER)


#: said when a view's key is pressed while the view is covered (its dock behind another tab)
HIDDEN_KEY_NOTICE = ("{key} did nothing: the Analyst panel is behind another tab, and its keys act only while it is "
                     "shown. Ctrl+2 brings the gallery forward.")


def on_screen(widget: QWidget) -> bool:
    """Whether any of ``widget`` can be seen. A dock tabbed behind another keeps isVisible() and the keyboard
    focus (Qt does not hide it), so a key typed in the Training monitor's tab decided a sample in the hidden
    gallery, and nothing on screen changed (newcomer session 21): its visible region is empty instead."""
    return widget.isVisible() and not widget.visibleRegion().isEmpty()


def say_covered(owner: QWidget, key: str) -> None:
    window = owner.window()
    bar = getattr(window, "statusBar", None)
    if callable(bar):
        bar().showMessage(HIDDEN_KEY_NOTICE.format(key=key), 10000)


#: the decision buttons' tooltip while the workspace is open read-only (gallery, inspector, cluster table)
READ_ONLY_TIP = "the workspace is open read-only: no decision can be recorded"


def keyed_shortcuts(owner: QWidget, specs: Any, context: Qt.ShortcutContext = Qt.ShortcutContext.WidgetWithChildrenShortcut,
                    on_screen_only: bool = True) -> list[QShortcut]:
    """``(key, slot, text)`` triples as QShortcuts on ``owner`` with ``context``; ``text`` is their
    whatsThis, which Help > Keyboard shortcuts lists. Every analyst view makes its keys this way.
    ``on_screen_only``: a key does nothing (and says so in the window's status bar) while ``owner`` is covered,
    e.g. its dock tabbed behind the Training monitor (:func:`on_screen`); off for the keys that bring it forward."""
    made = []
    for key, slot, text in specs:
        shortcut = QShortcut(QKeySequence(key), owner)
        shortcut.setContext(context)
        shortcut.setWhatsThis(text)
        if deciding(shortcut.key()):
            shortcut.setAutoRepeat(False)
        if on_screen_only:
            name = shortcut.key().toString(QKeySequence.SequenceFormat.NativeText)

            def guarded(slot: Any = slot, name: str = name) -> None:
                if on_screen(owner):
                    slot()
                else:
                    say_covered(owner, name)

            shortcut.activated.connect(guarded)
        else:
            shortcut.activated.connect(slot)
        made.append(shortcut)
    if context == Qt.ShortcutContext.WidgetWithChildrenShortcut:
        let_typing_children_type(owner)
    return made


#: the keys that decide or undo. A held one is not repeated: one C and five repeats of a held key confirmed six
#: samples, each auto-advance moving the next flag under it (a review-key probe, session 25)
DECIDING_KEYS = frozenset({"C", "R", "L", "U", "Del"})


def deciding(sequence: QKeySequence) -> bool:
    """Whether ``sequence`` decides or undoes (:data:`DECIDING_KEYS`, or the platform's Undo)."""
    text = sequence.toString(QKeySequence.SequenceFormat.PortableText)
    return text in DECIDING_KEYS or any(sequence.matches(undo) == QKeySequence.SequenceMatch.ExactMatch
                                        for undo in QKeySequence.keyBindings(QKeySequence.StandardKey.Undo))


class _TypingGuard(QObject):
    """Lets a combo box, spin box or text field take the letters typed into it (and its own Undo) before a view's
    shortcuts do: "r" typed in the map's Colour-by list to reach "review state" rejected the map's selection, and
    "u" undid the last decision (a review-key probe, session 25). F is left to the gallery's filter panel key, as the
    filter panel does (it shows and hides that panel from anywhere in it)."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.ShortcutOverride:
            mods = event.modifiers() & ~Qt.KeyboardModifier.ShiftModifier & ~Qt.KeyboardModifier.KeypadModifier
            text = event.text()
            typed = not mods and text.strip() and text.isprintable() and event.key() != Qt.Key.Key_F
            if typed or event.matches(QKeySequence.StandardKey.Undo):
                event.accept()
        return False


_TYPING_GUARD: Optional[_TypingGuard] = None


def let_typing_children_type(owner: QWidget) -> None:
    """Install :class:`_TypingGuard` on every text-taking child ``owner`` has now (its shortcuts cover them)."""
    from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QLineEdit, QPlainTextEdit, QTextEdit

    global _TYPING_GUARD
    if _TYPING_GUARD is None:
        _TYPING_GUARD = _TypingGuard()
    for kind in (QComboBox, QAbstractSpinBox, QLineEdit, QTextEdit, QPlainTextEdit):
        for child in owner.findChildren(kind):
            if not child.property("naviewerTypingGuard"):
                child.installEventFilter(_TYPING_GUARD)
                child.setProperty("naviewerTypingGuard", True)


def process_events_while(busy: Callable[[], bool], timeout_s: float) -> bool:
    """Process Qt events until ``busy()`` is false (True) or ``timeout_s`` passes (False): how tests and
    scripts wait for a view's worker result without blocking its delivery."""
    from PySide6.QtCore import QCoreApplication

    deadline = time.monotonic() + timeout_s
    while busy():
        if time.monotonic() > deadline:
            return False
        QCoreApplication.processEvents()
        time.sleep(0.002)
    return True


def undo_words(session: AnalysisSession, ids: np.ndarray) -> str:
    """What an undo did, in one line: the samples put back and the states they went to ("109 back to unreviewed",
    #id when one), and the batch's samples decided again since by another hand, left as they are. An undo that
    reverted nothing read "Nothing of yours to undo" while it had used up a step (a review-key probe)."""
    from naviewer.analysis.review import REVIEW_STATES

    result = getattr(session, "last_undo", None)
    skipped = list(getattr(result, "skipped", []) or [])
    left = ""
    if skipped:
        named = ", ".join(f"#{int(i)}" for i in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        left = (f" {plural(len(skipped))} of that decision ({named}) {'was' if len(skipped) == 1 else 'were'} "
                "decided again since (another window or naviewer review) and stay as they are.")
    if not len(ids):
        if result is not None and getattr(result, "batch", None) is not None:
            return "Nothing undone:" + left + " U again undoes your decision before it."
        return "Nothing of yours to undo."
    states = session.state_codes[np.asarray(ids, dtype=np.int64)]
    parts = [f"{int(k):,} to {REVIEW_STATES[code]}" for code, k in zip(*np.unique(states, return_counts=True))]
    what = f"#{int(ids[0])}" if len(ids) == 1 else plural(len(ids))
    head = (f"Undone: {what} back to {session.state_of(int(ids[0]))}." if len(parts) == 1
            else f"Undone: {what} back ({', '.join(parts)}).")
    return head + left
