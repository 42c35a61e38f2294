"""Help ▸ User guide inside the application: the docs/ folder's Markdown in a browser pane.

Handing docs/index.md to the desktop's browser opened nothing where no launcher is set up (a server's X display,
a minimal desktop: "Unable to detect a launcher"; newcomer session 26), so the guides are read here, with their links
between each other followed in place; web links still go to the system browser.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Optional

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import QDialog, QHBoxLayout, QPushButton, QTextBrowser, QVBoxLayout, QWidget


class GuideViewer(QDialog):
    """``GuideViewer(index)``: shows ``index`` (a Markdown file) and follows its relative links."""

    def __init__(self, index: Path, parent: Optional[QWidget] = None,
                 opener: Optional[Callable[[Any], bool]] = None) -> None:
        super().__init__(parent)
        self.setObjectName("guideViewer")
        self.setWindowTitle("naviewer: user guide")
        self.index = index
        self._opener = opener or QDesktopServices.openUrl
        self.browser = QTextBrowser()
        self.browser.setOpenLinks(True)
        self.browser.setOpenExternalLinks(True)  # http(s) links: the system browser
        self.browser.sourceChanged.connect(self._on_source)
        self.back = QPushButton("◀ Back")
        self.back.setToolTip("The page before (Alt+Left)")
        self.back.clicked.connect(self.browser.backward)
        self.browser.backwardAvailable.connect(self.back.setEnabled)
        self.home = QPushButton("Contents")
        self.home.setToolTip("docs/index.md")
        self.home.clicked.connect(self.browser.home)
        self.external = QPushButton("Open in browser")
        self.external.setToolTip("This page in the system's browser, where one is set up")
        self.external.clicked.connect(self.open_externally)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        for button in (self.back, self.home):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.external)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser, 1)
        layout.addLayout(buttons)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Back), self, self.browser.backward)
        self.back.setEnabled(False)
        self.browser.setSource(QUrl.fromLocalFile(str(index)))
        self.resize(820, 640)

    def page(self) -> Path:
        """The file shown now."""
        return Path(self.browser.source().toLocalFile())

    def _on_source(self, url: QUrl) -> None:
        self.setWindowTitle(f"naviewer: user guide: {Path(url.toLocalFile()).name}")
        if url.hasFragment():
            self.show_section(url.fragment())

    def show_section(self, fragment: str) -> bool:
        """Scroll to the heading whose GitHub-style anchor is ``fragment`` ("what-naviewer-demo-does"): Markdown
        headings carry no anchors in Qt's documents, and a link to a section opened its page at the top (a newcomer,
        session 27). Whether one was found."""
        from PySide6.QtGui import QTextCursor

        wanted = fragment.lower()
        block = self.browser.document().begin()
        while block.isValid():
            if block.blockFormat().headingLevel() > 0 and _anchor(block.text()) == wanted:
                cursor = QTextCursor(block)
                self.browser.setTextCursor(cursor)
                bar = self.browser.verticalScrollBar()
                bar.setValue(bar.maximum())  # then back up: the heading lands at the top, not the bottom
                self.browser.ensureCursorVisible()
                return True
            block = block.next()
        return False

    def open_externally(self) -> bool:
        """The page in the system's browser; where none opens, the window says so instead of doing nothing."""
        ok = bool(self._opener(self.browser.source()))
        if not ok:
            self.external.setText("No browser here")
            self.external.setToolTip(f"No browser could be started for {self.page()}; the page is shown here")
            self.external.setEnabled(False)
        return ok


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")

