"""The keyboard back to the main window when one of its dialogs closes and nothing else took it.

A window manager gives the focus back to a dialog's parent. Without one (a bare X server, Xvfb, a kiosk) the focus
stayed on no window: F1, Ctrl+Q and the review keys did nothing until a click in the window (a newcomer at
1280x720, session 22). Only a window of the application that had the focus and closed triggers this, and only when no
window has the focus after it, so switching to another application (the dialog stays open) never pulls the focus
back. It listens to the focus-window signal and the closed windows' visibility, not to every event (a Python event
filter on the application would run for each paint and mouse move).
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QWindow
from PySide6.QtWidgets import QApplication, QWidget


class RefocusAfterDialogs(QObject):
    """``RefocusAfterDialogs(window)``: ``window`` is activated when the focus leaves another window of the
    application that closed, for no window at all."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.window = window
        self.activations = 0  # how often it gave the focus back (tests read it)
        self._watched: set[int] = set()
        QApplication.instance().focusWindowChanged.connect(self._on_focus_window)

    def _alive(self) -> bool:
        """The window is still there (the application's signals outlive a closed window; its tests make many)."""
        import shiboken6

        return shiboken6.isValid(self) and shiboken6.isValid(self.window)

    def _on_focus_window(self, focused: Optional[QWindow]) -> None:
        """A window of the application other than ``window`` took the focus: when it hides, look (Qt does not say
        that the focus went to no window: it set it to none without a signal, on Xvfb)."""
        if focused is None or not self._alive() or focused is self.window.windowHandle() or id(focused) in self._watched:
            return
        self._watched.add(id(focused))
        focused.visibleChanged.connect(lambda visible, w=focused: None if visible else self._closed(w))
        focused.destroyed.connect(lambda *_a, key=id(focused): self._watched.discard(key))

    def _closed(self, previous: QWindow) -> None:
        if self._alive():
            try:
                parent = previous.transientParent()
            except RuntimeError:  # gone already
                parent = None
            QTimer.singleShot(50, lambda: self._maybe_refocus(parent))

    def _maybe_refocus(self, parent: Optional[QWindow] = None) -> None:
        if not self._alive():
            return
        window = self.window
        if not window.isVisible() or QApplication.focusWindow() is not None:
            return
        if QApplication.activeModalWidget() is not None or QApplication.activePopupWidget() is not None:
            return
        self.activations += 1
        import shiboken6

        if (parent is not None and shiboken6.isValid(parent) and parent.isVisible()
                and parent is not window.windowHandle()):
            # the dialog the closed box belonged to (an error in the Anchors dialog): Esc then went to the main
            # window and said "the Analyst panel is behind another tab" (a newcomer, session 29)
            parent.requestActivate()
            return
        window.activateWindow()
        window.raise_()
