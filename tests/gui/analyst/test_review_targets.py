"""Review keys act on the sample the analyst means, and nowhere else (a review-key probe, session 25).

Each test drives the real window offscreen with key presses on the focused widget and reads the workspace's
database back through its own connection: letters typed into the map's lists, a held key, the same login name
deciding from the command line, another writer between two polls, a background sort landing under a key.
"""

from __future__ import annotations

import sqlite3
import threading

import numpy as np
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication

from analyst_kit import folder_workspace


def _db(path) -> dict[int, str]:
    conn = sqlite3.connect(f"file:{path}/naviewer.sqlite?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT sample_id, state FROM review WHERE state != 'unreviewed'"))
    finally:
        conn.close()


def _settle(qtbot, rounds: int = 3) -> None:
    for _ in range(rounds):
        QApplication.processEvents()
        qtbot.wait(20)


def _open(qtbot, window, tmp_path):
    path = folder_workspace(tmp_path, n=200, n_poison=10, seed=4)
    window.state.set_workspace(path, {"samples": 200, "pass_id": 1, "runs": []})
    qtbot.waitUntil(lambda: window.analyst_dock is not None, timeout=10000)
    panel = window.analyst_dock.panel
    qtbot.waitUntil(panel.isVisible, timeout=5000)
    panel.sync_timer.stop()  # the 2 s poll held off: the races below are set up by hand
    _settle(qtbot)
    return path, panel


def _press(qtbot, widget, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """A key typed with ``widget`` focused (offscreen Qt may drop the window's activation: it is given back)."""
    window = widget.window()
    if not window.isActiveWindow():
        window.activateWindow()
        window.windowHandle().requestActivate()
        qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    widget.setFocus(Qt.FocusReason.MouseFocusReason)
    _settle(qtbot, 1)
    qtbot.keyClick(QApplication.focusWidget() or widget, key, modifier)
    _settle(qtbot, 1)


def _focus_tile(qtbot, panel, sid: int) -> None:
    panel.gallery._focus_as_click(int(sid))
    _settle(qtbot, 1)
    assert list(panel.gallery.target_ids()) == [int(sid)]


def _other_writer(path, ids, state, reviewer) -> None:
    """What a second window or ``naviewer review`` writes, through its own store."""
    from naviewer.workspace import Workspace

    with Workspace.open(path) as ws:
        ws.store.set_review(np.asarray(ids, np.int64), state, reviewer)


def test_letters_typed_in_the_maps_lists_decide_nothing(qtbot, window, tmp_path) -> None:
    """"r" typed in the map's Colour-by list (to reach "review state") rejected the map's selection, "c" in the
    projection list confirmed it, and "u" or Ctrl+Z there undid the last decision."""
    path, panel = _open(qtbot, window, tmp_path)
    s = panel.session
    s.set_selection([int(i) for i in s.flagged_ids()[1:3]], source=panel.map)  # what a box drag on the map leaves
    for box, key in ((panel.map.colour_box, Qt.Key.Key_R), (panel.map.projection_box, Qt.Key.Key_C)):
        _press(qtbot, box, key)
        assert QApplication.focusWidget() is box
    assert _db(path) == {}
    # and the line above the tiles says where the letters go (it promised "C · R · L: the map's selection")
    assert "a list or field of the map (letters type there)" in panel.gallery.keyboard_elsewhere()
    first = int(s.review_queue()[0])
    _focus_tile(qtbot, panel, first)
    _press(qtbot, panel.gallery.view, Qt.Key.Key_C)
    assert _db(path) == {first: "confirmed"}
    _press(qtbot, panel.map.colour_box, Qt.Key.Key_U)
    _press(qtbot, panel.map.colour_box, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _db(path) == {first: "confirmed"}


def test_a_held_key_decides_once(qtbot, window, tmp_path) -> None:
    """One C and five auto-repeats of a held key confirmed six samples, each auto-advance moving the next flag
    under it."""
    path, panel = _open(qtbot, window, tmp_path)
    g = panel.gallery
    _focus_tile(qtbot, panel, int(g.shown_ids()[0]))
    g.view.setFocus()
    qtbot.keyClick(g.view, Qt.Key.Key_C)
    for _ in range(5):
        QApplication.sendEvent(g.view, QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_C, Qt.KeyboardModifier.NoModifier,
                                                 "c", True, 1))
    _settle(qtbot)
    assert len(_db(path)) == 1
    deciding = [sc for view in (g, panel.map, g.viewer) for sc in view.shortcuts
                if sc.key().toString() in ("C", "R", "L", "U")]
    assert deciding and not any(sc.autoRepeat() for sc in deciding)


def test_u_undoes_this_windows_decision_not_the_same_login_elsewhere(qtbot, window, tmp_path) -> None:
    """The window confirmed X; ``naviewer review --reject Y`` under the same login name; U in the window undid Y.
    And an undo whose decision was made again elsewhere says so, where it read "Nothing of yours to undo"."""
    path, panel = _open(qtbot, window, tmp_path)
    s, g = panel.session, panel.gallery
    q = [int(i) for i in s.review_queue()]
    x, y, b = q[0], q[5], q[1]
    _focus_tile(qtbot, panel, x)
    _press(qtbot, g.view, Qt.Key.Key_C)
    _other_writer(path, [y], "rejected", s.reviewer)  # the command line, the same login name
    _press(qtbot, g.view, Qt.Key.Key_U)
    assert _db(path) == {y: "rejected"}
    assert f"#{x}" in g.notice.text() and "Undone" in g.notice.text()
    # the window confirms X and B; another reviewer rejects B; U takes B's decision and says it stays
    for sid in (x, b):
        _focus_tile(qtbot, panel, sid)
        _press(qtbot, g.view, Qt.Key.Key_C)
    _other_writer(path, [b], "rejected", "someone-else")
    _press(qtbot, g.view, Qt.Key.Key_U)
    assert _db(path) == {y: "rejected", x: "confirmed", b: "rejected"}
    assert "Nothing undone" in g.notice.text() and f"#{b}" in g.notice.text()
    _press(qtbot, g.view, Qt.Key.Key_U)  # the decision before it: X
    assert _db(path) == {y: "rejected", b: "rejected"}


def test_a_key_between_two_polls_is_recorded_and_a_revert_spares_a_later_decision(qtbot, window, tmp_path,
                                                                                  bulk_answers) -> None:
    """The window's copy of the states is up to a poll old: C on a sample another writer had just rejected was
    dropped without a word, and History's Revert put back a decision another reviewer had made since."""
    path, panel = _open(qtbot, window, tmp_path)
    s, g = panel.session, panel.gallery
    x, z = (int(i) for i in s.review_queue()[:2])
    _focus_tile(qtbot, panel, x)
    _press(qtbot, g.view, Qt.Key.Key_C)
    _other_writer(path, [x], "rejected", "someone-else")
    _focus_tile(qtbot, panel, x)
    _press(qtbot, g.view, Qt.Key.Key_C)
    assert _db(path)[x] == "confirmed" and s.state_of(x) == "confirmed"
    _focus_tile(qtbot, panel, z)
    _press(qtbot, g.view, Qt.Key.Key_C)
    _other_writer(path, [z], "rejected", "someone-else")
    history = panel.history
    history.refresh()
    batch = max(b["batch"] for b in history._batches if not b["undo"] and z in b["ids"].tolist()
                and b["reviewer"] == s.reviewer)
    history.revert(batch)
    assert _db(path)[z] == "rejected"


def test_a_key_just_after_a_background_sort_moved_the_focus_decides_nothing(qtbot, window, tmp_path,
                                                                            monkeypatch) -> None:
    """A sort in the background lands when it lands and puts the focus on its top: a C pressed just then was meant
    for the tile focused before and decided the new top. Within a moment of the move the key decides nothing and
    says so; pressed again, it decides the top."""
    from naviewer.gui.analyst import filters as filters_module
    from naviewer.gui.analyst.gallery import GalleryWidget

    monkeypatch.setattr(GalleryWidget, "ASYNC_FROM", 0)
    monkeypatch.setattr(GalleryWidget, "FOCUS_MOVED_GRACE_S", 60.0)  # a slow machine must not close the window
    path, panel = _open(qtbot, window, tmp_path)
    g = panel.gallery
    qtbot.waitUntil(lambda: not g.filter_pending)
    x = int(g.shown_ids()[4])
    _focus_tile(qtbot, panel, x)
    _press(qtbot, g.view, Qt.Key.Key_Escape)  # nothing highlighted: the keys act on the focused tile
    release, real = threading.Event(), filters_module.stable_order
    monkeypatch.setattr(filters_module, "stable_order",
                        lambda k, descending=False, check=None: (release.wait(10), real(k, descending, check))[1])
    g.filters.set_sort("posterior")
    _settle(qtbot)
    assert g.filter_pending
    release.set()
    qtbot.waitUntil(lambda: not g.filter_pending, timeout=5000)
    top = int(g.shown_ids()[0])
    assert top != x and g.focused_id() == top
    _press(qtbot, g.view, Qt.Key.Key_C)
    assert _db(path) == {} and "nothing decided" in g.notice.text()
    _press(qtbot, g.view, Qt.Key.Key_C)
    assert _db(path) == {top: "confirmed"}


def test_a_bulk_question_answered_after_the_view_changed_underneath_decides_what_it_asked_about(
        qtbot, window, tmp_path, monkeypatch) -> None:
    """A bulk question is modal, but its event loop runs the 2 s poll and a background sort: while it is open another
    writer decides one of the asked samples and the order changes. Yes then decides exactly the samples asked about
    (the other writer's change included, as the analyst's latest word), nothing else."""
    from naviewer.gui.analyst import common

    path, panel = _open(qtbot, window, tmp_path)
    s, g = panel.session, panel.gallery
    asked_ids = [int(i) for i in s.review_queue()[:8]]
    other = int(s.review_queue()[10])

    def ask(_parent, _title, text, default_yes=True):
        _other_writer(path, [asked_ids[0], other], "rejected", "someone-else")  # meanwhile, elsewhere
        panel.sync_with_store()  # the poll inside the box's event loop
        g.filters.set_sort("posterior")  # the order under the box changes
        g.wait_for_filter()
        return True

    monkeypatch.setattr(common, "ask_user", ask)
    s.set_selection(asked_ids)
    _settle(qtbot)
    done = g.review_selected("confirmed")
    assert sorted(done.tolist()) == sorted(asked_ids)
    db = _db(path)
    assert {i for i, v in db.items() if v == "confirmed"} == set(asked_ids) and db[other] == "rejected"
