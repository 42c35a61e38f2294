"""Measurements behind ``naviewer bench gui`` (Qt lives here so the CLI module stays Qt-free).

Map: full repaint of the plot viewport (1200x800) at N points, against an empty PlotWidget of the
same size (the floor); plus the selection-overlay update and a hover hit-test. Gallery: first paint
of a fresh grid over N items (model, layout and the visible thumbnails, from an empty cache),
against the first paint of an empty QListView of the same size. Medians of ``repeat`` runs.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any, Callable

import numpy as np


def _median_ms(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def synthetic_session(n: int, seed: int = 0, images: bool = True) -> Any:
    """A session of n points in 12 blobs with a 1% flagged pile, 32x32 thumbnails, no embedding work."""
    from naviewer.analysis.session import AnalysisSession

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    centres = rng.normal(scale=4, size=(12, 2))
    pts = centres[rng.integers(0, 12, n)] + rng.normal(size=(n, 2))
    flagged = np.zeros(n, bool)
    flagged[rng.choice(n, max(1, n // 100), replace=False)] = True
    pts[flagged] = rng.normal(scale=0.1, size=(int(flagged.sum()), 2)) + [8.0, 8.0]
    density = rng.random(n).astype(np.float32)
    density[flagged] += 2
    rank = np.empty(n, np.int64)
    rank[np.argsort(-density)] = np.arange(n)
    scores = {"density": density, "rank": rank, "candidate": rank < 2 * flagged.sum(), "flagged": flagged}
    imgs = None
    if images:
        palette = rng.integers(0, 255, (10, 3), dtype=np.uint8)
        imgs = np.repeat(np.repeat(palette[labels][:, None, None, :], 32, axis=1), 32, axis=2)
    return AnalysisSession(scores, labels, [str(i) for i in range(10)], images=imgs, projection=pts.astype(np.float32))


def map_crossover(sizes=(50_000, 100_000, 150_000, 200_000, 300_000), repeat: int = 5) -> list[dict[str, Any]]:
    """The map's repaint at each size as a scatter and as a density image (both forced), and which is
    faster: where ``DensityMapWidget.image_threshold`` should switch."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    import naviewer.gui.analyst  # noqa: F401  (installs the refcount guard)
    from naviewer.gui.analyst.density_map import DensityMapWidget

    app = QApplication.instance() or QApplication([])
    rows = []
    for n in sizes:
        session = synthetic_session(int(n), images=False)
        row: dict[str, Any] = {"n": int(n)}
        for mode, threshold in (("scatter", 10**12), ("image", 0)):
            widget = DensityMapWidget(session, image_threshold=threshold)
            widget.resize(1200, 860)
            widget.show()
            app.processEvents()
            row[f"{mode}_repaint_ms"] = _median_ms(widget.plot.viewport().repaint, repeat)
            widget.close()
            widget.deleteLater()
            app.processEvents()
        row["faster"] = "image" if row["image_repaint_ms"] < row["scatter_repaint_ms"] else "scatter"
        rows.append(row)
    return rows


def run_benchmark(map_sizes=(50_000, 200_000), gallery_size: int = 50_000, repeat: int = 7, image_points: int = 1_000_000) -> dict[str, Any]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication, QListView

    import naviewer.gui.analyst  # noqa: F401  (installs the refcount guard)
    from naviewer.gui.analyst.density_map import DensityMapWidget
    from naviewer.gui.analyst.gallery import GalleryWidget

    app = QApplication.instance() or QApplication([])
    results: dict[str, Any] = {"platform": os.environ.get("QT_QPA_PLATFORM"), "repeat": repeat}

    empty = pg.PlotWidget()
    empty.resize(1200, 800)
    empty.show()
    app.processEvents()
    results["empty_plot_repaint_ms"] = _median_ms(empty.viewport().repaint, repeat)
    empty.close()

    for n in list(map_sizes) + ([image_points] if image_points else []):
        session = synthetic_session(n, images=False)
        start = time.perf_counter()
        widget = DensityMapWidget(session)
        widget.resize(1200, 860)
        widget.show()
        app.processEvents()
        build = 1000 * (time.perf_counter() - start)
        viewport = widget.plot.viewport()
        key = f"map_{n}"
        results[f"{key}_build_ms"] = build
        results[f"{key}_mode"] = "density image" if widget.image_mode else "scatter"
        results[f"{key}_repaint_ms"] = _median_ms(viewport.repaint, repeat)
        sel = np.random.default_rng(1).choice(n, n // 20, replace=False)

        def select_and_paint() -> None:
            session.set_selection(sel if len(session.selection) == 0 else np.zeros(0, np.int64))
            viewport.repaint()

        results[f"{key}_select5pct_ms"] = _median_ms(select_and_paint, repeat)
        x, y = widget.points[n // 2]
        results[f"{key}_hover_us"] = 1000 * _median_ms(lambda: widget.nearest(x, y), repeat)
        widget.close()
        widget.deleteLater()
        app.processEvents()

    empty_list = QListView()
    empty_list.resize(900, 700)

    def first_paint_empty() -> None:
        view = QListView()
        view.resize(900, 700)
        view.show()
        view.grab()
        view.close()

    results["empty_list_first_paint_ms"] = _median_ms(first_paint_empty, repeat)
    session = synthetic_session(gallery_size)
    built = []

    def first_paint_gallery() -> None:
        widget = GalleryWidget(session)
        widget.set_filter("all")
        widget.resize(900, 700)
        widget.show()
        widget.view.viewport().grab()
        built.append(widget.cache.built)
        widget.close()
        widget.deleteLater()

    results[f"gallery_{gallery_size}_first_paint_ms"] = _median_ms(first_paint_gallery, repeat)
    results[f"gallery_{gallery_size}_thumbnails_built"] = built[-1] if built else 0
    gallery = GalleryWidget(session)
    gallery.set_filter("all")
    gallery.resize(900, 700)
    gallery.show()
    app.processEvents()
    bar = gallery.view.verticalScrollBar()

    def scroll_and_paint() -> None:
        bar.setValue(int(np.random.default_rng(len(built)).integers(0, max(bar.maximum(), 1))))
        built.append(0)
        gallery.view.viewport().repaint()

    results[f"gallery_{gallery_size}_scroll_repaint_ms"] = _median_ms(scroll_and_paint, repeat)
    gallery.close()
    return results


def format_results(r: dict[str, Any]) -> str:
    lines = [f"GUI views benchmark (QT_QPA_PLATFORM={r['platform']}, median of {r['repeat']})"]
    floor = r["empty_plot_repaint_ms"]
    lines.append(f"  empty PlotWidget repaint (floor):       {floor:8.2f} ms")
    for key in sorted(k for k in r if k.startswith("map_") and k.endswith("_repaint_ms")):
        n = key.split("_")[1]
        rep = r[key]
        lines.append(
            f"  map {int(n):>9,} pts [{r[f'map_{n}_mode']}]: repaint {rep:7.2f} ms ({rep / floor:5.1f}x floor), build {r[f'map_{n}_build_ms']:7.0f} ms, "
            f"select 5% + repaint {r[f'map_{n}_select5pct_ms']:7.2f} ms, hover hit-test {r[f'map_{n}_hover_us']:6.1f} us"
        )
    lfloor = r["empty_list_first_paint_ms"]
    lines.append(f"  empty QListView first paint (floor):    {lfloor:8.2f} ms")
    for key in sorted(k for k in r if k.startswith("gallery_") and k.endswith("_first_paint_ms")):
        n = key.split("_")[1]
        fp = r[key]
        lines.append(
            f"  gallery {int(n):>9,} items: first paint {fp:7.2f} ms ({fp / lfloor:5.1f}x floor, {r[f'gallery_{n}_thumbnails_built']} thumbnails built), "
            f"scroll + repaint {r[f'gallery_{n}_scroll_repaint_ms']:6.2f} ms"
        )
    return "\n".join(lines)


class LazyTiles:
    """Thumbnails made on demand (one flat colour per label): a 10M-sample session without 30 GB of pixels."""

    def __init__(self, labels: np.ndarray, size: int = 32) -> None:
        self.labels = labels
        self.size = size
        self.palette = np.random.default_rng(5).integers(40, 255, (int(labels.max(initial=0)) + 1, 3), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, index: int) -> np.ndarray:
        tile = np.empty((self.size, self.size, 3), np.uint8)
        tile[:] = self.palette[self.labels[index]]
        tile[:: 4, :] //= 2  # stripes, so a tile reads as an image, not a flat swatch
        return tile


def scale_session(n: int) -> Any:
    """:func:`synthetic_session` at any N: lazy thumbnails and a cluster column (one cluster per 20 flags)."""
    session = synthetic_session(n, images=False)
    flagged = session.flagged_mask
    cluster = np.full(n, -1, np.int64)
    ids = np.flatnonzero(flagged)
    cluster[ids] = np.arange(len(ids)) % max(1, len(ids) // 20)
    session.scores["cluster"] = cluster
    session.images = LazyTiles(session.labels)
    return session


def measure_scale(n: int, old_model: bool = False) -> dict[str, Any]:
    """One process's figures at N (``naviewer bench gui --scale``): the analyst views over a synthetic
    session, each built and painted once. ``old_model``: the gallery hands the view every row at once,
    as before issue 17 item 4 (the baseline)."""
    import resource
    import sys

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    import naviewer.gui.analyst  # noqa: F401  (installs the refcount guard)
    from naviewer.gui.analyst.clusters import ClusterListWidget
    from naviewer.gui.analyst.density_map import DensityMapWidget
    from naviewer.gui.analyst.gallery import GalleryModel, GalleryWidget

    def peak_mb() -> float:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024

    app = QApplication.instance() or QApplication([])
    if old_model:
        GalleryModel.WINDOW = 1 << 62
    out: dict[str, Any] = {"n": n, "old_model": old_model}
    start = time.perf_counter()
    session = scale_session(n)
    session.suspicion_order()
    session.clusters()
    out["session_s"] = time.perf_counter() - start
    out["session_peak_mb"] = peak_mb()

    start = time.perf_counter()
    gallery = GalleryWidget(session)
    gallery.set_filter("all")
    gallery.resize(900, 700)
    gallery.show()
    gallery.view.viewport().grab()
    out["gallery_first_paint_s"] = time.perf_counter() - start
    from PySide6.QtWidgets import QListView

    # the whole layout of what the model hands the view, in one pass (the view does it in batches of 2000 in
    # the background, the same work spread out): what scrolling through it all costs, and its memory
    gallery.view.setLayoutMode(QListView.LayoutMode.SinglePass)
    start = time.perf_counter()
    gallery.view.doItemsLayout()
    app.processEvents()
    out["gallery_layout_s"] = time.perf_counter() - start
    out["gallery_rows_in_view"] = gallery.model.rowCount()
    bar = gallery.view.verticalScrollBar()
    start = time.perf_counter()
    bar.setValue(bar.maximum())
    app.processEvents()
    gallery.view.viewport().repaint()
    out["gallery_scroll_end_s"] = time.perf_counter() - start
    out["gallery_rows_after_scroll"] = gallery.model.rowCount()
    gallery.close()

    start = time.perf_counter()
    table = ClusterListWidget(session)
    table.resize(900, 500)
    table.show()
    table.table.viewport().grab()
    out["clusters_first_paint_s"] = time.perf_counter() - start
    out["clusters"] = len(session.clusters())
    out["cluster_rows"] = table.table.rowCount()
    table.close()

    start = time.perf_counter()
    widget = DensityMapWidget(session)
    widget.resize(1200, 860)
    widget.show()
    app.processEvents()
    out["map_build_s"] = time.perf_counter() - start
    out["map_mode"] = "density image" if widget.image_mode else "scatter"
    out["map_repaint_ms"] = _median_ms(widget.plot.viewport().repaint, 3)
    widget.close()
    out["peak_mb"] = peak_mb()
    return out
