"""Issue 14 item 16: every review action reachable without the mouse, and listed in F1."""

from __future__ import annotations

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
    _key(qtbot, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)  # Ctrl+3: the ranked clusters
    assert QApplication.focusWidget() is panel.clusters.table
    assert panel.tabs.currentWidget() is panel.clusters
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
