"""Frozen copies of the analyst views' open as it was before issue 17 item 4 made it cheap: the density
map's base layer (the grid counted for the image and for each mark layer, ten comparison passes over N for
the colour classes, a float64 copy of the points and their min/max along axis 0, all on the GUI thread) and
the why-flagged plots (a float64 log of every density value and ``np.histogram`` with explicit edges, redone
on every selection change). Kept only as the same-run baseline of ``naviewer bench gui --stall``
(:func:`legacy_views`) and for the tests that check the new code draws the same; nothing else uses it.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor
from scipy.spatial import cKDTree

from naviewer.analysis.review import REVIEW_STATES
from naviewer.gui.analyst.common import CANDIDATE_COLOUR, FLAG_COLOUR, SELECTION_COLOUR, STATE_COLOURS, class_colour
from naviewer.gui.analyst import density_map as _dm
from naviewer.gui.analyst.density_map import DENSITY_BINS, DENSITY_COLOURS
from naviewer.gui.analyst.detector_scores import PREFIX as DETECTOR_PREFIX
from naviewer.gui.analyst.why import _MARGIN, BENIGN, POISON  # noqa: F401  (the frozen code names them)



def _grid_counts(pts: np.ndarray, lo: np.ndarray, span: np.ndarray, bins: int) -> np.ndarray:
    """Points per cell of a bins x bins grid over [lo, lo + span] (what ``np.histogram2d`` gives for
    equal bins, the top edge included in the last bin) by one bincount: ~10x faster at 10M points."""
    counts = np.zeros(bins * bins, np.int64)
    for start in range(0, len(pts), 1 << 21):  # blocks: the index arrays stay small at 10M points
        block = pts[start:start + (1 << 21)]
        ix = np.clip(((block[:, 0] - lo[0]) / span[0] * bins).astype(np.int64), 0, bins - 1)
        iy = np.clip(((block[:, 1] - lo[1]) / span[1] * bins).astype(np.int64), 0, bins - 1)
        counts += np.bincount(ix * bins + iy, minlength=bins * bins)
    return counts.reshape(bins, bins).astype(np.float64)


# -- DensityMapWidget, as it was ------------------------------------------------------------------

def map_rebuild(self) -> None:
    """(Re)build the base layer for the current projection and colour mode."""
    self._points = np.ascontiguousarray(self.session.projection(), dtype=np.float64)
    self._tree = None
    if len(self._points) > _dm.TREE_SYNC_LIMIT:
        points = self._points

        def build() -> None:  # cKDTree builds without the GIL: the GUI thread keeps running meanwhile
            tree = cKDTree(points)
            if self._points is points:  # not rebuilt for another projection meanwhile
                self._tree = tree

        self._tree_thread = threading.Thread(target=build, name="naviewer-map-index", daemon=True)
        self._tree_thread.start()
    elif len(self._points):
        self._tree = cKDTree(self._points)
    self._build_base()  # updates the overlays too
    self._update_current()
    self.viewbox.autoRange(padding=0.02)


def map_colour_classes(self) -> list[tuple[QColor, str, np.ndarray]]:
    s = self.session
    if self.colour_mode == "class":
        labels = s.labels
        return [(class_colour(int(c)), s.class_name(int(c)), np.flatnonzero(labels == c)) for c in np.unique(labels)]
    if self.colour_mode == "review":
        codes = s.state_codes
        return [(STATE_COLOURS[name], name, np.flatnonzero(codes == c)) for c, name in enumerate(REVIEW_STATES)]
    item = self.detectors.get(self.colour_mode) if self.colour_mode.startswith(DETECTOR_PREFIX) else None
    if item is not None:  # a detector's score: higher = more suspicious, ranked like density
        frac = item.rank / max(s.n, 1)
        missing = ~np.isfinite(np.asarray(item.score, np.float64))
        groups = [(QColor(*DENSITY_COLOURS[b]), f"{item.label} {label}",
                   np.flatnonzero((frac >= lo) & (frac < hi) & ~missing)) for b, (lo, hi, label) in enumerate(DENSITY_BINS)]
        if missing.any():
            groups.append((QColor(200, 200, 200), "no score", np.flatnonzero(missing)))
        return groups
    frac = s.density_rank() / max(s.n, 1)
    return [
        (QColor(*DENSITY_COLOURS[b]), label, np.flatnonzero((frac >= lo) & (frac < hi)))
        for b, (lo, hi, label) in enumerate(DENSITY_BINS)
    ]


def map_build_base(self) -> None:
    for item in self._base_items:
        self.viewbox.removeItem(item)
    self._base_items = []
    self._class_counts = self._colour_classes()
    pts = self._points
    if self.image_mode:
        self._base_items.append(self._density_image(pts))
    elif self.colour_mode == "review":
        item = pg.ScatterPlotItem(
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
            item = pg.ScatterPlotItem(
                pts[ids, 0], pts[ids, 1], size=4, pen=None, brush=pg.mkBrush(colour), pxMode=True,
                antialias=False, hoverable=False, useCache=True,
            )
            item.setZValue(z)
            self.viewbox.addItem(item)
            self._base_items.append(item)
    self._update_state_items()
    self._update_overlays()


def map_density_image(self, pts: np.ndarray, bins: int = 512) -> pg.ImageItem:
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    counts = _grid_counts(pts, lo, span, bins)
    self._image_grid = (lo, span, bins)
    self._base_counts = counts
    image = pg.ImageItem(np.log1p(counts).astype(np.float32))
    image.setColorMap(pg.colormap.get("viridis"))
    image.setRect(QRectF(lo[0], lo[1], span[0], span[1]))
    image.setZValue(0)
    self.viewbox.addItem(image)
    return image


def map_update_overlays(self, *_args: Any) -> None:
    s, pts = self.session, self._points
    show_flags = self.flags_toggle.isChecked()
    flags = np.flatnonzero(s.flagged_mask) if show_flags else np.zeros(0, np.int64)
    cands = np.flatnonzero(s.candidate_mask & ~s.flagged_mask) if show_flags else np.zeros(0, np.int64)
    for name, item, ids, colour, ring, width, dot in (
            ("flags", self.flag_item, flags, FLAG_COLOUR, 8, 1.5, 3),
            ("candidates", self.candidate_item, cands, CANDIDATE_COLOUR, 7, 1, 2)):
        if self.image_mode and len(ids) > _dm.RASTER_LIMIT and self._image_grid is not None:
            item.setData([], [])
            self._set_mark_layer(name, ids, colour, item.zValue())
        else:
            self._set_mark_layer(name, None, colour, 0)
            item.setData(pts[ids, 0], pts[ids, 1], **self._mark_style(len(ids), colour, ring, width, dot))
    sel = s.selection
    self.selection_item.setData(pts[sel, 0], pts[sel, 1])
    # dim everything else while something is selected (one opacity per item: no re-brushing)
    dim = 0.3 if len(sel) else 1.0
    for item in list(self._base_items) + list(self.state_items.values()):
        item.setOpacity(dim)
    self._update_legend()


def map_set_mark_layer(self, name: str, ids: Optional[np.ndarray], colour: QColor, z: float) -> None:
    """Paint ``ids`` into an RGBA layer on the density image's grid (None: remove the layer)."""
    old = self._mark_layers.pop(name, None)
    if old is not None:
        self.viewbox.removeItem(old)
    if ids is None or self._image_grid is None:
        return
    lo, span, bins = self._image_grid
    marks = _grid_counts(self._points[ids], lo, span, bins)
    lit = marks > 0
    rgba = np.zeros((bins, bins, 4), np.uint8)
    rgba[lit, 0], rgba[lit, 1], rgba[lit, 2] = colour.red(), colour.green(), colour.blue()
    if name == "flags":  # the flags: opaque, on top of everything
        rgba[lit, 3] = 255
    else:  # candidates: as opaque as they are common in the cell (a sprinkle over 10M points tinted it all)
        share = marks[lit] / np.maximum(self._base_counts[lit], 1)
        rgba[lit, 3] = np.clip(48 + 800 * share, 48, 255).astype(np.uint8)
    layer = pg.ImageItem(rgba)
    layer.setRect(QRectF(lo[0], lo[1], span[0], span[1]))
    layer.setZValue(z)
    self.viewbox.addItem(layer)
    self._mark_layers[name] = layer


def map_update_legend(self) -> None:
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
    if self._class_counts:  # the words are today's (the legend's text is compared); the counting is as it was
        parts += _dm.colour_heading(self.colour_mode, self.colour_box.currentText(), sel is not None)
    for colour, name, ids in self._class_counts[:24]:
        count = f"{int(sel[ids].sum()):,} of {len(ids):,}" if sel is not None else f"{len(ids):,}"
        parts.append(f"<span style='color:{colour.name()}'>■</span> {name} {count}")
    mode = " · density image (too many points for a scatter)" if self.image_mode else ""
    # an entry never breaks inside ("top 1% 20 / 20" stays on one line); the lines break between entries
    self.legend.setText(_dm.legend_html(parts) + mode)


# -- WhyFlaggedWidget, as it was ------------------------------------------------------------------

def why_refresh(self) -> None:
    self._draw_mindist()
    self._draw_density()
    self._draw_epochs()


def why_draw_mindist(self) -> None:
    plot, s = self.mindist_plot, self.session
    plot.clear()
    md = s.score("mindist")
    gmm = s.gmm()
    if md is None or gmm is None:
        plot.setTitle("MinDist: not available for this pass", color="#888", size="10pt")
        return
    values = gmm["values"]
    if len(values) == 0:
        plot.setTitle("MinDist: no candidates in this pass", color="#888", size="10pt")
        return
    lo, hi = float(values.min()), float(values.max())
    pad = 0.1 * (hi - lo or 1.0)
    edges = np.linspace(lo - pad, hi + pad, 41)
    flagged = np.asarray(md, np.float64)[s.flagged_mask]
    top = self._hist(plot, values, edges, QColor(150, 150, 150), f"candidates ({len(values)})", 90)
    width = edges[1] - edges[0]
    grid = np.linspace(edges[0], edges[-1], 400)
    for k, (colour, name) in enumerate(((BENIGN, "benign (GMM)"), (POISON, "poison (GMM)"))):
        m, sd, w = gmm["means"][k], max(gmm["stds"][k], 1e-9), gmm["weights"][k]
        pdf = w * len(values) * width * np.exp(-0.5 * ((grid - m) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
        plot.plot(grid, pdf, pen=pg.mkPen(colour, width=2), name=name)
        top = max(top, float(pdf.max()))
    line = pg.InfiniteLine(gmm["split"], angle=90, pen=pg.mkPen("k", width=1.5, style=Qt.PenStyle.DashLine),
                           label=f"split {gmm['split']:.3g}", labelOpts={"color": "#222", "fill": (255, 255, 255, 215)})
    plot.addItem(line)
    sel = s.selection
    if len(sel):
        sv = np.asarray(md, np.float64)[sel]
        sv = sv[np.isfinite(sv)]
        if len(sv):
            top = max(top, self._hist(plot, sv, edges, SELECTION_COLOUR, f"selected ({len(sv)})", 200))
    # short: the plot is a third of a docked panel (the x axis says these are the candidates)
    self._layouts["mindist"].set((float(edges[0]), float(edges[-1])), top, line,
                                 f"MinDist: {int((flagged > gmm['split']).sum())} flags above the split")


def why_draw_density(self) -> None:
    plot, s = self.density_plot, self.session
    plot.clear()
    dens = s.score("density")
    if dens is None:
        plot.setTitle("density: not available", color="#888", size="10pt")
        return
    d = np.asarray(dens, np.float64)
    positive = d[np.isfinite(d) & (d > 0)]
    logd = np.log10(np.where(np.isfinite(d) & (d > 0), d, positive.min() if len(positive) else 1.0))
    edges = np.linspace(logd.min(), logd.max() + 1e-9, 61)
    top = self._hist(plot, logd, edges, QColor(120, 120, 120), f"all ({s.n:,})", 80)
    line = None
    if s.candidate_mask.any():
        cut = float(logd[s.candidate_mask].min())
        line = pg.InfiniteLine(cut, angle=90, pen=pg.mkPen(FLAG_COLOUR, width=1.5, style=Qt.PenStyle.DashLine),
                               label="candidate cut-off", labelOpts={"color": "#a00", "fill": (255, 255, 255, 215)})
        plot.addItem(line)
        self._hist(plot, logd[s.flagged_mask], edges, FLAG_COLOUR, f"flagged ({int(s.flagged_mask.sum())})", 160)
    if len(s.selection):
        self._hist(plot, logd[s.selection], edges, SELECTION_COLOUR, f"selected ({len(s.selection)})", 200)
    plot.setLogMode(False, False)
    self._layouts["density"].set((float(edges[0]), float(edges[-1])), top, line, "Local density")

def why_hist(plot: pg.PlotWidget, values: np.ndarray, edges: np.ndarray, colour: QColor, name: str, alpha: int = 120) -> int:
    """Draws the histogram; returns its highest count (the layout keeps room above it)."""
    counts, _ = np.histogram(values, bins=edges)
    fill = QColor(colour)
    fill.setAlpha(alpha)
    plot.plot(edges, counts, stepMode="center", fillLevel=0, brush=fill, pen=pg.mkPen(colour, width=1), name=name)
    return int(counts.max()) if len(counts) else 0


_MAP = ("rebuild", "_colour_classes", "_build_base", "_density_image", "_update_overlays", "_set_mark_layer",
        "_update_legend")
_WHY = ("refresh", "_draw_mindist", "_draw_density")


@contextlib.contextmanager
def legacy_views() -> Iterator[None]:
    """The map, the why-flagged plots, the session's clusters and the cluster table's thumbnail strips as
    they were (everything on the GUI thread, the former per-N work); restored on exit."""
    from naviewer.analysis import session as session_module
    from naviewer.analysis import _clusters_baseline as _open_baseline
    from naviewer.gui.analyst.clusters import ClusterListWidget
    from naviewer.gui.analyst.density_map import DensityMapWidget
    from naviewer.gui.analyst.why import WhyFlaggedWidget

    g = globals()
    saved_map = {name: DensityMapWidget.__dict__[name] for name in _MAP}
    saved_why = {name: WhyFlaggedWidget.__dict__[name] for name in _WHY + ("_hist",)}
    saved = (DensityMapWidget.ASYNC_FROM, WhyFlaggedWidget.ASYNC_FROM, session_module.flagged_clusters,
             ClusterListWidget.STRIPS_AT_ONCE)
    try:
        for name in _MAP:
            setattr(DensityMapWidget, name, g["map" + (name if name.startswith("_") else "_" + name)])
        for name in _WHY:
            setattr(WhyFlaggedWidget, name, g["why" + (name if name.startswith("_") else "_" + name)])
        WhyFlaggedWidget._hist = staticmethod(why_hist)
        DensityMapWidget.ASYNC_FROM = WhyFlaggedWidget.ASYNC_FROM = 1 << 62
        # the frozen grouping, given what it measured then (the anchor-reach summary came later)
        session_module.flagged_clusters = lambda *a, reach=None, **k: _open_baseline.flagged_clusters(*a, **k)
        ClusterListWidget.STRIPS_AT_ONCE = 1 << 62  # every thumbnail strip at once
        yield
    finally:
        for name, value in saved_map.items():
            setattr(DensityMapWidget, name, value)
        for name, value in saved_why.items():
            setattr(WhyFlaggedWidget, name, value)
        (DensityMapWidget.ASYNC_FROM, WhyFlaggedWidget.ASYNC_FROM, session_module.flagged_clusters,
         ClusterListWidget.STRIPS_AT_ONCE) = saved
