"""Issue 14, "decisions must land on the samples meant": the keys act on what is highlighted (and say
so first), filtered views stay live, bulk overwrites are asked about, and N keeps *later* in the queue."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from naviewer.gui.analyst.gallery import GalleryWidget


def _gallery(qtbot, session) -> GalleryWidget:
    gallery = GalleryWidget(session)
    qtbot.addWidget(gallery)
    gallery.resize(900, 700)
    gallery.show()
    qtbot.waitExposed(gallery)
    return gallery


def _click_tile(qtbot, gallery, sid, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    index = gallery.model.index(int(gallery.model.row_of[sid]))
    gallery.view.scrollTo(index)
    qtbot.mouseClick(gallery.view.viewport(), Qt.MouseButton.LeftButton, modifier, gallery.view.visualRect(index).center())


def test_keys_in_the_selection_view_act_on_the_highlighted_tiles_only(qtbot, demo_session, bulk_answers) -> None:
    s = demo_session
    gallery = _gallery(qtbot, s)
    members = np.sort(s.clusters()[0].members)
    assert len(members) > 10
    s.select_cluster(0)
    gallery.set_filter("selection")
    shown = gallery.shown_ids()
    assert sorted(shown.tolist()) == members.tolist()
    picked = [int(shown[0]), int(shown[2]), int(shown[4]), int(shown[6])]
    _click_tile(qtbot, gallery, picked[0])
    for sid in picked[1:]:
        _click_tile(qtbot, gallery, sid, Qt.KeyboardModifier.ControlModifier)
    assert sorted(gallery.target_ids().tolist()) == sorted(picked)
    assert "4 highlighted samples" in gallery.target_label.text()  # said before the key acts
    qtbot.keyClick(gallery.view, Qt.Key.Key_R)
    assert sorted(np.flatnonzero(s.state_codes == 2).tolist()) == sorted(picked)
    assert bulk_answers.asked == []  # four samples: no question

    # nothing highlighted: the tile under focus, and the label says which
    gallery.view.clearSelection()
    focus = int(gallery.model.ids[gallery.view.currentIndex().row()])
    assert gallery.target_ids().tolist() == [focus]
    assert f"#{focus}" in gallery.target_label.text()


def test_unreviewed_view_stays_live_and_bulk_overwrites_are_asked(qtbot, demo_session, bulk_answers) -> None:
    s = demo_session
    gallery = _gallery(qtbot, s)
    gallery.set_filter("unreviewed")
    flags = int(s.flagged_mask.sum())
    first = [int(i) for i in gallery.shown_ids()[:5]]
    for sid in first:  # five single rejections from the keyboard
        _click_tile(qtbot, gallery, sid)
        qtbot.keyClick(gallery.view, Qt.Key.Key_R)
    assert all(s.state_of(i) == "rejected" for i in first)
    assert len(gallery.shown_ids()) == flags - 5 and not set(first) & set(gallery.shown_ids().tolist())
    assert gallery.count_label.text().startswith(f"{flags - 5:,} shown")

    qtbot.keyClick(gallery.view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    bulk_answers.answer = False
    qtbot.keyClick(gallery.view, Qt.Key.Key_C)
    assert bulk_answers.asked == [f"Confirm {flags - 5} samples as poisons?"]
    assert all(s.state_of(i) == "rejected" for i in first) and (s.state_codes == 1).sum() == 0  # declined

    # the same bulk over the Flagged view would overwrite the five rejections: it says so
    gallery.set_filter("flags")
    qtbot.keyClick(gallery.view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    bulk_answers.answer = True
    qtbot.keyClick(gallery.view, Qt.Key.Key_C)
    assert bulk_answers.asked[-1] == (f"Confirm {flags} samples as poisons? 5 were rejected before: they will be overwritten. (Enter: Cancel.)")
    assert (s.state_codes == 1).sum() == flags


def test_confirming_a_few_never_flagged_samples_is_asked_and_enter_cancels(qtbot, demo_session, bulk_answers) -> None:
    """Confirming three never-flagged samples asked nothing, and Enter meant Cancel for one question and Yes for
    another that overwrote 50 rejections (a newcomer, session 25): a risky decision (never flagged, or overwriting)
    is asked with Cancel as Enter, said in the question."""
    s = demo_session
    gallery = _gallery(qtbot, s)
    gallery.set_filter("all")
    gallery.wait_for_filter()
    unflagged = np.flatnonzero(~s.flagged_mask)[:3]
    s.set_selection(unflagged)
    bulk_answers.answer = False
    assert len(gallery.review_selected("confirmed")) == 0
    assert bulk_answers.asked[-1].endswith("never flagged by the detection. (Enter: Cancel.)")
    assert bulk_answers.defaults[-1] is False
    assert all(s.state_of(int(i)) == "unreviewed" for i in unflagged)


def test_a_small_overwrite_of_several_decisions_is_asked_too(qtbot, demo_session, bulk_answers) -> None:
    s = demo_session
    gallery = _gallery(qtbot, s)
    queue = s.review_queue()
    s.reject(queue[:1])
    s.set_selection(queue[:3])
    assert gallery.review_selected("confirmed").tolist() == sorted(queue[:3].tolist())
    assert bulk_answers.asked == ["Confirm 3 samples as poisons? 1 was rejected before: it will be overwritten. (Enter: Cancel.)"]
    s.confirm(queue[3:4])  # one of them is what it would be already: said ("Confirm 46" of which one was)
    s.set_selection(queue[3:25])
    gallery.review_selected("confirmed")
    assert bulk_answers.asked[-1] == "Confirm 22 samples as poisons? 1 of them is confirmed already."


def test_next_keeps_later_in_the_queue_and_says_so_once(qtbot, demo_session) -> None:
    s = demo_session
    gallery = _gallery(qtbot, s)
    queue = s.review_queue()
    later = int(queue[len(queue) // 2])
    s.reject(queue[queue != later])
    s.later([later])
    gallery.view.setFocus()
    qtbot.keyClick(gallery.view, Qt.Key.Key_N)
    assert s.current == later and s.selection.tolist() == [later]
    assert "all flags reviewed" not in gallery.progress_label.text() + gallery.notice.text()
    assert "later" in gallery.notice.text()
    first_notice = gallery.notice.text()
    qtbot.keyClick(gallery.view, Qt.Key.Key_N)
    qtbot.keyClick(gallery.view, Qt.Key.Key_N)
    assert s.current == later and gallery.notice.text() == first_notice  # stated once, not appended

    # an unreviewed flag comes before the later one
    s.review([int(queue[0])], "unreviewed")
    qtbot.keyClick(gallery.view, Qt.Key.Key_N)
    assert s.current == int(queue[0])
    qtbot.keyClick(gallery.view, Qt.Key.Key_C)  # decided: N moves on to the one marked later
    assert s.current == later

    s.reject([later])
    qtbot.keyClick(gallery.view, Qt.Key.Key_N)
    qtbot.keyClick(gallery.view, Qt.Key.Key_N)
    assert gallery.notice.text().count("decided") == 1 and "later" not in gallery.notice.text()
    assert "reviewed" not in gallery.progress_label.text().split(")")[-1]


def test_a_decision_keeps_the_analysts_filters(qtbot, demo_session) -> None:
    """A newcomer unticked "unreviewed" in the sidebar, pressed C on a tile, and the sidebar was reset without a
    word (the next flag awaiting a decision was hidden by it). The view stays as set; the notice says why and N
    still goes on, resetting the filters and saying so."""
    s = demo_session
    gallery = _gallery(qtbot, s)
    queue = s.review_queue()
    s.reject(queue[:6])
    gallery.filters.set_states({"confirmed", "rejected", "later"})
    qtbot.waitUntil(lambda: len(gallery.model.ids) == 6)
    _click_tile(qtbot, gallery, int(queue[0]))
    qtbot.keyClick(gallery.view, Qt.Key.Key_C)
    assert s.state_of(int(queue[0])) == "confirmed"
    assert not gallery.filters.states["unreviewed"].isChecked() and len(gallery.model.ids) == 6
    assert "hidden by the Show choice or the filters" in gallery.notice.text()
    qtbot.keyClick(gallery.view, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: gallery.filters.states["unreviewed"].isChecked())
    assert s.state_of(int(s.current)) == "unreviewed" and "reset" in gallery.notice.text()


def test_the_last_unreviewed_decision_says_only_later_flags_remain(qtbot, demo_session) -> None:
    s = demo_session
    gallery = _gallery(qtbot, s)
    queue = s.review_queue()
    s.reject(queue[2:])
    s.later([int(queue[1])])
    _click_tile(qtbot, gallery, int(queue[0]))
    qtbot.keyClick(gallery.view, Qt.Key.Key_C)
    assert s.current == int(queue[1]) and "No unreviewed flags left" in gallery.notice.text()


def test_a_decision_on_an_unflagged_sample_moves_to_the_next_tile_of_the_grid(qtbot, demo_session) -> None:
    """A newcomer confirmed poisons they saw in All samples: each C stayed put ("No flag awaiting a decision is
    shown here"), so every decision needed a ->. Decided beside the flags, C moves to the next undecided tile."""
    s = demo_session
    gallery = _gallery(qtbot, s)
    gallery.set_filter("all")
    qtbot.waitUntil(lambda: len(gallery.model.ids) == s.n)
    ids = gallery.model.ids
    unflagged = ids[~s.flagged_mask[ids]]
    first, second, third = (int(i) for i in unflagged[:3])  # in the grid's order
    _click_tile(qtbot, gallery, first)
    qtbot.keyClick(gallery.view, Qt.Key.Key_C)
    assert s.state_of(first) == "confirmed"
    following = ids[int(np.flatnonzero(ids == first)[0]) + 1]
    assert s.current == int(following) and "No flag awaiting" not in gallery.notice.text()
    assert "1 decided beside the flags" in gallery.progress_label.text()  # not lost from the count
    # decided tiles are passed over: with everything between the first and the third decided, R on the first
    # moves to the third
    s.reject([int(i) for i in ids[int(np.flatnonzero(ids == first)[0]) + 1:int(np.flatnonzero(ids == third)[0])]])
    assert s.state_of(second) == "rejected"
    s.review([first], "unreviewed")
    _click_tile(qtbot, gallery, first)
    qtbot.keyClick(gallery.view, Qt.Key.Key_R)
    assert s.state_of(first) == "rejected" and s.current == third


def test_a_pass_that_flagged_nothing_counts_the_samples_decided(qtbot) -> None:
    """"decided 0 / 0 flags" stayed after a newcomer decided three samples of a pass that flagged nothing."""
    from naviewer.analysis.demo import make_demo_session

    s = make_demo_session(300, 10, seed=3)
    s.scores["flagged"] = np.zeros(s.n, bool)
    s.scores.pop("candidate", None)
    gallery = _gallery(qtbot, s)
    assert "this pass flagged nothing · 0 samples decided" in gallery.progress_label.text()
    gallery.set_filter("flags")  # carried from another pass: "Show: Flagged · 300 shown" read as 300 flags (session 30)
    assert "nothing flagged: all samples, most suspicious first" in gallery.count_label.text()
    s.confirm([1, 2])
    s.reject([3])
    qtbot.waitUntil(lambda: "3 samples decided (confirmed 2 · rejected 1)" in gallery.progress_label.text())



def test_a_narrow_gallery_in_a_splitter_never_lays_its_rows_over_each_other(qtbot, demo_session) -> None:
    """With the Analyst narrowed, Confirm / Reject sat on "Filters", Next on the keys' line and the progress over
    the tiles (a newcomer, session 28): the splitter squeezed the column below what its wrapped rows need. The
    column's minimum height now follows its rows at its width, so the splitter stops there."""
    from PySide6.QtWidgets import QLabel, QSplitter

    gallery = GalleryWidget(demo_session)  # the splitter owns it (qtbot closes the splitter)
    splitter = QSplitter(Qt.Orientation.Vertical)
    splitter.setChildrenCollapsible(False)
    splitter.addWidget(gallery)
    splitter.addWidget(QLabel("the tabs below"))
    qtbot.addWidget(splitter)
    splitter.resize(220, 700)
    splitter.show()
    qtbot.wait(50)
    gallery.target_label.setText("C · R · L act on <b>#32</b> (the tile under focus) (1 sample selected elsewhere, "
                                 "not shown here: those keys act on it)")
    gallery.show_notice("Undone: 1 sample back to unreviewed, a notice long enough to wrap in a narrow column.")
    qtbot.wait(50)
    splitter.setSizes([120, 580])  # dragged far up
    qtbot.wait(100)

    def box(widget):
        return widget.geometry().translated(widget.parentWidget().mapTo(gallery, widget.parentWidget().rect().topLeft()))

    rows = [[gallery.filter_box, gallery.filter_button, gallery.count_label], list(gallery.buttons.values()),
            [gallery.target_label], [gallery.view], [gallery.notice], [gallery.progress_label]]
    for upper, lower in zip(rows, rows[1:]):
        bottom = max(box(w).bottom() for w in upper if w.isVisible())
        top = min(box(w).top() for w in lower if w.isVisible())
        assert bottom < top, (upper, lower, bottom, top)
    assert box(gallery.progress_label).bottom() < gallery.height() and gallery.view.height() >= 40


def test_a_long_notice_on_a_short_gallery_never_covers_the_tiles(qtbot, demo_session) -> None:
    """At 1280x720 with two boxes above the panel a four-line notice was painted across the grid's tiles: the notice
    keeps to two lines (its whole text in the tooltip) and the keys' hint line gives way when the column is short."""
    gallery = _gallery(qtbot, demo_session)
    text = "Detection ready (DIFT pass 7: 0 flagged; kdist pass 5: 15; lid pass 6: 15; patchsearch pass 8: 163): " * 3
    gallery.resize(380, 700)
    gallery.show_notice(text)
    qtbot.wait(50)
    assert gallery.hint.isVisible()
    # short enough that the hint's row does not fit beside the others (the window of the newcomer), tall enough for them
    need = gallery.layout().totalMinimumHeightForWidth(380)
    gallery.resize(380, need - gallery.hint.height() // 2)
    qtbot.wait(50)

    def box(widget):
        return widget.geometry().translated(widget.parentWidget().mapTo(gallery, widget.parentWidget().rect().topLeft()))

    assert gallery.notice.toolTip() == text and gallery.notice.text() == text
    assert box(gallery.view).bottom() < box(gallery.notice).top() < box(gallery.progress_label).top()
    assert not gallery.hint.isVisible()
    gallery.resize(380, 700)  # room again: the hint is back
    qtbot.waitUntil(lambda: gallery.hint.isVisible())


def test_an_undo_of_many_samples_asks_first(qtbot, demo_session, bulk_answers) -> None:
    """One stray U put a whole cluster's 108 confirmations back to unreviewed, unasked, with no redo (a newcomer,
    session 29): an undo of more than a few samples asks first; a single decision's undo does not."""
    s = demo_session
    gallery = _gallery(qtbot, s)
    many = np.flatnonzero(s.flagged_mask)[:20]
    s.review(many, "confirmed")
    gallery._update_undo()
    bulk_answers.asked.clear()
    bulk_answers.answer = False
    assert len(gallery.undo()) == 0 and (s.state_codes[many] != 0).all()
    assert bulk_answers.asked and "Undo the decision on 20 samples (confirmed at" in bulk_answers.asked[-1]
    assert bulk_answers.defaults[-1] is False  # Enter cancels: U then Enter undid 109 decisions (a newcomer)
    bulk_answers.answer = True
    assert sorted(gallery.undo().tolist()) == sorted(many.tolist())
    one = int(np.flatnonzero(s.flagged_mask)[30])
    s.review([one], "rejected")
    bulk_answers.asked.clear()
    assert gallery.undo().tolist() == [one] and not bulk_answers.asked


def test_an_empty_unreviewed_view_says_why(qtbot, demo_session) -> None:
    """Show: Unreviewed flags with every flag decided was an empty box with no word (a newcomer, session 29)."""
    s = demo_session
    gallery = _gallery(qtbot, s)
    s.review(np.flatnonzero(s.flagged_mask), "rejected")
    gallery.set_filter("unreviewed")
    qtbot.waitUntil(lambda: not gallery.filter_pending and len(gallery.shown_ids()) == 0, timeout=5000)
    assert gallery.count_label.text() == "0 shown: no flag is unreviewed (1: every flag)"
