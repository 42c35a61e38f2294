"""Ranked clusters of flagged samples: size, mean MinDist, anchor reach, classes, review progress, every
other detector's view of the cluster (issue 13: side by side), thumbnails.

Selecting a row selects its members everywhere (map, gallery); the buttons confirm or reject a
whole cluster in one decision batch (one undo step). Rows are built a window at a time
(:data:`WINDOW` clusters, thumbnails included): the next window when the table is scrolled to its
end, or when a cluster past the loaded ones is selected, so 100k clusters of a 10M-sample
workspace never become 100k rows at once.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from naviewer.analysis.clusters import REACH_LEGEND
from naviewer.analysis.session import AnalysisSession
from naviewer.gui.analyst.common import READ_ONLY_TIP, STATE_COLOURS, SessionBridge, ThumbnailCache, decide, fmt, keyed_shortcuts, plural
from naviewer.gui.analyst.detector_scores import AGREEMENT_KEY, DetectorScore, detector_table

COLUMNS = ("#", "size", "mean density", "mean MinDist", "anchor reach", "classes", "decided", "representatives")
REVIEW_COLUMN, STRIP_COLUMN = COLUMNS.index("decided"), COLUMNS.index("representatives")
#: MinDist is measured for the density candidates only: a cluster that label spreading or a rule added has none
NO_MINDIST = ("– : no member of this cluster was a density candidate, and MinDist is measured for candidates only. "
              "It was flagged by label spreading (or a rule after it) from the candidates' flags: check its images.")
COLUMN_TIPS = {
    "mean density": "mean kNN density of the members (higher = denser; poisons tend to be dense)",
    "mean MinDist": "mean distance of the members to the nearest class's trusted anchors (higher = farther from every "
                    "class); '–' when no member was a density candidate",
    "anchor reach": REACH_LEGEND + " '–' when the pass did not measure it (the anchor-reach guard was off or had "
                    "nothing to judge).",
    "classes": "the members' labels in the dataset (a poison carries the label its attack gave it)",
    "decided": "members confirmed or rejected / all members; in brackets how many are confirmed (C), rejected (R) and "
               "marked later (L, not decided yet)",
}


def detector_tip(item: DetectorScore) -> str:
    """The header tooltip of a detector's column."""
    if item.key == AGREEMENT_KEY:
        return f"the mean over the members of {item.note}"
    return (f"where the members stand by {item.label}'s score: the share of all samples scored at least as suspicious "
            f"as the median member (top 1 % = among the 1 % it finds most suspicious; a cluster of poisons it sees "
            f"sits near the top; bottom 5 % = among the 5 % it finds least suspicious). {item.describe()}")


def detector_cell(item: DetectorScore, value: float) -> str:
    if not np.isfinite(value):
        return "–"
    if getattr(item, "refused", ""):  # its score ranks nothing (PatchSearch's classifier learned no trigger)
        return "no verdict"
    if item.key == AGREEMENT_KEY:
        # a mean over the members: whole when they agree ("1 of 3"; "1.0 of 3" read as a glitch)
        whole = abs(value - round(value)) < 0.05
        return f"{value:.0f} of {len(item.voters)}" if whole else f"{value:.1f} of {len(item.voters)} (mean)"
    percent = 100 * value
    if percent > 50:  # "top 95 %" read as suspicious; it is among the least suspicious (a newcomer, session 32)
        low = 100 - percent
        if low < 0.05:  # tied with the lowest (a 0/1 score it does not flag them by): no share to say
            return "lowest (tied)"
        return f"bottom {low:.1f} %" if low < 10 else f"bottom {low:.0f} %"
    return f"top {percent:.1f} %" if percent < 10 else f"top {percent:.0f} %"


#: cluster rows built per window (the first window at once, the next when scrolled to the end)
WINDOW = 500
MAX_ROWS = WINDOW  # the old name (the table used to stop here)


def one_group(method: str, n_clusters: int) -> bool:
    """Whether a pass's flags form one group rather than a cluster: a detector that scores samples one by one
    puts its flags in one group, and "1 cluster" of 11 flags scattered over four classes read as a dense group
    (a newcomer, session 32)."""
    return int(n_clusters) == 1 and str(method or "") not in ("", "dift", "dbscan", "optics")


def cluster_count_words(method: str, n_clusters: int) -> str:
    """"1 group" for :func:`one_group`, else "N cluster(s)": the panel header and the cluster table say the same."""
    return "1 group" if one_group(method, n_clusters) else plural(int(n_clusters), "cluster")


class _NumItem(QTableWidgetItem):
    """Sorts by the number it holds, not by its text."""

    def __init__(self, value: float, text: str) -> None:
        super().__init__(text)
        self.value = float(value)
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, _NumItem):
            a = float(self.value) if np.isfinite(self.value) else -np.inf
            b = float(other.value) if np.isfinite(other.value) else -np.inf
            return bool(a < b)
        return super().__lt__(other)


class ClusterListWidget(QWidget):
    """The ranked cluster table with bulk actions.

    Constructor: ``ClusterListWidget(session, parent=None, thumbs=6, thumb_size=40)``.
    Signal ``cluster_selected(int)`` (cluster index in ``session.clusters()``).
    """

    #: the workspace is open read-only (the panel's set_read_only): the cluster buttons stay grey
    read_only = False

    cluster_selected = Signal(int)
    #: a word for the analyst (the panel shows it): why a key did nothing
    notice = Signal(str)
    #: rows whose thumbnail strips are made at once (what a docked table shows); the rest's strips are made
    #: a few rows at a time once the event loop runs (3,000 thumbnails were ~2 s of the panel's open)
    STRIPS_AT_ONCE = 8
    #: strips made per turn of the event loop after those (~6 ms a strip of six thumbnails)
    STRIPS_PER_TURN = 4

    def __init__(self, session: AnalysisSession, parent: Optional[QWidget] = None, thumbs: int = 6, thumb_size: int = 40) -> None:
        super().__init__(parent)
        self.session = session
        self.bridge = SessionBridge.of(session)
        self.thumbs = thumbs
        self.thumb_size = thumb_size
        self.cache = ThumbnailCache(session, thumb_size, capacity=WINDOW * thumbs)
        self._syncing = False
        #: clusters (in ``session.clusters()`` order) that have a row so far
        self.loaded = 0
        #: the thumbnail cells whose strips are still to be made, by cluster (in the order they were added)
        self._strips_todo: dict[int, QTableWidgetItem] = {}
        self._strip_timer = QTimer(self)
        self._strip_timer.setInterval(0)
        self._strip_timer.timeout.connect(self._next_strips)

        # every other detector of the workspace gets a column, between the review progress and the thumbnails
        self.detectors = [item for item in detector_table(session) if len(item.score) == session.n]
        self.columns = COLUMNS[:-1] + tuple(item.label for item in self.detectors) + COLUMNS[-1:]
        self.strip_column = len(self.columns) - 1
        self.table = QTableWidget(0, len(self.columns))
        self.table.setHorizontalHeaderLabels(self.columns)
        for column, tip in COLUMN_TIPS.items():
            self.table.horizontalHeaderItem(COLUMNS.index(column)).setToolTip(tip)
        for offset, item in enumerate(self.detectors):
            self.table.horizontalHeaderItem(REVIEW_COLUMN + 1 + offset).setToolTip(detector_tip(item))
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setIconSize(QSize(thumbs * (thumb_size + 2), thumb_size))
        self.table.verticalHeader().setDefaultSectionSize(thumb_size + 6)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._on_row_selected)
        self.table.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self.table.installEventFilter(self)

        self.summary = QLabel()
        self._summary_text = ""  # the counts line; _update_buttons adds the hint while no row is chosen
        self.summary.setWordWrap(True)  # wraps rather than widening the panel
        self.buttons: dict[str, QPushButton] = {}
        bar = QHBoxLayout()
        bar.addWidget(self.summary, 1)
        for state, text in (("confirmed", "Confirm cluster"), ("rejected", "Reject cluster"), ("later", "Later")):
            button = QPushButton(text)
            button.setToolTip(f"mark every member of the selected cluster {state} (one undo step)")
            button.clicked.connect(lambda _c=False, s=state: self.review_cluster(s))
            self.buttons[state] = button
            bar.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)

        self.shortcuts: list[QShortcut] = []  # listed by Help > Keyboard shortcuts
        for key, state, text in (("C", "confirmed", "Confirm every member of the highlighted cluster"),
                                 ("R", "rejected", "Reject every member of the highlighted cluster"),
                                 ("L", "later", "Mark the highlighted cluster for later")):
            self.shortcuts += keyed_shortcuts(self.table, [(key, lambda s=state: self.review_cluster(s), text)],
                                              Qt.ShortcutContext.WidgetShortcut)

        self.bridge.selection_changed.connect(self._on_session_selection)
        self.bridge.review_changed.connect(lambda _ids: self._update_progress())
        self.populate()

    # -- table --------------------------------------------------------------------------------
    def populate(self) -> None:
        """Rebuild the table from the first window of clusters."""
        self.loaded = 0
        self._strips_todo.clear()
        self._syncing = True
        self.table.setSortingEnabled(False)
        self.table.setRowCount(0)
        self._syncing = False
        self.load_more()
        if not self.session.clusters():  # load_more had nothing to add: the summary and the buttons say so anyway
            self._update_progress()  # (the buttons stayed live over an empty table, and no line said why)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)

    def can_load_more(self) -> bool:
        return self.loaded < len(self.session.clusters())

    def load_more(self, until: Optional[int] = None) -> None:
        """Add the next window of cluster rows (or the windows up to cluster ``until``)."""
        clusters = self.session.clusters()
        stop = self.loaded + WINDOW if until is None else (int(until) // WINDOW + 1) * WINDOW
        stop = min(stop, len(clusters))
        if stop <= self.loaded:
            return
        header = self.table.horizontalHeader()
        column, order = header.sortIndicatorSection(), header.sortIndicatorOrder()
        self._syncing = True
        self.table.setSortingEnabled(False)
        first = self.table.rowCount()
        self.table.setRowCount(first + stop - self.loaded)
        for row, cl in enumerate(clusters[self.loaded:stop], start=first):
            self._fill_row(row, cl)
        self.loaded = stop
        self.table.setSortingEnabled(True)
        if self.table.rowCount() > first:
            self.table.sortByColumn(column if 0 <= column < len(self.columns) else 0, order)
        self._syncing = False
        self._update_progress()

    def _on_scrolled(self, value: int) -> None:
        if value >= self.table.verticalScrollBar().maximum() and self.can_load_more():
            self.load_more()

    def _fill_row(self, row: int, cl: Any) -> None:
        first = _NumItem(cl.cluster_id + 1, str(cl.cluster_id + 1))
        first.setData(Qt.ItemDataRole.UserRole, cl.cluster_id)
        self.table.setItem(row, 0, first)
        self.table.setItem(row, 1, _NumItem(cl.size, f"{cl.size:,}"))
        self.table.setItem(row, 2, _NumItem(cl.mean_density, fmt(cl.mean_density)))
        mindist = _NumItem(cl.mean_mindist, fmt(cl.mean_mindist))
        if not np.isfinite(cl.mean_mindist):  # a newcomer saw "–" and nothing that said why
            mindist.setToolTip(NO_MINDIST)
        self.table.setItem(row, 3, mindist)
        reach = cl.anchor_reach  # two decimals, as naviewer review prints it (0.06006 read as false precision)
        self.table.setItem(row, 4, _NumItem(reach, f"{reach:.2f}" if np.isfinite(reach) else "–"))
        comp = ", ".join(f"{self.session.class_name(lab)} {n}" for lab, n in cl.composition[:3])
        if len(cl.composition) > 3:
            comp += f", +{len(cl.composition) - 3} more"
        self.table.setItem(row, 5, QTableWidgetItem(comp))
        self.table.setItem(row, REVIEW_COLUMN, _NumItem(0, ""))
        for offset, item in enumerate(self.detectors):
            value = item.top_share(cl.members)
            # sorted ascending = the clusters a detector finds most suspicious first (the agreement: most detectors)
            key = -value if item.key == AGREEMENT_KEY else value
            self.table.setItem(row, REVIEW_COLUMN + 1 + offset, _NumItem(key, detector_cell(item, value)))
        thumbs = QTableWidgetItem()
        if row < self.STRIPS_AT_ONCE:
            self._set_strip(thumbs, cl)
        else:
            self._strips_todo[cl.cluster_id] = thumbs
            self._strip_timer.start()
        self.table.setItem(row, self.strip_column, thumbs)

    def _set_strip(self, thumbs: QTableWidgetItem, cl: Any) -> None:
        strip = self._strip(cl.representatives)
        if strip is not None:
            thumbs.setData(Qt.ItemDataRole.DecorationRole, strip)
        else:
            thumbs.setText(", ".join(f"#{i}" for i in cl.representatives))

    @property
    def strips_pending(self) -> int:
        """How many rows still wait for their thumbnail strip."""
        return len(self._strips_todo)

    def _next_strips(self) -> None:
        clusters = self.session.clusters()
        for _ in range(min(self.STRIPS_PER_TURN, len(self._strips_todo))):
            cid = next(iter(self._strips_todo))
            self._set_strip(self._strips_todo.pop(cid), clusters[cid])
        if not self._strips_todo:
            self._strip_timer.stop()

    def _strip(self, ids: np.ndarray) -> Optional[QPixmap]:
        size = self.thumb_size
        pix = QPixmap(self.thumbs * (size + 2), size)
        pix.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pix)
        any_image = False
        for k, sid in enumerate(ids[: self.thumbs]):
            thumb = self.cache.get(int(sid))
            if thumb is None:
                continue
            any_image = True
            painter.drawPixmap(k * (size + 2) + (size - thumb.width()) // 2, (size - thumb.height()) // 2, thumb)
        painter.end()
        return pix if any_image else None

    def _row_cluster(self, row: int) -> int:
        return int(self.table.item(row, 0).data(Qt.ItemDataRole.UserRole))

    def _update_progress(self) -> None:
        clusters = self.session.clusters()
        for row in range(self.table.rowCount()):
            cl = clusters[self._row_cluster(row)]
            c = self.session.review_counts(cl.members)
            done = c["confirmed"] + c["rejected"]
            item = self.table.item(row, REVIEW_COLUMN)
            item.value = float(done / max(cl.size, 1))
            text = f"{done}/{cl.size}"
            extras = [f"{c[k]} {k[0].upper()}" for k in ("confirmed", "rejected", "later") if c[k]]
            item.setText(text + (f" ({' '.join(extras)})" if extras else ""))
            if done == cl.size:
                main = "confirmed" if c["confirmed"] >= c["rejected"] else "rejected"
                colour = QColor(STATE_COLOURS[main])
                colour.setAlpha(70)
                item.setBackground(colour)
            else:
                item.setBackground(QColor(0, 0, 0, 0))
        total = self.session.review_counts()
        pending = total["unreviewed"] + total["later"]
        if not clusters:  # an empty table with live buttons said nothing about why
            self._summary_text = ("No flagged clusters: this detection pass flagged nothing to review here."
                                  if not sum(total.values()) else
                                  f"{sum(total.values()):,} flags, in no cluster: review them in the gallery.")
        else:
            method = str(getattr(self.session, "method", "") or "")
            head = (f"1 group ({method} scores samples one by one; its flags, grouped here by embedding neighbours, "
                    "need not be one dense cluster)" if one_group(method, len(clusters))
                    else plural(len(clusters), 'cluster'))
            self._summary_text = (
                f"{head} · {plural(sum(total.values()), 'flag')} · {pending:,} awaiting a decision"
                + (f" (the top {self.loaded:,} listed; scroll down for more)" if len(clusters) > self.loaded else "")
            )
        self._update_buttons()

    #: said after the summary while no row is chosen: three grey buttons beside the only cluster read as broken (a
    #: GUI sweep, session 23); the tooltip alone said why
    CHOOSE_HINT = " · click a row to decide a whole cluster"

    def _update_buttons(self) -> None:
        """The cluster buttons act on the selected cluster: disabled, with a tooltip that says so, without one."""
        selected = self.selected_cluster() is not None
        for state, button in self.buttons.items():
            button.setEnabled(selected and not self.read_only)
            button.setToolTip(READ_ONLY_TIP if self.read_only else
                              f"mark every member of the selected cluster {state} (one undo step)" if selected
                              else "select a cluster in the table first")
        hint = self.CHOOSE_HINT if self.table.rowCount() and not selected else ""
        self.summary.setText(self._summary_text + hint)

    # -- selection ----------------------------------------------------------------------------
    def selected_cluster(self) -> Optional[int]:
        rows = self.table.selectionModel().selectedRows()
        return self._row_cluster(rows[0].row()) if rows else None

    def select_cluster(self, index: int) -> None:
        """Select cluster ``index`` (in ``session.clusters()`` order) here and, through the session, everywhere."""
        if index >= self.loaded:
            self.load_more(until=index)
        for row in range(self.table.rowCount()):
            if self._row_cluster(row) == index:
                self.table.selectRow(row)
                return

    def _on_row_selected(self) -> None:
        self._update_buttons()
        if self._syncing:
            return
        index = self.selected_cluster()
        if index is None:
            return
        self.session.select_cluster(index, source=self)
        members = self.session.clusters()[index].members
        self.session.set_current(int(members[0]), source=self)
        self.cluster_selected.emit(index)

    def _on_session_selection(self, ids: np.ndarray, source: Any) -> None:
        if source is self:
            return
        match = None
        for cl in self.session.clusters():
            if cl.size == len(ids) and np.array_equal(np.sort(cl.members), ids):
                match = cl.cluster_id
                break
        if match is not None and match >= self.loaded:
            self.load_more(until=match)
        self._syncing = True
        try:
            if match is None:
                self.table.clearSelection()
            else:
                for row in range(self.table.rowCount()):
                    if self._row_cluster(row) == match:
                        self.table.selectRow(row)
                        break
        finally:
            self._syncing = False

    #: the last notice said "No cluster is chosen" (the next choice replaces it)
    _said_none_chosen = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """↑ ↓ (or Space) with no cluster chosen choose the row under the table's cursor: with one cluster the arrows
        had nowhere to move, chose nothing, and C kept saying "No cluster is chosen" (newcomer session 18)."""
        if (watched is self.table and event.type() == QEvent.Type.KeyPress and self.table.rowCount()
                and event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_Space)
                and not self.table.selectionModel().hasSelection()):
            row = self.table.currentRow()
            self.table.selectRow(row if 0 <= row < self.table.rowCount() else 0)
            if self._said_none_chosen:  # "No cluster is chosen" stood on after Space chose one (a newcomer, session 19)
                self._said_none_chosen = False
                self.notice.emit(f"Cluster {self.selected_cluster() + 1} chosen: C · R · L decide it."
                                 if self.selected_cluster() is not None else "")
            return True
        return super().eventFilter(watched, event)

    # -- bulk review --------------------------------------------------------------------------
    def review_cluster(self, state: str, index: Optional[int] = None) -> np.ndarray:
        index = self.selected_cluster() if index is None else index
        if index is None:
            self.notice.emit("No cluster is chosen, so nothing was decided: ↑ ↓ or Space choose one, then C · R · L "
                             "decide it.")
            self._said_none_chosen = True
            return np.zeros(0, np.int64)
        done = decide(self, self.session, self.session.clusters()[index].members, state)
        if len(done):  # replaces the "No cluster is chosen" line, which stayed after the cluster was decided
            written = len(getattr(self.session, "last_written", done))
            # "110 confirmed" while the batch U undoes held 109: one was confirmed already (a newcomer, session 29)
            already = (f"; {len(done) - written:,} of them were {state} already, so U undoes the other {written:,}"
                       if 0 < written < len(done) else " (U undoes it)")
            self.notice.emit(f"Cluster {index + 1}: {len(done):,} samples {state}{already}.")
        return done
