"""Linked selection across the map, the gallery and the cluster list, both ways."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QItemSelection, QItemSelectionModel, Qt
from PySide6.QtWidgets import QApplication

from naviewer.gui.analyst.panel import AnalystPanel


def _panel(qtbot, session) -> AnalystPanel:
    panel = AnalystPanel(session)
    qtbot.addWidget(panel)
    panel.resize(1400, 900)
    panel.show()
    return panel


def test_map_selection_reaches_gallery_and_clusters(qtbot, demo_session) -> None:
    panel = _panel(qtbot, demo_session)
    s = demo_session
    top = s.clusters()[0]
    pts = panel.map.points[top.members]
    pad = 1e-6
    ids = panel.map.select_rect(pts[:, 0].min() - pad, pts[:, 1].min() - pad, pts[:, 0].max() + pad, pts[:, 1].max() + pad)
    assert set(top.members) <= set(ids.tolist())
    assert np.array_equal(s.selection, ids)
    shown = set(panel.gallery.shown_ids().tolist())
    assert set(panel.gallery.selected_ids().tolist()) == set(ids.tolist()) & shown
    assert f"selected {len(ids):,} / {s.n:,}" in panel.map.legend.text()
    # what the colours' counts say, in words ("top 1% 0 / 15" read as nothing to a newcomer)
    panel.map.set_colour_mode("density")
    legend = panel.map.legend.text()
    top = panel.map._class_counts[0][2]
    assert "density rank (how many of each are selected)" in legend
    assert f"top 1% {int(np.isin(top, ids).sum()):,} of {len(top):,}" in legend
    panel.map.set_colour_mode("class")
    assert "how many of each are selected" in panel.map.legend.text() and "density rank" not in panel.map.legend.text()
    # the rectangle catches non-members too, so no cluster row is selected
    assert panel.clusters.selected_cluster() is None


def test_cluster_selection_reaches_map_and_gallery(qtbot, demo_session) -> None:
    panel = _panel(qtbot, demo_session)
    s = demo_session
    panel.clusters.select_cluster(0)
    members = np.sort(s.clusters()[0].members)
    assert np.array_equal(s.selection, members)
    assert np.array_equal(panel.gallery.selected_ids(), members)
    assert len(panel.map.selection_item.data) == len(members)
    assert s.current in set(members.tolist())
    assert panel.inspector.sample == s.current


def test_gallery_selection_reaches_map_and_clusters(qtbot, demo_session) -> None:
    panel = _panel(qtbot, demo_session)
    s = demo_session
    members = s.clusters()[0].members
    model = panel.gallery.model
    selection = QItemSelection()
    for sid in members:
        row = int(model.row_of[sid])
        selection.select(model.index(row), model.index(row))
    panel.gallery.view.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
    assert np.array_equal(s.selection, np.sort(members))
    assert panel.clusters.selected_cluster() == 0
    assert len(panel.map.selection_item.data) == len(members)
    # and clearing on the map clears the gallery
    s.clear_selection(source=panel.map)
    assert len(panel.gallery.selected_ids()) == 0 and panel.clusters.selected_cluster() is None


def test_lasso_polygon_and_click(qtbot, demo_session) -> None:
    from naviewer.gui.analyst.density_map import points_in_polygon

    panel = _panel(qtbot, demo_session)
    pts = panel.map.points
    poly = np.array([[0.0, 0.0], [0.5, 0.1], [0.4, 0.6], [-0.2, 0.4]])
    ids = panel.map.select_polygon(poly)
    brute = np.array([_inside(p, poly) for p in pts])
    assert np.array_equal(np.flatnonzero(brute), ids)
    assert np.array_equal(points_in_polygon(pts, poly), brute)
    target = 5
    assert panel.map.nearest(*pts[target], radius_px=50) == target
    panel.map.click_at(*pts[target])
    assert demo_session.current == target and demo_session.selection.tolist() == [target]


def test_a_mouse_click_on_a_point_picks_it_and_c_then_decides_it_not_the_gallerys_tile(qtbot, demo_session) -> None:
    """A click on a map point selected nothing (pyqtgraph gave the click to the scatter layer) and C then confirmed
    the gallery's highlighted tile, not the sample under the cursor (newcomer session 18). A real click, not
    click_at."""
    from PySide6.QtCore import QPointF

    s = demo_session
    panel = _panel(qtbot, s)
    qtbot.waitExposed(panel)
    panel.windowHandle().requestActivate()
    qtbot.waitUntil(panel.isActiveWindow, timeout=5000)
    tile = int(panel.gallery.model.ids[0])
    s.set_selection([tile], source=panel.gallery)  # the gallery's highlighted tile, mirrored on the map
    s.set_current(tile, source=panel.gallery)
    m = panel.map
    inside = []
    for sid in np.argsort(np.asarray(s.scores["rank"]))[::-1]:  # sparse (clean) samples first: few neighbours
        at = m.plot.mapFromScene(m.viewbox.mapViewToScene(QPointF(*m.points[int(sid)])))
        if 30 < at.x() < m.plot.width() - 30 and 30 < at.y() < m.plot.height() - 30 and int(sid) != tile:
            inside.append((int(sid), at))
            if len(inside) == 5:
                break
    sid, at = next((i, a) for i, a in inside if m.nearest(*m.points[i]) == i)
    qtbot.mouseClick(m.plot.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert s.current == sid and s.selection.tolist() == [sid]
    before = s.states().copy()
    assert m.has_keyboard()  # the click gave the map the keys
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_C)
    assert s.state_of(sid) == "confirmed" and s.state_of(tile) == before[tile]


def _inside(p: np.ndarray, poly: np.ndarray) -> bool:
    inside = False
    for (x1, y1), (x2, y2) in zip(poly, np.roll(poly, -1, axis=0)):
        if (y1 > p[1]) != (y2 > p[1]) and p[0] < x1 + (p[1] - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def test_density_image_mode_and_colour_modes(qtbot, demo_session) -> None:
    import pyqtgraph as pg

    from naviewer.gui.analyst.density_map import DensityMapWidget

    widget = DensityMapWidget(demo_session, image_threshold=1000)
    qtbot.addWidget(widget)
    assert widget.image_mode and isinstance(widget._base_items[0], pg.ImageItem)
    assert len(widget.flag_item.data) == int(demo_session.flagged_mask.sum())
    normal = DensityMapWidget(demo_session)
    qtbot.addWidget(normal)
    for mode in ("class", "review", "density"):
        normal.set_colour_mode(mode)
        assert sum(len(item.data) for item in normal._base_items) == demo_session.n
    normal.set_colour_mode("review")
    base = list(normal._base_items)
    demo_session.confirm([1, 2, 3])
    demo_session.reject([4])
    assert normal._base_items == base  # a decision does not rebuild the base layer
    assert len(normal.state_items["confirmed"].data) == 3 and len(normal.state_items["rejected"].data) == 1
    assert "</span> confirmed 3</span> &nbsp;" in normal.legend.text()
    normal.show_hover(3)
    assert normal.card.isVisibleTo(normal) and "#3" in normal.card.text.text()
    rank = int(demo_session.scores["rank"][3])  # counted from 1 as in the inspector (it read one less; a newcomer)
    assert f"density rank: {rank + 1:,} of {demo_session.n:,}" in normal.card.text.text()
    # the pointer leaves the plot: the card goes with it (it stayed up, stale, once the scene heard no more moves)
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    QApplication.sendEvent(normal.plot.viewport(), QEvent(QEvent.Type.Leave))
    assert not normal.card.isVisibleTo(normal) and len(normal.hover_item.data) == 0


def test_panel_renders_every_view(qtbot, demo_session) -> None:
    panel = _panel(qtbot, demo_session)
    demo_session.set_current(int(demo_session.clusters()[0].members[0]))
    for title, view in panel.views().items():
        panel.tabs.setCurrentWidget(view) if panel.tabs.indexOf(view) >= 0 else None
        image = view.grab()
        assert not image.isNull() and image.width() > 50, title


def test_refcount_guard_keeps_none_alive() -> None:
    import sys

    from PySide6.QtCore import QObject

    from naviewer.gui import _refcount_guard

    probe = QObject()
    for _ in range(20_000):
        probe.setObjectName("x")  # void calls: each drops a None reference on PySide6 6.12 + CPython 3.11
    assert sys.getrefcount(None) > 1_000_000 or not _refcount_guard.bug_present()
    assert _refcount_guard.applied == _refcount_guard.bug_present()  # one guard, applied by naviewer.gui itself


def test_tsne_runs_as_a_job_and_is_cached(qtbot, workspace_session) -> None:
    _path, ws, session = workspace_session
    panel = AnalystPanel(session, workspace=ws, run="r", tag="t")
    qtbot.addWidget(panel)
    before = panel.map.points.copy()
    with qtbot.waitSignal(panel.bridge.projection_changed, timeout=60_000) as blocker:
        panel.map.projection_box.setCurrentIndex(1)
        panel.map._on_projection_choice("tsne")
    assert blocker.args == ["tsne"]
    assert panel.map.points.shape == before.shape and not np.allclose(panel.map.points, before)
    assert ws.embeddings_path("r", "t-tsne2d").exists()


def test_panel_and_docked_window_fit_a_laptop_screen(qtbot, demo_session) -> None:
    """Docked as AnalystDock docks it, the analyst must not force the window wider than a 1366 px screen."""
    from PySide6.QtCore import Qt

    from naviewer.gui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.resize(1300, 740)
    window.show()
    panel = AnalystPanel(demo_session)
    dock = window.add_panel(panel, "Analyst", "analystDock", Qt.DockWidgetArea.RightDockWidgetArea)
    window.tabifyDockWidget(window.docks["monitorDock"], dock)
    dock.raise_()
    assert panel.minimumSizeHint().width() <= 900
    assert window.minimumSizeHint().width() <= 1300 and window.minimumSizeHint().height() <= 740
    window.resize(1300, 740)
    qtbot.waitUntil(lambda: panel.isVisible() and window.width() <= 1300)
    # the views keep usable room: their controls wrap, nothing scrolls sideways
    assert panel.map.parentWidget() is panel._upper and panel.gallery.parentWidget() is panel._upper
    assert min(panel._upper.sizes()) >= 150
    window.close()


def test_the_map_switches_to_a_density_image_above_the_measured_threshold(qtbot):
    from naviewer.gui.analyst.benchmark import synthetic_session
    from naviewer.gui.analyst.density_map import IMAGE_THRESHOLD, DensityMapWidget

    assert IMAGE_THRESHOLD == 100_000  # bench gui --crossover (docs/performance.md)
    small = DensityMapWidget(synthetic_session(2_000, images=False), image_threshold=1_999)
    qtbot.addWidget(small)
    assert small.image_mode
    large = DensityMapWidget(synthetic_session(IMAGE_THRESHOLD + 1, images=False))
    qtbot.addWidget(large)
    assert large.image_mode


def test_undo_keys_work_in_the_cluster_table(qtbot, demo_session, bulk_answers) -> None:
    """R rejects the highlighted cluster in the table; U and Ctrl+Z there did nothing (a newcomer had to go to the
    gallery to undo a whole cluster decided by mistake)."""
    panel = _panel(qtbot, demo_session)
    s = demo_session
    panel.focus_view("clusters")
    panel.clusters.select_cluster(0)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is panel.clusters.table, timeout=3000)
    members = s.clusters()[0].members
    for undo in ((Qt.Key.Key_U,), (Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)):
        qtbot.keyClick(panel.clusters.table, Qt.Key.Key_R)
        assert (s.state_codes[members] == 2).all()
        qtbot.keyClick(panel.clusters.table, *undo)
        assert not (s.state_codes == 2).any()
    # and with the focus on the cluster view's own button, where "Confirm cluster" leaves it: the notice promised
    # "U undoes it" and U did nothing (a newcomer, session 29)
    s.confirm(members)
    button = panel.clusters.buttons["confirmed"]
    button.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is button, timeout=3000)
    qtbot.keyClick(button, Qt.Key.Key_U)
    assert not (s.state_codes[members] == 1).any()


def test_review_keys_on_the_map_act_on_what_the_gallery_line_names(qtbot, demo_session, bulk_answers) -> None:
    """A newcomer box-selected on the map (which keeps the focus) and pressed R: nothing happened, while the line
    above the tiles still said "C · R · L act on ...". The keys now do, on the map, what that line says."""
    panel = _panel(qtbot, demo_session)
    s = demo_session
    members = np.sort(s.clusters()[0].members)[:4]
    s.set_selection(members)  # as a box selection on the map does
    panel.focus_view("map")
    qtbot.waitUntil(lambda: panel.map.plot.hasFocus() or panel.map.isAncestorOf(QApplication.focusWidget()), timeout=3000)
    named = panel.gallery.target_ids()
    assert len(named) and f"{len(named)} highlighted sample" in panel.gallery.target_label.text()
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_R)
    assert sorted(np.flatnonzero(s.state_codes == 2).tolist()) == sorted(named.tolist())
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_U)
    assert not (s.state_codes == 2).any()
    # a click on empty map clears the selection: C then decides nothing (it confirmed the gallery's focused tile)
    s.set_current(int(members[0]))
    s.set_selection(np.empty(0, np.int64))
    panel.focus_view("map")
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_C)
    assert not (s.state_codes == 1).any()
    assert "Nothing is selected on the map" in panel.gallery.notice.text()


def test_a_cluster_without_mindist_says_why(qtbot, demo_session) -> None:
    """A cluster that label spreading added showed "–" under mean MinDist and nothing said why (a newcomer)."""
    from naviewer.gui.analyst.clusters import COLUMNS, NO_MINDIST

    s = demo_session
    s.scores["mindist"] = np.full(s.n, np.nan)  # no member of any cluster was a candidate
    s._clusters = None
    panel = _panel(qtbot, s)
    table = panel.clusters.table
    column = COLUMNS.index("mean MinDist")
    assert table.horizontalHeaderItem(column).toolTip()
    assert table.item(0, column).text() == "–" and table.item(0, column).toolTip() == NO_MINDIST


def test_a_tall_panel_gives_the_clusters_only_the_room_they_need(qtbot, demo_session) -> None:
    """At 1920x1080 the cluster table stood mostly empty (a few clusters) while the inspector above was cut at the
    fold: the tabs get what shows every cluster, never less than LOWER_MIN_PX, and the row above the rest."""
    from naviewer.gui.analyst.panel import LOWER_MIN_PX, upper_share

    panel = _panel(qtbot, demo_session)
    panel.resize(1700, 1000)
    panel.show()
    qtbot.waitExposed(panel)
    panel._initial_sizes()
    upper, lower = panel._outer.sizes()
    h = upper + lower
    assert panel.clusters.table.rowCount() <= 4
    assert abs(lower - max(LOWER_MIN_PX, panel._lower_fit())) <= 2  # (the splitter rounds the pixels it shares out)
    assert LOWER_MIN_PX - 2 <= lower < h - int(h * upper_share(h)) - 20
    table = panel.clusters.table
    assert table.viewport().height() >= table.rowCount() * table.verticalHeader().defaultSectionSize()


def test_a_map_pick_not_shown_in_the_gallery_is_decided_by_the_maps_keys(qtbot, demo_session, bulk_answers) -> None:
    """A newcomer clicked a map point the gallery did not show and pressed C: refused ("Esc to act on the tile under
    focus"), Esc on the map left the gallery saying "act on nothing: #1226", then two more refusals. C on the map
    decides the map's pick; Esc there clears the pick for every view."""
    panel = _panel(qtbot, demo_session)
    s = demo_session
    panel.gallery.set_filter("flags")
    hidden = int(np.flatnonzero(~s.flagged_mask)[0])
    assert panel.gallery.model.row_of[hidden] < 0
    s.set_selection([hidden])  # a click on the map picks it
    s.set_current(hidden)
    panel.focus_view("map")
    qtbot.waitUntil(lambda: panel.map.isAncestorOf(QApplication.focusWidget()), timeout=3000)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_C)
    assert s.state_of(hidden) == "confirmed" and np.count_nonzero(s.state_codes) == 1
    assert "selected on the map" in panel.gallery.notice.text()
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Escape)
    assert len(s.selection) == 0 and s.current is None
    assert "act on nothing" not in panel.gallery.target_label.text()


def test_the_wheel_over_an_unfocused_control_scrolls_instead_of_changing_it(qtbot) -> None:
    """Scrolling the crop-layout controls changed the slider under the pointer (trigger 4 px -> 1 px unseen; newcomer
    session 16): without the focus the wheel is the pane's; once clicked, it changes the control."""
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    from naviewer.gui.analyst.crop_layout import CropLayoutWidget

    view = CropLayoutWidget()
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    slider = view.trigger.slider
    before = slider.value()

    def wheel() -> None:
        centre = QPointF(slider.width() / 2, slider.height() / 2)
        event = QWheelEvent(centre, slider.mapToGlobal(centre), QPoint(0, 0), QPoint(0, -120), Qt.MouseButton.NoButton,
                            Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(slider, event)

    view.setFocus()
    wheel()
    assert slider.value() == before
    slider.setFocus()
    qtbot.waitUntil(slider.hasFocus, timeout=2000)
    wheel()
    assert slider.value() != before


def test_the_map_shows_when_it_has_the_keyboard(qtbot, demo_session) -> None:
    """C confirmed a sample clicked on the map while the gallery's line said "act on nothing", and nothing showed
    which view the keys went to (newcomer session 17): the map draws a frame and its line says so while focused."""
    panel = _panel(qtbot, demo_session)
    s = demo_session
    panel.focus_view("gallery")
    assert "keys go to the map" not in panel.map.legend.text() and "transparent" in panel.map.plot.styleSheet()
    s.set_selection([3], source=panel.map)
    panel.focus_view("map")
    qtbot.waitUntil(panel.map.has_keyboard, timeout=3000)
    assert "the keys go to the map</b>: C · R · L decide what is selected here" in panel.map.legend.text()
    assert "transparent" not in panel.map.plot.styleSheet()
    panel.focus_view("gallery")
    qtbot.waitUntil(lambda: "keys go to the map" not in panel.map.legend.text(), timeout=3000)


def test_the_filters_go_above_the_tiles_in_a_narrow_gallery(qtbot, demo_session) -> None:
    """At 1280x720 the filter sidebar beside the tiles left one tile a row and cut its own controls (newcomer session
    17): in a narrow gallery it goes above the tiles at the gallery's width; in a wide one it stays beside them."""
    from PySide6.QtWidgets import QBoxLayout

    panel = _panel(qtbot, demo_session)
    g = panel.gallery
    panel.resize(1280, 660)
    g.show_filters(True)
    qtbot.waitUntil(lambda: g.filters.isVisible())
    assert g._grid_layout.direction() == QBoxLayout.Direction.TopToBottom
    qtbot.waitUntil(lambda: g.view.columns() >= 3, timeout=3000)
    panel.resize(2400, 1300)
    qtbot.waitUntil(lambda: g._grid_layout.direction() == QBoxLayout.Direction.LeftToRight, timeout=3000)
    assert g.filters.width() == g.filters.side_width and g.view.columns() >= 3


def test_the_filters_stay_beside_the_tiles_in_a_short_narrow_gallery() -> None:
    """At 1280x720 with the Analyst docked the gallery is narrow and short: above the tiles the sidebar showed two of
    its rows and cut Sort by (session 21). Above only where its first controls fit with a row of tiles under them."""
    from naviewer.gui.analyst.gallery import filters_go_above

    side, tile, essential = 274, 76, 128
    assert not filters_go_above(2000, 300, side, tile, essential)  # three columns beside: beside
    assert filters_go_above(466, 600, side, tile, essential)  # narrow and tall: above, its controls whole
    assert not filters_go_above(466, 140, side, tile, essential)  # narrow and short: beside, two columns
    assert filters_go_above(300, 140, side, tile, essential)  # no column beside at all: above anyway


def test_the_filters_never_cut_sort_by_above_the_tiles(qtbot, demo_session) -> None:
    from PySide6.QtWidgets import QBoxLayout

    panel = _panel(qtbot, demo_session)
    g = panel.gallery
    panel.resize(700, 900)
    g.show_filters(True)
    qtbot.waitUntil(lambda: g.filters.isVisible())
    qtbot.waitUntil(lambda: g._grid_layout.direction() == QBoxLayout.Direction.TopToBottom, timeout=3000)
    qtbot.waitUntil(lambda: g.filters.height() >= g.filters.essential_height(), timeout=3000)


def test_one_selected_sample_leaves_the_map_undimmed_and_a_group_dims_it(qtbot, demo_session) -> None:
    """One picked sample dimmed every other point to 30 %: on the dark theme the map all but vanished (a newcomer,
    session 18). One sample has its ring; a group dims the rest, less on a dark background."""
    panel = _panel(qtbot, demo_session)
    m, s = panel.map, demo_session
    items = list(m._base_items) + list(m.state_items.values())
    assert items
    s.set_selection(np.array([3]))
    assert all(item.opacity() == 1.0 for item in items)
    s.set_selection(np.arange(10))
    assert all(item.opacity() == 0.3 for item in items)
    m.dark = True
    assert m.dim_opacity(10) == 0.5 and m.dim_opacity(1) == 1.0 and m.dim_opacity(0) == 1.0
    s.set_selection(np.array([], dtype=np.int64))
    assert all(item.opacity() == 1.0 for item in items)


def test_the_highlighted_samples_ring_is_light_on_the_dark_theme(qtbot, demo_session) -> None:
    """The black ring around the highlighted sample all but vanished on the dark theme's navy (a newcomer, session
    30): the ring and the selection's outline are white on a dark map, black on a light one."""
    from naviewer.gui.resources import load_theme

    panel = _panel(qtbot, demo_session)
    m = panel.map
    panel.set_theme(load_theme("dark"))
    assert m.dark and m.current_item.opts["pen"].color().lightness() == 255
    assert m.selection_item.opts["pen"].color().lightness() == 255
    demo_session.set_current(3)
    assert m.current_item.opts["pen"].color().lightness() == 255  # new data keeps the pen
    panel.set_theme(load_theme("light"))
    assert not m.dark and m.current_item.opts["pen"].color().lightness() == 0


def test_the_counts_say_decided_and_later_apart(qtbot, demo_session) -> None:
    """"reviewed 1 / 110" beside one confirmed and one later read as a miscount (a newcomer, session 18): a later is
    not a decision, and the header, the gallery and the cluster table say so."""
    panel = _panel(qtbot, demo_session)
    s = demo_session
    q = s.review_queue()
    s.confirm(q[:1])
    s.review(q[1:2], "later")
    flags = sum(s.review_counts().values())
    assert f"decided 1 / {flags:,} (1 later)" in panel.header.text()
    assert panel.gallery.progress_label.text().startswith(f"decided 1 / {flags:,} flags")
    assert "1 set aside for later, not decided yet" in panel.gallery.progress_label.text()
    assert "decided" in panel.clusters.columns


def test_the_hover_card_goes_when_the_keys_leave_the_map(qtbot, demo_session) -> None:
    """The card stood over the map after Ctrl+3 took the keys to the cluster table (a newcomer, session 18)."""
    panel = _panel(qtbot, demo_session)
    m = panel.map
    m.plot.setFocus()
    qtbot.waitUntil(m.has_keyboard, timeout=2000)
    m.show_hover(3)
    assert m.card.isVisibleTo(m)
    panel.clusters.table.setFocus()
    qtbot.waitUntil(lambda: not m.card.isVisibleTo(m), timeout=2000)


def test_evaluation_mode_colours_the_map_by_the_ground_truth(qtbot, demo_session) -> None:
    """A newcomer found evaluation mode changed nothing on the map (session 19): on, the map offers and shows the
    ground truth (poisons red); off, that colouring goes and the map is back on density rank."""
    from naviewer.gui.analyst.density_map import TRUTH_MODE

    panel = _panel(qtbot, demo_session)
    truth = demo_session.truth_poison_mask()
    assert truth is not None and truth.any()
    assert panel.map.colour_box.findData(TRUTH_MODE) < 0  # not offered outside evaluation mode
    panel.inspector.set_evaluation_mode(True)
    assert panel.map.colour_mode == TRUTH_MODE and panel.map.colour_box.currentData() == TRUTH_MODE
    assert sum(len(item.data) for item in panel.map._base_items) == demo_session.n
    truth_ids, flagged = np.flatnonzero(truth), demo_session.flagged_mask
    legend = panel.map.legend.text()  # precision and recall read off it
    assert f"poison (ground truth; {int(flagged[truth_ids].sum()):,} of {len(truth_ids):,} flagged)" in legend
    assert f"clean (ground truth; {int(flagged[~truth].sum()):,} flagged)" in legend
    panel.inspector.set_evaluation_mode(False)
    assert panel.map.colour_mode == "density" and panel.map.colour_box.findData(TRUTH_MODE) < 0


def test_the_line_above_the_tiles_says_where_the_keyboard_is(qtbot, demo_session) -> None:
    """"C · R · L act on the highlighted sample #1406" stayed while the keys went to the Sort-by box (R changed the
    sort), the cluster table (C decides a whole cluster) or the map (newcomer session 21): the line follows the focus."""
    panel = _panel(qtbot, demo_session)
    line = panel.gallery.target_label
    panel.focus_view("clusters")
    qtbot.waitUntil(lambda: "The keyboard is in the cluster table" in line.text(), timeout=3000)
    panel.gallery.filters.setVisible(True)
    panel.focus_view("gallery")
    qtbot.waitUntil(lambda: "C · R · L act on" in line.text(), timeout=3000)
    panel.gallery.filters.sort.setFocus()
    qtbot.waitUntil(lambda: "The keyboard is in the filters" in line.text(), timeout=3000)
    panel.focus_view("map")
    qtbot.waitUntil(lambda: "The keyboard is in the map" in line.text(), timeout=3000)
    panel.focus_view("gallery")
    qtbot.waitUntil(lambda: "C · R · L act on" in line.text(), timeout=3000)
    # the keys elsewhere, the buttons still act on the highlighted tile: the line names it (after the map's Clear a
    # newcomer read "selected 0" and Confirm decided a tile named nowhere; session 34)
    sid = int(panel.gallery.model.ids[0])
    panel.gallery._focus_as_click(sid)
    panel.focus_view("clusters")
    qtbot.waitUntil(lambda: f"buttons: <b>#{sid}</b>" in line.text(), timeout=3000)


def test_the_inspector_says_when_the_keys_act_on_a_selection_it_does_not_show(qtbot, demo_session) -> None:
    """After a box selection of 151 samples the inspector still showed #1337, outside it, while C on the map or in the
    gallery would decide the 151 (a newcomer, session 21)."""
    panel = _panel(qtbot, demo_session)
    s = demo_session
    members = np.sort(s.clusters()[0].members)
    outside = int(np.setdiff1d(np.arange(s.n), members)[0])
    s.set_current(outside)
    s.set_selection(members)
    note = panel.inspector.selection_note
    assert note.isVisible() and f"{len(members):,} samples are selected" in note.text()
    assert f"shows #{outside}, <b>not</b> one of them" in note.text()
    # and it says what the gallery's keys act on as the gallery's own line does (session 26: it promised both)
    assert "on the map act on them; in the gallery on its highlighted tiles" in note.text()
    s.set_current(int(members[0]))
    assert "one of them" in note.text() and "not</b>" not in note.text()
    s.set_selection(np.zeros(0, np.int64))
    assert not note.isVisible()


def test_ctrl_2_clears_another_views_word_under_the_tiles_and_anchor_reach_is_explained(qtbot, demo_session) -> None:
    """"No cluster is chosen…" stayed under the tiles after Ctrl+2, against the line above them; and the Sort-by list
    did not say which end of anchor reach is which (a newcomer, session 21)."""
    panel = _panel(qtbot, demo_session)
    panel.gallery.show_notice("No cluster is chosen, so nothing was decided")
    panel.focus_view("gallery")
    assert not panel.gallery.notice.isVisible()
    panel.gallery.show_notice("read-only", sticky=True)  # a standing word stays
    panel.focus_view("gallery")
    assert panel.gallery.notice.isVisible()
    from naviewer.gui.analyst.filters import SORT_TIPS

    assert "Descending shows first the flags the anchors reach as clean" in SORT_TIPS["anchor_reach"]


def _three_flags_reached(s) -> np.ndarray:
    """The session's flags, the last three of them reached by the anchors as clean samples (reach 0.8, 1.1, 0.95),
    the rest at 0.01 as poisons read; returns the flagged ids."""
    flagged = np.flatnonzero(s.flagged_mask)
    reach = np.full(s.n, 1.0)
    reach[flagged] = 0.01
    reach[flagged[-3:]] = [0.8, 1.1, 0.95]
    s.scores["anchor_reach"] = reach
    return flagged


def test_flags_the_trusted_anchors_reach_are_pointed_out_and_sorted_first(qtbot, demo_session) -> None:
    """Clean images pulled in with the poisons read a high anchor reach, the poisons near 0 (session 21): no
    threshold parts them, so DIFT takes nothing back by it; the panel says how many there are and sorts them first,
    the keyboard on the first awaiting a decision. Not with anchors drawn from the labels (they may be poisons)."""
    s = demo_session
    flagged = _three_flags_reached(s)
    s.settings["summary"] = {"anchors_trusted": False}
    panel = _panel(qtbot, s)
    assert panel.trust.reached.isHidden()
    panel.close()

    s.settings["summary"] = {"anchors_trusted": True}
    panel = _panel(qtbot, s)
    assert not panel.trust.reached.isHidden()
    assert "3 flags the trusted anchors reach as clean samples" in panel.trust.reached_text.text()
    assert "color: #4a3b00" in panel.trust.reached.styleSheet()  # its own dark text: the dark theme's was pale
    assert "3 of them await a decision" in panel.trust.reached_text.text()
    s.confirm(flagged[-1:])
    assert "2 of them await a decision" in panel.trust.reached_text.text()
    s.set_selection(flagged[:1])  # a highlight from before: the keys must not act on it after the sort
    panel.trust.reached_button.click()
    g = panel.gallery
    qtbot.waitUntil(lambda: not g.filter_pending, timeout=5000)
    assert g.filters.spec().sort == "anchor_reach" and g.filters.spec().descending
    assert int(g.model.ids[0]) == int(flagged[-2])  # reach 1.1, first
    assert s.current == int(flagged[-2]) and g.focused_id() == int(flagged[-2])
    assert g.target_ids().tolist() == [int(flagged[-2])]
    assert "Sorted by anchor reach" in g.notice.text()


def _patchsearch_finds_a_trigger_in(panel, ids, monkeypatch) -> None:
    """The panel's workspace as if it held a PatchSearch pass (pass 7) that finds a trigger in ``ids`` only."""
    from types import SimpleNamespace

    from naviewer.analysis import reach

    triggers = np.zeros(panel.session.n, bool)
    triggers[np.asarray(ids, int)] = True
    monkeypatch.setattr(reach, "latest_patchsearch", lambda store, n: (7, triggers))
    panel.workspace = SimpleNamespace(store=None)
    panel._reached = None
    panel._update_reached()


def test_the_reached_flags_patchsearch_finds_no_trigger_in_are_one_click_from_a_highlight(qtbot, demo_session,
                                                                                           monkeypatch) -> None:
    """With a PatchSearch pass the box said "a trigger in 1 of them, none in 45", and the 45 had to be found one by
    one: a button highlights them together in the gallery (decided by nobody until the analyst presses a key)."""
    s = demo_session
    flagged = _three_flags_reached(s)
    s.settings["summary"] = {"anchors_trusted": True}
    panel = _panel(qtbot, s)
    assert panel.trust.untriggered_button.isHidden()  # no PatchSearch pass: no button
    _patchsearch_finds_a_trigger_in(panel, [flagged[-1]], monkeypatch)
    button = panel.trust.untriggered_button
    assert not button.isHidden() and button.text() == "Select the 2 with no trigger"
    assert "PatchSearch (pass 7) finds a trigger in 1 of them, none in 2" in panel.trust.reached_text.text()
    button.click()
    g = panel.gallery
    qtbot.waitUntil(lambda: not g.filter_pending, timeout=5000)
    assert sorted(g.target_ids().tolist()) == sorted(int(i) for i in flagged[-3:-1])
    assert (s.state_codes[flagged[-3:]] == 0).all()  # nothing decided by the button
    assert "R keeps them, C removes them" in g.notice.text()
    # a flag decided already is not put back under the keys (one R re-decided a confirmed flag; session 23's review)
    s.confirm(flagged[-3:-2])
    assert button.text() == "Select the 1 with no trigger"
    button.click()
    qtbot.waitUntil(lambda: not g.filter_pending, timeout=5000)
    assert g.target_ids().tolist() == [int(flagged[-2])]
    s.confirm(flagged[-2:-1])
    assert button.isHidden()  # none left awaiting a decision


def test_one_undo_after_deciding_the_untriggered_flags_together_puts_them_all_back(qtbot, demo_session, monkeypatch,
                                                                                  bulk_answers) -> None:
    """The button's highlight decided with one key is one decision: U puts every one of them back, the button
    counts them again, and the flags decided before stay decided (not probed before session 26)."""
    s = demo_session
    flagged = _three_flags_reached(s)
    s.settings["summary"] = {"anchors_trusted": True}
    s.confirm(flagged[:2])  # decided before: untouched by the undo
    panel = _panel(qtbot, s)
    _patchsearch_finds_a_trigger_in(panel, [flagged[-1]], monkeypatch)
    button = panel.trust.untriggered_button
    button.click()
    g = panel.gallery
    qtbot.waitUntil(lambda: not g.filter_pending, timeout=5000)
    chosen = sorted(int(i) for i in flagged[-3:-1])
    assert sorted(g.target_ids().tolist()) == chosen
    g.review_selected("rejected")
    assert all(s.state_of(i) == "rejected" for i in chosen)
    assert button.isHidden()
    g.undo()
    assert all(s.state_of(i) == "unreviewed" for i in chosen)
    assert all(s.state_of(int(i)) == "confirmed" for i in flagged[:2])
    assert not button.isHidden() and button.text() == "Select the 2 with no trigger"


def _inspector_scrolled_to_its_neighbours(qtbot, s, neighbours: bool = False):
    """(panel, inspector, the first flagged sample) with the inspector scrolled down until its image is out of view
    (``neighbours``: once its neighbour buttons are there)."""
    from naviewer.gui.analyst.common import on_screen

    panel = _panel(qtbot, s)
    panel.resize(1400, 520)
    sid = int(np.flatnonzero(s.flagged_mask)[0])
    s.set_current(sid, source=None)
    inspector = panel.inspector
    qtbot.waitUntil(lambda: inspector.sample == sid and (not neighbours or len(inspector.neighbour_buttons) > 0),
                    timeout=3000)
    bar = inspector.scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: (bar.setValue(bar.maximum()), not on_screen(inspector.image))[1], timeout=5000)
    return panel, inspector, sid


def test_the_inspectors_keys_do_nothing_while_its_image_is_scrolled_away(qtbot, demo_session) -> None:
    """Reading the neighbours below the image, a newcomer pressed C and confirmed an airplane the filters hid from
    the gallery (session 22): with the image out of sight the first key brings it back and decides nothing."""
    from naviewer.gui.analyst.common import on_screen

    s = demo_session
    panel, inspector, sid = _inspector_scrolled_to_its_neighbours(qtbot, s)

    def press(key: str) -> None:
        next(k for k in inspector.shortcuts if k.key().toString() == key).activated.emit()

    press("C")
    assert s.state_of(sid) == "unreviewed" and "scrolled out of sight" in panel.gallery.notice.text()
    qtbot.waitUntil(lambda: on_screen(inspector.image), timeout=3000)
    press("C")
    assert s.state_of(sid) == "confirmed"


def test_a_pass_without_embeddings_says_its_map_is_not_one(qtbot) -> None:
    """A pass DIFT ran during training keeps no embeddings: the fallback plot (density rank x MinDist) was a thin
    column and a line that looked like a rendering fault, and Fit did nothing (a newcomer, session 22)."""
    from naviewer.analysis.demo import make_demo_session

    s = make_demo_session(400, 20, seed=5)
    s.embeddings = None
    panel = _panel(qtbot, s)
    m = panel.map
    assert "Not a map of the embedding" in m.embedding_note.text() and not m.embedding_note.isHidden()
    assert m.projection_box.findData("tsne") < 0 and m.projection_box.itemText(0) == "rank × MinDist"


def test_a_pixel_of_resize_does_not_move_the_columns_and_a_real_one_lays_them_out_again(qtbot, demo_session) -> None:
    """A job's progress bar made the status line a pixel taller as a fine-tune started; the panel laid out its
    default proportions again and the map / gallery / inspector columns moved under the mouse (session 25)."""
    panel = _panel(qtbot, demo_session)
    qtbot.waitExposed(panel)
    panel._upper.setSizes([500, 600, 292])  # as if Qt's own share of a small resize had moved them
    before = panel._upper.sizes()
    panel.resize(1400, 899)
    qtbot.wait(20)
    assert panel._upper.sizes() == before
    panel.resize(1000, 899)
    qtbot.wait(20)
    assert panel._upper.sizes() != before and sum(panel._upper.sizes()) < sum(before)


def test_the_status_line_keeps_its_height_when_a_job_starts(qtbot) -> None:
    from naviewer.gui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.resize(1280, 720)
    window.show()
    qtbot.waitExposed(window)
    before = window.statusBar().height()
    window.progress.show()
    qtbot.wait(20)
    assert window.statusBar().height() == before
    window.close()


def test_a_panel_rebuilt_on_the_same_pass_keeps_the_filters_the_map_and_the_splitters(qtbot) -> None:
    """A job's end re-opens the workspace: the panel came back on PCA, the suspicion order, closed filters and the
    default proportions (a newcomer with a t-SNE map and a gallery sorted by anchor reach while the floor was
    measured, session 26)."""
    from naviewer.analysis.demo import make_demo_session

    first = _panel(qtbot, make_demo_session(400, 20, seed=3))
    s = first.session
    tsne = np.random.default_rng(0).normal(size=(s.n, 2)).astype(np.float32)
    s.set_projection(tsne, "tsne")
    first.map.projection_box.setCurrentIndex(first.map.projection_box.findData("tsne"))
    first.map.set_colour_mode("class")
    g = first.gallery
    g.set_filter("all")
    g.show_filters(True)
    g.filters.set_sort_quietly("mindist", True)
    g.filters.label.setCurrentIndex(2)
    g.filters.set_range("rank", 0, 9)  # the ten densest (1-10 in the sidebar)
    g.filters.set_range("posterior", 0.3, 0.6)
    first._upper.setSizes([700, 400, 292])
    first._sized = True  # as a drag of the splitter does
    qtbot.wait(50)
    place = first.place()

    second = _panel(qtbot, make_demo_session(400, 20, seed=3))
    qtbot.wait(50)
    second.restore_place(place)
    qtbot.waitUntil(lambda: not second.gallery.filter_pending, timeout=5000)
    assert second.gallery.filters.spec() == g.filters.spec() and second.gallery.filters.isVisible()
    third = _panel(qtbot, make_demo_session(400, 20, seed=3))  # and again: the ranges do not widen a step each time
    qtbot.wait(50)
    third.restore_place(second.place())
    qtbot.waitUntil(lambda: not third.gallery.filter_pending, timeout=5000)
    low, high, _a, _b = third.gallery.filters.ranges["rank"]
    assert (low.value(), high.value()) == (1, 10) and third.gallery.filters.spec() == g.filters.spec()
    assert second.map.projection_box.currentData() == "tsne"
    assert np.allclose(second.session.projection(), tsne)
    assert second.map.colour_mode == "class"
    assert second._upper.sizes() == first._upper.sizes()


def test_a_fine_tune_result_leaves_the_gallery_two_rows_of_tiles(qtbot, demo_session) -> None:
    """After Remove and retrain at 1280x720 the result table took the map row down to a strip and one row of tiles (a
    newcomer, session 26): the tabs take only what the gallery has beyond two rows; the tab scrolls for the rest."""
    panel = _panel(qtbot, demo_session)
    panel.resize(1276, 560)  # the panel's size in a 1280x720 window
    qtbot.wait(50)
    panel.set_finetune_result({"before": {"knn_acc": 0.94, "asr": 1.0, "asr_all": 1.0, "confirmed_density": 5.0},
                               "after": {"knn_acc": 0.92, "asr": 0.28, "asr_all": 0.3, "confirmed_density": 3.6},
                               "protocol": "uniform"})
    qtbot.wait(50)
    view = panel.gallery.view
    assert view.height() >= 2 * view.tile


def test_the_crop_layout_follows_evaluation_mode_at_once(qtbot, demo_session, monkeypatch) -> None:
    """Ticking Evaluation mode left the open crop layout on the template until Crop layout… was pressed again (a
    newcomer, session 26): it switches to the recorded layout at once, and back."""
    import naviewer.gui.analyst.panel as panel_module
    from naviewer.analysis.crop_event import CropLayout
    from naviewer.attacks.layout import na_layout

    s = demo_session
    image = s.image(int(s.review_queue()[0]))
    h, w = image.shape[:2]
    recorded = na_layout(w // 2 if w >= h else h // 2, 4, (1, 1), gap=0,
                         orientation="ref-left" if w >= h else "ref-top")
    monkeypatch.setattr(panel_module, "layout_of_record", lambda truth, hh, ww: recorded)
    panel = _panel(qtbot, s)
    composite = np.concatenate([image, image], axis=1)
    sid = int(s.review_queue()[0])
    monkeypatch.setattr(s, "image", lambda i: composite)
    panel.show_crop_layout(sid)
    assert "A template" in panel.crop_layout.layout_note
    panel.inspector.evaluation.setChecked(True)
    assert panel.crop_layout.layout_note == "" and panel.crop_layout.crop_layout == CropLayout.from_layout(recorded)
    panel.inspector.evaluation.setChecked(False)
    assert "A template" in panel.crop_layout.layout_note


def test_a_neighbour_clicked_in_the_inspector_is_shown_from_its_top(qtbot, demo_session) -> None:
    """Scrolled down to the neighbours, a click showed the new sample with its title and buttons out of view, and the
    thumbnail under the mouse was the sample before (a newcomer, session 26)."""
    from naviewer.gui.analyst.common import on_screen

    s = demo_session
    panel, inspector, sid = _inspector_scrolled_to_its_neighbours(qtbot, s, neighbours=True)
    neighbour = inspector.neighbour_buttons[0]
    target = int(neighbour.text().lstrip("#"))
    neighbour.click()
    qtbot.waitUntil(lambda: inspector.sample == target, timeout=3000)
    qtbot.waitUntil(lambda: on_screen(inspector.image), timeout=3000)


def test_a_pass_flagging_an_implausible_share_is_warned_about_when_opened_and_in_the_menu(qtbot, window, tmp_path):
    """A pass saved before the share warning existed opened with no word of its 55 % flags, and the Detection
    passes menu gave no hint (a newcomer's re-check, session 27): both say it."""
    import numpy as np

    from naviewer.gui.analyst_dock import AnalystDock
    from naviewer.workspace import Workspace

    from analyst_kit import folder_workspace

    path = folder_workspace(tmp_path, n=40)
    with Workspace.open(path) as ws:
        n = ws.store.sample_count()
        flags = np.arange(n) < n // 2  # half the set, no warning recorded with it (an older pass)
        pass_id = ws.store.add_detection_pass("kdist", {"score": np.linspace(1, 0, n), "flagged": flags,
                                                        "cluster": np.where(flags, 0, -1)},
                                              {"summary": {"flagged": int(flags.sum())}})
    window.workspace_path = path
    label = next(text for pid, _run, text in window.pass_choices() if pid == pass_id)
    assert "50% of the samples: not plausible" in label, label
    dock = AnalystDock(window, path, pass_id=pass_id)
    try:
        warned = dock.panel.trust.warnings
        assert not warned.isHidden() and "kdist flagged 20 of 40 samples (50%)" in warned.text()
    finally:
        dock.close()


def test_the_map_does_not_move_as_its_legend_changes_lines(qtbot, demo_session) -> None:
    """The legend under the map went from two lines to three and back as the selection and the keys' words changed;
    the plot moved with it, and a click meant for the point under the mouse picked another (a newcomer, session 29).
    The legend keeps the most lines it has needed at its width."""
    panel = _panel(qtbot, demo_session)
    m = panel.map
    sizes = panel._upper.sizes()
    panel._upper.setSizes([300, sum(sizes) - 300 - sizes[2], sizes[2]])  # narrow: the keys' words take a line more
    panel.focus_view("map")
    qtbot.wait(50)
    demo_session.set_selection(np.arange(40), source=None)
    qtbot.wait(50)
    m._update_legend()
    qtbot.wait(50)
    demo_session.clear_selection(source=None)
    qtbot.wait(50)
    m._update_legend()
    qtbot.wait(50)
    top = m.plot.mapTo(m, m.plot.rect().topLeft()).y()
    height = m.plot.height()
    demo_session.set_selection(np.arange(40), source=None)
    m._update_legend()
    qtbot.wait(50)
    assert (m.plot.mapTo(m, m.plot.rect().topLeft()).y(), m.plot.height()) == (top, height)


def test_a_map_dragged_short_never_draws_its_plot_over_its_tools(qtbot, demo_session) -> None:
    """Narrowed, the map's tools take two rows; dragged short, the plot was drawn over half of the Colour by box
    (a newcomer, session 29): the map's least height follows its wrapped rows."""
    panel = _panel(qtbot, demo_session)
    m = panel.map
    sizes = panel._upper.sizes()
    panel._upper.setSizes([180, sum(sizes) - 180 - sizes[2], sizes[2]])  # the tools in three rows
    panel._outer.setSizes([60, sum(panel._outer.sizes()) - 60])
    qtbot.wait(100)

    def box(widget):
        return widget.geometry().translated(widget.parentWidget().mapTo(m, widget.parentWidget().rect().topLeft()))

    assert box(m.colour_box).bottom() < box(m.plot).top() and box(m.projection_box).bottom() < box(m.plot).top()


def test_why_flagged_takes_room_from_the_row_above_when_chosen(qtbot, demo_session) -> None:
    """Why flagged's histograms stood 45 px tall at 1280x720 (session 29's note): chosen, the tabs take what the row
    above spares beyond two rows of tiles; the other tabs leave the splitter as it is."""
    panel = AnalystPanel(demo_session)
    qtbot.addWidget(panel)
    panel.resize(1280, 900)
    panel.show()
    qtbot.waitExposed(panel)
    upper, lower = panel._outer.sizes()
    panel._outer.setSizes([upper + lower - 180, 180])
    panel.tabs.setCurrentWidget(panel.history)
    assert panel._outer.sizes()[1] == 180
    panel.tabs.setCurrentWidget(panel.why)
    assert panel._outer.sizes()[1] > 180


def test_the_crop_layout_in_front_follows_the_highlighted_sample_and_names_it(qtbot, demo_session, monkeypatch) -> None:
    """The Crop layout tab kept the first sample's layout, with no id anywhere, while the analyst moved on with the
    keys (a newcomer, session 30): in front, it follows the highlighted composite, and its tab names it."""
    s = demo_session
    image = s.image(int(s.review_queue()[0]))
    composite = np.concatenate([image, image], axis=1)
    monkeypatch.setattr(s, "image", lambda i: composite)
    panel = _panel(qtbot, s)
    first, second = (int(i) for i in s.review_queue()[:2])
    panel.show_crop_layout(first)
    index = panel.tabs.indexOf(panel.crop_layout)
    assert panel.tabs.tabText(index) == f"Crop layout · #{first}"
    s.set_current(second)
    assert panel._crop_sid == second and panel.tabs.tabText(index) == f"Crop layout · #{second}"
    panel.tabs.setCurrentWidget(panel.history)  # not in front: it stays
    s.set_current(first)
    assert panel._crop_sid == second


def test_ctrl_7_shows_the_crop_layout_of_the_highlighted_composite(qtbot, demo_session, monkeypatch) -> None:
    """The inspector's Crop layout… had no key: a keyboard-only review could not reach it (a newcomer, session 30)."""
    s = demo_session
    image = s.image(int(s.review_queue()[0]))
    panel = _panel(qtbot, s)
    said = []
    panel.status_message.connect(said.append)
    key = next(k for k in panel.shortcuts if k.key().toString() == "Ctrl+7")
    first = int(s.review_queue()[0])
    s.set_current(first)
    key.activated.emit()  # a square digit: the tab in front, and why it shows nothing of it
    assert panel.tabs.currentWidget() is panel._crop_tab and "square image has no crop layout" in said[-1]
    monkeypatch.setattr(s, "image", lambda i: np.concatenate([image, image], axis=1))
    key.activated.emit()
    assert panel._crop_sid == first and panel.tabs.currentWidget() is panel._crop_tab


def test_with_the_passs_own_trigger_check_the_button_selects_what_accept_all_leaves(qtbot, demo_session,
                                                                                  monkeypatch) -> None:
    """The box read the newest PatchSearch pass's per-image word at reach 0.7 while accept-all leaves the check's own
    cleared flags (its pass's flags at 0.5): two sets under one name (a review, session 31). With a check, its set."""
    import naviewer.workflows.trigger_check as trigger_check

    s = demo_session
    flagged = _three_flags_reached(s)
    s.settings["summary"] = {"anchors_trusted": True}
    s.pass_id = 3
    panel = _panel(qtbot, s)
    check = trigger_check.TriggerCheck(3, 9, 0.5, 0.5, 0.8, 3, np.asarray([flagged[0]], np.int64))
    monkeypatch.setattr(trigger_check, "trigger_check_of", lambda ws, pass_id: check if pass_id == 3 else None)
    _patchsearch_finds_a_trigger_in(panel, [flagged[-1]], monkeypatch)  # another reading: 2 without a trigger
    button = panel.trust.untriggered_button
    assert button.text() == "Select the 1 with no trigger"
    text = panel.trust.reached_text.text()
    assert "3 flags the trusted anchors reach as clean samples (anchor reach above 0.5" in text  # one reach: the check's
    assert "The trigger check (PatchSearch pass 9 on the same encoder) finds no trigger in 1 of them (naviewer " \
           "finetune --accept-all would leave those unconfirmed; here you decide them)." in text
    assert "above 0.7" not in text
    button.click()
    qtbot.waitUntil(lambda: not panel.gallery.filter_pending, timeout=5000)
    assert panel.gallery.target_ids().tolist() == [int(flagged[0])]
    # every one decided: the box no longer leads with a task ("Look at these first" over 0 awaiting; session 31)
    s.reject(np.asarray(panel._reached))
    panel._update_reached()
    text = panel.trust.reached_text.text()
    assert text.startswith("<b>Looked at: every one is decided.</b>") and "here you decide" not in text, text
