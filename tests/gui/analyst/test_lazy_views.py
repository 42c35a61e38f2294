"""Issue 17 item 4: the gallery and the cluster table hand their rows to the view in windows."""

from __future__ import annotations

import numpy as np
import pytest

from naviewer.analysis.session import AnalysisSession
from naviewer.gui.analyst import clusters as clusters_module
from naviewer.gui.analyst.clusters import ClusterListWidget
from naviewer.gui.analyst.gallery import GalleryModel, GalleryWidget


def _session(n: int, flagged: int, clusters: bool = False) -> AnalysisSession:
    rank = np.random.default_rng(0).permutation(n)
    flags = rank < flagged
    scores = {"rank": rank, "flagged": flags, "candidate": rank < 2 * flagged,
              "density": (n - rank).astype(np.float32)}
    if clusters:  # every flag its own cluster: as many cluster rows as flags
        scores["cluster"] = np.where(flags, np.arange(n), -1)
    return AnalysisSession(scores, np.arange(n) % 3, ["a", "b", "c"], reviewer="t")


@pytest.fixture()
def small_window(monkeypatch):
    monkeypatch.setattr(GalleryModel, "WINDOW", 1000)


def test_the_gallery_grid_covers_every_row_and_paints_only_the_visible(qtbot, small_window, monkeypatch) -> None:
    """The view places tiles by arithmetic: every shown sample is a row from the start, the scroll bar
    spans them all, and only the tiles in the viewport are painted (none laid out per row)."""
    from naviewer.gui.analyst.gallery import TileDelegate

    session = _session(25_000, 100)
    gallery = GalleryWidget(session)
    qtbot.addWidget(gallery)
    gallery.set_filter("all")
    model, view = gallery.model, gallery.view
    assert len(model.ids) == 25_000 and model.rowCount() == 25_000
    gallery.resize(600, 500)
    gallery.show()
    qtbot.waitExposed(gallery)
    painted: list[int] = []
    paint = TileDelegate.paint
    monkeypatch.setattr(TileDelegate, "paint", lambda self, p, o, i: (painted.append(i.row()), paint(self, p, o, i)))
    bar = view.verticalScrollBar()
    assert bar.maximum() == view.grid_rows() * view.tile - view.viewport().height() > 0
    bar.setValue(bar.maximum())
    view.viewport().grab()
    assert painted and 24_999 in painted and len(painted) <= 2 * len(view.visible_rows())
    assert min(painted) >= 25_000 - len(view.visible_rows()) - view.columns()
    # a sample far down the order: focused and scrolled into view
    far = int(model.ids[17_500])
    session.set_current(far)
    assert gallery.focused_id() == far
    assert view.viewport().rect().intersects(view.visualRect(model.row_index(17_500)))
    assert view.indexAt(view.visualRect(model.row_index(17_500)).center()).row() == 17_500
    # Ctrl+A highlights every shown sample, as one range
    gallery.view.selectAll()
    assert len(gallery.selected_ids()) == 25_000 and len(view.selectionModel().selection()) == 1


def test_sorting_by_a_score_orders_every_row_and_keys_follow_it(qtbot) -> None:
    """A sort by a score covers all N rows (NaN last), the grid's end is the last of them, and the review
    keys act on the sorted order: End then C confirms the last tile; N goes on from the sorted position."""
    from PySide6.QtCore import Qt

    session = _session(3_000, 40)
    density = np.asarray(session.scores["density"], np.float32).copy()
    density[::7] = np.nan
    session.scores["density"] = density
    gallery = GalleryWidget(session)
    qtbot.addWidget(gallery)
    gallery.resize(600, 500)
    gallery.show()
    qtbot.waitExposed(gallery)
    gallery.set_filter("all")
    gallery.filters.descending.setChecked(True)
    gallery.filters.set_sort("density")  # the sidebar's edits re-apply the filter
    ids = gallery.model.ids
    finite = np.isfinite(density[ids])
    n_finite = int(finite.sum())
    assert len(ids) == 3_000 and finite[:n_finite].all() and not finite[n_finite:].any()
    assert (np.diff(density[ids[:n_finite]]) <= 0).all()
    view = gallery.view
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_End)
    assert gallery.focused_id() == int(ids[-1])
    bar = view.verticalScrollBar()
    assert bar.value() == bar.maximum()
    qtbot.keyClick(view, Qt.Key.Key_C)
    assert session.state_of(int(ids[-1])) == "confirmed"
    # N: the next flag awaiting a decision after the focused one, in the shown (sorted) order
    flagged_rows = np.flatnonzero(session.flagged_mask[ids] & (session.state_codes[ids] == 0))
    view.selectionModel().setCurrentIndex(gallery.model.row_index(int(flagged_rows[0])),
                                          view.selectionModel().SelectionFlag.ClearAndSelect)
    qtbot.keyClick(view, Qt.Key.Key_N)
    assert gallery.focused_id() == int(ids[flagged_rows[1]])


def test_a_selection_past_the_loaded_rows_is_highlighted(qtbot, small_window) -> None:
    session = _session(5_000, 50)
    gallery = GalleryWidget(session)
    qtbot.addWidget(gallery)
    gallery.set_filter("all")
    late = gallery.model.ids[[4_200, 4_201, 4_900]]
    session.set_selection(late)
    assert gallery.model.rowCount() == 5_000
    assert np.array_equal(gallery.selected_ids(), np.sort(late))


def test_the_cluster_table_builds_rows_a_window_at_a_time(qtbot, monkeypatch) -> None:
    monkeypatch.setattr(clusters_module, "WINDOW", 100)
    session = _session(5_000, 250, clusters=True)
    assert len(session.clusters()) == 250
    widget = ClusterListWidget(session)
    qtbot.addWidget(widget)
    assert widget.table.rowCount() == 100 and widget.loaded == 100 and widget.can_load_more()
    assert "scroll down for more" in widget.summary.text()
    widget.resize(700, 400)
    widget.show()
    qtbot.waitExposed(widget)
    bar = widget.table.verticalScrollBar()
    bar.setValue(bar.maximum())
    qtbot.waitUntil(lambda: widget.table.rowCount() == 200)
    # selecting a cluster past the loaded rows loads its window and selects it everywhere
    widget.select_cluster(230)
    assert widget.table.rowCount() == 250 and not widget.can_load_more()
    assert widget.selected_cluster() == 230
    assert np.array_equal(session.selection, np.sort(session.clusters()[230].members))
    assert "scroll down" not in widget.summary.text()
    # the rows stay sorted by the column the table was sorted by (the rank, #)
    firsts = [int(widget.table.item(r, 0).text()) for r in range(widget.table.rowCount())]
    assert firsts == sorted(firsts)


def test_a_large_map_builds_its_hover_index_in_the_background_and_keeps_flags_on_top(qtbot, monkeypatch) -> None:
    from naviewer.gui.analyst import density_map
    from naviewer.gui.analyst.benchmark import synthetic_session

    monkeypatch.setattr(density_map, "TREE_SYNC_LIMIT", 1_000)
    monkeypatch.setattr(density_map, "RING_LIMIT", 10)
    session = synthetic_session(3_000, images=False)
    widget = density_map.DensityMapWidget(session, image_threshold=1_000)
    qtbot.addWidget(widget)
    assert widget.image_mode
    widget._tree_thread.join(30)
    target = int(np.flatnonzero(~session.flagged_mask)[0])
    x, y = widget.points[target]
    assert widget.nearest(x, y, radius_px=50) == target
    # the flags (30 here, over RING_LIMIT) are small filled dots above the image, not rings
    image_z = widget._base_items[0].zValue()
    assert widget.flag_item.zValue() > image_z and len(widget.flag_item.data) == int(session.flagged_mask.sum())
    from PySide6.QtCore import Qt

    assert widget.flag_item.opts["size"] == 3 and widget.flag_item.opts["pen"].style() == Qt.PenStyle.NoPen


def test_the_density_image_counts_what_histogram2d_counts() -> None:
    from naviewer.gui.analyst.density_map import _grid_counts

    pts = np.random.default_rng(3).normal(size=(50_000, 2))
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    expected, _, _ = np.histogram2d(pts[:, 0], pts[:, 1], bins=64, range=[[lo[0], hi[0]], [lo[1], hi[1]]])
    counts = _grid_counts(pts, lo, hi - lo, 64)
    assert counts.sum() == len(pts) and np.abs(counts - expected).sum() <= 4  # a point on a bin edge may differ


def test_very_many_flags_become_an_image_layer_on_top_of_the_density_image(qtbot, monkeypatch) -> None:
    from naviewer.gui.analyst import density_map
    from naviewer.gui.analyst.benchmark import synthetic_session

    monkeypatch.setattr(density_map, "RASTER_LIMIT", 20)
    session = synthetic_session(3_000, images=False)  # 30 flags
    widget = density_map.DensityMapWidget(session, image_threshold=1_000)
    qtbot.addWidget(widget)
    layer = widget._mark_layers["flags"]
    assert len(widget.flag_item.data) == 0 and widget.mark_count("flags") == 30
    assert layer.zValue() > widget._base_items[0].zValue()
    lit = layer.image[..., 3] > 0
    assert 1 <= lit.sum() <= 30  # one lit cell per cell holding a flag
    widget.flags_toggle.setChecked(False)
    assert "flags" not in widget._mark_layers and widget.mark_count("flags") == 0


def test_stable_order_is_the_lexsort_it_replaces() -> None:
    """Same order as ``np.lexsort((signed key, ~finite))``: ties in the given order, NaN and +-inf last,
    -0.0 tied with 0.0, for float32, float64 (exact in float32 or not), integers, already sorted keys."""
    from naviewer.gui.analyst.filters import stable_order

    def lexsort(key, descending):  # noqa: ANN001, ANN202
        key = np.asarray(key, np.float64)
        finite = np.isfinite(key)
        return np.lexsort((np.where(finite, -key if descending else key, 0.0), ~finite))

    rng = np.random.default_rng(0)
    special = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1.5, -2.0, 1e300])
    for trial in range(240):
        n = int(rng.integers(0, 60))
        kind = trial % 6
        if kind == 0:
            key = rng.integers(-3, 4, n).astype(np.float32)
        elif kind == 1:
            key = rng.choice(special[:-1], n).astype(np.float32)
        elif kind == 2:
            key = rng.random(n)
        elif kind == 3:
            key = rng.integers(-(1 << 40), 1 << 40, n) if trial % 12 == 3 else rng.integers(-5, 5, n)
        elif kind == 4:
            key = rng.choice(special, n)
        else:
            key = np.sort(rng.integers(0, 4, n)).astype(np.float32)
            key[rng.random(n) < 0.3] = np.nan
        for descending in (False, True):
            assert np.array_equal(stable_order(key, descending), lexsort(key, descending)), (key, descending)
