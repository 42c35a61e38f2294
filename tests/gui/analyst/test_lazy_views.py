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


def test_the_gallery_model_fetches_rows_in_windows(qtbot, small_window) -> None:
    session = _session(25_000, 100)
    gallery = GalleryWidget(session)
    qtbot.addWidget(gallery)
    gallery.set_filter("all")
    model = gallery.model
    assert len(model.ids) == 25_000 and model.rowCount() == 1000 and model.canFetchMore()
    model.fetchMore()
    assert model.rowCount() == 2000
    # scrolling the view to its end asks for the next window
    gallery.resize(600, 500)
    gallery.show()
    qtbot.waitExposed(gallery)
    bar = gallery.view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    bar.setValue(bar.maximum())
    qtbot.waitUntil(lambda: model.rowCount() >= 3000)
    assert model.rowCount() < 25_000
    # a sample far down the order: its window (and those before it) load, the rest stay out
    far = int(model.ids[17_500])
    session.set_current(far)
    assert model.rowCount() == 18_000 and gallery.focused_id() == far
    # Ctrl+A highlights every shown sample, not only the loaded windows
    gallery.view.selectAll()
    assert model.rowCount() == 25_000 and len(gallery.selected_ids()) == 25_000


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
