"""Issue 14 item 16: every review action reachable without the mouse, and listed in F1."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from naviewer.gui.analyst.panel import AnalystPanel
from naviewer.gui.shortcuts_panel import ShortcutsPanel


def _panel(qtbot, session) -> AnalystPanel:
    panel = AnalystPanel(session)
    qtbot.addWidget(panel)
    panel.resize(1280, 720)
    panel.show()
    qtbot.waitExposed(panel)
    panel.windowHandle().requestActivate()
    qtbot.waitUntil(panel.isActiveWindow, timeout=5000)
    return panel


def _key(qtbot, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """A key press where a person's would go: to the widget with the keyboard focus."""
    target = QApplication.focusWidget()
    assert target is not None
    qtbot.keyClick(target, key, modifier)


def test_a_review_start_to_finish_from_the_keyboard(qtbot, demo_session, bulk_answers) -> None:
    s = demo_session
    panel = _panel(qtbot, s)
    g = panel.gallery
    panel.header.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    panel.header.setFocus()  # somewhere in the panel that is not the gallery

    _key(qtbot, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)  # Ctrl+2: the gallery
    assert QApplication.focusWidget() is g.view
    queue = s.review_queue()
    first = int(queue[0])
    assert s.current == first and f"#{first}" in g.target_label.text()  # the focus is on the first tile
    _key(qtbot, Qt.Key.Key_R)
    assert s.state_of(first) == "rejected" and s.current == int(queue[1])
    _key(qtbot, Qt.Key.Key_N)
    assert s.current == int(queue[2])
    _key(qtbot, Qt.Key.Key_2)  # "2": show the unreviewed flags
    assert g.filter_box.currentData() == "unreviewed" and first not in g.shown_ids().tolist()
    _key(qtbot, Qt.Key.Key_Space)
    assert g.viewer.isVisible()
    qtbot.waitUntil(g.viewer.isActiveWindow, timeout=5000)
    _key(qtbot, Qt.Key.Key_L)
    _key(qtbot, Qt.Key.Key_Escape)
    assert not g.viewer.isVisible() and s.review_counts()["later"] == 1

    qtbot.waitUntil(panel.isActiveWindow, timeout=5000)  # the window is active again, focus back where it was
    selection = s.selection.copy()
    _key(qtbot, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)  # Ctrl+3: the ranked clusters
    assert QApplication.focusWidget() is panel.clusters.table
    assert panel.tabs.currentWidget() is panel.clusters
    # focusing the table chooses no cluster (it selected cluster 1 everywhere, silently), and C then says why
    assert np.array_equal(s.selection, selection) and panel.clusters.selected_cluster() is None
    before = s.states().copy()
    _key(qtbot, Qt.Key.Key_C)
    assert (s.states() == before).all() and "No cluster is chosen" in g.notice.text()
    _key(qtbot, Qt.Key.Key_Down)
    _key(qtbot, Qt.Key.Key_Up)
    members = s.clusters()[0].members
    _key(qtbot, Qt.Key.Key_C)
    assert (s.states()[members] == "confirmed").all()
    assert bulk_answers.asked[-1].startswith(f"Confirm {len(members)} samples as poisons?")

    _key(qtbot, Qt.Key.Key_5, Qt.KeyboardModifier.ControlModifier)  # Ctrl+5: the history, newest batch first
    assert QApplication.focusWidget() is panel.history.table
    _key(qtbot, Qt.Key.Key_Delete)
    assert (s.states()[members] != "confirmed").all()


def test_f1_lists_every_review_key(qtbot, demo_session) -> None:
    panel = _panel(qtbot, demo_session)
    help_panel = ShortcutsPanel()
    qtbot.addWidget(help_panel)
    for group, shortcuts in panel.shortcut_groups():
        help_panel.register(group, shortcuts)
    groups = help_panel.groups()
    for group in ("Analyst: Panel", "Analyst: Density map", "Analyst: Gallery", "Analyst: Ranked clusters",
                  "Analyst: History", "Analyst: Large sample view"):
        assert group in groups, group
    keys = {group: dict(help_panel.rows(group)) for group in groups}
    gallery = set(keys["Analyst: Gallery"].values())
    assert {"C", "R", "L", "N", "Space", "F", "Esc", "1", "2", "3", "4"} <= gallery
    assert any(k.startswith("U") for k in gallery)
    assert {"C", "R", "L"} <= set(keys["Analyst: Ranked clusters"].values())
    assert {"Return", "Del"} & set(keys["Analyst: History"].values())
    assert "Ctrl+2" in keys["Analyst: Panel"].values() and "Ctrl+5" in keys["Analyst: Panel"].values()
    viewer = keys["Analyst: Large sample view"]
    assert viewer["Next sample of the gallery's view"] == "Right, Down" and viewer["Close the large view"] == "Esc, Space"


def test_a_key_never_acts_on_a_tile_other_than_the_sample_picked_elsewhere(qtbot, demo_session) -> None:
    """A sample picked on the map that the grid does not show (a clean one, under "flags") is what the inspector
    shows: C / R / L then decide nothing and say why, instead of deciding the grid's old focused tile."""
    s = demo_session
    panel = _panel(qtbot, s)
    g = panel.gallery
    panel.header.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    panel.header.setFocus()
    _key(qtbot, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    focused = g.focused_id()
    assert focused is not None
    clean = int(next(i for i in range(s.n) if not s.flagged_mask[i]))
    s.set_selection([clean], source=panel.map)  # what a click on the map does
    s.set_current(clean, source=panel.map)
    before = s.states().copy()
    _key(qtbot, Qt.Key.Key_R)
    assert (s.states() == before).all()
    assert f"#{clean}" in g.target_label.text() and "act on nothing" in g.target_label.text()
    assert "3: show all samples" in g.target_label.toolTip()  # the ways out, off the line (it took three lines)
    assert not g.buttons["rejected"].isEnabled()
    _key(qtbot, Qt.Key.Key_Escape)  # back to the tiles: the focused one is current again, the keys act on it
    assert s.current == focused and f"#{focused}" in g.target_label.text()
    _key(qtbot, Qt.Key.Key_R)
    assert s.state_of(focused) == "rejected" and s.state_of(clean) == before[clean]


def test_the_line_follows_a_focus_moved_by_keys_after_a_pick_elsewhere(qtbot, demo_session) -> None:
    """After a pick elsewhere the line said "act on nothing" and the buttons were greyed; a key then moved the focus
    to a tile without highlighting it, the line and buttons stayed, and C decided that tile (newcomer session 17).
    The line now follows the focus."""
    s = demo_session
    panel = _panel(qtbot, s)
    g = panel.gallery
    g.view.setFocus()
    clean = [int(i) for i in range(s.n) if not s.flagged_mask[i]]
    s.set_selection(clean[:5], source=panel.map)  # a box on the map
    _key(qtbot, Qt.Key.Key_4)  # the Selection view
    s.set_current(clean[10], source=panel.map)  # the inspector on a sample outside the selection
    assert "act on nothing" in g.target_label.text()
    # Ctrl+Home moves the focus without highlighting (as the History's revert + U left it): no selection signal
    _key(qtbot, Qt.Key.Key_Home, Qt.KeyboardModifier.ControlModifier)
    focused = g.focused_id()
    assert focused in clean[:5] and s.current == focused
    assert "act on nothing" not in g.target_label.text() and f"#{focused}" in g.target_label.text()
    assert g.buttons["confirmed"].isEnabled()
    _key(qtbot, Qt.Key.Key_C)
    assert s.state_of(focused) == "confirmed" and s.state_of(clean[10]) != "confirmed"


def test_shift_arrows_highlight_the_run_of_tiles_in_reading_order(qtbot, demo_session) -> None:
    """Shift+Right at a row's last tile highlights that tile and the next (not two rows); Shift+Down from a
    tile highlights one grid row's worth of tiles after it, as in a list; Shift+click the same."""
    s = demo_session
    panel = _panel(qtbot, s)
    g = panel.gallery
    g.view.setFocus()
    columns = g.view.columns()
    assert columns > 1
    _key(qtbot, Qt.Key.Key_Home)
    for _ in range(columns - 1):
        _key(qtbot, Qt.Key.Key_Right)
    last_in_row = g.focused_id()
    _key(qtbot, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    shown = g.shown_ids()
    assert g.selected_ids().tolist() == sorted(shown[columns - 1:columns + 1].tolist())
    assert last_in_row in g.selected_ids()
    _key(qtbot, Qt.Key.Key_Escape)
    _key(qtbot, Qt.Key.Key_Home)
    _key(qtbot, Qt.Key.Key_Right)
    _key(qtbot, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    assert g.selected_ids().tolist() == sorted(shown[1:columns + 2].tolist())
    _key(qtbot, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)  # back one: the run shrinks by one
    assert g.selected_ids().tolist() == sorted(shown[1:columns + 1].tolist())


@pytest.mark.parametrize("highlighted", [False, True])
def test_a_key_on_a_tile_scrolled_out_of_view_shows_it_first(qtbot, demo_session, highlighted) -> None:
    """The tile under focus, and a highlighted one (where a decision's move-on leaves it), scrolled away with the
    wheel: the first key shows it, the second decides. The highlighted one was confirmed by the first C, unseen (a
    newcomer, session 29): only the tile under focus alone had the guard."""
    s = demo_session
    panel = _panel(qtbot, s)
    g = panel.gallery
    g.set_filter("all")
    qtbot.waitUntil(lambda: len(g.shown_ids()) == s.n, timeout=5000)
    g.view.setFocus()
    _key(qtbot, Qt.Key.Key_Home)
    first = g.focused_id()
    if highlighted:
        g.move_to(first)  # highlighted, as after a decision's move-on
        qtbot.waitUntil(lambda: g.selected_ids().tolist() == [first], timeout=5000)
    bar = g.view.verticalScrollBar()
    bar.setValue(bar.maximum())  # the scroll bar moved, the focus stayed on the first tile
    assert 0 not in g.view.visible_rows()
    before = s.state_of(first)
    _key(qtbot, Qt.Key.Key_C)
    assert s.state_of(first) == before and 0 in g.view.visible_rows()
    if highlighted:
        assert "scrolled out of view" in g.notice.text()
    _key(qtbot, Qt.Key.Key_C)
    assert s.state_of(first) == "confirmed"


def test_cluster_buttons_wait_for_a_selected_cluster(qtbot, demo_session) -> None:
    panel = _panel(qtbot, demo_session)
    table = panel.clusters
    table.table.clearSelection()
    assert not any(b.isEnabled() for b in table.buttons.values())
    assert "select a cluster" in table.buttons["confirmed"].toolTip()
    table.select_cluster(0)
    assert all(b.isEnabled() for b in table.buttons.values())


def test_c_in_the_inspector_decides_the_sample_it_shows(qtbot, demo_session) -> None:
    """A newcomer clicked a neighbour in the inspector (the focus stays there), read "C · R · L act on the
    highlighted sample #1404" and pressed C: nothing happened, and nothing said why."""
    s = demo_session
    panel = _panel(qtbot, s)
    first = int(s.review_queue()[0])
    s.set_selection([first])
    s.set_current(first)
    qtbot.waitUntil(lambda: len(panel.inspector.neighbour_buttons) > 0)
    button = panel.inspector.neighbour_buttons[0]
    neighbour = int(button.text().lstrip("#"))
    button.setFocus()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.inspector.sample == neighbour)
    before = {int(i): s.state_of(int(i)) for i in range(s.n) if i != neighbour}
    _key(qtbot, Qt.Key.Key_C)
    assert s.state_of(neighbour) == "confirmed"
    assert all(s.state_of(i) == state for i, state in list(before.items())[:200])
    assert f"#{neighbour} confirmed" in panel.gallery.notice.text()
    _key(qtbot, Qt.Key.Key_U)
    assert s.state_of(neighbour) == "unreviewed"


def test_the_arrows_or_space_choose_a_cluster_when_none_is_chosen(qtbot, demo_session, bulk_answers) -> None:
    """With one cluster the arrows had nowhere to move and chose nothing, C kept saying "No cluster is chosen", and
    that line stayed after the cluster was decided (newcomer session 18)."""
    s = demo_session
    panel = _panel(qtbot, s)
    g = panel.gallery
    _key(qtbot, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert panel.clusters.selected_cluster() is None
    _key(qtbot, Qt.Key.Key_C)
    assert "↑ ↓ or Space choose one" in g.notice.text()
    _key(qtbot, Qt.Key.Key_Space)
    assert panel.clusters.selected_cluster() == 0  # the row under the table's cursor, with no move needed
    assert g.notice.text() == "Cluster 1 chosen: C · R · L decide it."  # "No cluster is chosen" stood on (session 19)
    _key(qtbot, Qt.Key.Key_C)
    members = s.clusters()[0].members
    assert (s.states()[members] == "confirmed").all()
    assert g.notice.text() == f"Cluster 1: {len(members):,} samples confirmed (U undoes it)."
    _key(qtbot, Qt.Key.Key_U)
    assert (s.states()[members] == "unreviewed").all()
    # one of them confirmed before: the words say what U will undo (the batch held one less; a newcomer, session 29)
    s.confirm(members[:1])
    panel.clusters.review_cluster("confirmed", 0)
    assert g.notice.text() == (f"Cluster 1: {len(members):,} samples confirmed; 1 of them were confirmed already, so U "
                               f"undoes the other {len(members) - 1:,}.")

