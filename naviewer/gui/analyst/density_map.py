"""Density map: every sample's 2-D embedding, coloured by density rank, class or review state.

Built for 50k+ points (ecosystem.md section 3): one ScatterPlotItem per colour class with a shared
brush (never per-point brushes), small overlay items for flags, candidates, the selection and the
current sample, and hit-testing in our own cKDTree instead of ``pointsAt``. Above
``image_threshold`` points the base layer is a log-count 2-D histogram (ImageItem) with the same
overlays. Selection: click, box (B) or lasso (S) drag; Shift adds; Esc clears; G pans.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QPainterPath, QPalette, QPen, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QComboBox,
    QFrame,
    QGraphicsPathItem,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from scipy.spatial import cKDTree

from naviewer.analysis.review import REVIEW_STATES
from naviewer.analysis.session import AnalysisSession
from naviewer.gui.analyst.common import (
    CANDIDATE_COLOUR,
    FLAG_COLOUR,
    SELECTION_COLOUR,
    STATE_COLOURS,
    VIRIDIS,
    SessionBridge,
    ThumbnailCache,
    class_colour,
    fmt,
    keyed_shortcuts,
    process_events_while,
)
from naviewer.gui.analyst.detector_scores import PREFIX as DETECTOR_PREFIX
from naviewer.gui.analyst.detector_scores import detector_table
from naviewer.gui.flow_layout import FlowLayout
from naviewer.gui.theme import sync_pyqtgraph
from naviewer.errors import JobCancelled
from naviewer.jobs import JobContext

COLOUR_MODES = {"density": "density rank", "class": "class", "review": "review state"}
#: offered only in evaluation mode, on a workspace with ground truth (a crafted attack): what the attack poisoned
TRUTH_MODE = "truth"
TRUTH_LABEL = "ground truth (evaluation)"
DENSITY_BINS = [(0.0, 0.01, "top 1%"), (0.01, 0.05, "1-5%"), (0.05, 0.2, "5-20%"), (0.2, 0.5, "20-50%"), (0.5, 1.01, "50-100%")]
DENSITY_COLOURS = [VIRIDIS[9], VIRIDIS[7], VIRIDIS[5], VIRIDIS[3], VIRIDIS[1]]


def _luminance(rgb: tuple) -> float:
    """Relative luminance (WCAG) of an 8-bit RGB colour."""
    lin = [(c / 255) / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb[:3]]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def on_background(rgb: tuple, dark: bool) -> tuple:
    """``rgb`` made readable on the theme's plot background: on a dark one, viridis' purple and blue end (half of
    every sample, the 50-100 % band) all but vanished (a newcomer saw an empty map), so a colour darker than
    luminance 0.16 (3:1 against the dark background) is blended towards a pale lavender just far enough to reach
    it; the lighter bands stay viridis, and the order of the bands is kept."""
    out = tuple(int(c) for c in rgb[:3])
    if not dark:
        return out
    pale, step = (215, 215, 240), 0
    while _luminance(out) < 0.16 and step < 20:
        step += 1
        out = tuple(int(round(c + step / 20 * (p - c))) for c, p in zip(rgb[:3], pale))
    return out


def colour_heading(mode: str, mode_text: str, selection: bool) -> list[str]:
    """The legend's words before the colours: what they are and, with a selection, what their counts say
    (a newcomer read "top 1% 0 / 15" as nothing in particular, then "(selected of each)" as cryptic; now
    "density rank (how many of each are selected): top 1% 0 of 15")."""
    words = [mode_text] if mode not in ("class", "review") else []  # density, a detector's score, the agreement
    if selection:
        # "(selected of each)" still read as cryptic to a newcomer (session 12): say what the two numbers are
        words.append("(how many of each are selected)" if words else "how many of each are selected")
    return [f"<i>{' '.join(words)}</i>:"] if words else []


def legend_html(parts: list[str]) -> str:
    """The legend's entries joined: an entry never breaks inside ("top 1% 20 of 20" stays on one line), the
    lines break between entries, and the heading (:func:`colour_heading`) may break between its words (kept
    whole, "(how many of each are selected)" widened the map's minimum and narrowed the gallery at 1280x720)."""
    return " &nbsp; ".join(part if part.startswith("<i>") else f"<span style='white-space:nowrap'>{part}</span>"
                           for part in parts)


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorised over points, bounding-box prefiltered (lasso selection)."""
    if len(polygon) < 3 or len(points) == 0:
        return np.zeros(len(points), bool)
    lo, hi = polygon.min(axis=0), polygon.max(axis=0)
    cand = np.flatnonzero((points[:, 0] >= lo[0]) & (points[:, 0] <= hi[0]) & (points[:, 1] >= lo[1]) & (points[:, 1] <= hi[1]))
    x, y = points[cand, 0], points[cand, 1]
    inside = np.zeros(len(cand), bool)
    px, py = polygon[:, 0], polygon[:, 1]
    qx, qy = np.roll(px, -1), np.roll(py, -1)
    for x1, y1, x2, y2 in zip(px, py, qx, qy):
        crosses = (y1 > y) != (y2 > y)
        if not crosses.any():
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < xint)
    out = np.zeros(len(points), bool)
    out[cand[inside]] = True
    return out



#: above this many points the base layer is a density image: measured with ``naviewer bench gui --crossover``
#: (docs/performance.md): the scatter repaints in 17-24 ms up to 100k points and 35-50 ms at 125-150k on
#: 2 loaded cores, the image in 5-14 ms at any size; below 100k the scatter's single points are worth it
IMAGE_THRESHOLD = 100_000
def _grid_counts(pts: np.ndarray, lo: np.ndarray, span: np.ndarray, bins: int, check: Any = None) -> np.ndarray:
    """Points per cell of a bins x bins grid over [lo, lo + span] (what ``np.histogram2d`` gives for
    equal bins, the top edge included in the last bin) by one bincount: ~10x faster at 10M points.
    In blocks of 1M points (small temporaries; a worker thread gives the GIL back between them);
    ``check`` (a job's cancel check) is called between blocks."""
    counts = np.zeros(bins * bins, np.int64)
    for start in range(0, len(pts), BLOCK):
        block = pts[start:start + BLOCK]
        x = block[:, 0] - lo[0]  # the same operations in the same order as ((x - lo) / span * bins)
        x /= span[0]
        x *= bins
        ix = x.astype(np.int64)
        y = block[:, 1] - lo[1]
        y /= span[1]
        y *= bins
        iy = y.astype(np.int64)
        np.clip(ix, 0, bins - 1, out=ix)
        np.clip(iy, 0, bins - 1, out=iy)
        ix *= bins
        ix += iy
        counts += np.bincount(ix, minlength=bins * bins)
        if check is not None:
            check()
    return counts.reshape(bins, bins).astype(np.float64)


#: points per block of the map's per-N work (bincounts, bin codes): small temporaries, and a worker thread
#: holds the GIL for one block at a time at most
BLOCK = 1 << 20


def group_ids(codes: np.ndarray, k: int) -> list[np.ndarray]:
    """``[np.flatnonzero(codes == c) for c in range(k)]`` in one pass: a stable sort of the codes (a
    radix sort for 8- and 16-bit codes) split at the code counts. Codes outside 0..k-1 belong to no group."""
    codes = np.asarray(codes)
    if k <= 0:
        return []
    if len(codes) == 0:
        return [np.zeros(0, np.int64) for _ in range(k)]
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    bounds = np.searchsorted(sorted_codes, np.arange(k + 1), side="left")
    return [order[bounds[c]:bounds[c + 1]].astype(np.int64, copy=False) for c in range(k)]


def _code_dtype(k: int) -> Any:
    return np.uint8 if k < 255 else np.uint16 if k < 65535 else np.int64


def rank_bin_codes(rank: np.ndarray, n: int, bins: list, check: Any = None, none: Optional[int] = None) -> np.ndarray:
    """The DENSITY_BINS bin of each sample by its rank: bin b where ``lo_b <= rank / n < hi_b`` (float64,
    as the ten comparison passes it replaces computed it), ``none`` (default ``len(bins)``) for none. The fractions are
    monotonic in the (integer) rank, so each bound is one integer threshold; one ``searchsorted`` a block."""
    n = max(int(n), 1)
    rank = np.asarray(rank)

    def threshold(bound: float) -> int:  # the smallest integer r with float64(r) / n >= bound
        r = int(np.ceil(bound * n))
        while np.float64(r - 1) / np.float64(n) >= bound:
            r -= 1
        while np.float64(r) / np.float64(n) < bound:
            r += 1
        return r

    edges = sorted({threshold(lo) for lo, _hi, _l in bins} | {threshold(hi) for _lo, hi, _l in bins})
    # the bin of each interval [edges[i], edges[i + 1]) (interval -1 and the last: below / above every edge)
    none = len(bins) if none is None else int(none)
    lut = np.full(len(edges) + 1, none, _code_dtype(max(none, len(bins)) + 1))
    for b, (lo, hi, _label) in enumerate(bins):
        a, z = edges.index(threshold(lo)), edges.index(threshold(hi))
        lut[a + 1:z + 1] = b
    thresholds = np.asarray(edges, np.int64)
    codes = np.empty(len(rank), lut.dtype)
    for start in range(0, len(rank), BLOCK):
        codes[start:start + BLOCK] = lut[np.searchsorted(thresholds, rank[start:start + BLOCK], side="right")]
        if check is not None:
            check()
    return codes


def colour_groups(session: AnalysisSession, mode: str, detectors: Any,
                  check: Any = None, dark: bool = False) -> tuple[list[tuple[QColor, str, np.ndarray]], Optional[np.ndarray]]:
    """The map's colour classes: (colour, name, sample ids) for ``mode``, and each sample's class index
    in that list (len(list) for none: the legend counts a selection by it). The groups are what
    ``np.flatnonzero`` per class gave, made in one pass over N (:func:`group_ids`). ``dark``: the colours
    of the rank bands and the agreement counts made readable on a dark background (:func:`on_background`)."""
    s = session
    bands = [on_background(c, dark) for c in DENSITY_COLOURS]
    if mode == "class":
        labels = np.asarray(s.labels)
        if len(labels) == 0:
            return [], None
        lo, hi = int(labels.min()), int(labels.max())
        if hi - lo < 65535:
            codes = (labels - lo).astype(_code_dtype(hi - lo + 1))
            present = np.flatnonzero(np.bincount(codes, minlength=hi - lo + 1))
            groups = group_ids(codes, hi - lo + 1)
            values = present + lo
            ids = [groups[int(v)] for v in present]
            # class index per sample (the legend's selection counts): the position among the present labels
            index = np.zeros(hi - lo + 1, np.int64)
            index[present] = np.arange(len(present))
            codes = index[codes]
        else:
            values, codes = np.unique(labels, return_inverse=True)
            ids = group_ids(codes, len(values))
        return [(class_colour(int(c)), s.class_name(int(c)), g) for c, g in zip(values.tolist(), ids)], codes
    if mode == TRUTH_MODE:  # evaluation mode: the ground truth, poisons in red over grey clean samples
        truth = s.truth_poison_mask()
        if truth is None:
            return [], None
        codes = np.asarray(truth, dtype=np.uint8)
        groups = group_ids(codes, 2)
        # violet, not the flags' red (a newcomer could not tell the flag rings from the poison dots); how many of
        # each the pass flagged, so precision and recall read off the legend
        flagged = s.flagged_mask
        hit, extra = int(np.count_nonzero(flagged[groups[1]])), int(np.count_nonzero(flagged[groups[0]]))
        return [(QColor(170, 170, 170), f"clean (ground truth; {extra:,} flagged)", groups[0]),
                (QColor(130, 40, 210), f"poison (ground truth; {hit:,} of {len(groups[1]):,} flagged)", groups[1])], codes
    if mode == "review":
        codes = s.state_codes
        groups = group_ids(codes, len(REVIEW_STATES))
        return [(STATE_COLOURS[name], name, groups[c]) for c, name in enumerate(REVIEW_STATES)], codes
    item = detectors.get(mode) if mode.startswith(DETECTOR_PREFIX) else None
    if item is not None and item.method == "agreement":  # a count: one colour a value, not rank bands
        counts = np.nan_to_num(np.asarray(item.score, np.float64)).astype(np.int64)
        top = max(int(counts.max()), 1) if counts.size else 1
        codes = counts.astype(_code_dtype(top + 1))
        groups = group_ids(codes, top + 1)
        shades = [on_background(VIRIDIS[round(9 * c / top)], dark) for c in range(top + 1)]
        names = ["none"] + [f"{c} detector{'s' if c > 1 else ''}" for c in range(1, top + 1)]
        return [(QColor(*shades[c]), names[c], groups[c]) for c in range(top + 1)], codes
    if item is not None:  # a detector's score: higher = more suspicious, ranked like density
        codes = rank_bin_codes(item.rank, s.n, DENSITY_BINS, check, none=len(DENSITY_BINS) + 1)
        missing = ~np.isfinite(np.asarray(item.score))
        any_missing = bool(missing.any())
        if any_missing:
            codes[missing] = len(DENSITY_BINS)  # "no score", after the bins
        groups = group_ids(codes, len(DENSITY_BINS) + 1)
        out = [(QColor(*bands[b]), f"{item.label} {label}", groups[b]) for b, (_lo, _hi, label) in enumerate(DENSITY_BINS)]
        if any_missing:
            out.append((QColor(200, 200, 200), "no score", groups[len(DENSITY_BINS)]))
        return out, codes
    codes = rank_bin_codes(s.density_rank(), s.n, DENSITY_BINS, check)
    groups = group_ids(codes, len(DENSITY_BINS))
    return [(QColor(*bands[b]), label, groups[b]) for b, (_lo, _hi, label) in enumerate(DENSITY_BINS)], codes


def density_grid(points: np.ndarray, bins: int = 512, check: Any = None) -> dict[str, Any]:
    """The density image of ``points``: the grid (lo, span, bins), its counts and the log image."""
    if len(points):
        lo = np.array([points[:, 0].min(), points[:, 1].min()])  # one column at a time (axis=0 is slow on (N, 2))
        hi = np.array([points[:, 0].max(), points[:, 1].max()])
    else:  # what min/max of an empty array would refuse: an empty image
        lo, hi = np.zeros(2), np.ones(2)
    span = np.where(hi > lo, hi - lo, 1.0)
    counts = _grid_counts(points, lo, span, bins, check)
    return {"lo": lo, "span": span, "bins": bins, "counts": counts, "log": np.log1p(counts).astype(np.float32)}


def mark_rgba(points: np.ndarray, ids: np.ndarray, grid: dict[str, Any], colour: QColor, opaque: bool) -> np.ndarray:
    """Flags (``opaque``) or candidates painted on the density image's grid: one lit cell per cell holding
    a mark; candidates as opaque as they are common in the cell (a sprinkle over 10M points tinted it all)."""
    bins = grid["bins"]
    marks = _grid_counts(points[ids], grid["lo"], grid["span"], bins)
    lit = marks > 0
    rgba = np.zeros((bins, bins, 4), np.uint8)
    rgba[lit, 0], rgba[lit, 1], rgba[lit, 2] = colour.red(), colour.green(), colour.blue()
    if opaque:
        rgba[lit, 3] = 255
    else:
        share = marks[lit] / np.maximum(grid["counts"][lit], 1)
        rgba[lit, 3] = np.clip(48 + 800 * share, 48, 255).astype(np.uint8)
    return rgba


def mark_ids(session: AnalysisSession) -> dict[str, np.ndarray]:
    """The flags and the candidates that are not flags, as the map draws them."""
    flagged = session.flagged_mask
    return {"flags": np.flatnonzero(flagged), "candidates": np.flatnonzero(session.candidate_mask & ~flagged)}


class _MapRelay(QObject):
    """Carries the worker's layers to the GUI thread (a queued signal)."""

    done = Signal(int, object)  # request serial, dict of layers or an exception


#: above this many points the hover/click index (a k-d tree) is built in a background thread: ~3 s at 1M,
#: ~30 s at 10M on a loaded core, which the map must not wait for (hover and click answer once it is there)
TREE_SYNC_LIMIT = 200_000
#: flags or candidates above this many are drawn as small filled dots, not rings, over a density image: 10k
#: rings already hid a 1M-point image under them (screenshot, issue 17 item 4), 100k-200k (1-2% of 10M) more so;
#: the dots keep the flags on top without covering it
RING_LIMIT = 2_000
#: above this many (bench gui --scale: 30k dots + 30k dots still took ~130 ms a repaint at 3M), flags or
#: candidates are painted into an image layer on the density image's grid (one
#: cell lit per cell holding a mark), drawn on top of it: a 200k-point overlay scatter took ~280 ms a repaint
#: at 10M samples (bench gui --scale), an image layer costs what the density image costs
RASTER_LIMIT = 5_000


class _SelectViewBox(pg.ViewBox):
    """A ViewBox whose left-drag draws a selection box or lasso instead of panning (by mode)."""

    def __init__(self, owner: "DensityMapWidget") -> None:
        super().__init__()
        self.owner = owner
        self.mode = "box"
        self._path: list[QPointF] = []
        self._item: Optional[QGraphicsPathItem] = None

    def mouseDragEvent(self, ev: Any, axis: Any = None) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or self.mode == "pan":
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        pos = self.mapSceneToView(ev.scenePos())
        if ev.isStart():
            self._path = [self.mapSceneToView(ev.buttonDownScenePos())]
            self._item = QGraphicsPathItem()
            pen = QPen(SELECTION_COLOUR, 0)
            pen.setCosmetic(True)
            pen.setWidth(2)
            self._item.setPen(pen)
            self._item.setBrush(QBrush(QColor(255, 140, 0, 40)))
            self.addItem(self._item, ignoreBounds=True)
        if self._item is None:
            return
        if self.mode == "lasso":
            self._path.append(pos)
            poly = self._path
        else:
            a = self._path[0]
            poly = [a, QPointF(pos.x(), a.y()), pos, QPointF(a.x(), pos.y())]
        path = QPainterPath(poly[0])
        for p in poly[1:]:
            path.lineTo(p)
        path.closeSubpath()
        self._item.setPath(path)
        if ev.isFinish():
            self.removeItem(self._item)
            self._item = None
            polygon = np.array([[p.x(), p.y()] for p in poly], dtype=np.float64)
            self.owner.select_polygon(polygon, add=bool(ev.modifiers() & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier)))

    def mouseClickEvent(self, ev: Any) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            pos = self.mapSceneToView(ev.scenePos())
            self.owner.click_at(pos.x(), pos.y(), add=bool(ev.modifiers() & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier)))
            return
        super().mouseClickEvent(ev)


class _Points(pg.ScatterPlotItem):
    """A scatter layer that lets clicks through to the view box: pyqtgraph hands a click on a point to the first
    item with points there (it took it, emitted a signal nobody heard, and the view box never picked the sample: a
    click on a point selected nothing while C then decided the gallery's tile; newcomer session 18). The view box
    picks the nearest point within a few screen pixels, whichever layer draws it."""

    def mouseClickEvent(self, ev: Any) -> None:  # noqa: N802 - pyqtgraph override
        ev.ignore()


class HoverCard(QFrame):
    """Floating thumbnail + scores of the point under the cursor."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.image = QLabel()
        self.text = QLabel()
        self.text.setStyleSheet("font-size: 11px;")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.image)
        layout.addWidget(self.text)
        self.hide()


class DensityMapWidget(QWidget):
    """The 2-D map with colour modes, overlays, selection tools, hover card and a counting legend.

    Constructor: ``DensityMapWidget(session, parent=None, image_threshold=IMAGE_THRESHOLD)``.
    Signals: ``sample_activated(int)`` on double-click of a point; ``projection_requested(str)``
    when the user picks a projection the session does not have yet (the panel runs it as a job).
    """

    sample_activated = Signal(int)
    projection_requested = Signal(str)
    #: sessions of at least this many samples are built in a worker thread (the plot shows a placeholder)
    ASYNC_FROM = 200_000

    def __init__(self, session: AnalysisSession, parent: Optional[QWidget] = None,
                 image_threshold: int = IMAGE_THRESHOLD) -> None:
        super().__init__(parent)
        self.session = session
        self.bridge = SessionBridge.of(session)
        self.image_threshold = image_threshold
        self.colour_mode = "density"
        self.cache = ThumbnailCache(session, 96, capacity=256)
        self._base_items: list[pg.GraphicsObject] = []
        #: flags / candidates painted on the density image's grid when there are too many for a scatter
        self._mark_layers: dict[str, pg.ImageItem] = {}
        self._image_grid: Optional[tuple[np.ndarray, np.ndarray, int]] = None
        self._class_counts: list[tuple[QColor, str, np.ndarray]] = []
        #: each sample's index in ``_class_counts`` (the legend counts a selection with one bincount)
        self._class_codes: Optional[np.ndarray] = None
        #: the density image of the current points (kept across colour modes: it does not depend on them)
        self._grid: Optional[dict[str, Any]] = None
        self._marks: Optional[dict[str, np.ndarray]] = None  # flag / candidate ids of the current build
        self._mark_rgba: dict[str, np.ndarray] = {}  # their image layers, made once a build
        self._points = np.zeros((0, 2), np.float64)  # until the first build is installed
        self._tree: Any = None
        self._serial = 0  # the latest build request; a worker's result for an older one is dropped
        self._job: Optional[JobContext] = None
        self._relay = _MapRelay(self)
        self._relay.done.connect(self._on_built)

        self.viewbox = _SelectViewBox(self)
        sync_pyqtgraph()  # the theme applied before pyqtgraph was imported
        self.plot = pg.PlotWidget(viewBox=self.viewbox)
        self.plot.setBackground(pg.getConfigOption("background"))  # the theme's (configure_pyqtgraph)
        self.dark = pg.mkColor(pg.getConfigOption("background")).lightness() < 128  # the bands' colours follow it
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setMenuEnabled(False)
        self.viewbox.setAspectLocked(False)

        def overlay(size: float, brush: Any, pen: Any, z: float, symbol: str = "o") -> pg.ScatterPlotItem:
            item = _Points(size=size, pen=pen, brush=brush, symbol=symbol, pxMode=True, antialias=False)
            item.setZValue(z)
            self.viewbox.addItem(item)
            return item

        self.candidate_item = overlay(7, None, pg.mkPen(CANDIDATE_COLOUR, width=1), 10)
        self.flag_item = overlay(8, None, pg.mkPen(FLAG_COLOUR, width=1.5), 11)
        self.selection_item = overlay(7, pg.mkBrush(SELECTION_COLOUR), pg.mkPen(self._outline(), width=1), 12)
        self.current_item = overlay(16, None, pg.mkPen(self._outline(), width=2.5), 13, symbol="o")
        self.hover_item = overlay(12, None, pg.mkPen(self._outline(), width=1.5), 14)
        # review colouring: decided samples drawn over a one-colour base, so a decision only
        # re-sets these small items instead of rebuilding the base layer
        self.state_items = {
            name: overlay(5, pg.mkBrush(STATE_COLOURS[name]), None, 9) for name in REVIEW_STATES if name != "unreviewed"
        }

        # toolbar
        self.detectors = detector_table(session)
        #: density rank, class, review state, and every detector pass of the workspace by its score's rank
        self.colour_modes = dict(COLOUR_MODES)
        for item in self.detectors:
            if item.key in session.scores:
                self.colour_modes[item.key] = item.value_name(long=True)
        self.colour_box = QComboBox()
        for key, text in self.colour_modes.items():
            self.colour_box.addItem(text, key)
            if key.startswith(DETECTOR_PREFIX):
                self.colour_box.setItemData(self.colour_box.count() - 1, self.detectors.get(key).describe(),
                                            Qt.ItemDataRole.ToolTipRole)
        self.colour_box.setToolTip("colour the points by density rank, class, review state or any detector's score "
                                   "(by rank: top 1 % brightest)")
        self.colour_box.currentIndexChanged.connect(lambda _i: self.set_colour_mode(self.colour_box.currentData()))
        if "density" not in session.scores and "rank" not in session.scores:
            # another detector's pass: "density rank" coloured by sample id (its legend said density rank over a
            # patchsearch pass; a newcomer, session 22): its own score's rank, else the class
            own = next((item.key for item in self.detectors
                        if item.pass_id == session.pass_id and item.key in self.colour_modes), None)
            self.colour_mode = own or "class"
            self.colour_box.blockSignals(True)
            self.colour_box.setCurrentIndex(max(0, self.colour_box.findData(self.colour_mode)))
            self.colour_box.blockSignals(False)
        self.projection_box = QComboBox()
        self.projection_box.addItem("PCA", "pca")
        self.projection_box.addItem("t-SNE", "tsne")
        self.projection_box.setToolTip("2-D projection of the embedding (t-SNE runs as a background job and is cached)")
        # grows with the choices added later ("PCA, after retraining"), instead of keeping its first width
        self.projection_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.projection_box.activated.connect(lambda _i: self._on_projection_choice(self.projection_box.currentData()))
        self.tool_group = QButtonGroup(self)
        tools = FlowLayout(spacing=3)  # wraps onto a second row in a narrow panel; nothing is cut
        for mode, text, tip in (("pan", "Pan", "drag to pan, wheel to zoom (G)"), ("box", "Box", "drag a box to select (B)"), ("lasso", "Lasso", "draw around points to select (S)")):
            button = QToolButton()
            button.setText(text)
            button.setToolTip(tip + "; Shift adds to the selection; Esc clears")
            button.setCheckable(True)
            button.setProperty("mode", mode)
            self.tool_group.addButton(button)
            tools.addWidget(button)
            button.toggled.connect(lambda on, m=mode: on and self.set_tool(m))
        self.tool_group.buttons()[1].setChecked(True)
        self.flags_toggle = QToolButton()
        self.flags_toggle.setText("Flags")
        self.flags_toggle.setCheckable(True)
        self.flags_toggle.setChecked(True)
        self.flags_toggle.setToolTip("show DIFT flags (red rings) and candidates (pink rings)")
        self.flags_toggle.toggled.connect(self._on_flags_toggled)
        clear = QToolButton()
        clear.setText("Clear")
        clear.clicked.connect(lambda: self.session.clear_selection(source=self))
        fit = QToolButton()
        fit.setText("Fit")
        fit.clicked.connect(lambda: self.viewbox.autoRange(padding=0.02))
        tools.addWidget(self.flags_toggle)
        tools.addWidget(clear)
        tools.addWidget(fit)
        tools.addWidget(self.projection_box)
        tools.addWidget(self.colour_box)

        self.legend = QLabel()
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self.status = QLabel()
        self.status.setStyleSheet("color: palette(mid);")
        # which encoder's space the map shows, once a fine-tune / retrain re-embedded the samples
        # (set_projection_notes): the detection's, or the new encoder's, with the removed samples' density
        self.embedding_note = QLabel()
        self.embedding_note.setObjectName("embeddingNote")
        self.embedding_note.setTextFormat(Qt.TextFormat.RichText)
        self.embedding_note.setWordWrap(True)
        self.embedding_note.hide()
        self._projection_notes: dict[str, str] = {}
        self.projection_method = "pca"
        if session.embeddings is None:  # a pass DIFT ran during training keeps no embeddings: no map of them
            self._no_embeddings_map()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(tools)
        layout.addWidget(self.embedding_note)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.legend)
        self.card = HoverCard(self.plot)
        #: shown over the plot while a worker builds the map (from ASYNC_FROM samples)
        self.placeholder = QLabel(self.plot)
        self.placeholder.setObjectName("mapPlaceholder")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.placeholder.setStyleSheet("color: palette(mid); font-size: 13px;")
        self.placeholder.hide()

        self._hover_timer = QTimer(self)
        self._hover_timer.setSingleShot(True)
        self._hover_timer.setInterval(40)
        self._hover_timer.timeout.connect(self._do_hover)
        self._hover_pos: Optional[QPointF] = None
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.plot.scene().sigMouseClicked.connect(self._on_scene_clicked)
        # the scene hears no move once the pointer has left the plot: without this the last card stayed up
        self.plot.viewport().installEventFilter(self)
        self.plot.installEventFilter(self)  # focus in / out: the frame that says the map has the keyboard
        self._show_keyboard_frame(False)
        self.shortcuts: list[QShortcut] = keyed_shortcuts(self, (("G", lambda: self._check_tool("pan"), "Pan and zoom tool"),
                                ("B", lambda: self._check_tool("box"), "Box selection tool"),
                                ("S", lambda: self._check_tool("lasso"), "Lasso selection tool"),
                                ("Esc", self._clear_pick, "Clear the selection")))

        self.bridge.selection_changed.connect(lambda _ids, _src: self._update_overlays())
        self.bridge.review_changed.connect(self._on_review_changed)
        self.bridge.current_changed.connect(lambda _sid, _src: self._update_current())
        self.bridge.projection_changed.connect(self._on_projection_changed)
        self.rebuild()

    # -- building -------------------------------------------------------------------------------
    @property
    def points(self) -> np.ndarray:
        return self._points

    @property
    def image_mode(self) -> bool:
        return self.session.n > self.image_threshold

    @property
    def build_pending(self) -> bool:
        """A worker builds the map (from :attr:`ASYNC_FROM` samples); the plot shows the former build or a
        placeholder meanwhile."""
        return self._job is not None

    def wait_until_built(self, timeout_s: float = 120.0) -> bool:
        """Process events until no build is pending (True) or ``timeout_s`` passes (False)."""
        return process_events_while(lambda: self.build_pending, timeout_s)

    def _clear_pick(self) -> None:
        """Esc: the map's selection and the sample it picked both go, so no view still acts on that pick (the
        gallery's line kept saying "act on nothing: #1226", picked here, after Esc: a newcomer needed a second Esc
        there)."""
        self.session.clear_selection(source=self)
        self.session.set_current(None, source=self)

    def rebuild(self) -> None:
        """(Re)build the base layer for the current projection and colour mode: at once below
        :attr:`ASYNC_FROM` samples, else in a worker thread (the points, the density image, the colour
        classes and the flag layers: 5 s of numpy at 10M), the plot showing a placeholder until the first
        build arrives; the latest request wins, an older one is cancelled and its result dropped."""
        self._request(new_points=True)

    def _build_base(self) -> None:
        """Re-colour (a colour mode chosen): the classes are made again, the points and image kept."""
        self._request(new_points=False)

    def _request(self, new_points: bool) -> None:
        self._serial += 1
        serial = self._serial
        if self._job is not None:
            self._job.cancel()
            self._job = None
        session, mode, detectors, dark = self.session, self.colour_mode, self.detectors, self.dark
        image_mode, flags_on = self.image_mode, self.flags_toggle.isChecked()
        points = None if new_points or len(self._points) != session.n else self._points
        grid = None if points is None else self._grid

        def compute(check: Any) -> dict[str, Any]:
            pts = points
            if pts is None:
                pts = np.ascontiguousarray(session.projection(), dtype=np.float64)
            check()
            out: dict[str, Any] = {"points": pts, "new_points": points is None}
            out["grid"] = grid if grid is not None or not image_mode else density_grid(pts, check=check)
            check()
            out["classes"], out["codes"] = colour_groups(session, mode, detectors, check, dark)
            check()
            marks = mark_ids(session)
            out["marks"], out["rgba"] = marks, {}
            if image_mode and flags_on and out["grid"] is not None:
                for name, colour in (("flags", FLAG_COLOUR), ("candidates", CANDIDATE_COLOUR)):
                    if len(marks[name]) > RASTER_LIMIT:
                        out["rgba"][name] = mark_rgba(pts, marks[name], out["grid"], colour, name == "flags")
            return out

        if session.n < self.ASYNC_FROM:
            self._install(compute(lambda: None))
            return
        ctx = JobContext()
        self._job = ctx
        if len(self._points) != session.n:
            self.placeholder.setText(f"Building the map of {session.n:,} samples…")
            self._place_placeholder()
            self.placeholder.show()
            self.placeholder.raise_()
            # the legend's counts of the selection and flags at once (the classes' follow): the panel sizes
            # its columns by the views' minimum widths when it is shown, the legend's among them
            self._update_legend()
        self.status.setText("building the map…")
        relay = self._relay

        def work() -> None:
            try:
                result: Any = compute(ctx.check)
            except JobCancelled:
                return
            except Exception as exc:  # noqa: BLE001 - shown on the map, never lost in a thread
                result = exc
            try:
                relay.done.emit(serial, result)
            except RuntimeError:  # the widget is gone
                pass

        threading.Thread(target=work, name="naviewer-map-build", daemon=True).start()

    def _place_placeholder(self) -> None:
        self.placeholder.setGeometry(0, 0, self.plot.width(), self.plot.height())

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self.placeholder.isVisible():
            self._place_placeholder()
        self._fit_rows()

    def _fit_rows(self) -> None:
        """The map's least height follows its wrapped tool rows and notes at its width: dragged short, the plot was
        drawn over half of the Colour by box on the tools' second row (a newcomer, session 29). It sits in the
        Analyst's scroll area, so this never grows the window."""
        layout = self.layout()
        if layout is None or not self.isVisible() or not layout.hasHeightForWidth():
            return
        need = layout.totalMinimumHeightForWidth(max(1, self.width()))
        if need != self.minimumHeight():
            self.setMinimumHeight(need)

    def _on_built(self, serial: int, result: Any) -> None:
        if serial != self._serial:
            return  # a later request replaced this one
        self._job = None
        self.status.setText("")
        if isinstance(result, BaseException):
            self.placeholder.setText(f"Could not build the map: {type(result).__name__}: {result}")
            self.placeholder.show()
            return
        self._install(result)

    def _install(self, result: dict[str, Any]) -> None:
        """Put a build's layers on the plot (GUI thread; nothing here grows with N but the tree's thread)."""
        new_points = bool(result["new_points"])
        if new_points:
            self._points = result["points"]
            self._start_tree()
        self._grid = result["grid"]
        if self._grid is not None:
            self._image_grid = (self._grid["lo"], self._grid["span"], self._grid["bins"])
            self._base_counts = self._grid["counts"]
        else:
            self._image_grid = None
        self._class_counts, self._class_codes = result["classes"], result["codes"]
        self._marks, self._mark_rgba = result["marks"], dict(result["rgba"])
        self.placeholder.hide()
        self._draw_base()
        if new_points:
            self._update_current()
            self.viewbox.autoRange(padding=0.02)

    def _start_tree(self) -> None:
        self._tree = None
        if len(self._points) > TREE_SYNC_LIMIT:
            points = self._points

            def build() -> None:  # cKDTree builds without the GIL: the GUI thread keeps running meanwhile
                tree = cKDTree(points)
                if self._points is points:  # not rebuilt for another projection meanwhile
                    self._tree = tree

            self._tree_thread = threading.Thread(target=build, name="naviewer-map-index", daemon=True)
            self._tree_thread.start()
        elif len(self._points):
            self._tree = cKDTree(self._points)

    def _colour_classes(self) -> list[tuple[QColor, str, np.ndarray]]:
        classes, self._class_codes = colour_groups(self.session, self.colour_mode, self.detectors, dark=self.dark)
        return classes

    def _draw_base(self) -> None:
        for item in self._base_items:
            self.viewbox.removeItem(item)
        self._base_items = []
        pts = self._points
        if self.image_mode and self._grid is not None:
            self._base_items.append(self._density_image(pts))
        elif self.colour_mode == "review":
            item = _Points(
                pts[:, 0], pts[:, 1], size=4, pen=None, brush=pg.mkBrush(STATE_COLOURS["unreviewed"]), pxMode=True,
                antialias=False, hoverable=False, useCache=True,
            )
            self.viewbox.addItem(item)
            self._base_items.append(item)
        else:
            # sparse classes drawn last (on top), so density's top 1% and rare states stay visible
            for z, (colour, _name, ids) in enumerate(sorted(self._class_counts, key=lambda t: -len(t[2]))):
                if len(ids) == 0:
                    continue
                item = _Points(
                    pts[ids, 0], pts[ids, 1], size=4, pen=None, brush=pg.mkBrush(colour), pxMode=True,
                    antialias=False, hoverable=False, useCache=True,
                )
                item.setZValue(z)
                self.viewbox.addItem(item)
                self._base_items.append(item)
        self._update_state_items()
        self._update_marks()
        self._update_overlays()

    def _density_image(self, pts: np.ndarray, bins: int = 512) -> pg.ImageItem:
        """The ImageItem of the current build's density image (made by :func:`density_grid`)."""
        grid = self._grid if self._grid is not None and self._grid["bins"] == bins else density_grid(pts, bins)
        lo, span = grid["lo"], grid["span"]
        image = pg.ImageItem(grid["log"])
        image.setColorMap(pg.colormap.get("viridis"))
        image.setRect(QRectF(lo[0], lo[1], span[0], span[1]))
        image.setZValue(0)
        self.viewbox.addItem(image)
        return image

    # -- overlays -------------------------------------------------------------------------------
    def _on_flags_toggled(self, _on: bool = False) -> None:
        self._update_marks()
        self._update_overlays()

    def _update_marks(self) -> None:
        """Flags and candidates: rings, dots, or an image layer on the density image's grid (made once a
        build: a selection does not redo them)."""
        if len(self._points) != self.session.n:
            return
        if self._marks is None:
            self._marks = mark_ids(self.session)
        pts = self._points
        show_flags = self.flags_toggle.isChecked()
        none = np.zeros(0, np.int64)
        for name, item, colour, ring, width, dot in (
                ("flags", self.flag_item, FLAG_COLOUR, 8, 1.5, 3),
                ("candidates", self.candidate_item, CANDIDATE_COLOUR, 7, 1, 2)):
            ids = self._marks[name] if show_flags else none
            if self.image_mode and len(ids) > RASTER_LIMIT and self._image_grid is not None:
                item.setData([], [])
                self._set_mark_layer(name, ids, colour, item.zValue())
            else:
                self._set_mark_layer(name, None, colour, 0)
                item.setData(pts[ids, 0], pts[ids, 1], **self._mark_style(len(ids), colour, ring, width, dot))

    def _update_overlays(self, *_args: Any) -> None:
        """The selection (and the dimming it brings) and the legend."""
        s, pts = self.session, self._points
        if len(pts) != s.n:  # the first build is still on its way
            self._update_legend()
            return
        sel = s.selection
        self.selection_item.setData(pts[sel, 0], pts[sel, 1])
        # dim everything else while a group is selected (one opacity per item: no re-brushing); one sample has its
        # ring already, and dimmed for it the dark map's points all but vanished (a newcomer, session 18)
        dim = self.dim_opacity(len(sel))
        for item in list(self._base_items) + list(self.state_items.values()):
            item.setOpacity(dim)
        self._update_legend()

    def dim_opacity(self, selected: int) -> float:
        """The opacity of the points outside a selection of ``selected`` samples: full for none or one, else
        dimmed, less on a dark background (0.3 left the dark map's points at a few per cent contrast)."""
        if selected <= 1:
            return 1.0
        return 0.5 if self.dark else 0.3

    def _set_mark_layer(self, name: str, ids: Optional[np.ndarray], colour: QColor, z: float) -> None:
        """Paint ``ids`` into an RGBA layer on the density image's grid (None: remove the layer)."""
        old = self._mark_layers.pop(name, None)
        if old is not None:
            self.viewbox.removeItem(old)
        if ids is None or self._image_grid is None:
            return
        rgba = self._mark_rgba.get(name)
        if rgba is None:
            grid = self._grid if self._grid is not None else dict(zip(("lo", "span", "bins"), self._image_grid),
                                                                   counts=self._base_counts)
            rgba = self._mark_rgba[name] = mark_rgba(self._points, ids, grid, colour, name == "flags")
        lo, span, _bins = self._image_grid
        layer = pg.ImageItem(rgba)
        layer.setRect(QRectF(lo[0], lo[1], span[0], span[1]))
        layer.setZValue(z)
        self.viewbox.addItem(layer)
        self._mark_layers[name] = layer

    def mark_count(self, name: str) -> int:
        """How many flags ("flags") or candidates ("candidates") the map shows, as points or as a layer."""
        if name in self._mark_layers:
            s = self.session
            mask = s.flagged_mask if name == "flags" else s.candidate_mask & ~s.flagged_mask
            return int(mask.sum()) if self.flags_toggle.isChecked() else 0
        item = self.flag_item if name == "flags" else self.candidate_item
        return len(item.data)

    def _mark_style(self, count: int, colour: QColor, ring: float, width: float, dot: float) -> dict[str, Any]:
        """Rings, or small filled dots when there are too many rings to see the map under them."""
        if self.image_mode and count > RING_LIMIT:
            return {"size": dot, "pen": None, "brush": pg.mkBrush(colour)}
        return {"size": ring, "pen": pg.mkPen(colour, width=width), "brush": None}

    def _mark_symbol(self, count: int) -> str:
        return "●" if self.image_mode and count > RING_LIMIT else "◯"

    def _update_current(self) -> None:
        cur = self.session.current
        if cur is None or len(self._points) != self.session.n:
            self.current_item.setData([], [])
        else:
            self.current_item.setData([self._points[cur, 0]], [self._points[cur, 1]])

    def _update_state_items(self) -> None:
        if len(self._points) != self.session.n:
            return
        codes = self.session.state_codes
        for c, name in enumerate(REVIEW_STATES):
            if name in self.state_items:
                ids = np.flatnonzero(codes == c) if self.colour_mode == "review" else np.zeros(0, np.int64)
                self.state_items[name].setData(self._points[ids, 0], self._points[ids, 1])

    def _on_review_changed(self, _ids: Any) -> None:
        if self.colour_mode == "review":
            self._class_counts = self._colour_classes()
            self._update_state_items()
        self._update_legend()

    def _update_legend(self) -> None:
        s = self.session
        sel = s.selection_mask() if len(s.selection) else None
        parts = [f"<b>selected {len(s.selection):,} / {s.n:,}</b>"]
        if s.flagged_mask.any():
            n_flags = int(s.flagged_mask.sum())
            parts.append(f"<span style='color:{FLAG_COLOUR.name()}'>{self._mark_symbol(n_flags)}</span> flagged {n_flags:,}")
        if s.candidate_mask.any():
            n_cands = int(s.candidate_mask.sum())
            symbol = self._mark_symbol(int((s.candidate_mask & ~s.flagged_mask).sum()))
            parts.append(f"<span style='color:{CANDIDATE_COLOUR.name()}'>{symbol}</span> candidates {n_cands:,}")
        codes = self._class_codes
        if sel is not None and codes is not None and len(codes) == s.n:  # one bincount, not a gather per class
            in_class = np.bincount(codes[s.selection], minlength=len(self._class_counts) + 1)
        elif sel is not None:
            in_class = np.array([int(sel[ids].sum()) for _c, _n, ids in self._class_counts[:24]], np.int64)
        if self._class_counts:
            parts += colour_heading(self.colour_mode, self.colour_box.currentText(), sel is not None)
        for k, (colour, name, ids) in enumerate(self._class_counts[:24]):
            count = f"{int(in_class[k]):,} of {len(ids):,}" if sel is not None else f"{len(ids):,}"
            parts.append(f"<span style='color:{colour.name()}'>■</span> {name} {count}")
        mode = " · density image (too many points for a scatter)" if self.image_mode else ""
        if self.has_keyboard():
            mode += (" · <b>the keys go to the map</b>: C · R · L decide what is selected here" if len(s.selection)
                     else " · <b>the keys go to the map</b>: select with a box (B) or a lasso (S), or Ctrl+2: the gallery")
        self.legend.setText(legend_html(parts) + mode)
        self._hold_legend_height()

    def _hold_legend_height(self) -> None:
        """The legend keeps the most lines it has needed at this width: going from three lines to two and back as
        the selection and the keys' words changed moved the plot, and a point under the mouse with it, so a click
        picked another sample (a newcomer, session 29). A new width starts over."""
        width = self.legend.width()
        if width != getattr(self, "_legend_width", None):
            self._legend_width = width
            self.legend.setMinimumHeight(0)
        if width > 0 and self.legend.hasHeightForWidth():
            needed = self.legend.heightForWidth(width)
            if needed > self.legend.minimumHeight():
                self.legend.setMinimumHeight(needed)

    # -- modes ----------------------------------------------------------------------------------
    def set_theme(self, theme: Any) -> None:
        """Dark or light: the map's background and its bands' colours follow the application's theme."""
        self.plot.setBackground(theme.plot_background)
        dark = QColor(theme.plot_background).lightness() < 128
        if dark != self.dark:
            self.dark = dark
            self._build_base()
            self.selection_item.setPen(pg.mkPen(self._outline(), width=1))
            self.current_item.setPen(pg.mkPen(self._outline(), width=2.5))
            self.hover_item.setPen(pg.mkPen(self._outline(), width=1.5))

    def _outline(self) -> QColor:
        """The selected points' outline and the highlighted sample's ring: black on a light map, white on a dark one
        (the black ring all but vanished on the dark theme's navy; a newcomer, session 30)."""
        return QColor(255, 255, 255) if self.dark else QColor(0, 0, 0)

    def set_evaluation(self, on: bool) -> None:
        """Evaluation mode on: colouring by the ground truth is offered (and chosen); off: it goes, and the map
        goes back to density rank if it showed it. A newcomer found evaluation mode changed nothing on the map
        (session 19)."""
        i = self.colour_box.findData(TRUTH_MODE)
        if on and i < 0 and self.session.truth_poison_mask() is not None:
            self.colour_modes[TRUTH_MODE] = TRUTH_LABEL
            self.colour_box.addItem(TRUTH_LABEL, TRUTH_MODE)
            self.set_colour_mode(TRUTH_MODE)
        elif not on and i >= 0:
            if self.colour_mode == TRUTH_MODE:
                self.set_colour_mode("density")
            self.colour_modes.pop(TRUTH_MODE, None)
            self.colour_box.removeItem(self.colour_box.findData(TRUTH_MODE))

    def set_colour_mode(self, mode: str) -> None:
        if mode not in self.colour_modes:
            raise ValueError(mode)
        self.colour_mode = mode
        i = self.colour_box.findData(mode)
        if i != self.colour_box.currentIndex():
            self.colour_box.setCurrentIndex(i)
        self._build_base()

    def set_tool(self, mode: str) -> None:
        self.viewbox.mode = mode
        self.viewbox.setMouseMode(pg.ViewBox.PanMode)

    def _check_tool(self, mode: str) -> None:
        for button in self.tool_group.buttons():
            if button.property("mode") == mode:
                button.setChecked(True)

    def add_projection(self, key: str, text: str, tip: str = "") -> None:
        """Offer another map in the projection box (e.g. ``after:pca``, the samples re-embedded by the
        encoder after a fine-tune / retrain); choosing it asks for it like t-SNE (``projection_requested``)."""
        if self.projection_box.findData(key) < 0:
            self.projection_box.addItem(text, key)
            if tip:
                self.projection_box.setItemData(self.projection_box.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)

    NO_EMBEDDINGS_NOTE = ("<b>Not a map of the embedding</b>: no embeddings are saved with this pass (a DIFT pass made "
                          "during training keeps none), so x is the density rank and y the MinDist to the anchors where "
                          "the pass has them. Run ▸ Detect… with the run's checkpoint embeds every sample and draws the "
                          "map.")

    def _no_embeddings_map(self) -> None:
        """Say what the fallback plot is: a thin column and a line, with Fit doing nothing, looked like a rendering
        fault (a newcomer after naviewer run --dift, session 22); t-SNE needs embeddings, so it is not offered."""
        self.projection_box.setItemText(0, "rank × MinDist")
        self.projection_box.setItemData(0, "no embeddings with this pass: density rank across, MinDist up",
                                        Qt.ItemDataRole.ToolTipRole)
        tsne = self.projection_box.findData("tsne")
        if tsne >= 0:
            self.projection_box.removeItem(tsne)
        self._projection_notes = {"before": self.NO_EMBEDDINGS_NOTE, "after": ""}
        self.embedding_note.setText(self.NO_EMBEDDINGS_NOTE)
        self.embedding_note.setVisible(True)

    def set_projection_notes(self, before: str, after: str) -> None:
        """The line above the map naming the encoder whose space it shows: ``before`` for the detection's
        maps, ``after`` for the ``after:`` ones."""
        self._projection_notes = {"before": before, "after": after}
        self._show_projection_note()

    def _show_projection_note(self) -> None:
        text = self._projection_notes.get("after" if self.projection_method.startswith("after:") else "before", "")
        self.embedding_note.setText(text)
        self.embedding_note.setVisible(bool(text))

    def _on_projection_changed(self, method: str) -> None:
        self.projection_method = method
        i = self.projection_box.findData(method)
        if i >= 0 and i != self.projection_box.currentIndex():
            self.projection_box.setCurrentIndex(i)
        self._show_projection_note()
        self.rebuild()

    def _on_projection_choice(self, method: str) -> None:
        try:
            self.session.projection(method)
        except Exception:
            self.projection_requested.emit(method)
            return
        self.session.set_projection(self.session.projection(method), method)

    # -- selection ------------------------------------------------------------------------------
    def select_polygon(self, polygon: np.ndarray, add: bool = False) -> np.ndarray:
        """Select the points inside ``polygon`` (view coordinates); ``add`` unions with the selection."""
        if len(self._points) != self.session.n:  # the map is still being built
            return np.zeros(0, np.int64)
        ids = np.flatnonzero(points_in_polygon(self._points, polygon))
        if add:
            ids = np.union1d(ids, self.session.selection)
        self.session.set_selection(ids, source=self)
        return ids

    def select_rect(self, x0: float, y0: float, x1: float, y1: float, add: bool = False) -> np.ndarray:
        xa, xb = sorted((x0, x1))
        ya, yb = sorted((y0, y1))
        return self.select_polygon(np.array([[xa, ya], [xb, ya], [xb, yb], [xa, yb]]), add=add)

    def nearest(self, x: float, y: float, radius_px: float = 8.0) -> Optional[int]:
        """The sample nearest to view point (x, y) if within ``radius_px`` screen pixels."""
        if self._tree is None:
            return None
        px = self.viewbox.viewPixelSize()
        sx, sy = max(px[0], 1e-12), max(px[1], 1e-12)
        dist, idx = self._tree.query([x, y], k=min(8, len(self._points)))
        idx = np.atleast_1d(idx)
        d_px = np.hypot((self._points[idx, 0] - x) / sx, (self._points[idx, 1] - y) / sy)
        best = int(np.argmin(d_px))
        return int(idx[best]) if d_px[best] <= radius_px else None

    def click_at(self, x: float, y: float, add: bool = False) -> Optional[int]:
        sid = self.nearest(x, y)
        if sid is None:
            if not add:
                self.session.clear_selection(source=self)
            return None
        ids = np.union1d(self.session.selection, [sid]) if add else np.array([sid])
        self.session.set_selection(ids, source=self)
        self.session.set_current(sid, source=self)
        return sid

    def _on_scene_clicked(self, ev: Any) -> None:
        if ev.double() and ev.button() == Qt.MouseButton.LeftButton:
            pos = self.viewbox.mapSceneToView(ev.scenePos())
            sid = self.nearest(pos.x(), pos.y())
            if sid is not None:
                self.sample_activated.emit(sid)

    # -- hover ----------------------------------------------------------------------------------
    def has_keyboard(self) -> bool:
        """The map has the keyboard focus: C / R / L decide what is selected here (not the gallery's tile)."""
        focus = QApplication.focusWidget()
        return focus is not None and (focus is self.plot or self.plot.isAncestorOf(focus))

    def _show_keyboard_frame(self, on: bool) -> None:
        """A highlighted frame while the map has the keyboard: C confirmed the sample clicked on the map while the
        gallery's line said "act on nothing" and nothing showed which view the keys went to (newcomer session 17)."""
        colour = self.palette().color(QPalette.ColorRole.Highlight).name() if on else "transparent"
        self.plot.setStyleSheet(f"QGraphicsView {{ border: 2px solid {colour}; }}")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if watched is self.plot and event.type() in (QEvent.Type.FocusIn, QEvent.Type.FocusOut):
            self._show_keyboard_frame(event.type() == QEvent.Type.FocusIn)
            self._update_legend()
            if event.type() == QEvent.Type.FocusOut:  # the keys went elsewhere (Ctrl+3): the card stood over the
                self._hover_pos = None                # map with the mouse still on it (a newcomer, session 18);
                self._hover_timer.stop()              # the next mouse move shows it again
                self.hide_hover()
        if event.type() == QEvent.Type.Leave and watched is self.plot.viewport():
            self._hover_pos = None
            self._hover_timer.stop()
            self.hide_hover()
        return super().eventFilter(watched, event)

    def _on_mouse_moved(self, pos: QPointF) -> None:
        self._hover_pos = pos
        self._hover_timer.start()

    def _do_hover(self) -> None:
        if self._hover_pos is None or not self.viewbox.sceneBoundingRect().contains(self._hover_pos):
            self.hide_hover()
            return
        p = self.viewbox.mapSceneToView(self._hover_pos)
        sid = self.nearest(p.x(), p.y())
        if sid is None:
            self.hide_hover()
            return
        self.show_hover(sid, self.plot.mapFromScene(self._hover_pos))

    def show_hover(self, sid: int, at: Any = None) -> None:
        s = self.session
        info = s.sample_scores(sid)
        pix = self.cache.get(sid)
        if pix is not None:
            self.card.image.setPixmap(pix)
        self.card.image.setVisible(pix is not None)
        lines = [f"<b>#{sid}</b> {info['label']}", f"review: {info['review']}"]
        for key in ("rank", "density", "mindist", "posterior"):
            if key == "rank" and key in info and isinstance(info[key], (int, np.integer)):
                # counted from 1 as the inspector's "density rank" (the card read 1476 where it read 1,477)
                lines.append(f"density rank: {int(info[key]) + 1:,} of {self.session.n:,}")
            elif key in info:
                lines.append(f"{key}: {fmt(info[key])}")
        flags = [k for k in ("candidate", "flagged", "spread") if info.get(k)]
        if flags:
            lines.append("<span style='color:#c00'>" + ", ".join(flags) + "</span>")
        self.card.text.setText("<br>".join(lines))
        self.card.adjustSize()
        self.hover_item.setData([self._points[sid, 0]], [self._points[sid, 1]])
        if at is not None:
            x = min(int(at.x()) + 16, max(0, self.plot.width() - self.card.width() - 4))
            y = min(int(at.y()) + 16, max(0, self.plot.height() - self.card.height() - 4))
            self.card.move(x, y)
        self.card.show()
        self.card.raise_()

    def hide_hover(self) -> None:
        self.card.hide()
        self.hover_item.setData([], [])
