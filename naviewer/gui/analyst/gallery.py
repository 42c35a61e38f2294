"""Gallery and keyboard review: a virtualised thumbnail grid sorted by suspicion.

A grid view that places uniform tiles by arithmetic (nothing laid out per row: its scroll bar, a
sort, Ctrl+A and a jump cover every shown sample, 10M included) over a model that holds only an id
array; a delegate paints each visible tile straight from the uint8 image store (pixmaps cached), with
a coloured border and badge for its review state. Keys: C confirm, R reject, L later, U / Ctrl+Z undo,
N next unreviewed. Every decision goes through the session to the store at once.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional

import numpy as np
from PySide6.QtCore import QAbstractListModel, QEvent, QItemSelection, QItemSelectionModel, QModelIndex, QObject, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QKeySequence, QPainter, QPen, QRegion, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QBoxLayout,
    QComboBox,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from naviewer.analysis.review import REVIEW_STATES
from naviewer.analysis.session import AnalysisSession
from naviewer.errors import JobCancelled, NaviewerError
from naviewer.gui.analyst.common import (
    READ_ONLY_TIP,
    STATE_COLOURS,
    STATE_LETTER,
    SessionBridge,
    ThumbnailCache,
    decide,
    keyed_shortcuts,
    undo_words,
    on_screen,
    plural,
    process_events_while,
    say_covered,
    say_not_recorded,
)
from naviewer.gui.analyst.filters import FilterSidebar
from naviewer.gui.analyst.viewer import SampleViewer
from naviewer.gui.flow_layout import FlowLayout
from naviewer.jobs import JobContext

FILTERS = {
    "flags": "Flagged",
    "unreviewed": "Unreviewed flags",
    "all": "All samples",
    "selection": "Selection",
}
HINT = ("<b>C</b> confirm · <b>R</b> reject · <b>L</b> later · <b>U</b> undo · <b>N</b> next · <b>Space</b> large view · "
        "<b>F</b> filters · <b>F1</b> every key")


def filters_go_above(width: int, grid_height: int, side_width: int, tile: int, essential: int,
                     min_columns: int = 3) -> bool:
    """Whether the filter sidebar goes above the tiles rather than beside them.

    Beside them while that leaves ``min_columns`` tiles a row. Otherwise above, at the gallery's width, but only
    where its ``essential`` controls (cluster, class, sort) fit there with a row of tiles under them: at 1280x720
    with the Analyst docked the gallery is short, and above the tiles it showed two of its rows and cut Sort by
    (session 21). There, beside with fewer columns keeps every control in reach; with no column at all beside, above.
    """
    tile = max(1, tile)
    columns_beside = (width - side_width - 24) // tile
    if columns_beside >= min_columns:
        return False
    fits_above = grid_height - essential >= tile
    return fits_above or columns_beside < 1

class GalleryModel(QAbstractListModel):
    """Rows are sample ids (``ids``, in the shown order); data lives in the session, painted by :class:`TileDelegate`.

    Every shown sample is a row from the start: :class:`GalleryView` places tiles by arithmetic (row ->
    grid cell), so a row costs the view nothing until it is painted, and the scroll bar, a sort, Ctrl+A and
    a jump to any sample cover all N rows, 10M included (issue 17 item 4). The per-row data (thumbnail,
    tooltip) is fetched only for painted tiles. ``row_of`` maps a sample id to its row (-1: not shown).
    ``loaded``, ``row_index`` and ``load_all`` remain from the windowed model this replaced (rows handed to
    a QListView 10,000 at a time, whose scroll bar covered only those): every row is loaded now.
    """

    IdRole = Qt.ItemDataRole.UserRole + 1
    #: rows per window of the former windowed model; kept for callers that read it (nothing is windowed now)
    WINDOW = 10_000

    def __init__(self, session: AnalysisSession, parent: Any = None) -> None:
        super().__init__(parent)
        self.session = session
        self.ids = np.zeros(0, np.int64)
        self.row_of = np.full(session.n, -1, np.int64)
        #: (score key, its name) the rows are sorted by, for the tooltip; None: no score (suspicion, id, class...)
        self.sort_key: Optional[tuple[str, str]] = None

    @property
    def loaded(self) -> int:
        """Rows the view knows about: all of them."""
        return len(self.ids)

    def set_ids(self, ids: np.ndarray, row_of: Optional[np.ndarray] = None) -> None:
        """Show ``ids`` in this order. ``row_of``: their row map already made (:func:`row_map`, in the
        worker that sorted them), swapped in instead of rewritten here."""
        self.beginResetModel()
        previous, self.ids = self.ids, np.asarray(ids, dtype=np.int64)
        if row_of is not None and len(row_of) == len(self.row_of):
            self.row_of = row_of
        else:
            if len(previous) * 4 < len(self.row_of):  # few rows were shown: clear only theirs
                self.row_of[previous] = -1
            else:
                self.row_of.fill(-1)
            self.row_of[self.ids] = np.arange(len(self.ids))
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008 - Qt signature
        return 0 if parent.isValid() else len(self.ids)

    def row_index(self, row: int) -> QModelIndex:
        return self.index(int(row))

    def load_all(self) -> None:
        """Nothing to do: every row is loaded (kept for callers of the windowed model)."""

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
                if key == "rank" and isinstance(s.get(key), (int, float)) and not isinstance(s.get(key), bool):
                    # 1-based as the inspector's "density rank" (the tooltip read one less; a newcomer, session 22)
                    parts.append(f"density rank: {int(s[key]) + 1:,} of {self.session.n:,} (1 = densest)")
                elif key in s:
                    parts.append(f"{key}: {s[key]:.4g}" if isinstance(s[key], float) else f"{key}: {s[key]}")
            if self.sort_key is not None:
                key, name = self.sort_key
                value = float(np.asarray(self.session.scores[key][sid], np.float64))
                parts.append(f"sorted by {name}: {value:.4g}" if np.isfinite(value) else f"sorted by {name}: none")
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
            # the tile the keys act on: the theme's text colour (dark on a light theme, light on a dark one),
            # 2 px dashed while the grid has the keyboard, 1 px otherwise; a 1 px white dotted line was invisible
            # on the light theme's white tiles
            active = bool(option.state & QStyle.StateFlag.State_Active)
            painter.setPen(QPen(option.palette.text().color(), 2 if active else 1, Qt.PenStyle.DashLine))
            painter.drawRect(option.rect.adjusted(1, 1, -1, -1) if active else option.rect.adjusted(0, 0, -1, -1))


class GalleryView(QAbstractItemView):
    """The grid itself: uniform tiles placed by arithmetic, so nothing is laid out per row.

    Row ``r`` sits in grid cell (``r // columns``, ``r % columns``); the scroll bar spans every row of
    the model (10M samples: ~70M pixels, in steps of more than one pixel past 2^30), only the visible
    tiles are painted, and a rubber band or Shift+click selects row ranges, never per-index lists.
    (A QListView lays out every row it is handed, ~12 us a row: 2 min at 10M, which is why it was
    handed 10,000 at a time and its scroll bar covered only those.) Keyboard moves: arrows, Page Up/Down,
    Home/End. Review keys are taken here before the base class's type-ahead search can swallow the letters.
    """

    review_key = Signal(str)  # "confirmed" | "rejected" | "later" | "undo" | "next" | "view" | "clear" | "filters"
    KEYS = {Qt.Key.Key_C: "confirmed", Qt.Key.Key_R: "rejected", Qt.Key.Key_L: "later", Qt.Key.Key_U: "undo", Qt.Key.Key_N: "next",
            Qt.Key.Key_Space: "view", Qt.Key.Key_Escape: "clear", Qt.Key.Key_F: "filters",
            Qt.Key.Key_1: "show:flags", Qt.Key.Key_2: "show:unreviewed", Qt.Key.Key_3: "show:all", Qt.Key.Key_4: "show:selection"}
    #: largest scroll-bar range in pixels; a taller grid scrolls in steps of several pixels
    MAX_BAR = 1 << 30

    #: the tile sizes Ctrl+wheel and the gallery's Ctrl+= / Ctrl+- step through (px; Ctrl+0: the size it was made with)
    TILE_MIN, TILE_MAX, TILE_STEP = 40, 200, 12
    #: the tile size changed (Ctrl+wheel, Ctrl+=, Ctrl+-, Ctrl+0): the panel keeps it across a reload
    tile_changed = Signal(int)

    def __init__(self, tile: int, parent: Any = None) -> None:
        super().__init__(parent)
        self.tile = int(tile)
        self.default_tile = int(tile)
        self.user_tile = False  # a size the analyst chose (Ctrl+wheel, Ctrl+=/-) is kept; else it fits the height
        self._unit = 1  # pixels per scroll-bar step
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMouseTracking(False)
        self._anchor: Optional[int] = None  # where a Shift-extended highlight starts (the row before the Shift)
        self._extending = False

    # -- a Shift-extended highlight is the run of tiles in reading order, as in a list --------------
    MOVE_KEYS = {Qt.Key.Key_Left: QAbstractItemView.CursorAction.MoveLeft,
                 Qt.Key.Key_Right: QAbstractItemView.CursorAction.MoveRight,
                 Qt.Key.Key_Up: QAbstractItemView.CursorAction.MoveUp,
                 Qt.Key.Key_Down: QAbstractItemView.CursorAction.MoveDown,
                 Qt.Key.Key_Home: QAbstractItemView.CursorAction.MoveHome,
                 Qt.Key.Key_End: QAbstractItemView.CursorAction.MoveEnd,
                 Qt.Key.Key_PageUp: QAbstractItemView.CursorAction.MovePageUp,
                 Qt.Key.Key_PageDown: QAbstractItemView.CursorAction.MovePageDown}

    def currentChanged(self, current: QModelIndex, previous: QModelIndex) -> None:  # noqa: N802 - Qt override
        if not self._extending and current.isValid():
            self._anchor = current.row()
        super().currentChanged(current, previous)

    def extend_to(self, index: QModelIndex) -> None:
        """Highlight the tiles from the anchor to ``index`` in reading order (one row range) and focus it. Qt's
        own extension highlights the rectangle between the two tiles, which in a grid takes whole rows of
        tiles the analyst never moved over (Shift+Right at a row's end highlighted 10)."""
        if not index.isValid():
            return
        current = self.currentIndex()
        anchor = self._anchor if self._anchor is not None and self._anchor < self._count() else \
            (current.row() if current.isValid() else index.row())
        lo, hi = sorted((anchor, index.row()))
        model, root = self.model(), self.rootIndex()
        self._extending = True
        try:
            self.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.NoUpdate)
            self.selectionModel().select(QItemSelection(model.index(lo, 0, root), model.index(hi, 0, root)),
                                         QItemSelectionModel.SelectionFlag.ClearAndSelect)
        finally:
            self._extending = False
        self.scrollTo(index)

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton and event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            index = self.indexAt(event.position().toPoint())
            if index.isValid():
                self.extend_to(index)
                event.accept()
                return
        super().mousePressEvent(event)

    # -- geometry -------------------------------------------------------------------------------
    def _count(self) -> int:
        model = self.model()
        return model.rowCount(self.rootIndex()) if model is not None else 0

    def columns(self) -> int:
        return max(1, self.viewport().width() // self.tile)

    def grid_rows(self) -> int:
        return -(-self._count() // self.columns())

    def _offset(self) -> int:
        return self.verticalScrollBar().value() * self._unit

    def updateGeometries(self) -> None:  # noqa: N802 - Qt override
        total = self.grid_rows() * self.tile
        height = self.viewport().height()
        self._unit = max(1, -(-total // self.MAX_BAR))
        bar = self.verticalScrollBar()
        bar.setRange(0, max(0, -(-(total - height) // self._unit)))
        bar.setPageStep(max(1, height // self._unit))
        bar.setSingleStep(max(1, self.tile // 2 // self._unit))
        super().updateGeometries()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        columns = getattr(self, "_laid_columns", None)
        super().resizeEvent(event)
        if not self.user_tile and self.fitted_tile() != self.tile:  # (its height is the layout's, not the tiles')
            self.set_tile(self.fitted_tile(), chosen=False)
        self.updateGeometries()
        self._laid_columns = self.columns()
        if columns is not None and columns != self._laid_columns:  # a new grid, not a notice under the tiles
            self.keep_target_in_view()

    def target_index(self) -> QModelIndex:
        """The tile the keys act on: the one highlighted, else the one under focus (read as ranges: never one
        object per highlighted tile)."""
        model = self.selectionModel()
        ranges = model.selection() if model is not None else None
        if ranges is not None and len(ranges) == 1 and ranges[0].top() == ranges[0].bottom():
            return ranges[0].topLeft()
        return self.currentIndex()

    def keep_target_in_view(self) -> None:
        """Scroll the tile the keys act on back into view: closing the filters (more columns), a resize or a new
        order left it off screen while the line above the tiles named it (a newcomer, session 26)."""
        index = self.target_index()
        if index.isValid():
            self.scrollTo(index)

    def doItemsLayout(self) -> None:  # noqa: N802 - Qt override: nothing to lay out, only the scroll range
        super().doItemsLayout()
        self.updateGeometries()
        self.viewport().update()

    def reset(self) -> None:
        super().reset()
        self.updateGeometries()
        self.viewport().update()

    def rowsInserted(self, parent: QModelIndex, start: int, end: int) -> None:  # noqa: N802 - Qt override
        super().rowsInserted(parent, start, end)
        self.updateGeometries()
        self.viewport().update()

    def rowsAboutToBeRemoved(self, parent: QModelIndex, start: int, end: int) -> None:  # noqa: N802 - Qt override
        super().rowsAboutToBeRemoved(parent, start, end)
        self.viewport().update()

    def dataChanged(self, top_left: QModelIndex, bottom_right: QModelIndex, roles: Any = ()) -> None:  # noqa: N802
        self.viewport().update()

    def scrollContentsBy(self, dx: int, dy: int) -> None:  # noqa: N802 - Qt override
        self.viewport().update()

    def visualRect(self, index: QModelIndex) -> QRect:  # noqa: N802 - Qt override
        if not index.isValid() or index.parent() != self.rootIndex():
            return QRect()
        row, columns = index.row(), self.columns()
        return QRect((row % columns) * self.tile, (row // columns) * self.tile - self._offset(), self.tile, self.tile)

    def indexAt(self, point: Any) -> QModelIndex:  # noqa: N802 - Qt override
        x, y = int(point.x()), int(point.y())
        columns = self.columns()
        if x < 0 or y < 0 or x >= columns * self.tile:
            return QModelIndex()
        row = ((y + self._offset()) // self.tile) * columns + x // self.tile
        if row >= self._count():
            return QModelIndex()
        return self.model().index(row, 0, self.rootIndex())

    def scrollTo(self, index: QModelIndex, hint: Any = QAbstractItemView.ScrollHint.EnsureVisible) -> None:  # noqa: N802
        if not index.isValid():
            return
        top = (index.row() // self.columns()) * self.tile  # content coordinates
        height = self.viewport().height()
        offset = self._offset()
        at_bottom = False
        if hint == QAbstractItemView.ScrollHint.PositionAtTop:
            target = top
        elif hint == QAbstractItemView.ScrollHint.PositionAtBottom:
            target, at_bottom = top + self.tile - height, True
        elif hint == QAbstractItemView.ScrollHint.PositionAtCenter:
            target = top + self.tile // 2 - height // 2
        elif top < offset:
            target = top
        elif top + self.tile > offset + height:
            target, at_bottom = top + self.tile - height, True
        else:
            return
        value = -(-target // self._unit) if at_bottom else target // self._unit  # whole tile in view
        bar = self.verticalScrollBar()
        bar.setValue(max(0, min(bar.maximum(), value)))
        self.viewport().update()

    def horizontalOffset(self) -> int:  # noqa: N802 - Qt override
        return 0

    def verticalOffset(self) -> int:  # noqa: N802 - Qt override
        return self._offset()

    def isIndexHidden(self, index: QModelIndex) -> bool:  # noqa: N802 - Qt override
        return False

    def moveCursor(self, action: Any, modifiers: Any) -> QModelIndex:  # noqa: N802 - Qt override
        n = self._count()
        if n == 0:
            return QModelIndex()
        current = self.currentIndex()
        row = current.row() if current.isValid() else -1
        columns = self.columns()
        page = max(1, self.viewport().height() // self.tile) * columns
        move = QAbstractItemView.CursorAction
        if row < 0:  # nothing under focus yet: the first tile, or the last for End
            row = n - 1 if action == move.MoveEnd else 0
        elif action in (move.MoveLeft, move.MovePrevious):
            row -= 1
        elif action in (move.MoveRight, move.MoveNext):
            row += 1
        elif action == move.MoveUp:
            row -= columns if row >= columns else 0
        elif action == move.MoveDown:
            row += columns if row + columns < n else 0
        elif action == move.MovePageUp:
            row = row - page if row >= page else row % columns
        elif action == move.MovePageDown:
            row = row + page if row + page < n else n - 1
        elif action == move.MoveHome:
            row = 0
        elif action == move.MoveEnd:
            row = n - 1
        return self.model().index(max(0, min(n - 1, row)), 0, self.rootIndex())

    def setSelection(self, rect: QRect, command: Any) -> None:  # noqa: N802 - Qt override
        """Select the tiles ``rect`` (viewport coordinates) touches: one row range per grid row, or one range
        when the rectangle spans whole grid rows."""
        n = self._count()
        rect = rect.normalized()
        columns = self.columns()
        offset = self._offset()
        c0 = max(0, rect.left() // self.tile)
        c1 = min(columns - 1, rect.right() // self.tile)
        g0 = max(0, (rect.top() + offset) // self.tile)
        g1 = (rect.bottom() + offset) // self.tile
        selection = QItemSelection()
        model, root = self.model(), self.rootIndex()
        if n and c0 <= c1 and g0 <= g1:
            if c0 == 0 and c1 == columns - 1:
                first, last = g0 * columns, min(n - 1, g1 * columns + columns - 1)
                if first <= last:
                    selection.select(model.index(first, 0, root), model.index(last, 0, root))
            else:
                for g in range(g0, min(g1, (n - 1) // columns) + 1):
                    first, last = g * columns + c0, min(n - 1, g * columns + c1)
                    if first <= last:
                        selection.select(model.index(first, 0, root), model.index(last, 0, root))
        self.selectionModel().select(selection, command)

    def visualRegionForSelection(self, selection: QItemSelection) -> QRegion:  # noqa: N802 - Qt override
        return QRegion(self.viewport().rect()) if not selection.isEmpty() else QRegion()

    # -- painting -------------------------------------------------------------------------------
    def visible_rows(self) -> range:
        """The rows with a tile in the viewport."""
        columns, offset = self.columns(), self._offset()
        first = (offset // self.tile) * columns
        last = -(-(offset + self.viewport().height()) // self.tile) * columns
        return range(first, min(self._count(), last))

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        model, delegate = self.model(), self.itemDelegate()
        if model is None or delegate is None:
            return
        painter = QPainter(self.viewport())
        selection = self.selectionModel()
        current = self.currentIndex()
        focus = self.hasFocus()
        root = self.rootIndex()
        for row in self.visible_rows():
            index = model.index(row, 0, root)
            option = QStyleOptionViewItem()
            self.initViewItemOption(option)
            option.rect = self.visualRect(index)
            option.state = QStyle.StateFlag.State_Enabled
            if selection is not None and selection.isSelected(index):
                option.state |= QStyle.StateFlag.State_Selected
            if index == current:  # marked even while another view has the focus: the keys come back to it
                option.state |= QStyle.StateFlag.State_HasFocus
                if focus:
                    option.state |= QStyle.StateFlag.State_Active
            delegate.paint(painter, option, index)
        painter.end()

    # -- tile size ------------------------------------------------------------------------------
    #: the least size the tiles shrink to by themselves to show two rows on a short gallery
    TILE_FIT_MIN = 56

    def fitted_tile(self) -> int:
        """The size that shows two rows in the viewport's height, between :attr:`TILE_FIT_MIN` and the size the view
        was made with: at 1280x720 under the review box the gallery showed one row and a third of 76 px tiles."""
        return int(min(self.default_tile, max(self.TILE_FIT_MIN, self.viewport().height() // 2)))

    def set_tile(self, tile: int, chosen: bool = True) -> None:
        """Tiles of ``tile`` px (clamped to :attr:`TILE_MIN`..:attr:`TILE_MAX`): smaller tiles show more rows, larger
        ones a 32 px image's detail. ``chosen``: the analyst's size, kept (else the size fits the height again as
        the gallery is resized). The tile the keys act on stays in view."""
        self.user_tile = bool(chosen)
        tile = int(min(max(int(tile), self.TILE_MIN), self.TILE_MAX))
        if tile == self.tile:
            return
        self.tile = tile
        delegate = self.itemDelegate()
        if isinstance(delegate, TileDelegate):
            delegate.tile = tile
        self.updateGeometries()
        self._laid_columns = self.columns()
        self.viewport().update()
        self.keep_target_in_view()
        self.tile_changed.emit(tile)

    def zoom(self, steps: int) -> None:
        """``steps`` tile sizes larger (negative: smaller)."""
        self.set_tile(self.tile + int(steps) * self.TILE_STEP)

    def wheelEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:  # as image browsers do: Ctrl+wheel sizes tiles
            # a touchpad sends small deltas: summed to whole notches of 120 (floor division made -15 a notch down
            # and +15 none, so a flick shrank the tiles to the least and none grew them; a review)
            self._wheel = getattr(self, "_wheel", 0) + int(event.angleDelta().y())
            steps = int(self._wheel / 120)  # toward zero, either way
            if steps:
                self._wheel -= steps * 120
                self.zoom(steps)
            event.accept()
            return
        super().wheelEvent(event)

    # -- keys -----------------------------------------------------------------------------------
    def keyPressEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if event.isAutoRepeat() and (event.matches(QKeySequence.StandardKey.Undo)
                                     or self.KEYS.get(Qt.Key(event.key())) in ("confirmed", "rejected", "later", "undo")):
            event.accept()  # a held C confirmed one sample after another as each auto-advance moved on (a probe)
            return
        if event.matches(QKeySequence.StandardKey.Undo):
            self.review_key.emit("undo")
            return
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        move = self.MOVE_KEYS.get(Qt.Key(event.key()))
        if move is not None and mods == Qt.KeyboardModifier.ShiftModifier and self._count():
            self.extend_to(self.moveCursor(move, event.modifiers()))
            event.accept()
            return
        action = self.KEYS.get(Qt.Key(event.key()))
        if action is not None and not (event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier & ~Qt.KeyboardModifier.ShiftModifier):
            self.review_key.emit(action)
            return
        super().keyPressEvent(event)

    def keyboardSearch(self, search: str) -> None:  # noqa: N802 - Qt override: letters are review keys, never a search
        return


def row_map(ids: np.ndarray, n: int) -> np.ndarray:
    """Row of each of ``n`` samples when ``ids`` are shown in this order (-1: not shown)."""
    rows = np.full(n, -1, np.int64)
    rows[ids] = np.arange(len(ids), dtype=np.int64)
    return rows


class _FilterRelay(QObject):
    """Carries a worker's filtered and sorted ids to the GUI thread (a queued signal: emitted from the
    worker thread, delivered on the thread this object lives in)."""

    done = Signal(int, object)  # request serial, dict (ids, base count, row map) or an exception


class GalleryWidget(QWidget):
    """Thumbnail grid + filter + bulk buttons + key hints + review progress, over one session.

    **What a key acts on** (C, R, L and the buttons): the highlighted tiles when any are highlighted,
    else the tile under focus; ``target_label`` says which before a key is pressed. A decision on
    more than a few samples, or one that overwrites earlier decisions of several, is asked about
    first (:func:`naviewer.gui.analyst.common.decide`). Filtered views are re-applied after every
    decision, so *Unreviewed flags* never shows a decided tile.

    **Filtering and sorting off the GUI thread.** From :attr:`ASYNC_FROM` samples on, a "Show:" choice,
    a sidebar edit or a re-apply after a decision is a request run in a worker thread (``FilterSpec.apply``
    is plain numpy: 3-9 s for a sort at 10M). Until its result arrives the grid keeps the order it shows
    (the keys act on it as usual) and the header says it is sorting; the latest request wins: an older
    one is told to stop (its cancel flag, checked between steps) and its result, if it still comes, is
    dropped. When the new order is applied the highlighted samples and the focused one stay the same
    samples (found again by id), and the focused tile is scrolled into view; a new sort order with nothing
    highlighted shows its top instead, the first tile taking the focus. Below it, the same work is
    done at once (tens of ms). :meth:`wait_for_filter` waits for a pending request (tests, scripts).

    Signals: ``sample_activated(int)`` when Enter is pressed on a tile (the panel shows it in the
    inspector); ``view_requested(int)`` when a double-click or Space opens the large sample view.
    """

    sample_activated = Signal(int)
    view_requested = Signal(int)
    #: an undo ran (reverted samples or not): History's button renames the batch it would undo next
    undone = Signal()
    #: a link in the notice was clicked (its href), e.g. "pass:6" of "Detection ready … Open pass 6"
    notice_link = Signal(str)
    #: sessions of at least this many samples are filtered and sorted in a worker thread
    ASYNC_FROM = 200_000

    def __init__(self, session: AnalysisSession, parent: Optional[QWidget] = None, tile: int = 76) -> None:
        super().__init__(parent)
        self._fit_timer = QTimer(self)  # a fit of the column queued after a layout request (event)
        self._fit_timer.setSingleShot(True)
        self._fit_timer.setInterval(0)
        self._fit_timer.timeout.connect(self._fit_column)
        self.session = session
        #: the workspace is open read-only: the decision buttons stay grey (the keys say why when pressed)
        self.read_only = False
        self.bridge = SessionBridge.of(session)
        self.cache = ThumbnailCache(session, tile - 10)
        self.model = GalleryModel(session, self)
        self.view = GalleryView(tile, self)
        self.view.setMinimumSize(tile + 24, tile + 4)  # one tile: the rest of the panel keeps its room
        self.view.setModel(self.model)
        self.view.setItemDelegate(TileDelegate(session, self.cache, tile, self.view))
        self._syncing = False
        self._filter = "flags"
        self._previous_ids = np.zeros(0, np.int64)
        self._serial = 0  # the latest filter request; a result for an older one is dropped
        self._job: Optional[JobContext] = None  # the request running in a worker, if any
        self._then: list[Callable[[], None]] = []  # run once the latest request's ids are shown
        self._relay = _FilterRelay(self)
        self._relay.done.connect(self._on_filtered)
        self.viewer = SampleViewer(self)
        self.filters = FilterSidebar(session)
        self.filters.changed.connect(lambda: self.set_filter(self._filter))
        self.filters.hide()

        self.filter_box = QComboBox()
        for key, text in FILTERS.items():
            self.filter_box.addItem(text, key)
        self.filter_box.setToolTip("which samples to show (the sort order is set under Filters)")
        self.filter_box.currentIndexChanged.connect(lambda _i: self.set_filter(self.filter_box.currentData()))
        self.filter_box.installEventFilter(self.filters)  # a letter typed there picks an entry, never decides
        self.filter_button = QToolButton()
        self.filter_button.setText("Filters")
        self.filter_button.setCheckable(True)
        self.filter_button.setToolTip("filter by cluster, review state, class and score ranges; sort by any score (F)")
        self.filter_button.toggled.connect(self.show_filters)
        self.count_label = QLabel()
        self.busy_label = QLabel()  # "sorting…" while a request runs in the worker
        self.busy_label.setObjectName("galleryBusy")
        self.busy_label.setStyleSheet("color: #b06000; font-style: italic;")
        self.busy_label.hide()
        self.buttons: dict[str, QPushButton] = {}
        # two rows (filter and count; review buttons) so the gallery fits beside the map on a laptop screen
        filters = FlowLayout(spacing=4)
        filters.addWidget(QLabel("Show:"))
        filters.addWidget(self.filter_box)
        filters.addWidget(self.filter_button)
        filters.addWidget(self.count_label)
        filters.addWidget(self.busy_label)
        top = FlowLayout(spacing=4)
        for state, text, key in (("confirmed", "Confirm", "C"), ("rejected", "Reject", "R"), ("later", "Later", "L")):
            button = QPushButton(text)
            button.setToolTip(f"Mark the highlighted samples (else the one under focus) {state} ({key})")
            button.clicked.connect(lambda _c=False, s=state: self.review_selected(s))
            self.buttons[state] = button
            top.addWidget(button)
        undo = QPushButton("Undo")
        undo.setToolTip("undo your last decision (U, Ctrl+Z)")
        undo.clicked.connect(self.undo)
        self.buttons["undo"] = undo
        top.addWidget(undo)
        nxt = QPushButton("Next")
        nxt.setToolTip("go to the next flag awaiting a decision: unreviewed first, then those marked later (N)")
        nxt.clicked.connect(lambda: self.next_unreviewed())
        self.buttons["next"] = nxt
        top.addWidget(nxt)
        for button in self.buttons.values():
            button.setMinimumWidth(button.fontMetrics().horizontalAdvance(button.text()) + 20)
            button.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)

        self.target_label = QLabel()
        self.target_label.setObjectName("targetLabel")
        self.target_label.setWordWrap(True)
        self.target_label.setStyleSheet("padding: 2px;")
        # two lines kept while the filters show, whether it says one or two: a filter that hid the inspector's sample
        # turned it into two lines and moved the tiles and the filter sidebar's lists under the mouse (a newcomer at
        # 1280x720, session 25). Only then: always, the tiles lost their second row at 1280x720
        self.target_label.setText("<b>#0</b><br><b>#0</b>")  # two lines of its rich text, as it will show them
        self._two_lines = self.target_label.sizeHint().height()
        self.target_label.setText("")
        self.notice = QLabel()
        self.notice_sticky = False  # a failure's word, or a standing one, that Ctrl+2 does not clear
        # standing words by topic (a read-only workspace, saved embeddings not used, images that cannot be read): each
        # stays, and comes back when a passing notice goes (one replaced the other, so a bad tile's notice hid that
        # no decision could be recorded; a review, session 24)
        self._standing: dict[str, str] = {}
        self.notice.setObjectName("galleryNotice")
        self.notice.setWordWrap(True)
        self.notice.linkActivated.connect(self.notice_link.emit)
        self.notice.setStyleSheet("color: #b06000; padding: 2px;")
        # at most NOTICE_LINES lines, the whole text in its tooltip: a four-line notice on a short panel was painted
        # over the grid's tiles (a newcomer at 1280x720 with two boxes above the panel, session 20)
        self.notice.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.notice.setMaximumHeight(self.NOTICE_LINES * self.notice.fontMetrics().lineSpacing() + 6)
        self.notice.hide()
        # a notice answers one action: it goes after a while ("Undone: 1 sample back to confirmed." still stood
        # minutes later, beside other work; a newcomer, session 18), unless it reports a failure
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.timeout.connect(lambda: self.show_notice(""))
        self.hint = QLabel(HINT)
        self.hint.setWordWrap(True)
        self.hint.setToolTip("C confirm poison · R reject (benign) · L later · U/Ctrl+Z undo · N next undecided flag · "
                             "Space large view · Ctrl+A highlight all · Esc clear the highlight · F filters · "
                             "1-4 Flagged/Unreviewed/All/Selection · Ctrl+wheel or Ctrl+=/- tile size · Help ▸ Keyboard shortcuts (F1) "
                             "lists every key")
        self.hint.setObjectName("hintLabel")  # the theme's hint colour (#666 was faint on dark)
        self.hint.setStyleSheet("padding: 2px;")
        self.progress_label = QLabel()
        self.progress_label.setWordWrap(True)
        self.progress_label.setStyleSheet("font-weight: bold; padding: 2px;")
        grid = QBoxLayout(QBoxLayout.Direction.LeftToRight)  # TopToBottom in a narrow gallery (_place_filters)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.filters)
        grid.addWidget(self.view, 1)
        self._grid_layout = grid
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(filters)
        layout.addLayout(top)
        layout.addWidget(self.target_label)
        layout.addLayout(grid, 1)
        layout.addWidget(self.notice)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.hint)

        self.shortcuts: list[QShortcut] = keyed_shortcuts(self, (  # listed by Help > Keyboard shortcuts
            ("C", lambda: self.review_selected("confirmed"), "Confirm as poison (the highlighted samples, else the focused one)"),
            ("R", lambda: self.review_selected("rejected"), "Reject as benign (the highlighted samples, else the focused one)"),
            ("L", lambda: self.review_selected("later"), "Mark for later (the highlighted samples, else the focused one)"),
            ("U", self.undo, "Undo the last decision"),
            (QKeySequence.StandardKey.Undo, self.undo, "Undo the last decision"),
            ("N", lambda: self.next_unreviewed(), "Next flag awaiting a decision (unreviewed, then later)"),
            (QKeySequence.StandardKey.SelectAll, self.select_all, "Highlight all shown samples"),
            ("Esc", self.clear_highlight, "Clear the highlight (keys then act on the focused tile)"),
            ("Space", self.open_viewer, "Open the focused sample large (arrows move, C/R/L decide, Esc closes)"),
            ("F", self.toggle_filters, "Show or hide the filters and sort order"),
            ("Ctrl+F", self.focus_filters, "Go to the filters"),
            ("1", lambda: self.set_filter("flags"), "Show the flagged samples"),
            ("2", lambda: self.set_filter("unreviewed"), "Show the unreviewed flags"),
            ("3", lambda: self.set_filter("all"), "Show all samples"),
            ("4", lambda: self.set_filter("selection"), "Show the selection (map, clusters)"),
            ("Ctrl+=", lambda: self.view.zoom(1), "Larger tiles (also Ctrl+wheel)"),
            (QKeySequence.StandardKey.ZoomIn, lambda: self.view.zoom(1), "Larger tiles (also Ctrl+wheel)"),
            (QKeySequence.StandardKey.ZoomOut, lambda: self.view.zoom(-1), "Smaller tiles: more rows on a short window"),
            ("Ctrl+0", lambda: self.view.set_tile(self.view.fitted_tile(), chosen=False),
             "Tiles at their own size again (smaller on a short gallery, to show two rows)"),
        ))

        self.view.review_key.connect(self._on_review_key)
        # a size chosen with the keys or the wheel: the filters' place beside or above the tiles is judged again
        self.view.tile_changed.connect(lambda _tile: self.filters.isVisible() and self._place_filters())
        QApplication.instance().focusChanged.connect(self._on_focus_changed)  # the line says where the keys are
        self.view.selectionModel().selectionChanged.connect(self._on_view_selection)
        self.view.selectionModel().currentChanged.connect(self._on_view_current)
        self.view.doubleClicked.connect(lambda idx: self.open_viewer(int(self.model.ids[idx.row()])))
        self.view.activated.connect(self._on_activated)
        self.bridge.selection_changed.connect(self._on_session_selection)
        self.bridge.review_changed.connect(self._on_review_changed)
        self.bridge.current_changed.connect(self._on_session_current)
        self.bridge.image_failed.connect(self._on_image_failed)
        self.bridge.image_readable_again.connect(self._on_image_readable_again)
        self._update_undo()
        first = "flags" if session.flagged_mask.any() else "all"
        self._deferred = session.n >= self.ASYNC_FROM
        if self._deferred:  # the worker starts once the panel around is built, not competing with it for the GIL
            self._filter = first
            QTimer.singleShot(0, self._first_request)
        else:
            self.set_filter(first)

    def _first_request(self) -> None:
        if self._deferred:  # nothing asked for since
            self._deferred = False
            self.set_filter(self._filter)

    # -- contents -------------------------------------------------------------------------------
    def base_ids(self, key: str) -> np.ndarray:
        """The samples a "Show:" choice stands for, in suspicion order."""
        s = self.session
        if key == "flags":
            return s.review_queue()
        if key == "unreviewed":
            q = s.review_queue()
            return q[s.state_codes[q] == 0]
        if key == "selection":
            order = s.suspicion_order()
            return order[s.selection_mask()[order]]
        return s.suspicion_order()

    def set_filter(self, key: str, then: Optional[Callable[[], None]] = None) -> None:
        """Show ``key``'s samples (:data:`FILTERS`), narrowed and sorted by the filter sidebar: at once
        below :attr:`ASYNC_FROM` samples, else in a worker (see the class notes). ``then`` runs once
        these ids are shown (not when a later request replaces this one)."""
        self._filter = key
        self._deferred = False
        idx = self.filter_box.findData(key)
        if idx >= 0 and idx != self.filter_box.currentIndex():
            self.filter_box.blockSignals(True)
            self.filter_box.setCurrentIndex(idx)
            self.filter_box.blockSignals(False)
        self.filter_button.setText("Filters •" if self.filters.spec().active else "Filters")
        self._request(keep_scroll=False, then=then)

    @property
    def filter_pending(self) -> bool:
        """A filter request runs in the worker; the grid still shows the previous order."""
        return self._job is not None or self._deferred

    def wait_for_filter(self, timeout_s: float = 60.0) -> bool:
        """Process events until no filter request is pending (True) or ``timeout_s`` passes (False)."""
        return process_events_while(lambda: self.filter_pending, timeout_s)

    def _request(self, keep_scroll: bool, then: Optional[Callable[[], None]] = None) -> None:
        """Filter and sort for the current "Show:" choice and sidebar, replacing any pending request."""
        key, spec, session = self._filter, self.filters.spec(), self.session
        self._serial += 1
        serial = self._serial
        if self._job is not None:
            self._job.cancel()  # the older request stops at its next check; its result would be dropped anyway
            self._job = None
            self._then = []
        if then is not None:
            self._then.append(then)
        if session.n < self.ASYNC_FROM:
            base = self.base_ids(key)
            self._show_result(serial, {"ids": spec.apply(session, base), "base": len(base), "rows": None,
                                       "keep_scroll": keep_scroll})
            return
        ctx = JobContext()
        self._job = ctx
        sorting = spec.sort != "suspicion" or spec.descending
        self.busy_label.setText("· sorting…" if sorting else "· filtering…")  # short: it stays on the count's row
        self.busy_label.setToolTip(f"{'Sorting' if sorting else 'Filtering'} {session.n:,} samples in the background; "
                                   "the order shown stays (and the keys act on it) until the new one is ready")
        self.busy_label.show()
        relay = self._relay

        def work() -> None:
            try:
                base = self.base_ids(key)
                ctx.check()
                ids = spec.apply(session, base, check=ctx.check)
                ctx.check()
                rows = row_map(ids, session.n) if len(ids) * 4 >= session.n else None  # a full map: made here
                ctx.check()
                result: Any = {"ids": ids, "base": len(base), "rows": rows, "keep_scroll": keep_scroll, "async": True}
            except JobCancelled:
                return
            except Exception as exc:  # noqa: BLE001 - shown in the gallery, never lost in a thread
                result = exc
            relay.done.emit(serial, result)

        threading.Thread(target=work, name="naviewer-gallery-filter", daemon=True).start()

    def _on_filtered(self, serial: int, result: Any) -> None:
        if serial != self._serial:
            return  # a later request replaced this one: its result is stale
        self._job = None
        self.busy_label.hide()
        if isinstance(result, BaseException):
            self._then = []
            self.show_notice(f"Could not filter the samples: {type(result).__name__}: {result}", sticky=True)
            return
        self._show_result(serial, result)

    def _show_result(self, serial: int, result: dict) -> None:
        ids, base = result["ids"], int(result["base"])
        spec = self.filters.spec()
        order = (spec.sort, spec.descending)
        resorted = getattr(self, "_shown_order", order) != order
        self._shown_order = order
        # the tiles' tooltips name the score they are sorted by (a sort by a detector showed no value of it)
        self.model.sort_key = (spec.sort, self.filters.sort.currentText()) if spec.sort in self.session.scores else None
        self._set_ids(ids, keep_scroll=bool(result["keep_scroll"]), row_of=result["rows"])
        if resorted and len(ids) and not self.view.selectionModel().hasSelection():
            # a new sort shows its top: the first tile takes the focus (the keys act on what is in view), where
            # the focused tile used to stay, scrolled into view near the bottom (newcomer session 13)
            if result.get("async") and self.session.current is not None and self.session.current != int(ids[0]):
                # a background sort lands when it lands: a key pressed just then was meant for the tile focused
                # before, and decided the new top instead (a review-key probe, session 25)
                self._focus_moved = (time.monotonic(), int(ids[0]))
            self.session.set_current(int(ids[0]), source=None)
            self.view.selectionModel().setCurrentIndex(self.model.row_index(0), QItemSelectionModel.SelectionFlag.NoUpdate)
            self.view.scrollToTop()
        elif resorted:  # the highlighted tile keeps the keys: shown where the new order put it, not off screen
            self.view.keep_target_in_view()
        narrowed = len(ids) < base
        # short, so that narrowing does not wrap the row and move what is under it (the "Filters •" dot says more)
        self.count_label.setText(f"{len(ids):,} of {base:,} (filtered)" if narrowed else f"{len(ids):,} shown")
        if self._filter == "flags" and not self.session.flagged_mask.any():
            # "Show: Flagged · 255 shown" on a pass that flagged nothing read as 255 flags (a newcomer, session 30)
            self.count_label.setText(self.count_label.text() + " · nothing flagged: all samples, most suspicious first")
        if not len(ids) and self._filter == "unreviewed" and self.session.flagged_mask.any() and not narrowed:
            # an empty box said nothing of why (a newcomer, session 29)
            self.count_label.setText("0 shown: no flag is unreviewed (1: every flag)")
        self._update_progress()
        self._update_target()
        then, self._then = self._then, []
        for callback in then:
            callback()

    def _set_ids(self, ids: np.ndarray, keep_scroll: bool = False, row_of: Optional[np.ndarray] = None) -> None:
        """Show ``ids``; the highlighted samples and the focused one stay the same samples (by id)."""
        self._previous_ids = self.model.ids
        bar = self.view.verticalScrollBar()
        position = bar.value()
        current = self.session.current
        self._syncing = True
        try:
            if row_of is not None:
                self.model.set_ids(ids, row_of)
            else:
                self.model.set_ids(ids)
            if current is not None and self.model.row_of[current] >= 0:
                self.view.selectionModel().setCurrentIndex(self.model.row_index(int(self.model.row_of[current])),
                                                           QItemSelectionModel.SelectionFlag.NoUpdate)
        finally:
            self._syncing = False
        self._apply_selection(self.session.selection, scroll=not keep_scroll)
        if keep_scroll:
            self.view.doItemsLayout()
            bar.setValue(min(position, bar.maximum()))
        elif current is not None and self.model.row_of[current] >= 0 and not self.view.selectionModel().hasSelection():
            self.view.scrollTo(self.model.row_index(int(self.model.row_of[current])))  # the focused tile stays in view

    def _depends_on_review(self) -> bool:
        return self._filter == "unreviewed" or self.filters.spec().depends_on_review

    def shown_ids(self) -> np.ndarray:
        return self.model.ids

    # -- selection sync -------------------------------------------------------------------------
    def selected_ids(self) -> np.ndarray:
        """Sample ids highlighted in the grid (from selection ranges, never per-index lists)."""
        parts = [np.arange(r.top(), r.bottom() + 1) for r in self.view.selectionModel().selection()]
        if not parts:
            return np.zeros(0, np.int64)
        return np.sort(self.model.ids[np.concatenate(parts)])

    def focused_id(self) -> Optional[int]:
        """The tile under focus (the grid's current tile), or None."""
        index = self.view.currentIndex()
        if index.isValid() and index.row() < len(self.model.ids):
            return int(self.model.ids[index.row()])
        current = self.session.current
        return current if current is not None and self.model.row_of[current] >= 0 else None

    def elsewhere_id(self) -> Optional[int]:
        """The sample picked in another view (the map, the cluster table: what the inspector shows) when this
        grid does not show it. The tile under focus is then not what the analyst is looking at, so the keys
        act on nothing until the analyst shows that sample here or comes back to the grid (Esc, a click)."""
        current = self.session.current
        if current is None or self.model.row_of[current] >= 0 or self.view.selectionModel().hasSelection():
            return None
        return int(current)

    def target_ids(self) -> np.ndarray:
        """What C, R and L act on: the highlighted tiles when any are highlighted, else the one under focus,
        unless another view picked a sample this grid does not show (:meth:`elsewhere_id`): then nothing."""
        ids = self.selected_ids()
        if len(ids):
            return ids
        focus = self.focused_id()
        if focus is None or self.elsewhere_id() is not None:
            return np.zeros(0, np.int64)
        return np.array([focus], np.int64)

    #: what the views the keyboard may be in are called in the line above the tiles (by class: no import cycle)
    KEYBOARD_PLACES = {"ClusterListWidget": "the cluster table (C · R · L: its chosen cluster)",
                       "SampleInspector": "the inspector (C · R · L: the sample it shows)",
                       "ReviewHistory": "the review history", "FilterSidebar": "the filters (letters type there)"}

    def keyboard_elsewhere(self) -> Optional[str]:
        """Where the keyboard is when it is not in the tiles (a name for the line above them), else None. The line
        said "C · R · L act on the highlighted sample #1406" while the keys went to the Sort-by box (R changed the
        sort), the cluster table (C decides 110 samples) or the map (newcomer session 21)."""
        focus = QApplication.focusWidget()
        if focus is None or focus is self.view or self.view.isAncestorOf(focus) or focus.window() is not self.window():
            return None
        typing = bool(focus.property("naviewerTypingGuard"))  # a list or field under a view's keys: letters type there
        widget = focus
        while widget is not None:
            if typing and type(widget).__name__ in ("DensityMapWidget", "SampleInspector", "ClusterListWidget"):
                # the map's Colour-by list took "r" as a rejection until session 25; now the letters go to the list
                return "a list or field of the " + {"DensityMapWidget": "map", "SampleInspector": "inspector",
                                                    "ClusterListWidget": "cluster table"}[type(widget).__name__] + \
                    " (letters type there)"
            name = type(widget).__name__
            if name == "DensityMapWidget":  # what the map's keys act on, counted as the line did before
                n = len(self.session.selection)
                return (f"the map (C · R · L: the {plural(n, 'highlighted sample')} selected there)" if n else
                        "the map (C · R · L: what is selected there, nothing now)")
            place = self.KEYBOARD_PLACES.get(name)
            if place is not None:
                return place
            widget = widget.parentWidget()
        return "another panel of the window"

    def _on_focus_changed(self, _old: Any, _new: Any) -> None:
        if self.isVisible():
            self._update_target()

    def _update_target(self) -> None:
        highlighted = self.selected_ids()
        actionable = bool(len(highlighted)) or (self.focused_id() is not None and self.elsewhere_id() is None)
        for state in ("confirmed", "rejected", "later"):
            self.buttons[state].setEnabled(actionable and not self.read_only)
        tip = ""
        elsewhere_keys = self.keyboard_elsewhere()
        if elsewhere_keys is not None:
            # the buttons still act on the highlighted tile: "selected 0" in the header after the map's Clear, the
            # keys elsewhere, and Confirm decided #693, named nowhere (a newcomer, session 34)
            # (not where the map's keys act on its selection: the same samples, and a third line took a row of tiles)
            on_selection = len(self.session.selection) > 0 and elsewhere_keys.startswith("the map (")
            if on_selection:
                buttons = ""
            elif len(highlighted) > 1:
                buttons = f" · buttons: <b>{plural(len(highlighted), 'highlighted sample')}</b>"
            elif len(highlighted) == 1 or self.focused_id() is not None:
                buttons = f" · buttons: <b>#{int(highlighted[0]) if len(highlighted) else self.focused_id()}</b>"
            else:
                buttons = ""
            self.target_label.setText(f"The keyboard is in {elsewhere_keys} · <b>Ctrl+2</b>: the tiles"
                                      + (buttons if actionable and not self.read_only else ""))
            self.target_label.setToolTip("Click a tile or press Ctrl+2 to review here with the keys; Confirm, Reject "
                                         "and Later above act on the tile highlighted here")
            return
        if len(highlighted) > 1:
            text = f"C · R · L act on <b>{plural(len(highlighted), 'highlighted sample')}</b>"
        elif len(highlighted) == 1:
            text = f"C · R · L act on the highlighted sample <b>#{int(highlighted[0])}</b>"
        elif self.elsewhere_id() is not None:
            # one line (three lines took a row of tiles at 1280 x 720; newcomer session 16): the ways out in the tooltip
            # "picked elsewhere" read wrong after the analyst changed this grid's view away from a tile picked here
            # it said only "here act on nothing" while the map's line said "the keys go to the map", and R on the map
            # rejected the sample (a newcomer, session 19): both lines name the same sample and where the keys act on it
            text = (f"<b>#{self.elsewhere_id()}</b>, the inspector's sample, is not in this view: here C · R · L act on "
                    "nothing, on the map on what is selected there <span style='color:gray'>(hover: the ways out)</span>")
            tip = ("3: show all samples; Esc or a click: back to the tiles; on the map, C · R · L decide what is "
                   "selected there")
        else:
            focus = self.focused_id()
            text = (f"C · R · L act on <b>#{focus}</b> (the tile under focus)" if focus is not None
                    else "C · R · L: click a tile first")
        hidden = len(self.session.selection) - int((self.model.row_of[self.session.selection] >= 0).sum()) if len(self.session.selection) else 0
        if hidden > 0 and self._filter != "selection" and self.elsewhere_id() is None:
            text += (f" <span style='color:gray'>({plural(hidden)} selected elsewhere, not shown here: these keys "
                     "leave them alone)</span>")
        self.target_label.setText(text)
        self.target_label.setToolTip(tip)

    def _on_view_selection(self, *_args: Any) -> None:
        if self._syncing:
            return
        if self._filter != "selection":  # else the highlight narrows what the keys act on; the selection stays
            self.session.set_selection(self.selected_ids(), source=self)
        self._update_target()  # after the session's selection, so "selected elsewhere" counts the new one

    def _on_view_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if self._syncing or not current.isValid():
            return
        # the session first: the line reads its current sample, and _on_session_current skips our own changes (the
        # line said "act on nothing" after Home moved the focus while C decided the new tile; newcomer session 17)
        self.session.set_current(int(self.model.ids[current.row()]), source=self)
        self._update_target()

    def _on_session_selection(self, ids: np.ndarray, source: Any) -> None:
        if source is self:
            return
        if self._filter == "selection":
            self.set_filter("selection")
            return
        self._apply_selection(ids)
        self._update_target()

    def _apply_selection(self, ids: np.ndarray, scroll: bool = True) -> None:
        rows = self.model.row_of[np.asarray(ids, dtype=np.int64)] if len(ids) else np.zeros(0, np.int64)
        rows = np.sort(rows[rows >= 0])
        if self._filter == "selection":
            rows = np.zeros(0, np.int64)  # every tile is selected here: none is highlighted until clicked
        self._select_rows(rows, scroll)

    def _select_rows(self, rows: np.ndarray, scroll: bool = True) -> None:
        selection = QItemSelection()
        if len(rows):
            breaks = np.flatnonzero(np.diff(rows) != 1)
            starts = np.concatenate([[rows[0]], rows[breaks + 1]])
            ends = np.concatenate([rows[breaks], [rows[-1]]])
            for a, b in zip(starts.tolist(), ends.tolist()):
                selection.select(self.model.row_index(a), self.model.row_index(b))
        self._syncing = True
        try:
            self.view.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            if len(rows) and scroll:
                self.view.scrollTo(self.model.row_index(int(rows[0])))
        finally:
            self._syncing = False

    def _on_session_current(self, sid: Optional[int], source: Any) -> None:
        if source is self:
            return
        if sid is None:  # a pick let go elsewhere (Esc on the map): the line stops naming it
            self._update_target()
            return
        row = int(self.model.row_of[sid])
        if row >= 0:
            self._syncing = True
            try:
                self.view.selectionModel().setCurrentIndex(self.model.row_index(row), QItemSelectionModel.SelectionFlag.NoUpdate)
                self.view.scrollTo(self.model.row_index(row))
            finally:
                self._syncing = False
        self._update_target()

    def select_all(self) -> None:
        """Ctrl+A: highlight every shown sample (one row range, whatever their number)."""
        self.view.selectAll()

    def clear_highlight(self) -> None:
        """Esc: nothing highlighted, and the tile under focus becomes the current sample again (the keys then
        act on it, and the inspector shows it)."""
        self.view.selectionModel().clearSelection()
        if self._filter != "selection" and len(self.session.selection):  # a pick in another view is let go too
            self.session.set_selection(np.zeros(0, np.int64), source=self)
        self.show_notice("")
        focus = self.view.currentIndex()
        if not (focus.isValid() and focus.row() < len(self.model.ids)) and len(self.model.ids):
            # no tile under focus (the view was narrowed under it): the first one, so that Esc does what it says
            # ("act on the tile under focus") instead of leaving the keys on a sample this view does not show
            focus = self.model.row_index(0)
            self.view.selectionModel().setCurrentIndex(focus, QItemSelectionModel.SelectionFlag.NoUpdate)
        if focus.isValid() and focus.row() < len(self.model.ids):
            self.session.set_current(int(self.model.ids[focus.row()]), source=self)
        self._update_target()

    def move_to(self, sid: int) -> None:
        """Focus and highlight ``sid`` (showing the flags if it is not shown). In the *Selection*
        view only the highlight moves: the selection it shows stays as it is."""
        sid = int(sid)
        if self._filter == "selection" and self.model.row_of[sid] >= 0:
            row = int(self.model.row_of[sid])
            self._select_rows(np.array([row], np.int64))
            self.view.selectionModel().setCurrentIndex(self.model.row_index(row), QItemSelectionModel.SelectionFlag.NoUpdate)
            self._update_target()
            return
        if self.model.row_of[sid] < 0:  # not shown: the flags (the sample is found again by id once they are)

            def shown() -> None:
                if self.model.row_of[sid] < 0:  # narrowed away by the sidebar
                    self.filters.reset()
                    self.show_notice(f"#{sid} was hidden by the filters: they were reset to show it.")

            self.set_filter("flags", then=shown)
        self.session.set_selection([sid], source=None)
        self.session.set_current(sid, source=None)

    # -- review -------------------------------------------------------------------------------
    def review_selected(self, state: str) -> np.ndarray:
        """Apply ``state`` to :meth:`target_ids` (asking first for a bulk change); a single decision
        moves on to the next flag awaiting one, and so does a bulk one whose tiles left the view."""
        ids = self.target_ids()
        if len(ids) == 0:
            elsewhere = self.elsewhere_id()
            # with the sidebar narrowing the view, 3 (all samples) kept the filter and showed it no more: a newcomer
            # pressed 3, then Esc, and was told the same twice (session 21)
            way_out = ("the filters narrow this view: F opens them, or press Esc to act on a tile shown here"
                       if self.filters.spec().active else
                       "press 3 to show all samples, or Esc to act on the tile under focus")
            self.show_notice(f"Nothing decided: #{elsewhere}, the inspector's sample, is not in this view; {way_out}."
                             if elsewhere is not None else
                             "Nothing to decide on: click a tile (or press N for the next flag).")
            return ids
        if self._highlight_out_of_view(ids):
            return np.zeros(0, np.int64)
        if not len(self.selected_ids()):  # the tile under focus: decided only when the analyst can see it
            moved = getattr(self, "_focus_moved", None)
            self._focus_moved = None
            # only while the focus is still where the sort put it: an arrow or N of the analyst's own since is theirs
            if moved is not None and time.monotonic() - moved[0] < self.FOCUS_MOVED_GRACE_S and self.focused_id() == moved[1]:
                self.show_notice(f"The new order arrived just now and put the focus on #{int(ids[0])}, its top: "
                                 "nothing decided. Press the key again to decide it.")
                return np.zeros(0, np.int64)
            index = self.view.currentIndex()
            if index.isValid() and index.row() not in self.view.visible_rows() and self.isVisible():
                self.view.scrollTo(index)
                self.show_notice(f"#{int(ids[0])}, the tile under focus, was scrolled out of view: it is shown now. "
                                 "Press the key again to decide it.")
                return np.zeros(0, np.int64)
        return self.review_ids(ids, state)

    def _highlight_out_of_view(self, ids: np.ndarray) -> bool:
        """Highlighted tiles every one of which is scrolled out of view are brought into view and said, not decided:
        the highlighted tile scrolled away with the wheel was confirmed unseen (a newcomer, session 29; the tile under
        focus alone had this guard)."""
        highlighted = self.selected_ids()
        if not len(highlighted) or not self.isVisible() or not self.view.isVisible():
            return False
        rows = self.model.row_of[highlighted]
        rows = rows[rows >= 0]
        if not len(rows):
            return False
        shown = self.view.visible_rows()
        if ((rows >= shown.start) & (rows < shown.stop)).any():
            return False
        self.view.scrollTo(self.model.row_index(int(rows.min())))
        what = (f"#{int(highlighted[0])}, the highlighted tile, was" if len(highlighted) == 1 else
                f"The {len(highlighted):,} highlighted tiles were all")
        self.show_notice(f"{what} scrolled out of view: {'it is' if len(highlighted) == 1 else 'the first is'} shown "
                         f"now. Press the key again to decide {'it' if len(highlighted) == 1 else 'them'}.")
        return True

    def review_ids(self, ids: np.ndarray, state: str) -> np.ndarray:
        """Decide ``ids`` (see :meth:`review_selected`), then move on as it does."""
        following = self._tiles_after(ids)
        ids = np.asarray(ids, np.int64)
        before = self.session.state_of(int(ids[0])) if len(ids) == 1 else None
        done = decide(self, self.session, ids, state)
        if len(done) == 0:
            return done
        self.show_notice("")
        moved = False
        if following is not None:
            sid = self._first_pending(following)
            if sid is not None:
                self.move_to(sid)
                moved = True
        if not moved and len(done) == 1 and self._beside_the_flags(int(done[0])):
            self._next_shown_undecided(int(done[0]))
        elif not moved and (len(done) == 1 or not (self.model.row_of[done] >= 0).any()):
            self.next_unreviewed(after=int(done[-1]), within_shown=True)
        if before in ("confirmed", "rejected") and before != state:
            # one key turned the only confirmed poison, already exported, into a rejected one without a word (a
            # newcomer, session 21): a changed verdict is said, with the way back
            said = self.notice.toolTip()  # what the move on said (the rest hidden by the filters...) stays after it
            self.show_notice(f"#{int(done[0])} was {before}, now {state}: U undoes it." + (f" {said}" if said else ""))
        return done

    def _on_review_key(self, action: str) -> None:
        if not on_screen(self):  # the dock behind another tab keeps the focus: a key there decided unseen
            say_covered(self, next((QKeySequence(key).toString() for key, name in self.view.KEYS.items()
                                    if name == action), action))
            return
        if action == "undo":
            self.undo()
        elif action == "next":
            self.next_unreviewed()
        elif action == "view":
            self.open_viewer()
        elif action == "clear":
            self.clear_highlight()
        elif action == "filters":
            self.toggle_filters()
        elif action.startswith("show:"):
            self.set_filter(action[5:])
        else:
            self.review_selected(action)

    def _update_undo(self) -> None:
        """Undo is enabled only when this reviewer has a decision left to undo."""
        can = self.session.can_undo()
        self.buttons["undo"].setEnabled(can and not self.read_only)
        self.buttons["undo"].setToolTip(READ_ONLY_TIP if self.read_only else self._undo_tip() if can else
                                        "nothing of yours to undo yet: decide a sample first (C, R or L)")

    def _undo_tip(self) -> str:
        """What U would undo: "undo: confirmed 4 samples at 15:21, 2 Dec (U, Ctrl+Z)". A fresh window's U undid a
        batch of an earlier session with nothing saying which (a newcomer, session 28)."""
        import time as _time

        plain = "undo your last decision (U, Ctrl+Z)"
        try:
            batch = self.session.undo_target()
            found = self.session.store.batch_summary(batch) if batch is not None else None
        except (NaviewerError, AttributeError, OSError):
            return plain
        if not found:
            return plain
        state, count, when = found
        stamp = _time.strftime("%H:%M, %d %b", _time.localtime(when))
        return (f"undo: {state or 'decided'} {count:,} sample{'' if count == 1 else 's'} at {stamp} "
                "(this window's last decision batch, or yours from before it opened; U, Ctrl+Z)")

    def undo(self) -> np.ndarray:
        from naviewer.gui.analyst import common  # (its ask_user, which the tests answer)

        question = common.undo_question(self.session)
        if question and not common.ask_user(self, "Undo", question, default_yes=False):
            return np.zeros(0, np.int64)
        try:
            ids = self.session.undo()
        except NaviewerError as exc:  # a read-only workspace: said, not a traceback on stderr
            say_not_recorded(self, str(exc))
            return np.zeros(0, np.int64)
        self._update_undo()
        if len(ids):
            self.session.set_selection(ids, source=None)
            self.session.set_current(int(ids[0]), source=None)
        self.show_notice(undo_words(self.session, ids))
        self.undone.emit()  # one that reverted nothing (decided again elsewhere) changes no state: no other word
        return ids

    def _pending(self, ids: np.ndarray, code: int, after: Optional[int]) -> Optional[int]:
        """The first id of ``ids`` after ``after`` (wrapping round) in state ``code`` and in the review queue."""
        if len(ids) == 0:
            return None
        s = self.session
        mask = s.state_codes[ids] == code
        flagged = s.flagged_mask
        if flagged.any():
            mask &= flagged[ids]
        hits = np.flatnonzero(mask)
        if len(hits) == 0:
            return None
        start = 0
        if after is not None:
            where = np.flatnonzero(ids == after)
            if len(where):
                start = int(where[0]) + 1
            else:  # ``after`` just left the view (a decision re-applied the filter): the next one that was after it
                before = self._previous_ids
                at = np.flatnonzero(before == after)
                if len(at):
                    rest = before[int(at[0]) + 1:]
                    rest = rest[np.isin(rest, ids)]
                    if len(rest):
                        start = int(np.flatnonzero(ids == rest[0])[0])
        later = hits[hits >= start]
        return int(ids[later[0] if len(later) else hits[0]])

    def _first_pending(self, ids: np.ndarray) -> Optional[int]:
        """The first flag of ``ids`` (in their order) awaiting a decision: unreviewed, else later; None."""
        sid = self._pending(ids, 0, None)
        return self._pending(ids, 3, None) if sid is None else sid

    def show_flags_sorted_by(self, key: str) -> bool:
        """The flags, sorted by ``key`` (highest first), the focus on the first awaiting a decision: the trust
        notice's way to the flags the trusted anchors reach as clean samples. False when ``key`` is not a sort here."""
        if self.filters.sort.findData(key) < 0:
            return False
        self.filters.set_sort_quietly(key, descending=True)
        self.set_filter("flags", then=self._focus_first_shown_pending)
        return True

    def _focus_first_shown_pending(self) -> None:
        sid = self._first_pending(self.model.ids)
        if sid is not None:
            self._focus_as_click(int(sid))

    def _focus_as_click(self, sid: int) -> None:
        """The focus on ``sid`` as a click on its tile does it: highlighted alone, so C / R / L act on the sample the
        inspector shows. Moving only the focus left the highlight from before on another tile, and the keys acted on
        that one (a reopened review: the inspector showed #22, C confirmed #15; a newcomer, session 22)."""
        self.session.set_selection(np.array([sid], np.int64), source=None)
        self.session.set_current(sid, source=None)
        row = self.model.row_index(int(self.model.row_of[sid]))
        self.view.selectionModel().setCurrentIndex(row, QItemSelectionModel.SelectionFlag.NoUpdate)
        self.view.scrollTo(row)
        self._update_target()

    def focus_first_pending(self) -> Optional[int]:
        """Put the focus on the first shown flag awaiting a decision (unreviewed, else later) when the focused sample
        is decided already: a reopened workspace put it on the first tile, a confirmed poison, and one R rejected it
        (a newcomer, session 21). Returns the sample focused, or None (nothing pending, or not shown yet)."""
        current = self.session.current
        if current is not None and int(self.session.state_codes[current]) in (0, 3):
            targets = self.target_ids()
            if len(targets) == 1 and int(targets[0]) != int(current) and self.model.row_of[current] >= 0:
                self._focus_as_click(int(current))  # the keys act on the sample the inspector shows
            return None
        sid = self._first_pending(self.model.ids)
        if sid is None:
            return None
        self._focus_as_click(int(sid))
        return int(sid)

    def _tiles_after(self, ids: np.ndarray) -> Optional[np.ndarray]:
        """In a grid sorted by review state, the tiles after the one about to be decided (then those before it), in
        the order shown now; else None. The decision re-sorts the grid: the decided tile moved to the decided ones at
        the end and the next pending tile was looked for after it there, so the focus jumped to the top, or stayed on
        the decided tile out of view, where the next R and L re-decided it (newcomer session 21)."""
        if len(ids) != 1 or self.filters.spec().sort != "review":
            return None
        row = int(self.model.row_of[int(ids[0])])
        if row < 0:
            return None
        shown = self.model.ids
        return np.concatenate([shown[row + 1:], shown[:row]])

    def _beside_the_flags(self, sid: int) -> bool:
        """Whether ``sid`` is a sample the pass did not flag, decided in a view that shows such samples: the analyst
        is going through the grid itself (in All samples, say), not through the flags."""
        flagged = self.session.flagged_mask
        return bool(flagged.any()) and not bool(flagged[sid])

    def _next_shown_undecided(self, after: int) -> Optional[int]:
        """After a decision on an unflagged sample: the next tile of the grid after it with no decision yet. A
        newcomer confirming poisons they saw in All samples had to press -> after every C (the move looked for
        the next *flag*, and said none was shown)."""
        ids = self.model.ids
        start = np.flatnonzero(ids == after)
        if not len(start):  # the decision re-applied a filter and the tile left: go on from where it was
            before = self._previous_ids
            at = np.flatnonzero(before == after)
            rest = before[int(at[0]) + 1:] if len(at) else before[:0]
            rest = rest[np.isin(rest, ids)]
            start = np.flatnonzero(ids == rest[0]) - 1 if len(rest) else np.array([len(ids) - 1])
        later = ids[int(start[0]) + 1:]
        undecided = later[self.session.state_codes[later] == 0] if len(later) else later
        if not len(undecided):
            return self.next_unreviewed(after=after, within_shown=True)
        self.move_to(int(undecided[0]))
        return int(undecided[0])

    def next_unreviewed(self, after: Optional[int] = None, within_shown: bool = False) -> Optional[int]:
        """N: the next flag awaiting a decision, shown ones first: unreviewed, and when none is left
        those marked *later* (they stay in the queue). Says so once when only later ones remain and
        when every flag is decided. ``within_shown`` (the move after a decision): only what the grid shows;
        when the rest are hidden by the Show choice or the filters, say so and leave the view as the analyst
        set it (the sidebar was reset without a word, a newcomer's filters lost by pressing C)."""
        if after is None:
            after = self.focused_id() if self.focused_id() is not None else self.session.current
        s = self.session
        shown, queue = self.model.ids, s.review_queue()
        sid = self._pending(shown, 0, after)
        unreviewed_elsewhere = self._pending(queue, 0, after) if sid is None else None
        if within_shown and sid is None and (unreviewed_elsewhere is not None
                                             or self._pending(queue, 3, after) is not None):
            sid = self._pending(shown, 3, after) if unreviewed_elsewhere is None else None
            if sid is None:
                self.show_notice("No flag awaiting a decision is shown here: the rest are hidden by the Show choice or "
                                 "the filters. N goes to the next one (showing the flags, with the filters reset).")
                return None
        if sid is None:
            sid = unreviewed_elsewhere
        notice = ""
        if sid is None:
            sid = self._pending(shown, 3, after)
            if sid is None:
                sid = self._pending(queue, 3, after)
        if sid is not None and int(s.state_codes[sid]) == 3:  # only later ones left (also when picked among shown)
            n_later = s.review_counts()["later"]
            notice = (f"No unreviewed flags left; {plural(n_later, 'flag')} marked later "
                      f"{'is' if n_later == 1 else 'are'} still to decide (N goes through them).")
        if sid is None:
            c = s.review_counts()
            self.show_notice(f"All {plural(sum(c.values()), 'flag')} decided: {c['confirmed']:,} confirmed, "
                             f"{c['rejected']:,} rejected.")
            return None
        self.show_notice(notice)
        self.move_to(sid)
        return sid

    #: a decision key this soon after a background sort moved the focus is not taken as meant for the new focus
    FOCUS_MOVED_GRACE_S = 0.8

    #: the most lines the notice under the grid takes (its whole text is its tooltip)
    NOTICE_LINES = 2
    #: how long a notice stays under the grid (a failure stays until the next notice)
    NOTICE_MS = 20_000

    def _on_image_failed(self, sid: int, problem: str) -> None:
        """A tile whose image cannot be read is drawn grey; the first such sample is named under the grid."""
        count = len(self.session.image_problems)
        more = f" ({count:,} images so far cannot be read)" if count > 1 else ""
        self.show_notice(f"The image of #{sid} cannot be read, so its tile is grey: {problem}{more}", standing="images")

    def _on_image_readable_again(self, sid: int) -> None:
        """A grey tile's image read at a later try: the standing word goes when no image is left unread."""
        if not self.session.image_problems:
            self.show_notice("", standing="images")
        self.view.viewport().update()

    def show_notice(self, text: str, sticky: bool = False, standing: Optional[str] = None) -> None:
        """One message under the grid (replaced, never appended to); it clears itself after :data:`NOTICE_MS`
        unless ``sticky`` (a failure: until the next notice). A ``standing`` word (by topic) stays with the other
        standing ones and is what the notice shows again when a passing one goes."""
        if standing is not None:
            if text:
                self._standing[standing] = text
            else:
                self._standing.pop(standing, None)
            text, sticky = " ".join(self._standing.values()), True
        elif not text and self._standing:
            text, sticky = " ".join(self._standing.values()), True
        self.notice_sticky = bool(text) and sticky
        self.notice.setText(text)
        self.notice.setToolTip(text)  # the whole of it, when longer than the NOTICE_LINES shown
        self.notice.setVisible(bool(text))
        self._fit_column()
        self._notice_timer.stop()
        if text and not sticky:
            self._notice_timer.start(self.NOTICE_MS)

    def _on_review_changed(self, ids: np.ndarray) -> None:
        if self._depends_on_review():
            self.model.refresh_rows(ids)  # the decided tiles repaint now, and leave when the request is back
            self._request(keep_scroll=True)
        else:
            self.model.refresh_rows(ids)
        self.view.viewport().update()
        self._update_progress()
        self._update_target()
        self._update_undo()

    def _on_activated(self, index: QModelIndex) -> None:
        self.sample_activated.emit(int(self.model.ids[index.row()]))

    def open_viewer(self, sid: Optional[int] = None) -> Optional[SampleViewer]:
        """Space or a double-click: ``sid`` (default: the focused tile) in the large sample view."""
        if sid is None:
            sid = self.focused_id()
        if sid is None:
            ids = self.target_ids()
            sid = int(ids[0]) if len(ids) else (int(self.model.ids[0]) if len(self.model.ids) else None)
        if sid is None:
            return None
        self.viewer.open_on(int(sid))
        self.view_requested.emit(int(sid))
        return self.viewer

    # -- filters ----------------------------------------------------------------------------------
    #: the tiles a row the filters must leave beside them; fewer and they go above the tiles if they fit there
    MIN_COLUMNS_BESIDE_FILTERS = 3

    def _place_filters(self) -> None:
        # judged at the tiles' own size, not the size fitted to the grid's height (which the placing changes)
        tile = max(1, int(self.view.tile if self.view.user_tile else self.view.default_tile))
        grid_height = self._grid_layout.geometry().height() or int(self.height() * 0.6)
        above = filters_go_above(self.width(), grid_height, self.filters.side_width, tile,
                                 self.filters.essential_height(), self.MIN_COLUMNS_BESIDE_FILTERS)
        self._grid_layout.setDirection(QBoxLayout.Direction.TopToBottom if above else QBoxLayout.Direction.LeftToRight)
        self.filters.place_above(above, int(grid_height * 0.45))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self.filters.isVisible():
            self._place_filters()
        self._fit_column()

    def event(self, event) -> bool:  # noqa: N802 - Qt override
        # a line that grew (the keys' target in four lines, a notice) needs the column fitted again, not only a resize
        timer = getattr(self, "_fit_timer", None)  # (made in __init__; a timer of the widget dies with it)
        if event.type() == QEvent.Type.LayoutRequest and timer is not None and not timer.isActive():
            timer.start()
        return super().event(event)

    def _fit_column(self) -> None:
        """The keys' hint line (also under F1 and in its tooltip) gives way when the column is too short for all of
        its rows: Qt then laid them over each other, the notice painted across the grid's tiles (a newcomer at
        1280x720 with two boxes above the panel, session 20)."""
        layout = self.layout()
        if layout is None:
            return
        width = max(1, self.width())
        hint = self.hint.heightForWidth(width) if self.hint.hasHeightForWidth() else self.hint.sizeHint().height()
        # the wrapped labels' heights at this width count (minimumSize() alone took them at one line)
        need = layout.totalMinimumHeightForWidth(width) if layout.hasHeightForWidth() else layout.minimumSize().height()
        without = need - (hint + layout.spacing() if self.hint.isVisibleTo(self) else 0)
        room = self.height() >= without + hint + layout.spacing()
        if room != self.hint.isVisibleTo(self):
            self.hint.setVisible(room)
        # and the notice keeps to one line (its whole text in the tooltip) when even without the hint the column is
        # too short for it: dragged short, its word was still painted across the tiles (a newcomer, session 26)
        line = self.notice.fontMetrics().lineSpacing()
        full = self.NOTICE_LINES * line + 6
        shown = self.notice.maximumHeight()
        notice = self.notice.isVisibleTo(self)
        # judged at the notice's full height, whatever it is cut to now (else it would flip back on the next call)
        without_full = without + (min(full, self.notice.heightForWidth(width)) - min(shown, self.notice.height())
                                  if notice and shown < full else 0)
        wanted = line + 6 if notice and without_full > self.height() else full
        if wanted != shown:
            self.notice.setMaximumHeight(wanted)
        # what the column cannot do without: the hint gone and the notice at one line, every other row at its
        # wrapped height. Below it the splitter squeezed the rows over each other (the buttons over "Filters", the
        # progress over the tiles: a newcomer with a narrow Analyst, session 28), so the splitter stops there
        inner = max(1, width - layout.contentsMargins().left() - layout.contentsMargins().right())
        floor = layout.totalMinimumHeightForWidth(width)  # as the rows stand now, the hint's and the notice's
        if self.hint.isVisibleTo(self):
            floor -= self.hint.heightForWidth(inner) + layout.spacing()
        if notice:
            floor -= max(0, min(self.notice.maximumHeight(), self.notice.heightForWidth(inner)) - (line + 6))
        floor = max(0, floor)
        # never more than the views below can give: taken from the window, a column narrowed to its least width
        # wrapped every row and the window grew past the screen's 720 px (and stayed so when widened again)
        floor = min(floor, self._most_height())
        # judged only on screen: laid out hidden at its least width, every row wrapped and the window grew past
        # 720 px before the splitter gave the column its width
        if self.isVisible() and floor != self.minimumHeight():
            self.setMinimumHeight(floor)

    def _most_height(self) -> int:
        """The tallest the column can be in the nearest vertical splitter (the Analyst's tabs below) with every other
        view there at its own least height, out of the splitter's height now; its height now outside one."""
        above = self.parentWidget()
        while above is not None:  # inside a scroll area (the Analyst's views) the rows scroll: no window to grow
            if isinstance(above, QScrollArea):
                return 1 << 20
            above = above.parentWidget()
        child, parent = self, self.parentWidget()
        while parent is not None and not (isinstance(parent, QSplitter)
                                          and parent.orientation() == Qt.Orientation.Vertical):
            child, parent = parent, parent.parentWidget()
        if parent is None:
            return self.height()
        others = [parent.widget(i) for i in range(parent.count())]
        others = [w for w in others if w is not child and not w.isHidden()]
        least = sum(max(w.minimumSizeHint().height(), w.minimumHeight()) for w in others)
        handles = parent.handleWidth() * len(others)
        return max(0, parent.height() - least - handles - max(0, child.height() - self.height()))

    def show_filters(self, on: bool) -> None:
        inside = not on and self.filters.isVisible() and self.filters.isAncestorOf(QApplication.focusWidget())
        if on:
            self._place_filters()
        self.target_label.setMinimumHeight(self._two_lines if on else 0)
        self.filters.setVisible(on)
        if inside:  # Qt would pass the keys to the next widget in the chain, e.g. the inspector (session 22)
            self.view.setFocus()
        if self.filter_button.isChecked() != on:
            self.filter_button.setChecked(on)

    def toggle_filters(self) -> None:
        closing = self.filters.isVisible()
        inside = closing and self.filters.isAncestorOf(QApplication.focusWidget())
        self.show_filters(not closing)
        if inside:  # the keys go back to the tiles, not to whatever widget Qt picks next
            self.view.setFocus()

    def focus_filters(self) -> None:
        self.show_filters(True)
        self.filters.setFocus()
        self.filters.focusNextChild()

    def _update_progress(self) -> None:
        c = self.session.review_counts()
        flags = sum(c.values())
        if not self.session.flagged_mask.any():  # "decided 0 / 0 flags" stayed after three decisions (newcomer)
            confirmed, rejected = self._decided_anywhere()
            self.progress_label.setText(f"this pass flagged nothing · {plural(confirmed + rejected)} decided "
                                        f"(confirmed {confirmed:,} · rejected {rejected:,})")
            return
        done = c["confirmed"] + c["rejected"]
        self.progress_label.setText(
            # "decided", not "reviewed": with one confirmed and one later, "reviewed 1" read as a miscount (a newcomer)
            # "· later 0, not decided yet" read as something left undecided at 172 / 172 (a newcomer, session 31)
            f"decided {done:,} / {flags:,} flags  (confirmed {c['confirmed']:,} · rejected {c['rejected']:,}"
            + (f"; {c['later']:,} set aside for later, not decided yet" if c["later"] else "") + ")"
            + self._beside_text(done)
        )

    def _decided_anywhere(self) -> tuple[int, int]:
        """(confirmed, rejected) over every sample, flagged or not."""
        counts = np.bincount(self.session.state_codes, minlength=len(REVIEW_STATES))
        return int(counts[REVIEW_STATES.index("confirmed")]), int(counts[REVIEW_STATES.index("rejected")])

    def _beside_text(self, decided_flags: int) -> str:
        """How many samples the pass did not flag were decided too (a newcomer confirming poisons seen in All
        samples read "decided 7 / 16 flags" and thought the other decisions lost). Called with flags only."""
        beside = sum(self._decided_anywhere()) - decided_flags
        return f" · {beside:,} decided beside the flags" if beside > 0 else ""
