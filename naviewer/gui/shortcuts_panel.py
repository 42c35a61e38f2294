"""The keyboard shortcuts help panel, built from the window's own actions and the views' own
``QShortcut`` objects, so it never drifts from the keys that really work."""

from __future__ import annotations

from typing import Iterable, Optional

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QHeaderView, QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

_NATIVE = QKeySequence.SequenceFormat.NativeText


def shortcut_rows(shortcuts: Iterable[QShortcut]) -> list[tuple[str, str]]:
    """(what it does, keys) of a view's shortcuts: the text is the shortcut's ``whatsThis``; keys
    that do the same thing share a row ("Undo the last review: U, Ctrl+Z")."""
    rows: dict[str, list[str]] = {}
    for shortcut in shortcuts:
        keys = [k.toString(_NATIVE) for k in shortcut.keys() if not k.isEmpty()]
        text = shortcut.whatsThis()
        if keys and text:
            rows.setdefault(text, []).extend(k for k in keys if k not in rows.get(text, []))
    return [(text, ", ".join(keys)) for text, keys in rows.items()]


class ShortcutsPanel(QWidget):
    """Lists the window's actions that have a shortcut, by menu, then the keys the open views
    register (:meth:`register`), one group per view."""

    #: Esc pressed inside the panel (the window hides its dock)
    escape_pressed = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("shortcutsPanel")
        self.tree = QTreeWidget()
        self.tree.installEventFilter(self)
        self.tree.setHeaderLabels(["Action", "Shortcut"])
        self.tree.setRootIsDecorated(True)
        self.tree.setWordWrap(True)  # long action names wrap in a narrow dock instead of being cut
        self.tree.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.tree.header().setStretchLastSection(False)  # the action column takes the room, the keys what they need
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self._relayout = QTimer(self)  # wrapped rows get their height again when the column width changes
        self._relayout.setSingleShot(True)
        self._relayout.setInterval(0)
        self._relayout.timeout.connect(self._fit_rows)
        self.tree.header().sectionResized.connect(lambda *_a: self._relayout.start())
        self.hint = QLabel("Keys of a view (gallery, density map) are listed while it is open and work while it has focus.")
        self.hint.setObjectName("hintLabel")
        self.hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.hint)
        self._action_rows: list[tuple[str, list[tuple[str, str]]]] = []
        self._view_rows: dict[str, list[tuple[str, str]]] = {}

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if watched is self.tree and event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Escape:
            self.escape_pressed.emit()
            return True
        return super().eventFilter(watched, event)

    def set_actions(self, groups: Iterable[tuple[str, Iterable[QAction]]]) -> None:
        self._action_rows = []
        for group, actions in groups:
            rows = []
            for action in actions:
                keys = [k.toString(_NATIVE) for k in action.shortcuts()]
                if keys:
                    rows.append((action.text().replace("&", "").rstrip("…."), ", ".join(keys)))
            self._action_rows.append((group, rows))
        self._rebuild()

    def register(self, group: str, shortcuts: Iterable[QShortcut]) -> None:
        """A view's keys, listed under ``group`` (replacing what that group listed before)."""
        self._view_rows[group] = shortcut_rows(shortcuts)
        self._rebuild()

    def unregister(self, group: str) -> None:
        """The view closed: its keys go."""
        if self._view_rows.pop(group, None) is not None:
            self._rebuild()

    def _rebuild(self) -> None:
        self.tree.clear()
        for group, rows in [*self._action_rows, *self._view_rows.items()]:
            if not rows:
                continue
            parent = QTreeWidgetItem([group, ""])
            self.tree.addTopLevelItem(parent)
            for text, keys in rows:
                parent.addChild(QTreeWidgetItem([text, keys]))
            parent.setExpanded(True)
        self._relayout.start()

    def _fit_rows(self) -> None:
        """Give each row the height its wrapped action text needs at the column's current width (the
        tree itself keeps one line per row and would cut the rest off)."""
        width = self.tree.header().sectionSize(0) - self.tree.indentation() * 2 - 8
        if width <= 20:
            return
        metrics = self.tree.fontMetrics()
        flags = int(Qt.AlignmentFlag.AlignLeft) | int(Qt.TextFlag.TextWordWrap)
        for i in range(self.tree.topLevelItemCount()):
            parent = self.tree.topLevelItem(i)
            for j in range(parent.childCount()):
                child = parent.child(j)
                height = metrics.boundingRect(0, 0, width, 10_000, flags, child.text(0)).height() + 4
                child.setSizeHint(0, QSize(width, max(height, metrics.height() + 4)))  # (-1, h) would clear it
        self.tree.doItemsLayout()

    def groups(self) -> list[str]:
        return [self.tree.topLevelItem(i).text(0) for i in range(self.tree.topLevelItemCount())]

    def rows(self, group: Optional[str] = None) -> list[tuple[str, str]]:
        """(action, shortcut) pairs shown (of one group), for tests and for printing."""
        result = []
        for i in range(self.tree.topLevelItemCount()):
            parent = self.tree.topLevelItem(i)
            if group is not None and parent.text(0) != group:
                continue
            for j in range(parent.childCount()):
                child = parent.child(j)
                result.append((child.text(0), child.text(1)))
        return result
