"""Issue 17 item 4: the analyst panel's open made cheap (one pass over N, caches, workers) draws what it drew
before: the density map's image, flag layers, colour classes and legend, and the why-flagged histograms,
against the frozen copies in ``naviewer.gui.analyst._legacy_open``, on small generated sessions."""

from __future__ import annotations

import numpy as np
import pytest

from naviewer.gui.analyst import _legacy_open, density_map
from naviewer.gui.analyst.benchmark import synthetic_session
from naviewer.gui.analyst.density_map import DENSITY_BINS, DensityMapWidget, group_ids, rank_bin_codes
from naviewer.gui.analyst.detector_scores import DetectorScore, DetectorTable, attach
from naviewer.gui.analyst.why import WhyFlaggedWidget, hist_counts


def _session(n: int = 3_000, seed: int = 0):
    session = synthetic_session(n, seed=seed, images=False)
    rng = np.random.default_rng(seed)
    session.scores["mindist"] = rng.random(n).astype(np.float32)
    density = session.scores["density"]
    density[rng.random(n) < 0.02] = np.nan  # missing and non-positive densities are drawn at the smallest
    density[rng.random(n) < 0.02] = 0.0
    score = rng.random(n)
    score[rng.random(n) < 0.2] = np.nan
    attach(session, DetectorTable([DetectorScore("detector:lid#2", "lid #2", 2, "lid", score)]))
    session.labels = rng.integers(0, 13, n) * 7 + 3  # sparse label values
    return session


def _legend_counts(widget):
    return [(c.name(), name, ids.tolist()) for c, name, ids in widget._class_counts]


@pytest.mark.parametrize("mode", ["density", "class", "review", "detector:lid#2"])
def test_the_colour_classes_are_the_ten_passes_they_replace(qtbot, mode) -> None:
    session = _session()
    session.review(np.arange(0, 300, 7), "confirmed")
    session.review(np.arange(1, 300, 11), "rejected")
    new = DensityMapWidget(session, image_threshold=1_000)
    qtbot.addWidget(new)
    new.set_colour_mode(mode)
    with _legacy_open.legacy_views():
        old = DensityMapWidget(session, image_threshold=1_000)
        qtbot.addWidget(old)
        old.set_colour_mode(mode)
    assert _legend_counts(new) == _legend_counts(old)
    for sel in (np.arange(0, 3_000, 5), session.clusters()[0].members):
        session.set_selection(sel)
        assert new.legend.text() == old.legend.text()


@pytest.mark.parametrize("monkey_raster", [True, False])
def test_the_density_image_and_flag_layers_are_as_before(qtbot, monkeypatch, monkey_raster) -> None:
    if monkey_raster:
        monkeypatch.setattr(density_map, "RASTER_LIMIT", 20)
    session = _session(5_000, seed=3)
    new = DensityMapWidget(session, image_threshold=1_000)
    qtbot.addWidget(new)
    with _legacy_open.legacy_views():
        old = DensityMapWidget(session, image_threshold=1_000)
        qtbot.addWidget(old)
    assert np.array_equal(new._base_items[0].image, old._base_items[0].image)
    assert np.array_equal(new._base_counts, old._base_counts)
    assert sorted(new._mark_layers) == sorted(old._mark_layers) == (["candidates", "flags"] if monkey_raster else [])
    for name in new._mark_layers:
        assert np.array_equal(new._mark_layers[name].image, old._mark_layers[name].image)
    for a, b in ((new.flag_item, old.flag_item), (new.candidate_item, old.candidate_item)):
        assert np.array_equal(a.data["x"], b.data["x"]) and np.array_equal(a.data["y"], b.data["y"])
    session.set_selection(np.arange(10, 400))
    assert np.array_equal(new.selection_item.data["x"], old.selection_item.data["x"])
    assert new.legend.text() == old.legend.text()


def test_a_large_map_is_built_in_a_worker_behind_a_placeholder(qtbot, monkeypatch) -> None:
    monkeypatch.setattr(DensityMapWidget, "ASYNC_FROM", 1_000)
    monkeypatch.setattr(density_map, "RASTER_LIMIT", 20)
    session = _session(5_000, seed=5)
    session.set_current(17)
    widget = DensityMapWidget(session, image_threshold=1_000)
    qtbot.addWidget(widget)
    widget.resize(600, 500)
    widget.show()
    # until the worker's build arrives: a placeholder, and the views that use the points wait for it
    assert widget.build_pending and widget.placeholder.isVisible() and len(widget.points) == 0
    assert len(widget.select_rect(-100, -100, 100, 100)) == 0
    session.set_selection([1, 2, 3])  # a selection meanwhile is drawn once the points are there
    assert widget.wait_until_built(60)
    assert not widget.placeholder.isVisible() and len(widget.points) == session.n
    assert len(widget.selection_item.data) == 3 and len(widget.current_item.data) == 1
    with _legacy_open.legacy_views():
        old = DensityMapWidget(session, image_threshold=1_000)
        qtbot.addWidget(old)
    assert np.array_equal(widget._base_items[0].image, old._base_items[0].image)
    assert np.array_equal(widget._mark_layers["flags"].image, old._mark_layers["flags"].image)
    assert widget.legend.text() == old.legend.text()
    # a new colour mode re-colours in the worker too (the image is kept); the latest request wins
    widget.set_colour_mode("class")
    widget.set_colour_mode("review")
    assert widget.build_pending
    assert widget.wait_until_built(60)
    assert widget.colour_mode == "review" and [n for _c, n, _i in widget._class_counts][0] == "unreviewed"


def test_rank_bins_and_groups_are_the_comparisons_they_replace() -> None:
    rng = np.random.default_rng(1)
    for n in (1, 7, 100, 997, 10_000):
        rank = np.concatenate([rng.permutation(n), [-1, n, n + 5, int(1.02 * n)]]).astype(np.int64)
        codes = rank_bin_codes(rank, n, DENSITY_BINS)
        frac = rank / max(n, 1)
        for b, (lo, hi, _label) in enumerate(DENSITY_BINS):
            assert np.array_equal(np.flatnonzero(codes == b), np.flatnonzero((frac >= lo) & (frac < hi)))
        groups = group_ids(codes, len(DENSITY_BINS))
        for b in range(len(DENSITY_BINS)):
            assert np.array_equal(groups[b], np.flatnonzero(codes == b))


def test_histogram_counts_are_numpys_even_on_the_edges() -> None:
    rng = np.random.default_rng(2)
    for _ in range(30):
        values = rng.normal(size=int(rng.integers(1, 5_000))) * rng.choice([1e-3, 1.0, 1e3])
        lo, hi = float(values.min()), float(values.max())
        edges = np.linspace(lo, hi + 1e-9, int(rng.integers(2, 80)))
        values = np.concatenate([values, edges, [np.nan, lo - 1, hi + 1, np.inf, -np.inf]])
        assert np.array_equal(hist_counts(values, edges), np.histogram(values, bins=edges)[0])


def _plotted(plot):
    return [(item.name(), np.asarray(item.yData).tolist()) for item in plot.getPlotItem().listDataItems()]


@pytest.mark.parametrize("async_from", [1 << 62, 1_000])
def test_the_why_flagged_plots_are_as_before(qtbot, monkeypatch, async_from) -> None:
    monkeypatch.setattr(WhyFlaggedWidget, "ASYNC_FROM", async_from)
    session = _session(4_000, seed=7)
    new = WhyFlaggedWidget(session)
    qtbot.addWidget(new)
    assert new.wait_until_ready(60)
    with _legacy_open.legacy_views():
        old = WhyFlaggedWidget(session)
        qtbot.addWidget(old)
        for sel in (np.arange(0, 4_000, 3), session.clusters()[0].members, []):
            session.set_selection(sel)
            for a, b in ((new.density_plot, old.density_plot), (new.mindist_plot, old.mindist_plot)):
                assert _plotted(a) == _plotted(b)
                assert a.getPlotItem().titleLabel.text == b.getPlotItem().titleLabel.text
            assert new._layouts["density"].line.value() == old._layouts["density"].line.value()


def test_the_cluster_table_makes_the_hidden_rows_strips_after_the_open(qtbot, monkeypatch) -> None:
    from naviewer.gui.analyst.benchmark import LazyTiles
    from naviewer.gui.analyst.clusters import STRIP_COLUMN, ClusterListWidget

    monkeypatch.setattr(ClusterListWidget, "STRIPS_AT_ONCE", 3)
    session = synthetic_session(4_000, seed=2, images=False)
    session.scores["cluster"] = np.where(session.flagged_mask, np.arange(4_000) % 9, -1)
    session.images = LazyTiles(session.labels)
    widget = ClusterListWidget(session)
    qtbot.addWidget(widget)
    assert widget.table.rowCount() == 9 and widget.strips_pending == 6
    qtbot.waitUntil(lambda: widget.strips_pending == 0)
    with _legacy_open.legacy_views():
        old = ClusterListWidget(session)
        qtbot.addWidget(old)
    for row in range(9):
        a, b = (w.table.item(row, STRIP_COLUMN).data(0x1) for w in (widget, old))  # DecorationRole
        assert a is not None and a.toImage() == b.toImage()
