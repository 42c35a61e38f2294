"""The gallery's model and view as they were before the grid view (issue 17 item 4), frozen as the
same-run baseline of ``naviewer bench gui --scale`` / ``--sort``: a QListView (IconMode, uniform sizes,
batched layout) handed the rows in windows of 10,000 (``canFetchMore``/``fetchMore``), whose scroll bar
covers only the windows handed to it so far. :func:`legacy_gallery` makes :class:`GalleryWidget` build
these instead of the grid. Nothing in the application uses this module.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QListView

from naviewer.analysis.session import AnalysisSession


class LegacyGalleryModel(QAbstractListModel):
    """Rows are sample ids (``ids``); data lives in the session, painted by :class:`TileDelegate`.

    Rows are handed to the view in windows of :attr:`WINDOW` (``canFetchMore`` / ``fetchMore``): the
    view lays out and pages through the first window, and asks for the next when scrolled to the end,
    so "All samples" over 10M ids costs one id array, not a 10M-row layout. ``ids`` and ``row_of``
    always cover every shown sample; :meth:`row_index` loads the windows up to a row before it is used.
    """

    IdRole = Qt.ItemDataRole.UserRole + 1
    #: rows made visible to the view per fetch
    WINDOW = 10_000

    def __init__(self, session: AnalysisSession, parent: Any = None) -> None:
        super().__init__(parent)
        self.session = session
        self.ids = np.zeros(0, np.int64)
        self.row_of = np.full(session.n, -1, np.int64)
        #: rows the view knows about (``rowCount``); the rest of ``ids`` comes through ``fetchMore``
        self.loaded = 0

    def set_ids(self, ids: np.ndarray) -> None:
        self.beginResetModel()
        self.ids = np.asarray(ids, dtype=np.int64)
        self.row_of = np.full(self.session.n, -1, np.int64)
        self.row_of[self.ids] = np.arange(len(self.ids))
        self.loaded = min(len(self.ids), self.WINDOW)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008 - Qt signature
        return 0 if parent.isValid() else self.loaded

    def canFetchMore(self, parent: QModelIndex = QModelIndex()) -> bool:  # noqa: B008 - Qt signature
        return not parent.isValid() and self.loaded < len(self.ids)

    def fetchMore(self, parent: QModelIndex = QModelIndex()) -> None:  # noqa: B008 - Qt signature
        if self.canFetchMore(parent):
            self._load_to(self.loaded + self.WINDOW)

    def _load_to(self, rows: int) -> None:
        rows = min(int(rows), len(self.ids))
        if rows > self.loaded:
            self.beginInsertRows(QModelIndex(), self.loaded, rows - 1)
            self.loaded = rows
            self.endInsertRows()

    def row_index(self, row: int) -> QModelIndex:
        """The index of ``row``, loading the windows up to it first (a row past the loaded ones)."""
        row = int(row)
        if row >= self.loaded:
            self._load_to((row // self.WINDOW + 1) * self.WINDOW)
        return self.index(row)

    def load_all(self) -> None:
        """Every shown row (Ctrl+A highlights all shown samples, not only the loaded windows)."""
        self._load_to(len(self.ids))

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        sid = int(self.ids[index.row()])
        if role == self.IdRole:
            return sid
        if role == Qt.ItemDataRole.ToolTipRole:
            s = self.session.sample_scores(sid)
            parts = [f"#{sid} {s['label']}", f"review: {s['review']}"]
            for key in ("rank", "density", "mindist", "posterior"):
                if key in s:
                    parts.append(f"{key}: {s[key]:.4g}" if isinstance(s[key], float) else f"{key}: {s[key]}")
            return "\n".join(parts)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"sample {sid}, {self.session.state_of(sid)}"
        return None

    def refresh_rows(self, ids: np.ndarray) -> None:
        rows = self.row_of[np.asarray(ids, dtype=np.int64)]
        rows = rows[(rows >= 0) & (rows < self.loaded)]
        if len(rows):
            self.dataChanged.emit(self.index(int(rows.min())), self.index(int(rows.max())))


class LegacyGalleryView(QListView):
    """The grid itself: uniform sizes, static movement, batched layout (see ecosystem.md 3.4).

    Review keys are taken here before QListView's type-ahead search can swallow the letters.
    """

    review_key = Signal(str)  # "confirmed" | "rejected" | "later" | "undo" | "next" | "view" | "clear" | "filters"
    KEYS = {Qt.Key.Key_C: "confirmed", Qt.Key.Key_R: "rejected", Qt.Key.Key_L: "later", Qt.Key.Key_U: "undo", Qt.Key.Key_N: "next",
            Qt.Key.Key_Space: "view", Qt.Key.Key_Escape: "clear", Qt.Key.Key_F: "filters",
            Qt.Key.Key_1: "show:flags", Qt.Key.Key_2: "show:unreviewed", Qt.Key.Key_3: "show:all", Qt.Key.Key_4: "show:selection"}

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if event.matches(QKeySequence.StandardKey.Undo):
            self.review_key.emit("undo")
            return
        action = self.KEYS.get(Qt.Key(event.key()))
        if action is not None and not (event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier & ~Qt.KeyboardModifier.ShiftModifier):
            self.review_key.emit(action)
            return
        super().keyPressEvent(event)

    def selectAll(self) -> None:  # noqa: N802 - Qt override: all shown samples, not only the loaded windows
        model = self.model()
        if hasattr(model, "load_all"):
            model.load_all()
        super().selectAll()

    def __init__(self, tile: int, parent: Any = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setUniformItemSizes(True)
        self.setGridSize(QSize(tile, tile))
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2000)
        self.setSpacing(0)
        self.setWrapping(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(tile // 2)
        self.setMouseTracking(False)


@contextlib.contextmanager
def legacy_gallery(window: int = 10_000) -> Iterator[None]:
    """While inside, :class:`~naviewer.gui.analyst.gallery.GalleryWidget` is built on the former QListView and
    windowed model (``window`` rows per fetch; ``1 << 62``: every row at once)."""
    from naviewer.gui.analyst import gallery

    saved = gallery.GalleryModel, gallery.GalleryView, LegacyGalleryModel.WINDOW
    gallery.GalleryModel, gallery.GalleryView = LegacyGalleryModel, LegacyGalleryView
    LegacyGalleryModel.WINDOW = int(window)
    try:
        yield
    finally:
        gallery.GalleryModel, gallery.GalleryView, LegacyGalleryModel.WINDOW = saved
