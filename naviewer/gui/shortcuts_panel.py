"""The keyboard shortcuts help panel, built from the window's own actions so it never drifts."""

from __future__ import annotations

from typing import Iterable, Optional

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QHeaderView, QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget


class ShortcutsPanel(QWidget):
    """Lists ``(group, action)`` pairs that have a shortcut."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("shortcutsPanel")
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Action", "Shortcut"])
        self.tree.setRootIsDecorated(True)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        hint = QLabel("Panels added by other views register their keys here too.")
        hint.setObjectName("hintLabel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree, 1)
        layout.addWidget(hint)

    def set_actions(self, groups: Iterable[tuple[str, Iterable[QAction]]]) -> None:
        self.tree.clear()
        for group, actions in groups:
            rows = []
            for action in actions:
                keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()]
                if keys:
                    rows.append((action.text().replace("&", "").rstrip("…."), ", ".join(keys)))
            if not rows:
                continue
            parent = QTreeWidgetItem([group, ""])
            self.tree.addTopLevelItem(parent)
            for text, keys in rows:
                parent.addChild(QTreeWidgetItem([text, keys]))
            parent.setExpanded(True)

    def rows(self) -> list[tuple[str, str]]:
        """(action, shortcut) pairs shown, for tests and for printing."""
        result = []
        for i in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(i)
            for j in range(group.childCount()):
                child = group.child(j)
                result.append((child.text(0), child.text(1)))
        return result
