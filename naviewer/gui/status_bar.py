"""A status bar whose passing messages end in "…" where the running job's line begins.

QStatusBar cuts a message hard at its first permanent widget: "Remove 110 confirmed poisons and re" stood right
against the job's own line "Remove 110 confirmed poisons and retrain: epoch 3 of 50", which read as two texts drawn
over each other (a newcomer at 1280x720, session 26). Here a message is cut with "…" to the room it has, whole in the
tooltip, and cut again when that room changes (a job's line appears or grows, the window is resized).
"""

from __future__ import annotations

import time
from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QStatusBar, QWidget


class ElidingStatusBar(QStatusBar):
    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._permanent: list[QWidget] = []
        self._full = ""  # the message as given
        self._shown = ""  # what this bar showed of it (a status tip shown by Qt itself is not ours to refit)
        self._until: Optional[float] = None  # when it goes (monotonic seconds), None: until replaced
        self.messageChanged.connect(self._on_message_changed)

    def addPermanentWidget(self, widget: QWidget, stretch: int = 0) -> None:  # noqa: N802 - Qt override
        super().addPermanentWidget(widget, stretch)
        self._permanent.append(widget)

    def full_message(self) -> str:
        """The message as given (``currentMessage`` is what fits)."""
        return self._full if self.currentMessage() else ""

    def room(self) -> int:
        """The width a message has: up to the first permanent widget shown (as QStatusBar paints it)."""
        lefts = [w.x() for w in self._permanent if w.isVisible()]
        return max(40, (min(lefts) if lefts else self.width()) - 14)

    def showMessage(self, text: str, timeout: int = 0) -> None:  # noqa: N802 - Qt override
        self._full = text
        self._until = time.monotonic() + timeout / 1000.0 if timeout > 0 else None
        self._show_fitted(timeout)

    def refit(self) -> None:
        """Cut the current message again to the room it has now (call after a permanent widget changed). A message
        Qt showed itself (a menu item's status tip) is left alone: refitting put the stale one back over it (a
        review, session 27)."""
        if not self.currentMessage() or not self._full or self.currentMessage() != self._shown:
            return
        left_ms = 0
        if self._until is not None:
            left_ms = int((self._until - time.monotonic()) * 1000)
            if left_ms <= 0:
                return
        self._show_fitted(left_ms)

    def _fitted(self, text: str) -> str:
        return self.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, self.room())

    def _show_fitted(self, timeout: int) -> None:
        text = self._fitted(self._full)
        self.setToolTip(self._full if text != self._full else "")
        self._shown = text
        if text != self.currentMessage():
            super().showMessage(text, timeout)
        elif timeout:
            super().showMessage(text, timeout)

    def _on_message_changed(self, text: str) -> None:
        if not text:  # timed out or cleared
            self.setToolTip("")
            return
        if text != self._shown:  # shown by Qt itself (a menu item's status tip): cut with "…" too (a newcomer saw
            fitted = self._fitted(text)  # them cut mid-word)
            if fitted != text:
                self._full, self._until, self._shown = text, None, fitted
                self.setToolTip(text)
                super().showMessage(fitted)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self.refit()
