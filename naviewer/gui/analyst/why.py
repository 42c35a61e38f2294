"""Why flagged: the evidence behind the flags, with the selected samples marked.

Three plots, after the DIFT paper: the MinDist histogram of the candidates with the two GMM
components and their split (Figure 2), the density histogram with the candidate cut-off, and the
number of detected samples per epoch (Figure 3) with how many of the selected samples were among
them.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from naviewer.analysis.session import AnalysisSession
from naviewer.gui.analyst.common import FLAG_COLOUR, SELECTION_COLOUR, SessionBridge

BENIGN = QColor(0, 114, 178)
POISON = QColor(213, 94, 0)


def _plot(title: str, xlabel: str, ylabel: str, legend_offset: tuple[int, int] = (-10, 10)) -> pg.PlotWidget:
    plot = pg.PlotWidget()
    plot.setBackground("w")
    plot.setTitle(title, color="#222", size="10pt")
    plot.setLabel("bottom", xlabel)
    plot.setLabel("left", ylabel)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setMenuEnabled(False)
    for axis in ("bottom", "left"):
        plot.getAxis(axis).enableAutoSIPrefix(False)
        plot.getAxis(axis).setTextPen("#333")
    plot.addLegend(offset=legend_offset, labelTextSize="8pt", labelTextColor="#222", brush=pg.mkBrush(255, 255, 255, 200))
    return plot


class WhyFlaggedWidget(QWidget):
    """``WhyFlaggedWidget(session, parent=None, vertical=False)``: three evidence plots, redrawn on selection."""

    def __init__(self, session: AnalysisSession, parent: Optional[QWidget] = None, vertical: bool = False) -> None:
        super().__init__(parent)
        self.session = session
        self.bridge = SessionBridge.of(session)
        self.mindist_plot = _plot("MinDist of the candidates (GMM split)", "MinDist", "count")
        self.density_plot = _plot("Local density of every sample", "log density", "count")
        self.epoch_plot = _plot("Detected per epoch", "epoch", "samples", legend_offset=(-10, -40))
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #555;")
        plots = QVBoxLayout() if vertical else QHBoxLayout()
        for p in (self.mindist_plot, self.density_plot, self.epoch_plot):
            plots.addWidget(p)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(plots, 1)
        layout.addWidget(self.note)
        self.bridge.selection_changed.connect(lambda _ids, _src: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        self._draw_mindist()
        self._draw_density()
        self._draw_epochs()

    @staticmethod
    def _hist(plot: pg.PlotWidget, values: np.ndarray, edges: np.ndarray, colour: QColor, name: str, alpha: int = 120) -> None:
        counts, _ = np.histogram(values, bins=edges)
        fill = QColor(colour)
        fill.setAlpha(alpha)
        plot.plot(edges, counts, stepMode="center", fillLevel=0, brush=fill, pen=pg.mkPen(colour, width=1), name=name)

    def _draw_mindist(self) -> None:
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
        self._hist(plot, values, edges, QColor(150, 150, 150), f"candidates ({len(values)})", 90)
        width = edges[1] - edges[0]
        grid = np.linspace(edges[0], edges[-1], 400)
        for k, (colour, name) in enumerate(((BENIGN, "benign component"), (POISON, "poison component"))):
            m, sd, w = gmm["means"][k], max(gmm["stds"][k], 1e-9), gmm["weights"][k]
            pdf = w * len(values) * width * np.exp(-0.5 * ((grid - m) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
            plot.plot(grid, pdf, pen=pg.mkPen(colour, width=2), name=name)
        plot.addItem(pg.InfiniteLine(gmm["split"], angle=90, pen=pg.mkPen("k", width=1.5, style=Qt.PenStyle.DashLine),
                                     label=f"split {gmm['split']:.3g}", labelOpts={"position": 0.55, "color": "#222", "fill": (255, 255, 255, 200)}))
        sel = s.selection
        if len(sel):
            sv = np.asarray(md, np.float64)[sel]
            sv = sv[np.isfinite(sv)]
            if len(sv):
                self._hist(plot, sv, edges, SELECTION_COLOUR, f"selected ({len(sv)})", 200)
        plot.setTitle(f"MinDist of the candidates: {int((flagged > gmm['split']).sum())} flags above the split", color="#222", size="10pt")

    def _draw_density(self) -> None:
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
        self._hist(plot, logd, edges, QColor(120, 120, 120), f"all ({s.n:,})", 80)
        if s.candidate_mask.any():
            cut = float(logd[s.candidate_mask].min())
            plot.addItem(pg.InfiniteLine(cut, angle=90, pen=pg.mkPen(FLAG_COLOUR, width=1.5, style=Qt.PenStyle.DashLine),
                                         label="candidate cut-off", labelOpts={"position": 0.55, "color": "#a00", "fill": (255, 255, 255, 200)}))
            self._hist(plot, logd[s.flagged_mask], edges, FLAG_COLOUR, f"flagged ({int(s.flagged_mask.sum())})", 160)
        if len(s.selection):
            self._hist(plot, logd[s.selection], edges, SELECTION_COLOUR, f"selected ({len(s.selection)})", 200)
        plot.setLogMode(False, False)

    def _draw_epochs(self) -> None:
        plot, s = self.epoch_plot, self.session
        plot.clear()
        epochs, counts, sel = s.detections_per_epoch()
        if len(epochs) == 0:
            plot.setTitle("Detected per epoch: one pass only", color="#888", size="10pt")
            self.note.setText("Run DIFT during training to see how the detections converge over epochs.")
            return
        x = epochs + 1  # displays are 1-based
        legend = plot.getPlotItem().legend
        if legend is not None:  # the corner the curve leaves free: top when detections fall, bottom when they rise
            legend.setOffset((-10, 10) if counts[-1] <= counts[0] else (-10, -40))
        plot.plot(x, counts, pen=pg.mkPen(FLAG_COLOUR, width=2), symbol="o", symbolSize=6, symbolBrush=FLAG_COLOUR, name="detected")
        if len(s.selection):
            plot.plot(x, sel, pen=pg.mkPen(SELECTION_COLOUR, width=2), symbol="s", symbolSize=6, symbolBrush=SELECTION_COLOUR,
                      name=f"of the {len(s.selection)} selected")
        self.note.setText(
            f"Detections over {len(epochs)} epochs (epoch {int(x[0])}\u2013{int(x[-1])}); the last one detected "
            f"{int(counts[-1]):,}, the pass under review flags {int(s.flagged_mask.sum()):,}."
            + (f" {int(sel[-1])} of the {len(s.selection)} selected samples were detected in the last epoch."
               if len(s.selection) else "")
        )

    def plots(self) -> dict[str, Any]:
        return {"MinDist and GMM": self.mindist_plot, "density": self.density_plot, "detected per epoch": self.epoch_plot}
