"""Gallery and keyboard review: a virtualised thumbnail grid sorted by suspicion.

QListView in IconMode with uniform item sizes over a model that holds only an id array; a delegate
paints each visible tile straight from the uint8 image store (pixmaps cached), with a coloured
border and badge for its review state. Keys: C confirm, R reject, L later, U / Ctrl+Z undo,
N next unreviewed. Every decision goes through the session to the store at once.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from PySide6.QtCore import QAbstractListModel, QItemSelection, QItemSelectionModel, QModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QKeySequence, QPainter, QPen, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from naviewer.analysis.review import REVIEW_STATES
from naviewer.analysis.session import AnalysisSession
from naviewer.gui.analyst.common import STATE_COLOURS, STATE_LETTER, SessionBridge, ThumbnailCache

FILTERS = {
    "flags": "Flagged",
    "unreviewed": "Unreviewed flags",
    "all": "All samples",
    "selection": "Selection",
}
HINT = "<b>C</b> confirm poison · <b>R</b> reject (benign) · <b>L</b> later · <b>U</b>/<b>Ctrl+Z</b> undo · <b>N</b> next unreviewed · <b>Ctrl+A</b> select all"


class GalleryModel(QAbstractListModel):
    """Rows are sample ids (``ids``); data lives in the session, painted by :class:`TileDelegate`."""

    IdRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, session: AnalysisSession, parent: Any = None) -> None:
        super().__init__(parent)
        self.session = session
        self.ids = np.zeros(0, np.int64)
        self.row_of = np.full(session.n, -1, np.int64)

    def set_ids(self, ids: np.ndarray) -> None:
        self.beginResetModel()
        self.ids = np.asarray(ids, dtype=np.int64)
        self.row_of = np.full(self.session.n, -1, np.int64)
        self.row_of[self.ids] = np.arange(len(self.ids))
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008 - Qt signature
        return 0 if parent.isValid() else len(self.ids)

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
        rows = rows[rows >= 0]
        if len(rows):
            self.dataChanged.emit(self.index(int(rows.min())), self.index(int(rows.max())))


class TileDelegate(QStyledItemDelegate):
    """Paints a tile: thumbnail, review-state border and badge, selection and focus marks."""

    def __init__(self, session: AnalysisSession, cache: ThumbnailCache, tile: int, parent: Any = None) -> None:
        super().__init__(parent)
        self.session = session
        self.cache = cache
        self.tile = tile
        self._font = QFont()
        self._font.setPixelSize(11)
        self._font.setBold(True)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        return QSize(self.tile, self.tile)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        model = index.model()
        sid = int(model.ids[index.row()])  # type: ignore[attr-defined]
        rect: QRect = option.rect.adjusted(2, 2, -2, -2)
        state = REVIEW_STATES[int(self.session.state_codes[sid])]
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            highlight = QColor(option.palette.highlight().color())
            highlight.setAlpha(70)
            painter.fillRect(option.rect, highlight)
            highlight.setAlpha(255)
            painter.setPen(QPen(highlight, 2))
            painter.drawRect(option.rect.adjusted(1, 1, -1, -1))
        pix = self.cache.get(sid, rect.width() - 6)
        inner = rect.adjusted(3, 3, -3, -3)
        if pix is not None:
            x = inner.x() + (inner.width() - pix.width()) // 2
            y = inner.y() + (inner.height() - pix.height()) // 2
            painter.drawPixmap(x, y, pix)
        else:
            painter.fillRect(inner, QColor(90, 90, 90))
        colour = STATE_COLOURS[state]
        if state != "unreviewed":
            pen = QPen(colour, 3)
            painter.setPen(pen)
            painter.drawRect(rect.adjusted(1, 1, -2, -2))
            letter = STATE_LETTER[state]
            badge = QRect(rect.right() - 15, rect.top() + 1, 15, 15)
            painter.fillRect(badge, colour)
            painter.setPen(QColor("white"))
            painter.setFont(self._font)
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, letter)
        elif self.session.flagged_mask[sid]:
            painter.setPen(QPen(QColor(230, 30, 60, 160), 1, Qt.PenStyle.DashLine))
            painter.drawRect(rect.adjusted(1, 1, -2, -2))
        if option.state & QStyle.StateFlag.State_HasFocus:
            painter.setPen(QPen(QColor(255, 255, 255), 1, Qt.PenStyle.DotLine))
            painter.drawRect(option.rect.adjusted(0, 0, -1, -1))


class GalleryView(QListView):
    """The grid itself: uniform sizes, static movement, batched layout (see ecosystem.md 3.4).

    Review keys are taken here before QListView's type-ahead search can swallow the letters.
    """

    review_key = Signal(str)  # "confirmed" | "rejected" | "later" | "undo" | "next"
    KEYS = {Qt.Key.Key_C: "confirmed", Qt.Key.Key_R: "rejected", Qt.Key.Key_L: "later", Qt.Key.Key_U: "undo", Qt.Key.Key_N: "next"}

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if event.matches(QKeySequence.StandardKey.Undo):
            self.review_key.emit("undo")
            return
        action = self.KEYS.get(Qt.Key(event.key()))
        if action is not None and not (event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier & ~Qt.KeyboardModifier.ShiftModifier):
            self.review_key.emit(action)
            return
        super().keyPressEvent(event)

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


class GalleryWidget(QWidget):
    """Thumbnail grid + filter + bulk buttons + key hints + review progress, over one session.

    Signals: ``sample_activated(int)`` when a tile is double-clicked or Enter is pressed (the
    panel shows it in the inspector).
    """

    sample_activated = Signal(int)

    def __init__(self, session: AnalysisSession, parent: Optional[QWidget] = None, tile: int = 76) -> None:
        super().__init__(parent)
        self.session = session
        self.bridge = SessionBridge.of(session)
        self.cache = ThumbnailCache(session, tile - 10)
        self.model = GalleryModel(session, self)
        self.view = GalleryView(tile, self)
        self.view.setModel(self.model)
        self.view.setItemDelegate(TileDelegate(session, self.cache, tile, self.view))
        self._syncing = False
        self._filter = "flags"

        self.filter_box = QComboBox()
        for key, text in FILTERS.items():
            self.filter_box.addItem(text, key)
        self.filter_box.setToolTip("which samples to show, most suspicious (densest) first")
        self.filter_box.currentIndexChanged.connect(lambda _i: self.set_filter(self.filter_box.currentData()))
        self.count_label = QLabel()
        self.buttons: dict[str, QPushButton] = {}
        self.count_label.setWordWrap(True)
        # two rows (filter and count; review buttons) so the gallery fits beside the map on a laptop screen
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Show:"))
        filters.addWidget(self.filter_box)
        filters.addWidget(self.count_label, 1)
        top = QHBoxLayout()
        for state, text, key in (("confirmed", "Confirm", "C"), ("rejected", "Reject", "R"), ("later", "Later", "L")):
            button = QPushButton(text)
            button.setToolTip(f"Mark the selected samples {state} ({key})")
            button.clicked.connect(lambda _c=False, s=state: self.review_selected(s))
            self.buttons[state] = button
            top.addWidget(button)
        undo = QPushButton("Undo")
        undo.setToolTip("undo your last decision (U, Ctrl+Z)")
        undo.clicked.connect(self.undo)
        self.buttons["undo"] = undo
        top.addWidget(undo)
        nxt = QPushButton("Next")
        nxt.setToolTip("go to the next unreviewed flag (N)")
        nxt.clicked.connect(self.next_unreviewed)
        self.buttons["next"] = nxt
        top.addWidget(nxt)
        top.addStretch(1)

        self.hint = QLabel(HINT)
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #666; padding: 2px;")
        self.progress_label = QLabel()
        self.progress_label.setWordWrap(True)
        self.progress_label.setStyleSheet("font-weight: bold; padding: 2px;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(filters)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.hint)

        self.shortcuts: list[QShortcut] = []  # listed by Help > Keyboard shortcuts (their whatsThis)
        for keys, slot, text in (
            ("C", lambda: self.review_selected("confirmed"), "Confirm the selection as poison"),
            ("R", lambda: self.review_selected("rejected"), "Reject the selection (benign)"),
            ("L", lambda: self.review_selected("later"), "Decide later"),
            ("U", self.undo, "Undo the last decision"),
            (QKeySequence.StandardKey.Undo, self.undo, "Undo the last decision"),
            ("N", self.next_unreviewed, "Next unreviewed flag"),
            (QKeySequence.StandardKey.SelectAll, self.view.selectAll, "Select all shown samples"),
        ):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.setWhatsThis(text)
            shortcut.activated.connect(slot)
            self.shortcuts.append(shortcut)

        self.view.review_key.connect(self._on_review_key)
        self.view.selectionModel().selectionChanged.connect(self._on_view_selection)
        self.view.selectionModel().currentChanged.connect(self._on_view_current)
        self.view.doubleClicked.connect(lambda idx: self.sample_activated.emit(int(self.model.ids[idx.row()])))
        self.view.activated.connect(lambda idx: self.sample_activated.emit(int(self.model.ids[idx.row()])))
        self.bridge.selection_changed.connect(self._on_session_selection)
        self.bridge.review_changed.connect(self._on_review_changed)
        self.bridge.current_changed.connect(self._on_session_current)
        self.set_filter("flags" if session.flagged_mask.any() else "all")

    # -- contents -------------------------------------------------------------------------------
    def set_filter(self, key: str) -> None:
        self._filter = key
        idx = self.filter_box.findData(key)
        if idx >= 0 and idx != self.filter_box.currentIndex():
            self.filter_box.blockSignals(True)
            self.filter_box.setCurrentIndex(idx)
            self.filter_box.blockSignals(False)
        s = self.session
        if key == "flags":
            ids = s.review_queue()
        elif key == "unreviewed":
            q = s.review_queue()
            ids = q[s.state_codes[q] == 0]
        elif key == "selection":
            order = s.suspicion_order()
            ids = order[s.selection_mask()[order]]
        else:
            ids = s.suspicion_order()
        self._syncing = True
        try:
            self.model.set_ids(ids)
        finally:
            self._syncing = False
        self._apply_selection(s.selection)
        self.count_label.setText(f"{len(ids):,} shown")
        self._update_progress()

    def shown_ids(self) -> np.ndarray:
        return self.model.ids

    # -- selection sync -------------------------------------------------------------------------
    def selected_ids(self) -> np.ndarray:
        """Sample ids selected in the grid (from selection ranges, never per-index lists)."""
        parts = [np.arange(r.top(), r.bottom() + 1) for r in self.view.selectionModel().selection()]
        if not parts:
            return np.zeros(0, np.int64)
        return np.sort(self.model.ids[np.concatenate(parts)])

    def _on_view_selection(self, *_args: Any) -> None:
        if self._syncing:
            return
        ids = self.selected_ids()
        if self._filter == "selection":  # hidden samples stay selected
            return
        self.session.set_selection(ids, source=self)

    def _on_view_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if self._syncing or not current.isValid():
            return
        self.session.set_current(int(self.model.ids[current.row()]), source=self)

    def _on_session_selection(self, ids: np.ndarray, source: Any) -> None:
        if source is self:
            return
        if self._filter == "selection":
            self.set_filter("selection")
            return
        self._apply_selection(ids)

    def _apply_selection(self, ids: np.ndarray) -> None:
        rows = self.model.row_of[np.asarray(ids, dtype=np.int64)] if len(ids) else np.zeros(0, np.int64)
        rows = np.sort(rows[rows >= 0])
        selection = QItemSelection()
        if len(rows):
            breaks = np.flatnonzero(np.diff(rows) != 1)
            starts = np.concatenate([[rows[0]], rows[breaks + 1]])
            ends = np.concatenate([rows[breaks], [rows[-1]]])
            for a, b in zip(starts.tolist(), ends.tolist()):
                selection.select(self.model.index(a), self.model.index(b))
        self._syncing = True
        try:
            self.view.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            if len(rows):
                self.view.scrollTo(self.model.index(int(rows[0])))
        finally:
            self._syncing = False

    def _on_session_current(self, sid: Optional[int], source: Any) -> None:
        if source is self or sid is None:
            return
        row = int(self.model.row_of[sid])
        if row >= 0:
            self._syncing = True
            try:
                self.view.selectionModel().setCurrentIndex(self.model.index(row), QItemSelectionModel.SelectionFlag.NoUpdate)
                self.view.scrollTo(self.model.index(row))
            finally:
                self._syncing = False

    # -- review -------------------------------------------------------------------------------
    def _targets(self) -> np.ndarray:
        ids = self.session.selection
        if len(ids) == 0 and self.session.current is not None:
            ids = np.array([self.session.current], np.int64)
        return ids

    def review_selected(self, state: str) -> np.ndarray:
        """Apply ``state`` to the selection (or the current sample); a single decision moves on."""
        ids = self._targets()
        if len(ids) == 0:
            return ids
        self.session.review(ids, state)
        if len(ids) == 1:
            self.next_unreviewed(after=int(ids[0]))
        return ids

    def _on_review_key(self, action: str) -> None:
        if action == "undo":
            self.undo()
        elif action == "next":
            self.next_unreviewed()
        else:
            self.review_selected(action)

    def undo(self) -> np.ndarray:
        ids = self.session.undo()
        if len(ids):
            self.session.set_selection(ids, source=None)
            self.session.set_current(int(ids[0]), source=None)
        return ids

    def next_unreviewed(self, after: Optional[int] = None) -> Optional[int]:
        if after is None:
            after = self.session.current
        sid = self.session.next_unreviewed(after=after)
        if sid is None:
            self.progress_label.setText(self.progress_label.text() + " — all flags reviewed")
            return None
        if self.model.row_of[sid] < 0:
            self.set_filter("flags")
        self.session.set_selection([sid], source=None)
        self.session.set_current(sid, source=None)
        return sid

    def _on_review_changed(self, ids: np.ndarray) -> None:
        if self._filter == "unreviewed":
            self.model.refresh_rows(ids)  # keep rows until the filter is re-applied, so focus stays put
        else:
            self.model.refresh_rows(ids)
        self.view.viewport().update()
        self._update_progress()

    def _update_progress(self) -> None:
        c = self.session.review_counts()
        flags = sum(c.values())
        done = c["confirmed"] + c["rejected"]
        self.progress_label.setText(
            f"reviewed {done:,} / {flags:,} flags  (confirmed {c['confirmed']:,} · rejected {c['rejected']:,} · later {c['later']:,})"
        )
