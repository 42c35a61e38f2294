"""Issue 14 items 13 and 14: the filter sidebar (cluster, review state, class, score ranges; sort by any
score) refreshed after every decision, and the large sample view with arrows and C/R/L."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QItemSelectionModel, Qt

from naviewer.gui.analyst.gallery import GalleryWidget


def _gallery(qtbot, session) -> GalleryWidget:
    gallery = GalleryWidget(session)
    qtbot.addWidget(gallery)
    gallery.resize(1000, 700)
    gallery.show()
    qtbot.waitExposed(gallery)
    return gallery


def test_filter_sidebar_narrows_sorts_and_follows_decisions(qtbot, demo_session) -> None:
    s = demo_session
    g = _gallery(qtbot, s)
    g.set_filter("all")
    g.view.setFocus()
    qtbot.keyClick(g.view, Qt.Key.Key_F)
    f = g.filters
    assert f.isVisible() and g.filter_button.isChecked()

    pick = next(c for c in s.clusters()[1:] if c.size > 3)
    f.cluster.setCurrentIndex(f.cluster.findData(pick.cluster_id))
    assert sorted(g.shown_ids().tolist()) == sorted(pick.members.tolist())
    assert "(filtered)" in g.count_label.text()

    f.set_states({"unreviewed", "later"})
    first = int(g.shown_ids()[0])
    s.reject([first])  # a decision made anywhere refreshes the view
    assert first not in g.shown_ids().tolist()
    s.later([int(g.shown_ids()[0])])
    assert len(g.shown_ids()) == pick.size - 1

    f.reset()
    assert len(g.shown_ids()) == s.n and not f.spec().active
    label = int(s.labels[first])
    f.label.setCurrentIndex(f.label.findData(label))
    assert len(g.shown_ids()) and (s.labels[g.shown_ids()] == label).all()

    f.reset()
    md = s.scores["mindist"]
    low, high = np.nanpercentile(md, [40, 60])
    f.set_range("mindist", float(low), float(high))
    shown = g.shown_ids()
    assert 0 < len(shown) < s.n and (md[shown] >= low - 1e-3).all() and (md[shown] <= high + 1e-3).all()

    f.reset()
    f.sort.setCurrentIndex(f.sort.findData("mindist"))
    f.descending.setChecked(True)
    values = md[g.shown_ids()]
    finite = values[np.isfinite(values)]
    assert len(finite) > 10 and (np.diff(finite) <= 0).all()
    f.sort.setCurrentIndex(f.sort.findData("posterior"))
    f.descending.setChecked(False)
    post = s.scores["posterior"][g.shown_ids()]
    k = int(np.isfinite(post).sum())
    assert np.isfinite(post[:k]).all() and (np.diff(post[:k]) >= 0).all()  # samples without a posterior last


def test_large_view_walks_with_arrows_and_decides(qtbot, demo_session) -> None:
    s = demo_session
    g = _gallery(qtbot, s)
    shown = g.shown_ids().copy()
    s.set_current(int(shown[0]))
    g.view.setFocus()
    qtbot.keyClick(g.view, Qt.Key.Key_Space)
    v = g.viewer
    assert v is not None and v.isVisible() and v.sample == int(shown[0])
    assert v.image.pixmap() is not None and not v.image.pixmap().isNull()
    qtbot.keyClick(v, Qt.Key.Key_Right)
    qtbot.keyClick(v, Qt.Key.Key_Right)
    assert v.sample == int(shown[2]) and s.current == int(shown[2]) and "3 of" in v.position.text()
    qtbot.keyClick(v, Qt.Key.Key_Left)
    assert v.sample == int(shown[1])
    qtbot.keyClick(v, Qt.Key.Key_R)
    assert s.state_of(int(shown[1])) == "rejected"
    assert v.sample == int(shown[2])  # moved on to the next flag awaiting a decision
    qtbot.keyClick(v, Qt.Key.Key_C)
    assert s.state_of(int(shown[2])) == "confirmed" and v.sample == int(shown[3])
    qtbot.keyClick(v, Qt.Key.Key_U)
    assert s.state_of(int(shown[2])) == "unreviewed" and v.sample == int(shown[2]) and "unreviewed" in v.title.text()
    qtbot.keyClick(v, Qt.Key.Key_Escape)
    assert not v.isVisible()

    index = g.model.index(5)
    g.view.scrollTo(index)
    at = g.view.visualRect(index).center()
    qtbot.mouseClick(g.view.viewport(), Qt.MouseButton.LeftButton, pos=at)  # a double-click starts with a press
    qtbot.mouseDClick(g.view.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert v.isVisible() and v.sample == int(g.model.ids[5])


def test_keys_typed_in_the_filters_never_decide(qtbot, demo_session) -> None:
    from PySide6.QtWidgets import QApplication

    s = demo_session
    g = _gallery(qtbot, s)
    g.windowHandle().requestActivate()
    qtbot.waitUntil(g.isActiveWindow, timeout=5000)
    s.set_current(int(g.shown_ids()[0]))
    g.focus_filters()
    focus = QApplication.focusWidget()
    assert focus is not None and g.filters.isAncestorOf(focus)
    for key in (Qt.Key.Key_R, Qt.Key.Key_C, Qt.Key.Key_2):
        qtbot.keyClick(focus, key)
    assert (s.state_codes == 0).all() and g.filter_box.currentData() == "flags"
    # F, the panel's own key, closes it from inside (a combo took it as a search and the panel stayed), and the keys
    # go back to the tiles
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_F)
    assert not g.filters.isVisible() and QApplication.focusWidget() is g.view


def test_the_flags_sort_by_anchor_reach_the_likely_clean_first(qtbot, demo_session, monkeypatch) -> None:
    """Within DIFT's flags the per-sample anchor reach ranked the clean flags above the poisons (AUROC 0.95-1.00 on
    30 stored passes): sorted by it, descending, the analyst reviews the doubtful flags first."""
    s = demo_session
    reach = np.random.default_rng(0).random(s.n)
    monkeypatch.setitem(s.scores, "anchor_reach", reach)
    g = _gallery(qtbot, s)
    g.set_filter("flagged")
    f = g.filters
    assert f.sort.findData("anchor_reach") >= 0
    f.sort.setCurrentIndex(f.sort.findData("anchor_reach"))
    f.descending.setChecked(True)
    shown = g.shown_ids()
    assert len(shown) > 3 and (np.diff(reach[shown]) <= 0).all()


def test_sorted_by_review_state_a_decision_moves_the_focus_to_the_tile_that_followed(qtbot, demo_session) -> None:
    """Sorted by review state, a decided tile moves to the decided ones at the end: the focus went with it out of
    view (or jumped to the top), and the next R and L re-decided the hidden tile (newcomer session 21). The focus
    goes to the tile that followed it, which is then in its place."""
    s = demo_session
    g = _gallery(qtbot, s)
    g.set_filter("flags")
    f = g.filters
    f.sort.setCurrentIndex(f.sort.findData("review"))
    ids = g.shown_ids().copy()
    s.set_current(int(ids[2]))
    g.view.setFocus()
    g.review_selected("rejected")
    assert s.state_of(int(ids[2])) == "rejected" and int(g.shown_ids()[-1]) == int(ids[2])  # moved to the end
    assert g.focused_id() == int(ids[3]) and int(g.shown_ids()[2]) == int(ids[3])  # the next one, in its place
    g.review_selected("later")
    assert s.state_of(int(ids[3])) == "later" and s.state_of(int(ids[2])) == "rejected"  # not the hidden tile again
    assert g.focused_id() == int(ids[4])


def test_a_sample_hidden_by_the_filters_is_said_so_and_esc_acts_on_a_shown_tile(qtbot, demo_session) -> None:
    """With the Class filter on 1, C on the inspector's class-0 sample said "Press 3 to show all samples, or Esc";
    3 kept the filter, and Esc left the keys on the hidden sample: the same refusal twice (newcomer session 21)."""
    s = demo_session
    g = _gallery(qtbot, s)
    g.set_filter("all")
    f = g.filters
    f.label.setCurrentIndex(f.label.findData(1))
    hidden = int(np.flatnonzero(s.labels == 0)[0])
    s.set_current(hidden, source=None)  # picked on the map
    assert len(g.review_selected("confirmed")) == 0 and s.state_of(hidden) == "unreviewed"
    assert "the filters narrow this view: F opens them" in g.notice.toolTip() + g.notice.text()
    g.clear_highlight()  # Esc
    target = g.target_ids()
    assert len(target) == 1 and s.labels[int(target[0])] == 1 and g.model.row_of[int(target[0])] >= 0
    assert len(g.review_selected("confirmed")) == 1


def test_a_decision_a_read_only_workspace_refuses_is_said_not_lost(qtbot, tmp_path, monkeypatch) -> None:
    """In a read-only workspace C raised inside a slot: no message, a traceback on stderr only, the decision lost
    without a word (a GUI sweep, session 21). The window's message box says it was not recorded."""
    from naviewer.analysis.demo import make_demo_session
    from naviewer.analysis.session import AnalysisSession
    from naviewer.data.base import ArrayDataset
    from naviewer.workspace import Workspace

    demo = make_demo_session(300, 10, seed=3)
    images = np.asarray(demo.images)
    with Workspace.create(tmp_path / "ws", ArrayDataset(images, demo.labels, demo.class_names)) as ws:
        ws.store.add_detection_pass("dift", dict(demo.scores), {"k": 10}, run="r", epoch=0)
    ws = Workspace.open(tmp_path / "ws", read_only=True)
    session = AnalysisSession.from_workspace(ws, images=images, embeddings=demo.embeddings, reviewer="tester")
    g = _gallery(qtbot, session)
    said = []
    monkeypatch.setattr("naviewer.gui.analyst.common.QMessageBox.open", lambda box: said.append(box.text()))
    first = int(g.shown_ids()[0])
    session.set_current(first)
    assert len(g.review_selected("confirmed")) == 0
    assert session.state_of(first) == "unreviewed"
    assert said and "The decision was not recorded" in said[-1] and "read-only" in said[-1]
    assert len(g.undo()) == 0
    ws.close()


def test_a_key_that_changes_a_verdict_says_so(qtbot, demo_session) -> None:
    """R on a confirmed sample (the one an export had removed) changed it in silence (a newcomer, session 21)."""
    s = demo_session
    g = _gallery(qtbot, s)
    first = int(g.shown_ids()[0])
    s.confirm([first])
    s.set_current(first)
    g.view.setFocus()
    g.review_selected("rejected")
    assert s.state_of(first) == "rejected"
    assert f"#{first} was confirmed, now rejected: U undoes it." in g.notice.toolTip() + g.notice.text()


def test_a_tiles_tooltip_gives_the_density_rank_as_the_inspector_does(qtbot, demo_session) -> None:
    """The tooltip read one less than the inspector's "density rank" for the same sample (a newcomer, session 22)."""
    gallery = GalleryWidget(demo_session)
    qtbot.addWidget(gallery)
    gallery.set_filter("all")
    gallery.wait_for_filter()
    index = gallery.model.index(0)
    sid = int(gallery.model.ids[0])
    rank = int(demo_session.density_rank()[sid])
    tip = gallery.model.data(index, Qt.ItemDataRole.ToolTipRole)
    assert f"density rank: {rank + 1:,} of {demo_session.n:,}" in tip


def test_one_unreadable_image_draws_a_grey_tile_and_is_named_once(qtbot) -> None:
    """A flagged image replaced by garbage raised inside the gallery's paint on every repaint (a traceback each,
    the tiles after it undrawn, a crash at exit: a GUI bad-input sweep). Now its tile is grey, the problem is named
    under the grid and in the inspector, and the session asks the file once."""
    from naviewer.analysis.demo import make_demo_session
    from naviewer.analysis.session import AnalysisSession
    from naviewer.errors import NaviewerError
    from naviewer.gui.analyst.panel import AnalystPanel

    base = make_demo_session(300, 20, seed=3)
    bad = int(np.flatnonzero(np.asarray(base.scores["flagged"], bool))[0])
    calls = []

    class Images:
        def image(self, i):
            calls.append(int(i))
            if int(i) == bad:
                raise NaviewerError("not a readable image (unknown or corrupt format)", f"/data/{bad}.png")
            return np.asarray(base.images[int(i)]) if not hasattr(base.images, "image") else base.images.image(int(i))

    session = AnalysisSession(base.scores, base.labels, base.class_names, images=Images(),
                              embeddings=base.embeddings)
    failed = []
    session.image_failed.connect(lambda sid, problem: failed.append((sid, problem)))
    panel = AnalystPanel(session)
    qtbot.addWidget(panel)
    panel.resize(1280, 720)
    panel.show()
    panel.gallery.view.viewport().repaint()
    panel.grab()
    panel.grab()  # painted again: the file is not asked again
    assert failed == [(bad, f"/data/{bad}.png: not a readable image (unknown or corrupt format)")]
    assert calls.count(bad) == 1 and session.image(bad) is None
    qtbot.waitUntil(lambda: f"#{bad} cannot be read" in panel.gallery.notice.text(), timeout=3000)
    assert "corrupt format" in panel.gallery.notice.text()
    session.set_selection([bad])
    session.set_current(bad)
    assert "cannot read the image" in panel.inspector.image.text() and "corrupt" in panel.inspector.image.text()


def test_an_unreadable_image_is_tried_again_later_and_the_word_goes_when_it_reads(qtbot, monkeypatch) -> None:
    """A failed image was never asked again until the workspace was reopened (a review, session 24), though a
    permission fixed or a disk remounted mends it: asked again after IMAGE_RETRY_S, it reads, the grey tile and the
    standing word under the grid go, and a failure that stays is said once."""
    from naviewer.analysis.demo import make_demo_session
    from naviewer.analysis.session import AnalysisSession
    from naviewer.errors import NaviewerError
    from naviewer.gui.analyst.panel import AnalystPanel

    base = make_demo_session(300, 20, seed=3)
    bad = int(np.flatnonzero(np.asarray(base.scores["flagged"], bool))[0])
    broken = {"now": True}

    class Images:
        def image(self, i):
            if int(i) == bad and broken["now"]:
                raise NaviewerError("permission denied", f"/data/{bad}.png")
            return np.asarray(base.images[int(i)]) if not hasattr(base.images, "image") else base.images.image(int(i))

    session = AnalysisSession(base.scores, base.labels, base.class_names, images=Images(), embeddings=base.embeddings)
    failed = []
    session.image_failed.connect(lambda sid, problem: failed.append(sid))
    panel = AnalystPanel(session)
    qtbot.addWidget(panel)
    panel.resize(1280, 720)
    panel.show()
    panel.grab()
    qtbot.waitUntil(lambda: f"#{bad} cannot be read" in panel.gallery.notice.text(), timeout=3000)
    assert session.image(bad) is None and session._image_tries[bad] == 1  # within 15 s: not asked again
    session._image_failed_at[bad] = 0.0  # the wait is over
    assert session.image(bad) is None and failed == [bad]  # still broken: asked again, said once
    assert session._image_failed_at[bad] - time.monotonic() > 20  # the next wait doubles (30 s)
    session._image_failed_at[bad] = 0.0
    broken["now"] = False
    assert session.image(bad) is not None and bad not in session.image_problems
    qtbot.waitUntil(lambda: f"#{bad}" not in panel.gallery.notice.text(), timeout=3000)


def test_narrowing_the_view_does_not_move_the_tiles_or_the_sidebar(qtbot, demo_session) -> None:
    """A filter that hides the inspector's sample turns the line above the tiles from one line into two; the line
    keeps two lines' room, so the tiles and the filter sidebar's lists stay under the mouse (a newcomer at 1280x720,
    session 25: the Sort by list moved as they reached for it)."""
    s = demo_session
    g = _gallery(qtbot, s)
    g.resize(460, 500)  # the gallery's width beside the map at 1280x720
    g.set_filter("all")
    g.show_filters(True)
    qtbot.wait(50)
    first = int(g.shown_ids()[0])
    s.set_current(first)
    qtbot.wait(50)

    def sort_top() -> int:
        return g.filters.sort.mapTo(g, g.filters.sort.rect().topLeft()).y()

    before, tiles_before = sort_top(), g.view.geometry().top()
    other = next(c for c in range(int(s.labels.max()) + 1) if c != int(s.labels[first]))
    g.filters.label.setCurrentIndex(g.filters.label.findData(other))
    qtbot.waitUntil(lambda: first not in g.shown_ids().tolist())
    qtbot.wait(50)
    assert "not in this view" in g.target_label.text()
    assert sort_top() == before and g.view.geometry().top() == tiles_before


def test_the_tile_the_keys_act_on_stays_in_view_after_a_new_order_and_a_resize(qtbot, demo_session) -> None:
    """A highlighted flag sorted to row 80, the filters closed (more columns), a smaller window: the line above the
    tiles named a tile off screen (a newcomer, session 26)."""
    s = demo_session
    g = _gallery(qtbot, s)
    g.resize(460, 400)
    g.set_filter("all")
    qtbot.waitUntil(lambda: not g.filter_pending, timeout=5000)
    first = int(g.shown_ids()[0])
    g.view.selectionModel().select(g.model.row_index(0), QItemSelectionModel.SelectionFlag.ClearAndSelect)
    g.view.setCurrentIndex(g.model.row_index(0))
    assert g.target_ids().tolist() == [first]

    def in_view(sid: int) -> bool:
        rect = g.view.visualRect(g.model.row_index(int(g.model.row_of[sid])))
        return g.view.viewport().rect().contains(rect)

    g.filters.set_sort_quietly("mindist", True)  # a new order moves the highlighted tile far down
    g.set_filter("all")
    qtbot.waitUntil(lambda: not g.filter_pending, timeout=5000)
    assert int(g.model.row_of[first]) > 20 and in_view(first)
    g.view.scrollToTop()
    g.resize(300, 300)
    qtbot.wait(50)
    assert in_view(first)


def test_the_density_rank_counts_from_one_in_the_filters_as_in_the_inspector(qtbot, demo_session) -> None:
    """The filters read the density rank 0 to 1,513 while the inspector says "1 of 1,514 (1 = densest)" (a newcomer,
    session 26): the sidebar shows 1 to N, and 1-10 keeps the ten densest."""
    s = demo_session
    g = _gallery(qtbot, s)
    g.set_filter("all")
    low, high, _a, _b = g.filters.ranges["rank"]
    assert (low.value(), high.value()) == (1, s.n) and not g.filters.spec().active
    high.setValue(10)
    qtbot.waitUntil(lambda: not g.filter_pending, timeout=5000)
    assert sorted(s.density_rank()[g.shown_ids()].tolist()) == list(range(10))
    g.filters.set_range("rank", 0, 4)  # in the session's own values: the five densest
    qtbot.waitUntil(lambda: not g.filter_pending, timeout=5000)
    assert (low.value(), high.value()) == (1, 5) and len(g.shown_ids()) == 5


def test_a_notice_in_a_column_dragged_short_keeps_to_one_line_and_off_the_tiles(qtbot, demo_session) -> None:
    """The bottom splitter dragged up, then a decision: its word was painted across the tiles (a newcomer, session
    26). In a column too short for it the notice keeps to one line (the whole of it in its tooltip)."""
    s = demo_session
    g = _gallery(qtbot, s)
    g.resize(460, 200)
    qtbot.wait(50)
    g.show_notice("Undone: a long word about what happened " * 4)
    qtbot.wait(50)
    assert g.notice.height() <= g.notice.fontMetrics().lineSpacing() + 6
    g.resize(460, 700)
    qtbot.wait(50)
    g._fit_column()
    assert g.notice.height() > 2 * g.notice.fontMetrics().lineSpacing()  # room again: the whole word


def test_tiles_shrink_to_show_two_rows_on_a_short_gallery_and_the_analysts_size_is_kept(qtbot, demo_session) -> None:
    """At 1280x720 under the review box the gallery showed one row and a third of 76 px tiles (session 32's list):
    the tiles fit two rows down to 56 px by themselves; Ctrl+= / Ctrl+- / Ctrl+wheel size them and that size stays."""
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent

    g = _gallery(qtbot, demo_session)
    view = g.view
    g.resize(460, 600)
    qtbot.waitUntil(lambda: view.viewport().height() >= 2 * view.default_tile, timeout=5000)
    assert view.tile == view.default_tile == 76
    g.resize(460, 260)  # a short column
    qtbot.waitUntil(lambda: view.viewport().height() < 2 * view.default_tile, timeout=5000)
    assert view.TILE_FIT_MIN <= view.tile < view.default_tile
    assert view.tile == max(view.TILE_FIT_MIN, view.viewport().height() // 2)
    def press(key: str) -> None:  # the gallery's own shortcut, as the key would set it off
        next(s for s in g.shortcuts if s.key().toString() == key).activated.emit()

    press("Ctrl+=")
    chosen = view.tile
    assert view.user_tile and chosen == view.fitted_tile() + view.TILE_STEP
    g.resize(460, 600)  # the analyst's size stays whatever the height
    qtbot.wait(50)
    assert view.tile == chosen
    press("Ctrl+-")
    assert view.tile == chosen - view.TILE_STEP
    centre = QPointF(view.viewport().rect().center())
    wheel = QWheelEvent(centre, QPointF(view.viewport().mapToGlobal(QPoint(0, 0))), QPoint(0, 0), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase,
                        False)
    view.wheelEvent(wheel)
    assert view.tile == chosen + view.TILE_STEP

    def touchpad(delta: int) -> None:  # a touchpad's small deltas add up to notches, up as down
        view.wheelEvent(QWheelEvent(centre, QPointF(0, 0), QPoint(0, 0), QPoint(0, delta), Qt.MouseButton.NoButton,
                                    Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase, False))

    for _ in range(7):
        touchpad(-15)
    assert view.tile == chosen + view.TILE_STEP  # 105 of 120: not a notch yet
    touchpad(-15)
    assert view.tile == chosen
    for _ in range(8):
        touchpad(15)
    assert view.tile == chosen + view.TILE_STEP
    view.set_tile(10_000)
    assert view.tile == view.TILE_MAX
    press("Ctrl+0")
    assert not view.user_tile and view.tile == view.fitted_tile()
    assert "Larger tiles (also Ctrl+wheel)" in [s.whatsThis() for s in g.shortcuts]  # F1 lists them
