"""Issue 14 item 8: the review window is laid out for 1280x720 upward: the window stays on such a screen,
no control of the analyst is truncated or hidden behind a scrollbar, the crop layout shows the whole
image, and F1 shows every action in full."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from .analyst.analyst_kit import folder_workspace


def _fully_visible(widget) -> bool:
    """Shown, and no part of it clipped away (a scroll area's viewport stands for the whole view)."""
    target = widget.viewport() if hasattr(widget, "viewport") else widget
    return widget.isVisible() and target.visibleRegion().boundingRect() == target.rect()


def _settle(qtbot) -> None:
    for _ in range(3):
        QApplication.processEvents()
        qtbot.wait(30)


def _open_analyst(qtbot, window, tmp_path):
    """The analyst panel on a 200-sample poisoned folder workspace, shown."""
    window.state.set_workspace(folder_workspace(tmp_path, n=200, n_poison=10, seed=4),
                               {"samples": 200, "pass_id": 1, "runs": []})
    panel = window.analyst_dock.panel
    qtbot.waitUntil(panel.isVisible, timeout=5000)
    return panel


def _activate(qtbot, window) -> None:
    """The window active, as a click on it makes it: shortcuts fire only in the active window."""
    window.windowHandle().requestActivate()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)


def _active_window_with_analyst(qtbot, window, tmp_path):
    """The window at 1280x720, shown and active, with the analyst panel on a small workspace; returns the panel."""
    window.resize(1280, 720)
    window.show()
    qtbot.waitExposed(window)
    _activate(qtbot, window)
    panel = _open_analyst(qtbot, window, tmp_path)
    _settle(qtbot)
    return panel


@pytest.mark.parametrize("size", [(1280, 720), (1600, 1000), (1920, 1080)])
def test_the_review_window_fits_and_cuts_nothing(qtbot, window, tmp_path, size):
    w, h = size
    window.resize(w, h)
    _settle(qtbot)
    panel = _open_analyst(qtbot, window, tmp_path)
    s = panel.session
    panel.clusters.select_cluster(0)
    s.set_current(int(s.review_queue()[0]))
    _settle(qtbot)
    assert window.width() <= w and window.height() <= h, window.size()
    hint = window.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 720, hint

    g, m, i = panel.gallery, panel.map, panel.inspector
    controls = [*g.buttons.values(), g.filter_box, g.filter_button, *i.buttons.values(), i.layout_button,
                m.colour_box, m.projection_box, m.flags_toggle, *m.tool_group.buttons(), panel.export_button]
    for control in controls:
        label = getattr(control, "text", lambda: "")() or type(control).__name__
        assert _fully_visible(control), (label, control.parentWidget().objectName(), type(control.parentWidget()).__name__, control.geometry(), control.parentWidget().rect(), control.visibleRegion().boundingRect())
        assert control.width() >= control.sizeHint().width(), f"{label}: {control.width()} < {control.sizeHint().width()}"
    assert _fully_visible(m.plot) and m.plot.height() >= 100  # the map is not behind a scrollbar
    assert _fully_visible(g.view) and g.view.viewport().height() >= 2 * g.view.tile  # two whole rows of tiles
    assert _fully_visible(i.image) and i.image.pixmap().width() <= i.image.width()
    if w < 1600:
        assert window.docks["overviewDock"].isHidden() and window.act_overview.isEnabled()
        window.act_overview.trigger()
        assert not window.docks["overviewDock"].isHidden()
        window.act_overview.trigger()

    # the crop layout shows the whole composite, however short the tab
    image = s.image(int(s.review_queue()[0]))
    panel.crop_layout.set_sample(np.concatenate([image, image], axis=1), None)
    panel.tabs.setCurrentWidget(panel._crop_tab)
    _settle(qtbot)
    canvas = panel.crop_layout.canvas
    assert _fully_visible(canvas) and canvas.height() >= 80

    # F1: every action readable in full beside its keys
    window.show_shortcuts()
    _settle(qtbot)
    tree = window.shortcuts_panel.tree
    qtbot.waitUntil(lambda: tree.topLevelItemCount() > 0)
    _settle(qtbot)
    metrics = tree.fontMetrics()
    flags = int(Qt.AlignmentFlag.AlignLeft) | int(Qt.TextFlag.TextWordWrap)
    for k in range(tree.topLevelItemCount()):
        parent = tree.topLevelItem(k)
        for j in range(parent.childCount()):
            child = parent.child(j)
            rect = tree.visualItemRect(child)
            width = tree.header().sectionSize(0) - tree.indentation() * 2 - 8
            needed = metrics.boundingRect(0, 0, width, 10_000, flags, child.text(0)).height()
            assert rect.height() >= needed, child.text(0)
            assert tree.header().sectionSize(1) >= metrics.horizontalAdvance(child.text(1)), child.text(1)
    # F1 again gives the room back (the panel squeezes the gallery at 1280x720); a third F1 shows it again
    window.act_shortcuts.trigger()
    _settle(qtbot)
    assert window.docks["shortcutsDock"].isHidden()
    window.act_shortcuts.trigger()
    _settle(qtbot)
    assert window.docks["shortcutsDock"].isVisible()
    # Esc from inside it closes it too (floating over the inspector it stayed up; newcomer session 17)
    tree.setFocus()
    qtbot.keyClick(tree, Qt.Key.Key_Escape)
    _settle(qtbot)
    assert window.docks["shortcutsDock"].isHidden()
    # F1 from the gallery: the panel takes the keyboard, so the next Esc closes it (the gallery's Esc only
    # cleared its highlight; newcomer session 26), and the gallery has the keyboard back
    gallery = panel.gallery.view
    gallery.setFocus()
    _settle(qtbot)
    window.act_shortcuts.trigger()
    _settle(qtbot)
    dock = window.docks["shortcutsDock"]
    assert dock.isVisible() and dock.focusWidget() is tree  # (offscreen activates no window: its own focus)
    qtbot.keyClick(tree, Qt.Key.Key_Escape)
    _settle(qtbot)
    assert dock.isHidden() and window.focusWidget() is gallery


def test_opening_a_workspace_gives_the_gallery_the_keyboard_and_ctrl_digits_work_from_anywhere(qtbot, window,
                                                                                                 tmp_path):
    """A keyboard-only review starts without a click: the gallery has the focus once the panel opens, and
    Ctrl+2 reaches it again from the Jobs list (where the focus used to stay)."""
    window.resize(1280, 720)
    window.show()
    qtbot.waitExposed(window)
    _activate(qtbot, window)
    _settle(qtbot)
    panel = _open_analyst(qtbot, window, tmp_path)
    _settle(qtbot)
    assert window.focusWidget() is panel.gallery.view
    from PySide6.QtWidgets import QTreeWidget

    jobs = window.jobs_panel.findChild(QTreeWidget) or window.jobs_panel
    jobs.setFocus()
    _activate(qtbot, window)
    _settle(qtbot)
    assert window.focusWidget() is jobs
    qtbot.keyClick(jobs, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    _settle(qtbot)
    assert window.focusWidget() is panel.gallery.view


def test_ctrl_digits_reach_the_analyst_from_a_tab_in_front_of_it(qtbot, window, tmp_path):
    """After the demo a newcomer had the Log tab in front of the Analyst and pressed Ctrl+2, as the window advised:
    nothing (session 25). A shortcut whose widget is hidden never fires; the keys belong to the window."""
    panel = _active_window_with_analyst(qtbot, window, tmp_path)
    from PySide6.QtWidgets import QTabBar

    log = window.docks["logDock"]
    window.tabifyDockWidget(window.analyst_dock.dock, log)
    bar = next(b for b in window.findChildren(QTabBar) if "Log" in [b.tabText(i) for i in range(b.count())])
    bar.setCurrentIndex([bar.tabText(i) for i in range(bar.count())].index("Log"))  # as a click on the tab does
    _settle(qtbot)
    assert panel.visibleRegion().isEmpty()
    target = log.widget()
    target.setFocus()
    _activate(qtbot, window)
    _settle(qtbot)
    assert window.focusWidget() is target
    qtbot.keyClick(window.focusWidget() or window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    _settle(qtbot)
    assert not panel.visibleRegion().isEmpty() and window.focusWidget() is panel.gallery.view


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_reset_layout_keeps_the_window_on_the_screen_and_the_analyst_in_front(qtbot, window, tmp_path, size):
    w, h = size
    window.resize(w, h)
    _settle(qtbot)
    panel = _open_analyst(qtbot, window, tmp_path)
    _settle(qtbot)
    first = panel._upper.sizes()
    panel._upper.setSizes([first[0] + first[1] - 60, 60, first[2]])  # the gallery dragged narrow
    _settle(qtbot)
    window.reset_layout()
    _settle(qtbot)
    assert window.width() <= w and window.height() <= h, window.size()
    assert panel.isVisible() and _fully_visible(panel.gallery.view) and panel.gallery.view.height() >= 150
    # the Analyst's own splitters too (it stayed narrow; a newcomer, session 29)
    assert abs(panel._upper.sizes()[1] - first[1]) <= 40, (panel._upper.sizes(), first)


def _shown_tab_bars(window):
    from PySide6.QtWidgets import QTabBar

    return [bar for bar in window.findChildren(QTabBar, options=Qt.FindChildOption.FindDirectChildrenOnly)
            if bar.isVisible()]


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_reset_layout_leaves_one_live_tab_bar_a_dock_group(qtbot, window, tmp_path, size):
    """Qt's restoreState kept the old layout's dock tab bars shown: under Xvfb at 1920x1080 a second "Training
    monitor | Analyst" row sat in the middle of the analyst after Reset layout (a newcomer's report)."""
    window.resize(*size)
    _settle(qtbot)
    _open_analyst(qtbot, window, tmp_path)
    _settle(qtbot)
    for _ in range(2):
        window.reset_layout()
        _settle(qtbot)
        groups = [tuple(bar.tabText(i) for i in range(bar.count())) for bar in _shown_tab_bars(window)]
        assert len(groups) == len(set(groups)), groups
    bar = next(bar for bar in _shown_tab_bars(window) if "Training monitor" in [bar.tabText(i) for i in range(bar.count())])
    bar.setCurrentIndex([bar.tabText(i) for i in range(bar.count())].index("Training monitor"))
    _settle(qtbot)
    # the bar left shown is the live one: its tab brings the monitor up (a tab behind is moved off the window)
    assert window.docks["monitorDock"].x() >= 0 and window.docks["monitorDock"].width() > 100
    assert window.docks["analystDock"].x() < 0


def test_a_tab_bar_left_behind_by_restore_state_is_hidden(qtbot, window, tmp_path):
    """The rule itself (the offscreen platform does not always leave a bar behind, Xvfb did): a bar shown before
    the restore goes when a new bar shows the same tabs or when it lies away from its dock; the live bars stay."""
    from PySide6.QtWidgets import QTabBar

    window.resize(1920, 1080)
    _settle(qtbot)
    _open_analyst(qtbot, window, tmp_path)
    window.reset_layout()
    _settle(qtbot)
    live = _shown_tab_bars(window)
    twin = QTabBar(window)  # an old bar with the same tabs as a live one, at the old layout's place
    stray = QTabBar(window)  # an old bar whose dock is elsewhere now
    for bar, tabs in ((twin, [live[0].tabText(i) for i in range(live[0].count())]), (stray, ["Jobs", "Log"])):
        for text in tabs:
            bar.addTab(text)
        bar.setGeometry(5, 300, 400, 25)
        bar.show()
    window.hide_stale_tab_bars([twin, stray])
    assert not twin.isVisible() and not stray.isVisible()
    assert all(bar.isVisible() for bar in live)


def test_a_wide_overview_gives_the_analyst_its_room_when_it_docks(qtbot, window, tmp_path):
    """At 1920x1080 a newcomer's first open left the Overview 897 px wide and mostly empty beside a squeezed
    analyst (Reset layout made it 257 px)."""
    window.resize(1920, 1080)
    _settle(qtbot)
    window.resizeDocks([window.docks["overviewDock"], window.docks["monitorDock"]], [900, 1000],
                       Qt.Orientation.Horizontal)
    _settle(qtbot)
    assert window.docks["overviewDock"].width() > 1920 // 3
    _open_analyst(qtbot, window, tmp_path)
    _settle(qtbot)
    assert window.docks["overviewDock"].isVisible() and window.docks["overviewDock"].width() <= 1920 // 3


def test_workspace_menu_lists_every_pass_and_opens_the_chosen_one(qtbot, window, tmp_path):
    """The analyst always opened the latest pass, so a Detect run replaced the pass under review with no way back."""
    from naviewer.workspace import Workspace

    path = folder_workspace(tmp_path, n=60, n_poison=6, seed=2)
    with Workspace.open(path) as ws:
        scores = ws.store.pass_scores(1)
        ws.store.add_detection_pass("dift", dict(scores), {"k": 5, "summary": {"flagged": 7}}, run="posthoc")
        refused = "33% of the samples flagged, more than max_fraction 0.2: the classifier does not single out a trigger"
        ws.store.add_detection_pass("patchsearch", {"score": scores["density"], "flagged": scores["flagged"] & False},
                                    {"threshold": {"refused": refused}, "summary": {"flagged": 0}}, run="ps")
    window.state.set_workspace(path, {"samples": 60, "pass_id": 2, "runs": []})
    qtbot.waitUntil(lambda: window.analyst_dock is not None and window.analyst_dock.pass_id == 2, timeout=10000)
    choices = window.pass_choices()
    assert [c[0] for c in choices] == [3, 2, 1]
    # PatchSearch's "0 flagged" hid that its classifier called a third of the samples poisoned (session 22)
    assert choices[0][2] == ("Pass 3: patchsearch (run ps, post-hoc) · 0 flagged (33% of the samples flagged, more "
                             "than max_fraction 0.2)")
    from naviewer.gui.analyst.panel import verdict_line

    assert "patchsearch flagged <b>0</b>: 33% of the samples" in verdict_line({"threshold": {"refused": refused},
                                                                               "summary": {"flagged": 0}}, "patchsearch")
    choices = choices[1:]
    # with what each found: a newcomer guessed which pass to open (session 19)
    assert choices[0][2] == "Pass 2: dift (run posthoc, post-hoc) · 7 flagged" and choices[1][2] == "Pass 1: dift (run r, epoch 1)"
    window._fill_passes_menu()
    actions = window.passes_menu.actions()
    assert [a.isChecked() for a in actions] == [False, True, False]
    actions[2].trigger()
    qtbot.waitUntil(lambda: window.analyst_dock is not None and window.analyst_dock.pass_id == 1, timeout=10000)


def test_a_decision_during_a_retrain_says_so_until_the_retrain_ends(qtbot, window, tmp_path):
    """R pressed while Remove and retrain ran went through with no word: the decision's own notice replaced the
    warning at once (a newcomer, session 26). The warning stands until the job ends."""
    from types import SimpleNamespace

    window.resize(1280, 720)
    window.show()
    qtbot.waitExposed(window)
    panel = _open_analyst(qtbot, window, tmp_path)
    _settle(qtbot)
    dock = window.analyst_dock
    dock.finetune_job = SimpleNamespace(running=True, name="Remove 3 confirmed poisons and retrain")
    g = panel.gallery
    g.view.setFocus()
    g.review_selected("rejected")
    _settle(qtbot)
    assert "runs on the decisions as they were when it started" in g.notice.text()
    dock._retrain_word_goes("finished")
    assert "runs on the decisions as they were" not in g.notice.text()


def test_ctrl_2_brings_back_an_analyst_closed_with_its_cross(qtbot, window, tmp_path):
    """Closed with its ×, the Analyst did not come back on Ctrl+2 (a newcomer, session 26): Qt fires no shortcut of a
    hidden widget, so the window holds the view keys."""
    panel = _active_window_with_analyst(qtbot, window, tmp_path)
    window.analyst_dock.dock.close()
    _settle(qtbot)
    assert not panel.isVisible()
    window.log.setFocus()
    _activate(qtbot, window)
    qtbot.keyClick(window.focusWidget() or window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    _settle(qtbot)
    assert panel.isVisible() and window.focusWidget() is panel.gallery.view


def test_a_narrowed_gallery_with_the_filters_open_never_grows_the_window(qtbot, window, tmp_path):
    """The views' least heights (a narrowed gallery's wrapped rows, the filters open, the map's notes, a fine-tune
    table) made the window 743 px tall on a 720 px screen, its title bar off the top (a newcomer, session 29): the
    views scroll inside the panel instead."""
    window.resize(1280, 720)
    _settle(qtbot)
    panel = _open_analyst(qtbot, window, tmp_path)
    panel.gallery.show_filters(True)
    sizes = panel._upper.sizes()
    panel._upper.setSizes([sizes[0] + sizes[1] - 60, 60, sizes[2]])  # as narrow as the splitter lets it go
    panel._outer.setSizes([60, sum(panel._outer.sizes()) - 60])
    _settle(qtbot)
    assert window.height() <= 720 and window.minimumSizeHint().height() <= 720, (window.size(),
                                                                                 window.minimumSizeHint())
    # whatever the views need, the panel asks the window for its top rows and a scroll area's least height only
    assert panel.minimumSizeHint().height() < panel._outer.minimumSizeHint().height()
    # narrowed first, the filters opened after: the progress line was drawn over the sidebar, no tile showed (a
    # newcomer, session 29); the rows scroll with the panel instead
    g = panel.gallery
    g.show_filters(False)
    _settle(qtbot)
    g.show_filters(True)
    _settle(qtbot)

    def box(widget):
        return widget.geometry().translated(widget.parentWidget().mapTo(g, widget.parentWidget().rect().topLeft()))

    assert box(g.filters).bottom() < box(g.view).top() or box(g.filters).right() < box(g.view).left()
    assert box(g.view).bottom() < box(g.progress_label).top() and g.view.height() >= 40


def test_the_view_the_keys_go_to_is_scrolled_into_sight(qtbot, window, tmp_path):
    """A narrow gallery's rows pushed the cluster table below the fold, and Ctrl+3 put the keyboard in a table the
    analyst could not see (a newcomer, session 29): the Analyst's scroll area brings the focused view into sight."""
    window.resize(1280, 720)
    _settle(qtbot)
    panel = _open_analyst(qtbot, window, tmp_path)
    panel.gallery.show_filters(True)
    sizes = panel._upper.sizes()
    panel._upper.setSizes([sizes[0] + sizes[1] - 60, 60, sizes[2]])
    _settle(qtbot)
    holder = panel._holder
    if holder.verticalScrollBar().maximum() == 0:
        pytest.skip("the views fit at this size: nothing to scroll")
    holder.verticalScrollBar().setValue(0)
    _settle(qtbot)
    panel.focus_view("clusters")
    _settle(qtbot)
    table = panel.clusters.table
    top = table.mapTo(holder.viewport(), table.rect().topLeft()).y()
    assert 0 <= top < holder.viewport().height(), (top, holder.viewport().height())


def test_shrinking_a_large_window_lays_the_analyst_out_for_the_new_size(qtbot, window, tmp_path):
    """From a maximised 1920x1080 window made 1280x700 the Jobs strip kept its row: the map 100 px tall, the cluster
    row and the inspector's buttons cut until View ▸ Reset layout (a newcomer, session 30). Shrunk below 900 px the
    Jobs and Log panels join the analyst's tabs, as at a first open on that size."""
    window.resize(1900, 1000)
    _settle(qtbot)
    panel = _open_analyst(qtbot, window, tmp_path)
    _settle(qtbot)
    analyst, jobs = window.docks["analystDock"], window.docks["jobsDock"]
    assert jobs not in window.tabifiedDockWidgets(analyst)
    window.resize(1280, 700)
    _settle(qtbot)
    qtbot.waitUntil(lambda: jobs in window.tabifiedDockWidgets(analyst), timeout=3000)
    assert panel.isVisible() and _fully_visible(panel.gallery.view)
