"""Measurements behind ``naviewer bench gui`` (Qt lives here so the CLI module stays Qt-free).

Map: full repaint of the plot viewport (1200x800) at N points, against an empty PlotWidget of the
same size (the floor); plus the selection-overlay update and a hover hit-test. Gallery: first paint
of a fresh grid over N items (model, layout and the visible thumbnails, from an empty cache),
against the first paint of an empty QListView of the same size. Medians of ``repeat`` runs.
"""

from __future__ import annotations

import contextlib
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
    session, each built and painted once. ``old_model``: the gallery's former QListView handed every row
    at once (the baseline of the windowed model; the grid view that replaced both lays out nothing)."""
    import resource
    import sys

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    import naviewer.gui.analyst  # noqa: F401  (installs the refcount guard)
    from naviewer.gui.analyst.clusters import ClusterListWidget
    from naviewer.gui.analyst.density_map import DensityMapWidget
    from naviewer.gui.analyst._legacy_gallery import legacy_gallery
    from naviewer.gui.analyst.gallery import GalleryWidget

    def peak_mb() -> float:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024

    app = QApplication.instance() or QApplication([])
    legacy = legacy_gallery(1 << 62) if old_model else contextlib.nullcontext()
    legacy.__enter__()
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
    gallery.wait_for_filter()  # from 200k samples the ids come from a worker
    gallery.resize(900, 700)
    gallery.show()
    gallery.view.viewport().grab()
    out["gallery_first_paint_s"] = time.perf_counter() - start
    from PySide6.QtWidgets import QListView

    # the whole layout of what the model hands the view, in one pass (the view does it in batches of 2000 in
    # the background, the same work spread out): what scrolling through it all costs, and its memory
    if isinstance(gallery.view, QListView):
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
    legacy.__exit__(None, None, None)

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


def _lexsort_order(session: Any, ids: np.ndarray, key_name: str, descending: bool) -> np.ndarray:
    """The gallery's score sort as it was before issue 17 item 4 (frozen baseline): a float64 key and a
    two-key ``np.lexsort`` (missing values last, ties in the given order)."""
    key = np.asarray(session.scores[key_name], np.float64)[ids]
    finite = np.isfinite(key)
    signed = np.where(finite, -key if descending else key, 0.0)
    return ids[np.lexsort((signed, ~finite))]


def measure_sort(n: int, legacy: bool = False) -> dict[str, Any]:
    """``naviewer bench gui --sort N``: sorting the gallery by a score over all N samples (a synthetic session),
    one process. Two float32 scores, NaN for a third of the samples (a pass that scores only some): *density*,
    which the suspicion order (the order sorted) already follows, and *posterior*, random (as an unrelated
    score, e.g. another detector's).

    Sort key: the former ``np.lexsort`` over a float64 key against :func:`stable_order` (same order checked),
    for both. Gallery (``legacy`` False): the grid view; choosing *posterior, descending* in the sidebar until
    the sorted grid is painted, how many rows its scroll bar reaches, End (to the last of all N) and repaint.
    ``legacy`` True: the same on the former QListView handed 10,000-row windows (its sort was the lexsort; its
    scroll bar reaches the windows handed so far, and End goes to the end of those)."""
    import resource
    import sys

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    import naviewer.gui.analyst  # noqa: F401  (installs the refcount guard)
    from naviewer.gui.analyst import filters as filters_module
    from naviewer.gui.analyst._legacy_gallery import legacy_gallery
    from naviewer.gui.analyst.filters import FilterSpec
    from naviewer.gui.analyst.gallery import GalleryWidget

    app = QApplication.instance() or QApplication([])
    out: dict[str, Any] = {"n": n, "legacy": legacy}
    session = scale_session(n)
    density = np.asarray(session.scores["density"], np.float32).copy()
    rng = np.random.default_rng(2)
    density[rng.random(n) < 1 / 3] = np.nan
    session.scores["density"] = density
    posterior = rng.random(n, dtype=np.float32)
    posterior[rng.random(n) < 1 / 3] = np.nan
    session.scores["posterior"] = posterior
    order = session.suspicion_order()
    if not legacy:
        for name in ("density", "posterior"):
            start = time.perf_counter()
            old = _lexsort_order(session, order, name, True)
            out[f"{name}_lexsort_s"] = time.perf_counter() - start
            start = time.perf_counter()
            new = FilterSpec(sort=name, descending=True).apply(session, order)
            out[f"{name}_stable_order_s"] = time.perf_counter() - start
            out[f"{name}_same_order"] = bool(np.array_equal(old, new))
            del old, new

    context = legacy_gallery() if legacy else contextlib.nullcontext()
    saved_sorted = FilterSpec._sorted
    if legacy:  # the former sort too
        FilterSpec._sorted = lambda self, s, ids, check=None: (_lexsort_order(s, ids, self.sort, self.descending)
                                                               if self.sort in s.scores else saved_sorted(self, s, ids))
    try:
        with context:
            gallery = GalleryWidget(session)
            gallery.set_filter("all")
            gallery.wait_for_filter()
            gallery.resize(900, 700)
            gallery.show()
            app.processEvents()
            gallery.view.viewport().grab()
            start = time.perf_counter()
            gallery.filters._quiet = True  # one re-apply (the sort), not one per widget edit
            gallery.filters.descending.setChecked(True)
            gallery.filters._quiet = False
            gallery.filters.set_sort("posterior")
            gallery.wait_for_filter()  # the sort runs in a worker from 200k samples (the GUI thread stays free)
            app.processEvents()  # a QListView lays out (its first batch) on a timer after a model reset
            gallery.view.viewport().grab()
            out["sort_and_paint_s"] = time.perf_counter() - start
            ids = gallery.model.ids
            out["sorted_ok"] = bool(np.isfinite(posterior[ids[:100]]).all()
                                    and (np.diff(posterior[ids[:100]]) <= 0).all())
            view, bar = gallery.view, gallery.view.verticalScrollBar()
            app.processEvents()
            out["rows_in_view"] = gallery.model.rowCount()
            view.setFocus()
            start = time.perf_counter()
            QTest.keyClick(view, Qt.Key.Key_End)
            app.processEvents()
            view.viewport().grab()
            out["end_and_paint_s"] = time.perf_counter() - start
            current = view.currentIndex()
            out["end_row"] = current.row() if current.isValid() else -1
            out["end_reaches_last"] = out["end_row"] == n - 1
            out["bar_at_end"] = bar.value() == bar.maximum()
            start = time.perf_counter()
            bar.setValue(bar.maximum() // 2)
            app.processEvents()
            view.viewport().grab()
            out["scroll_mid_and_paint_s"] = time.perf_counter() - start
            gallery.close()
    finally:
        FilterSpec._sorted = saved_sorted
    del filters_module
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["peak_mb"] = peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
    return out


# -- the longest GUI-thread stall: opening the analyst panel, choosing a sort (issue 17 item 4) -----------

def _legacy_suspicion_order_by_permutation(self: Any) -> Any:
    """The session's O(N) suspicion order as it was before the gallery's worker (frozen baseline): four
    group masks over all N in rank order, one gather per mask."""
    permutation = self.ids_by_rank()
    if permutation is None:
        return None
    by_rank = permutation[1]
    flagged = self.flagged_mask[by_rank]
    candidate = self.candidate_mask[by_rank]
    groups = (flagged & candidate, flagged & ~candidate, ~flagged & candidate, ~flagged & ~candidate)
    return np.concatenate([by_rank[group] for group in groups])


def _legacy_review_queue(self: Any) -> np.ndarray:
    """The review queue as it was (a gather of the flags over the whole order)."""
    order = self.suspicion_order()
    flagged = self.flagged_mask
    return order[flagged[order]] if flagged.any() else order


def _legacy_finite_range(values: np.ndarray) -> Any:
    """The filter sidebar's score range as it was: a float64 copy, then a copy of its finite values."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0 or not np.ptp(v) > 0:
        return None
    return float(v.min()), float(v.max())


@contextlib.contextmanager
def legacy_gui_thread() -> Any:
    """The analyst panel as it was before the gallery filtered in a worker: every filter and sort on the
    GUI thread, the former suspicion order, review queue and sidebar ranges."""
    from naviewer.analysis.session import AnalysisSession
    from naviewer.gui.analyst import filters as filters_module
    from naviewer.gui.analyst.gallery import GalleryWidget

    saved = (GalleryWidget.ASYNC_FROM, AnalysisSession._suspicion_order_by_permutation, AnalysisSession.review_queue,
             filters_module.finite_range)
    GalleryWidget.ASYNC_FROM = 1 << 62
    AnalysisSession._suspicion_order_by_permutation = _legacy_suspicion_order_by_permutation
    AnalysisSession.review_queue = _legacy_review_queue
    filters_module.finite_range = _legacy_finite_range
    try:
        yield
    finally:
        (GalleryWidget.ASYNC_FROM, AnalysisSession._suspicion_order_by_permutation, AnalysisSession.review_queue,
         filters_module.finite_range) = saved


@contextlib.contextmanager
def _legacy_open_context() -> Any:
    """The panel's open as it was before issue 17 item 4's second step too: :func:`legacy_gui_thread` and the
    former map, why-flagged plots and clusters (:func:`naviewer.gui.analyst._legacy_open.legacy_views`)."""
    from naviewer.gui.analyst._legacy_open import legacy_views

    with legacy_gui_thread(), legacy_views():
        yield


def measure_stall(n: int, legacy: "bool | str" = False, workspace: str = "") -> dict[str, Any]:
    """``naviewer bench gui --stall N``, one process: the largest gap of a 10 ms GUI-thread timer while
    (1) the analyst panel opens on the bench workspace (session from the workspace, every detector score,
    the panel built and shown) until the gallery shows its first samples, and (2) the analyst chooses
    *posterior, descending* in the gallery's sidebar (a random float32 score, NaN for a third: added to the
    session) until the sorted grid is painted. The open: the session read as the dock reads it (in a worker,
    :func:`naviewer.gui.analyst_dock.in_worker`), until the gallery shows its first samples and the map and
    the why-flagged plots are drawn. ``legacy``: the panel as it was (:func:`legacy_gui_thread`, and the map,
    plots, clusters and session read on the GUI thread as before: :func:`_legacy_open_context`); ``"views"``:
    only the latter (the panel just before they changed: the gallery already filtering in its worker).
    Also the wall time of each, and for the sort whether the highlighted sample stayed the same."""
    import resource
    import sys
    from pathlib import Path

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    import naviewer.gui.analyst  # noqa: F401  (installs the refcount guard)
    from naviewer.analysis.session import AnalysisSession
    from naviewer.gui.analyst.detector_scores import attach, load_detector_scores
    from naviewer.gui.analyst.panel import AnalystPanel
    from naviewer.gui.analyst_dock import in_worker, open_session
    from naviewer.gui.stall import _gaps_ms
    from naviewer.workspace import Workspace

    app = QApplication.instance() or QApplication([])
    out: dict[str, Any] = {"n": n, "legacy": legacy}
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))

    def pump(until: Callable[[], bool], limit_s: float = 600.0) -> None:
        end = time.perf_counter() + limit_s
        while not until() and time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.002)

    legacy = {"1": True, "0": False, "": False}.get(legacy, legacy) if isinstance(legacy, str) else bool(legacy)
    if legacy == "views":  # the panel as it was just before this step: the gallery's worker, the former views
        from naviewer.gui.analyst._legacy_open import legacy_views

        context: Any = legacy_views()
    else:
        context = _legacy_open_context() if legacy else contextlib.nullcontext()
    with context:
        ws = Workspace.open(Path(workspace))
        built: dict[str, Any] = {}
        n = ws.store.sample_count()
        rng = np.random.default_rng(2)  # the bench's extra score, made before the clock starts (not the app's work)
        posterior = rng.random(n, dtype=np.float32)
        posterior[rng.random(n) < 1 / 3] = np.nan

        def open_panel() -> None:
            start = time.perf_counter()
            if legacy:  # as the panel opened before: the session read on the GUI thread
                session = AnalysisSession.from_workspace(ws, None, reviewer="bench")
                attach(session, load_detector_scores(ws, session.flagged_mask))
            else:  # as the dock opens it now: read in a worker while the GUI thread keeps running
                session = in_worker(lambda: open_session(ws, None, reviewer="bench"))
            built["session_s"] = time.perf_counter() - start
            session.scores["posterior"] = posterior
            session.images = LazyTiles(session.labels)
            start = time.perf_counter()
            panel = AnalystPanel(session, workspace=ws)
            panel.resize(1600, 1000)
            panel.show()
            built["panel_s"] = time.perf_counter() - start
            built["panel"] = panel

        def opened() -> bool:  # the gallery shows its first samples, the map, plots and cluster strips are drawn
            panel = built.get("panel")
            return (panel is not None and not panel.gallery.filter_pending and panel.gallery.model.rowCount() > 0
                    and not panel.map.build_pending and not panel.why.pending and not panel.clusters.strips_pending)

        ticks.clear()
        timer.start()
        start = time.perf_counter()
        QTimer.singleShot(20, open_panel)
        pump(opened)
        out["open_s"] = time.perf_counter() - start
        app.processEvents()
        out["open_gaps"] = _gaps_ms(ticks)
        out["session_s"], out["panel_s"] = built["session_s"], built["panel_s"]
        panel = built["panel"]
        gallery, session = panel.gallery, panel.session
        gallery.set_filter("all")
        pump(lambda: not gallery.filter_pending)
        pick = int(gallery.model.ids[3])
        session.set_current(pick)
        session.set_selection([pick])
        app.processEvents()
        gallery.filters._quiet = True  # one request (the sort), not one per widget edit
        gallery.filters.descending.setChecked(True)
        gallery.filters._quiet = False
        ticks.clear()
        start = time.perf_counter()
        asked: list[float] = []  # the request made (a busy event loop can run the 20 ms timer late)
        QTimer.singleShot(20, lambda: (gallery.filters.set_sort("posterior"), asked.append(time.perf_counter())))
        pump(lambda: bool(asked) and not gallery.filter_pending)
        gallery.view.viewport().grab()
        out["sort_s"] = time.perf_counter() - start - 0.02
        app.processEvents()
        out["sort_gaps"] = _gaps_ms(ticks)
        timer.stop()
        ids = gallery.model.ids
        post = session.scores["posterior"]
        out["sorted_ok"] = bool(len(ids) == session.n and np.isfinite(post[ids[:1000]]).all()
                                and (np.diff(post[ids[:1000]]) <= 0).all())
        out["sort_check"] = {"rows": int(len(ids)), "n": int(session.n), "finite_first_1000": int(np.isfinite(post[ids[:1000]]).sum()),
                             "descending_first_1000": bool((np.diff(post[ids[:1000]]) <= 0).all())}
        out["highlight_kept"] = bool(gallery.selected_ids().tolist() == [pick] and gallery.focused_id() == pick)
        panel.close()
        ws.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["peak_mb"] = peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
    return out
