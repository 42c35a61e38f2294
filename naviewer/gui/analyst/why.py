"""Why flagged: the evidence behind the flags, with the selected samples marked.

Three plots, after the DIFT paper: the MinDist histogram of the candidates with the two GMM
components and their split (Figure 2), the density histogram with the candidate cut-off, and the
number of detected samples per epoch (Figure 3) with how many of the selected samples were among
them.
"""

from __future__ import annotations

import html
import threading
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from naviewer.analysis.session import AnalysisSession
from naviewer.errors import JobCancelled
from naviewer.gui.analyst.common import FLAG_COLOUR, SELECTION_COLOUR, SessionBridge, process_events_while
from naviewer.gui.theme import sync_pyqtgraph
from naviewer.jobs import JobContext

BENIGN = QColor(0, 114, 178)
POISON = QColor(213, 94, 0)


LEGEND_FONT = "7pt"
_MARGIN = 4  # px between the legend, a line's label and the view's edges


class _SmallSample(pg.ItemSample):
    """A legend sample at 60 % of pyqtgraph's 20 px square: legend rows as tall as their 7 pt text."""

    SCALE = 0.6

    def boundingRect(self):  # noqa: N802 (Qt's name)
        return QRectF(0, 0, 20 * self.SCALE, 20 * self.SCALE)

    def paint(self, p, *args) -> None:
        p.scale(self.SCALE, self.SCALE)
        super().paint(p, *args)


def _foreground() -> str:
    colour = pg.getConfigOption("foreground")
    return colour if isinstance(colour, str) else "#222"


def theme_plot(plot: pg.PlotWidget, theme: Any) -> None:
    """Re-colour one plot for ``theme`` (background, axes, title)."""
    plot.setBackground(theme.plot_background)
    for name in ("bottom", "left"):
        axis = plot.getAxis(name)
        axis.setPen(theme.plot_foreground)
        axis.setTextPen(theme.plot_foreground)
    plot.naviewer_foreground = theme.plot_foreground  # type: ignore[attr-defined]  (titles drawn later use it)
    title = getattr(plot, "naviewer_title", None)
    if title:
        plot.setTitle(title, color=theme.plot_foreground, size="10pt")
    legend = plot.getPlotItem().legend
    if legend is not None:
        style = _legend_style(theme.plot_foreground, theme.plot_background)
        legend.setBrush(style["brush"])
        legend.setPen(style["pen"])
        legend.setLabelTextColor(style["labelTextColor"])


def _plot(title: str, xlabel: str, ylabel: str, legend_offset: tuple[int, int] = (-_MARGIN, _MARGIN)) -> pg.PlotWidget:
    sync_pyqtgraph()  # the theme applied before pyqtgraph was imported
    plot = pg.PlotWidget()
    plot.setBackground(pg.getConfigOption("background"))  # the theme's (configure_pyqtgraph)
    plot.setTitle(title, color=_foreground(), size="10pt")
    plot.naviewer_title = title  # type: ignore[attr-defined]  (set_theme re-colours it)
    plot.setLabel("bottom", xlabel)
    plot.setLabel("left", ylabel)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setMenuEnabled(False)
    for axis in ("bottom", "left"):
        plot.getAxis(axis).enableAutoSIPrefix(False)
        plot.getAxis(axis).setTextPen(_foreground())
    # compact: small font, tight rows, so it fits inside a narrow plot (the analyst docked at 1280 px); on a box of
    # the plot's own background (a light grey box in the dark theme read as a left-over; a newcomer, session 21)
    plot.addLegend(offset=legend_offset, labelTextSize=LEGEND_FONT, verSpacing=-4, horSpacing=4,
                   sampleType=_SmallSample, **_legend_style(_foreground(), pg.getConfigOption("background")))
    return plot


def _frame(plot: pg.PlotWidget, shown: bool) -> None:
    """Axes and legend of a plot that has something to draw, or none of them under a "not available" title: empty
    axes and an empty legend box read as a drawing fault (a newcomer, session 27)."""
    item = plot.getPlotItem()
    for axis in ("left", "bottom"):
        item.showAxis(axis, shown)
    if item.legend is not None:
        item.legend.setVisible(shown)


def _line_label(plot: pg.PlotWidget, colour: Any) -> dict[str, Any]:
    """A vertical line's label in ``colour`` on a box of the plot's own background (it was a white box)."""
    back = pg.mkColor(plot.backgroundBrush().color())
    back.setAlpha(215)
    return {"color": pg.mkColor(colour), "fill": pg.mkBrush(back)}


def _legend_style(foreground: Any, background: Any) -> dict[str, Any]:
    """The legend box's brush, pen and text colour for a plot of these colours: its background, nearly opaque."""
    back = pg.mkColor(background)
    back.setAlpha(215)
    edge = pg.mkColor(foreground)
    edge.setAlpha(90)
    return {"brush": pg.mkBrush(back), "pen": pg.mkPen(edge), "labelTextColor": pg.mkColor(foreground)}


def _compact(legend: pg.LegendItem) -> None:
    """Legend rows as tall as their text: pyqtgraph pads each 7 pt label to 20 px and the frame by 9 px."""
    legend.layout.setContentsMargins(3, 1, 3, 1)
    for _sample, label in legend.items:
        if label.item.document().documentMargin() != 1:
            label.item.document().setDocumentMargin(1)
            size = label.item.boundingRect().size()
            label.setMinimumSize(size)
            label.setPreferredSize(size)
            label.setMaximumSize(size)
    legend.layout.activate()


def _span(a0: float, a1: float, b0: float, b1: float) -> bool:
    return a0 < b1 and b0 < a1


class _HistogramLayout:
    """Keeps a histogram's legend and its vertical line's label readable at any plot size.

    The legend sits in the top corner away from the line; the label sits at the top, on the side
    of the line with room for it, below the legend if the two would meet; the y range gets just
    enough headroom that the data stays under both. Re-done whenever the view is resized.
    """

    def __init__(self, plot: pg.PlotWidget) -> None:
        self.plot = plot
        self.line: Optional[pg.InfiniteLine] = None
        self.x_range = (0.0, 1.0)
        self.y_max = 1.0
        self.tooltip = plot.toolTip()
        self.title = ""
        self.avoid: list[tuple[float, float]] = []  # x spans (data units) the legend keeps off: the cut bars
        self._shown_title: Optional[str] = None
        plot.getPlotItem().vb.sigResized.connect(lambda *_a: self.arrange())

    def set(self, x_range: tuple[float, float], y_max: float, line: Optional[pg.InfiniteLine], title: str,
            avoid: Sequence[tuple[float, float]] = ()) -> None:
        """``avoid``: the x spans of bars cut at the top of the view (they run through the whole height, so a legend
        in a corner sat on them: a newcomer, session 27); the legend takes a corner clear of them, else the line
        under the title."""
        self.x_range, self.y_max, self.line, self.title = x_range, max(float(y_max), 1.0), line, title
        self.avoid = list(avoid)
        self._shown_title = None
        if line is not None and line.label is not None:
            font = QFont(line.label.textItem.font())
            font.setPointSizeF(8.0)
            line.label.setFont(font)
        self.arrange()

    def arrange(self) -> None:
        item = self.plot.getPlotItem()
        vb, legend = item.vb, item.legend
        width, height = vb.width(), vb.height()
        if width <= 1 or height <= 1:
            return
        x0, x1 = self.x_range
        frac = (float(self.line.value()) - x0) / (x1 - x0) if self.line is not None and x1 > x0 else 0.0
        legend_left = self.line is not None and frac > 0.5
        scale = width / (x1 - x0) if x1 > x0 else 0.0
        avoid = [((a - x0) * scale, (b - x0) * scale) for a, b in self.avoid]
        box = None  # the legend's (x0, x1, bottom) in view pixels
        if legend is not None and legend.items:
            _compact(legend)
            # every column count and corner that fits the width: the one whose legend and label
            # take least height from the top wins (fewer columns, the corner away from the line on ties)
            best = None
            for columns in range(1, len(legend.items) + 1):
                legend.setColumnCount(columns)
                legend.layout.activate()
                legend.updateSize()
                lw, lh = legend.width(), legend.height()
                if lw + 2 * _MARGIN > width:
                    break
                for left in (legend_left, not legend_left):
                    lx0 = _MARGIN if left else width - _MARGIN - lw
                    corner = (lx0, lx0 + lw, _MARGIN + lh)
                    if any(_span(corner[0], corner[1], a, b) for a, b in avoid):
                        continue  # on a cut bar
                    key = (self._place_label(width, height, frac, left, corner), columns, left != legend_left)
                    if best is None or key < best[0]:
                        best = (key, columns, left, corner)
            if best is not None:
                _key, columns, legend_left, box = best
                legend.setColumnCount(columns)
                legend.layout.activate()
                legend.updateSize()
        band = self._place_label(width, height, frac, legend_left, box)
        if box is not None and band + _MARGIN > 0.65 * height:
            box = None  # too small for both: the legend steps aside, the line's label stays readable
            band = self._place_label(width, height, frac, legend_left, None)
        if legend is not None and legend.items:
            legend.setVisible(box is not None)
            if box is not None:
                side = 0 if legend_left else 1
                legend.anchor(itemPos=(side, 0), parentPos=(side, 0), offset=(_MARGIN if legend_left else -_MARGIN, _MARGIN))
            # a plot too short for its legend inside says what its colours are in a small line under its title
            title = self.title
            if box is None:
                font = QFont(item.titleLabel.item.font())
                font.setPointSizeF(7.0)
                metrics, room = QFontMetrics(font), max(60.0, self.plot.width() - 24.0)
                lines: list[list[str]] = [[]]
                used = 0.0
                for sample, label in legend.items:  # packed into lines as wide as the plot
                    colour = pg.mkPen(sample.item.opts.get("pen")).color().name()
                    need = metrics.horizontalAdvance(f"\u25a0 {label.text}   ")
                    if lines[-1] and used + need > room:
                        lines.append([])
                        used = 0.0
                    lines[-1].append(f"<span style='color:{colour}'>\u25a0</span>&nbsp;{html.escape(label.text)}")
                    used += need
                title += "".join("<br><span style='font-size:7pt'>" + " &nbsp;".join(keys) + "</span>" for keys in lines)
            if title != self._shown_title:
                self._shown_title = title
                # the theme's text colour: "#222" was dark on the dark theme's plots (newcomer session 16)
                item.setTitle(title, color=getattr(self.plot, "naviewer_foreground", None) or _foreground(), size="10pt")
                rows = max(30, int(item.titleLabel.item.boundingRect().height()) + 2)  # pyqtgraph fixes 30 px
                item.titleLabel.setMaximumHeight(rows)
                item.layout.setRowFixedHeight(0, rows)
        free = min(0.65, (band + _MARGIN) / height) if band else 0.05
        vb.setRange(xRange=self.x_range, yRange=(0.0, self.y_max / (1.0 - free)), padding=0)

    def _place_label(self, width: float, height: float, frac: float, legend_left: bool,
                     box: Optional[tuple[float, float, float]]) -> float:
        """Puts the line's label at the top, beside the line, under the legend ``box`` if they meet;
        returns the lowest pixel the legend and label take from the top."""
        band = box[2] if box is not None else 0.0
        if self.line is None or self.line.label is None:
            return band
        label = self.line.label
        rect = label.boundingRect()
        lbw, lbh = rect.width(), rect.height()
        at = frac * width
        room_left, room_right = at - _MARGIN >= lbw, width - at - _MARGIN >= lbw
        # away from the legend's corner when there is room there, else on the side that has room
        right = (room_right or not room_left) if legend_left else not (room_left or not room_right)
        bx0, bx1 = (at, at + lbw) if right else (at - lbw, at)
        top = _MARGIN
        if box is not None and _span(bx0, bx1, box[0], box[1]):
            top = box[2] + 2  # under the legend
        anchor = (0, 0) if right else (1, 0)
        label.anchors = [anchor, anchor]
        label.setAnchor(anchor)
        label.setPosition(max(0.0, 1.0 - top / height))
        return max(band, top + lbh)


#: values per block of the per-N work (small temporaries; a worker gives the GIL back between blocks)
BLOCK = 1 << 20


def hist_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``np.histogram(values, bins=edges)[0]`` for increasing, nearly even ``edges`` (a linspace), without
    its sort: each value's bin by arithmetic, put right against the edges themselves (so a value on an edge
    lands where ``np.histogram`` puts it: bins are [e_i, e_i+1), the last one closed), then one bincount.
    NaN and values outside the edges are not counted."""
    edges = np.asarray(edges, np.float64)
    nb = len(edges) - 1
    counts = np.zeros(max(nb, 0), np.int64)
    if nb <= 0:
        return counts
    first, last = edges[0], edges[-1]
    norm = nb / (last - first) if last > first else 0.0
    values = np.asarray(values)
    for start in range(0, len(values), BLOCK):
        v = np.asarray(values[start:start + BLOCK], np.float64)
        v = v[(v >= first) & (v <= last)]  # NaN fails both
        idx = ((v - first) * norm).astype(np.intp)
        np.clip(idx, 0, nb - 1, out=idx)
        while True:  # at most a step or two: the guess is off only next to an edge
            down = v < edges[idx]
            up = (v >= edges[idx + 1]) & (idx < nb - 1)
            if not (down.any() or up.any()):
                break
            idx[down] -= 1
            idx[up] += 1
        counts += np.bincount(idx, minlength=nb)
    return counts


def log_density(values: np.ndarray, fill: float) -> np.ndarray:
    """log10 of density values as the plot shows them (float64; missing and non-positive values as ``fill``)."""
    d = np.asarray(values, np.float64)
    return np.log10(np.where(np.isfinite(d) & (d > 0), d, fill))


def density_summary(density: np.ndarray, candidate: np.ndarray, flagged: np.ndarray,
                    check: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """What the density plot draws for a pass, made once (``_draw_density`` redid it on every selection):
    the 60 bins over log10(density) of every sample (float64, as before), their counts, the candidate
    cut-off and the flags' counts; ``fill`` is what a missing or non-positive density is drawn as."""
    n = len(density)
    pos_min, pos_max = np.inf, -np.inf
    for start in range(0, n, BLOCK):  # the smallest positive value (the fill) and the largest
        d = np.asarray(density[start:start + BLOCK])
        ok = np.isfinite(d) & (d > 0)
        if ok.any():
            pos_min, pos_max = min(pos_min, float(d[ok].min())), max(pos_max, float(d[ok].max()))
        check()
    fill = pos_min if np.isfinite(pos_min) else 1.0
    logd = np.empty(n, np.float64)
    for start in range(0, n, BLOCK):
        logd[start:start + BLOCK] = log_density(density[start:start + BLOCK], fill)
        check()
    edges = np.linspace(logd.min(), logd.max() + 1e-9, 61)
    counts = hist_counts(logd, edges)
    check()
    out: dict[str, Any] = {"edges": edges, "counts": counts, "fill": fill, "cut": None, "flagged": None, "n_flagged": 0}
    if candidate.any():
        out["cut"] = float(logd[candidate].min())
        out["flagged"] = hist_counts(logd[flagged], edges)
        out["n_flagged"] = int(np.count_nonzero(flagged))
    return out


class _WhyRelay(QObject):
    done = Signal(int, object)  # request serial, the density summary or an exception


class WhyFlaggedWidget(QWidget):
    """``WhyFlaggedWidget(session, parent=None, vertical=False)``: three evidence plots, redrawn on selection.

    What grows with N (the density histogram of every sample, the GMM on the candidates) is made once per
    pass; from :attr:`ASYNC_FROM` samples in a worker thread, the plots saying they are being computed
    until it arrives. A selection then redraws from it, histogramming the selected samples only."""

    def set_theme(self, theme: Any) -> None:
        """Dark or light: the three plots follow the application's theme (the lines and their labels redrawn)."""
        for plot in (self.mindist_plot, self.density_plot, self.epoch_plot):
            theme_plot(plot, theme)
        self.refresh()
        for layout in self._layouts.values():  # a title with the legend's keys in it is drawn again in the new colour
            layout._shown_title = None
            layout.arrange()

    #: sessions of at least this many samples make the per-pass summary in a worker thread
    ASYNC_FROM = 200_000

    def __init__(self, session: AnalysisSession, parent: Optional[QWidget] = None, vertical: bool = False) -> None:
        super().__init__(parent)
        self.session = session
        self.bridge = SessionBridge.of(session)
        self.mindist_plot = _plot("MinDist: GMM split", "MinDist of the candidates", "count")
        self.density_plot = _plot("Local density", "log density of every sample", "count")
        self.epoch_plot = _plot("Detected per epoch", "epoch", "samples", legend_offset=(-_MARGIN, -_MARGIN))
        self.mindist_plot.setToolTip("MinDist of the density candidates with the two GMM components and their split: "
                                     "candidates above the split are flagged (DIFT, Figure 2).")
        self.density_plot.setToolTip("Local density of every sample; the densest ones (right of the cut-off) are the "
                                     "candidates whose MinDist is split.")
        self._layouts = {"mindist": _HistogramLayout(self.mindist_plot), "density": _HistogramLayout(self.density_plot)}
        self._epoch_top: Optional[float] = None
        self.epoch_plot.getPlotItem().vb.sigResized.connect(lambda *_a: self._fit_epoch_legend())
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setObjectName("hintLabel")  # the theme's hint colour (a fixed #555 was faint on the dark theme)
        plots = QVBoxLayout() if vertical else QHBoxLayout()
        for p in (self.mindist_plot, self.density_plot, self.epoch_plot):
            plots.addWidget(p)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(plots, 1)
        layout.addWidget(self.note)
        self._summary: Optional[dict[str, Any]] = None  # density_summary of the pass, once made
        self._summary_key: Any = None
        self._job: Optional[JobContext] = None
        self._serial = 0
        self._relay = _WhyRelay(self)
        self._relay.done.connect(self._on_summary)
        self.bridge.selection_changed.connect(lambda _ids, _src: self.refresh())
        self.refresh()

    @property
    def pending(self) -> bool:
        """The per-pass summary is being made in a worker; the plots say so until it arrives."""
        return self._job is not None

    def wait_until_ready(self, timeout_s: float = 120.0) -> bool:
        """Process events until the summary is ready (True) or ``timeout_s`` passes (False)."""
        return process_events_while(lambda: self.pending, timeout_s)

    def _pass_key(self) -> Any:
        s = self.session
        return tuple(id(s.scores.get(k)) for k in ("density", "candidate", "flagged", "mindist")) + (s.n,)

    def refresh(self) -> None:
        if self._ready():
            self._draw_mindist()
            self._draw_density()
        self._draw_epochs()

    def _ready(self) -> bool:
        """The pass's summary is there (made now below ASYNC_FROM samples, else asked of a worker: False)."""
        key = self._pass_key()
        if self._summary_key == key:
            return True
        if self._job is not None and self._job.key == key:  # type: ignore[attr-defined]
            return False
        s = self.session
        dens = s.score("density")
        candidate, flagged = s.candidate_mask, s.flagged_mask

        def make(check: Callable[[], None]) -> dict[str, Any]:
            s.gmm()  # fitted (or read from the settings) once, cached by the session
            check()
            return {} if dens is None else density_summary(dens, candidate, flagged, check)

        self._serial += 1
        if self._job is not None:
            self._job.cancel()
            self._job = None
        if s.n < self.ASYNC_FROM:
            self._summary, self._summary_key = make(lambda: None), key
            return True
        ctx = JobContext()
        ctx.key = key  # type: ignore[attr-defined]
        self._job = ctx
        serial, relay = self._serial, self._relay
        for plot, title in ((self.mindist_plot, "MinDist: computing…"), (self.density_plot, "Local density: computing…")):
            plot.clear()
            plot.setTitle(title, color="#888", size="10pt")

        def work() -> None:
            try:
                result: Any = make(ctx.check)
            except JobCancelled:
                return
            except Exception as exc:  # noqa: BLE001 - shown on the plots, never lost in a thread
                result = exc
            try:
                relay.done.emit(serial, result)
            except RuntimeError:  # the widget is gone
                pass

        threading.Thread(target=work, name="naviewer-why-summary", daemon=True).start()
        return False

    def _on_summary(self, serial: int, result: Any) -> None:
        if serial != self._serial or self._job is None:
            return
        key, self._job = self._job.key, None  # type: ignore[attr-defined]
        if isinstance(result, BaseException):
            for plot in (self.mindist_plot, self.density_plot):
                plot.setTitle(f"could not compute: {type(result).__name__}", color="#888", size="10pt")
            return
        self._summary, self._summary_key = result, key
        self.refresh()

    @staticmethod
    def _hist(plot: pg.PlotWidget, values: np.ndarray, edges: np.ndarray, colour: QColor, name: str, alpha: int = 120,
              counts: Optional[np.ndarray] = None) -> int:
        """Draws the histogram of ``values`` (or the ``counts`` made already); returns its highest count
        (the layout keeps room above it)."""
        if counts is None:
            counts = hist_counts(values, edges)
        fill = QColor(colour)
        fill.setAlpha(alpha)
        plot.plot(edges, counts, stepMode="center", fillLevel=0, brush=fill, pen=pg.mkPen(colour, width=1), name=name)
        return int(counts.max()) if len(counts) else 0

    def _draw_mindist(self) -> None:
        plot, s = self.mindist_plot, self.session
        plot.clear()
        _frame(plot, True)
        md = s.score("mindist")
        gmm = s.gmm()
        if md is None and s.score("score") is not None:  # another detector's pass: its own evidence, not three
            self._draw_detector_score(plot)               # empty charts (a newcomer's patchsearch pass, session 22)
            return
        if md is None or gmm is None:
            plot.setTitle("MinDist: not available for this pass", color="#888", size="10pt")
            _frame(plot, False)
            return
        plot.setLabel("bottom", "MinDist of the candidates")
        values = gmm["values"]
        if len(values) == 0:
            plot.setTitle("MinDist: no candidates in this pass", color="#888", size="10pt")
            return
        lo, hi = float(values.min()), float(values.max())
        pad = 0.1 * (hi - lo or 1.0)
        edges = np.linspace(lo - pad, hi + pad, 41)
        flagged = np.asarray(md)[s.flagged_mask].astype(np.float64)  # the flags' values, not a float64 copy of N
        top = self._hist(plot, values, edges, QColor(150, 150, 150), f"candidates ({len(values)})", 90)
        width = edges[1] - edges[0]
        grid = np.linspace(edges[0], edges[-1], 400)
        for k, (colour, name) in enumerate(((BENIGN, "benign (GMM)"), (POISON, "poison (GMM)"))):
            m, sd, w = gmm["means"][k], max(gmm["stds"][k], 1e-9), gmm["weights"][k]
            pdf = w * len(values) * width * np.exp(-0.5 * ((grid - m) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
            plot.plot(grid, pdf, pen=pg.mkPen(colour, width=2), name=name)
            top = max(top, float(pdf.max()))
        ink = getattr(plot, "naviewer_foreground", _foreground())  # black was lost on the dark theme's plots
        line = pg.InfiniteLine(gmm["split"], angle=90, pen=pg.mkPen(ink, width=1.5, style=Qt.PenStyle.DashLine),
                               label=f"split {gmm['split']:.3g}", labelOpts=_line_label(plot, ink))
        plot.addItem(line)
        sel = s.selection
        if len(sel):
            sv = np.asarray(md)[sel].astype(np.float64)
            sv = sv[np.isfinite(sv)]
            if len(sv):
                top = max(top, self._hist(plot, sv, edges, SELECTION_COLOUR, f"selected ({len(sv)})", 200))
        # short: the plot is a third of a docked panel (the x axis says these are the candidates)
        flags_above = int((flagged > gmm["split"]).sum())
        above = int((np.asarray(values) > gmm["split"]).sum())
        # the candidates' count, as the bars and the legend show them: "33 flags above the split" counted the
        # flags label spreading added too and matched neither the legend nor the epochs plot (a newcomer, session 22)
        title = f"MinDist: {above} of {len(values)} above the split"
        if flags_above == 0 and above:  # "0 flags above the split" over bars above it read as a contradiction: the
            # guard judged the split, and only the Log said so (a newcomer, session 19)
            title = f"MinDist: {above} above the split, none flagged (the guard)"
        self._layouts["mindist"].set((float(edges[0]), float(edges[-1])), top, line, title)

    def _draw_detector_score(self, plot: pg.PlotWidget) -> None:
        """A detector pass (patchsearch, kdist, ...): the histogram of its score (higher = more suspicious) over every
        scored sample, its flags' and the selection's, and the threshold its rule set."""
        s = self.session
        score = np.asarray(s.score("score"), dtype=np.float64)
        finite = np.isfinite(score)
        name = str(getattr(s, "method", None) or "detector")
        if not finite.any():
            plot.setTitle(f"{name} score: no sample scored", color="#888", size="10pt")
            return
        values = score[finite]
        lo, hi = float(values.min()), float(values.max())
        pad = 0.05 * (hi - lo or 1.0)
        edges = np.linspace(lo - pad, hi + pad, 41)
        counts = hist_counts(values, edges)
        flagged = score[s.flagged_mask & finite]
        flag_top = int(hist_counts(flagged, edges).max()) if len(flagged) else 0
        cut_tall = flag_top > 0 and counts.max() > 10 * flag_top  # most samples pile at one end (patchsearch's 0):
        label = f"scored ({int(finite.sum()):,}{', tallest bar cut' if cut_tall else ''})"  # the flags' bars would
        top = self._hist(plot, None, edges, QColor(150, 150, 150), label, 90, counts=counts)  # lie flat under it
        if len(flagged):
            top = max(top, self._hist(plot, flagged, edges, FLAG_COLOUR, f"flagged ({len(flagged):,})", 160))
        if cut_tall:
            top = 3 * flag_top
        sel = s.selection
        if len(sel):
            sv = score[np.asarray(sel, dtype=np.int64)]
            sv = sv[np.isfinite(sv)]
            if len(sv):
                top = max(top, self._hist(plot, sv, edges, SELECTION_COLOUR, f"selected ({len(sv)})", 200))
        # the bars above the view's top (cut) run through its whole height: the legend keeps off them
        avoid = [(float(edges[i]), float(edges[i + 1])) for i in np.flatnonzero(counts > top)] if cut_tall else []
        threshold = (s.settings.get("threshold") or {}) if isinstance(s.settings, dict) else {}
        cut = threshold.get("value") if isinstance(threshold, dict) else None
        line = None
        on_score = isinstance(threshold, dict) and "on" not in threshold  # patchsearch cuts the log-odds, not this
        if on_score and isinstance(cut, (int, float)) and np.isfinite(cut) and lo <= float(cut) <= hi:
            ink = getattr(plot, "naviewer_foreground", _foreground())
            line = pg.InfiniteLine(float(cut), angle=90, pen=pg.mkPen(ink, width=1.5, style=Qt.PenStyle.DashLine),
                                   label=f"cut {float(cut):.3g}", labelOpts=_line_label(plot, ink))
            plot.addItem(line)
        plot.setLabel("bottom", f"{name} score (higher = more suspicious)")
        self._layouts["mindist"].set((float(edges[0]), float(edges[-1])), top, line,
                                     f"{name}: {len(flagged):,} flagged by its score", avoid=avoid)

    def _draw_density(self) -> None:
        plot, s = self.density_plot, self.session
        plot.clear()
        _frame(plot, True)
        dens = s.score("density")
        if dens is None:
            plot.setTitle("density: not available", color="#888", size="10pt")
            _frame(plot, False)
            return
        summary = self._summary
        edges = summary["edges"]
        top = self._hist(plot, None, edges, QColor(120, 120, 120), f"all ({s.n:,})", 80, counts=summary["counts"])
        line = None
        if summary["cut"] is not None:
            line = pg.InfiniteLine(summary["cut"], angle=90, pen=pg.mkPen(FLAG_COLOUR, width=1.5, style=Qt.PenStyle.DashLine),
                                   label="candidate cut-off", labelOpts=_line_label(plot, FLAG_COLOUR))
            plot.addItem(line)
            self._hist(plot, None, edges, FLAG_COLOUR, f"flagged ({summary['n_flagged']})", 160, counts=summary["flagged"])
        if len(s.selection):  # the selected samples' values only (not a log of all N on every selection)
            selected = log_density(np.asarray(dens)[s.selection], summary["fill"])
            self._hist(plot, selected, edges, SELECTION_COLOUR, f"selected ({len(s.selection)})", 200)
        plot.setLogMode(False, False)
        self._layouts["density"].set((float(edges[0]), float(edges[-1])), top, line, "Local density")

    def _draw_epochs(self) -> None:
        plot, s = self.epoch_plot, self.session
        plot.clear()
        self._epoch_top = None  # set below when there are curves: the legend's fit reads it
        self._set_epoch_title("Detected per epoch")
        epochs, counts, sel = s.detections_per_epoch()
        _frame(plot, len(epochs) > 1)
        # said of this pass, not as if the workspace never ran DIFT in training ("Run DIFT during training" stood
        # over a post-hoc pass of a workspace that had; a newcomer, session 27)
        converge = (" A pass made during training (Run ▸ Train… with DIFT in the loop; Workspace ▸ Detection passes "
                    "lists them) shows how the detections converge over the epochs.")
        if len(epochs) == 0:
            plot.setTitle("Detected per epoch: one pass only", color="#888", size="10pt")
            self.note.setText("This pass ranked the samples once, with one encoder." + converge)
            return
        if len(epochs) == 1:  # one point on an axis 33.6-34.4 under its legend said nothing (newcomer session 16)
            plot.setTitle(f"Detected per epoch: epoch {int(epochs[0]) + 1} only", color="#888", size="10pt")
            self.note.setText(f"One detection epoch (epoch {int(epochs[0]) + 1}): it detected {int(counts[0]):,}"
                              + (f", {int(sel[0])} of the {len(s.selection)} selected" if len(s.selection) else "")
                              + "." + converge)
            return
        x = epochs + 1  # displays are 1-based
        legend = plot.getPlotItem().legend
        if legend is not None:  # at the top, over headroom the y range keeps free (_fit_epoch_legend)
            legend.setOffset((-_MARGIN, _MARGIN))
        self._epoch_top = float(max(np.max(counts), np.max(sel) if len(s.selection) else 0, 1))
        # whole epochs on the axis: a pass of a few epochs read 30.5, 31.5 (a newcomer, session 30)
        axis = plot.getPlotItem().getAxis("bottom")
        if float(np.max(x) - np.min(x)) <= 12:
            axis.setTickSpacing(1, 1)
        else:
            axis.setTickSpacing()  # pyqtgraph's own spacing again
        plot.plot(x, counts, pen=pg.mkPen(FLAG_COLOUR, width=2), symbol="o", symbolSize=6, symbolBrush=FLAG_COLOUR, name="detected")
        if len(s.selection):
            plot.plot(x, sel, pen=pg.mkPen(SELECTION_COLOUR, width=2), symbol="s", symbolSize=6, symbolBrush=SELECTION_COLOUR,
                      name=f"of the {len(s.selection)} selected")
        if legend is not None:
            _compact(legend)
            legend.updateSize()
        self._fit_epoch_legend()
        self.note.setText(
            f"Detections over {len(epochs)} epochs (epoch {int(x[0])}\u2013{int(x[-1])}); the last one detected "
            f"{int(counts[-1]):,}, the pass under review flags {int(s.flagged_mask.sum()):,} (label spreading from "
            "the detections of the stable epochs, and the rules after it, make the pass's flags)."
            + (f" {int(sel[-1])} of the {len(s.selection)} selected samples were detected in the last epoch."
               if len(s.selection) else "")
        )

    def _fit_epoch_legend(self) -> None:
        """The y range of the epochs plot with room above the curves for the legend: the curve of the detections
        and the selected samples' took both corners at 1280x720 and the legend sat on them (a newcomer, session 18).
        In a plot too short for that (the legend would take over 60 % of it) the legend gives way to the curves'
        names in the title, in their colours (session 21: it covered the last epochs)."""
        top = getattr(self, "_epoch_top", None)
        item = self.epoch_plot.getPlotItem()
        legend, height = item.legend, item.vb.height()
        if top is None or legend is None or not legend.items or height <= 1:
            return
        need = (legend.height() + 2 * _MARGIN) / height  # the legend's share of the view, from the top
        short = need > 0.6
        legend.setVisible(not short)
        colours = [sample.item.opts["pen"].color().name() for sample, _label in legend.items]
        names = ("detected", "selected")  # short: the title must fit the plot's width, or it widens the plot
        self._set_epoch_title("Detected per epoch" + (": " + " · ".join(
            f"<span style='color:{colour}'>\u25a0 {name}</span>" for name, colour in zip(names, colours)) if short
            else ""))
        free = 0.0 if short else need
        high = 1.04 * top / (1.0 - free)  # the top point just under the legend (a padding of the whole range put
        item.setYRange(-0.04 * high, high, padding=0.0)  # it under the legend's lower edge past half the height)

    def _set_epoch_title(self, title: str) -> None:
        plot = self.epoch_plot
        if getattr(plot, "naviewer_title", None) != title:
            plot.naviewer_title = title  # type: ignore[attr-defined]  (set_theme re-colours it)
            plot.setTitle(title, color=_foreground(), size="10pt")

    def plots(self) -> dict[str, Any]:
        """The plots for the HTML report, titled by what they show and only those with something to show: a
        patchsearch pass's score histogram stood under "MinDist and GMM" beside two blank images (a newcomer, session
        30)."""
        s = self.session
        if s.score("mindist") is None and s.score("score") is not None:
            name = str(getattr(s, "method", None) or "detector")
            return {f"{name} score": self.mindist_plot}
        out: dict[str, Any] = {"MinDist and GMM": self.mindist_plot}
        if s.score("density") is not None:
            out["density"] = self.density_plot
        if len(s.detections_per_epoch()[0]) > 1:
            out["detected per epoch"] = self.epoch_plot
        return out
