"""Help > Keyboard shortcuts lists the analyst views' own keys while the analyst is docked."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from naviewer.analysis.demo import make_demo_session
from naviewer.gui.analyst.panel import AnalystPanel
from naviewer.gui.shortcuts_panel import ShortcutsPanel


def test_views_register_their_keys_by_view(qtbot):
    panel = AnalystPanel(make_demo_session(300, 10, seed=3))
    qtbot.addWidget(panel)
    help_panel = ShortcutsPanel()
    qtbot.addWidget(help_panel)
    for group, shortcuts in panel.shortcut_groups():
        help_panel.register(group, shortcuts)
    assert help_panel.groups() == ["Analyst: Panel", "Analyst: Density map", "Analyst: Gallery", "Analyst: Inspector",
                                   "Analyst: Ranked clusters", "Analyst: History", "Analyst: Large sample view"]
    assert dict(help_panel.rows("Analyst: Inspector"))["Confirm as poison the sample the inspector shows"] == "C"
    gallery = dict(help_panel.rows("Analyst: Gallery"))
    assert gallery["Confirm as poison (the highlighted samples, else the focused one)"] == "C"
    assert gallery["Reject as benign (the highlighted samples, else the focused one)"] == "R"
    assert gallery["Mark for later (the highlighted samples, else the focused one)"] == "L"
    assert gallery["Next flag awaiting a decision (unreviewed, then later)"] == "N"
    assert gallery["Undo the last decision"].startswith("U, ")  # U and the platform's Undo share a row
    assert dict(help_panel.rows("Analyst: Density map"))["Lasso selection tool"] == "S"
    help_panel.unregister("Analyst: Gallery")
    assert "Analyst: Gallery" not in help_panel.groups() and "Analyst: Density map" in help_panel.groups()


def _folder_workspace(root):
    """A workspace on a folder of 40 PNGs (re-openable, as the dock needs) with the demo's pass."""
    from PIL import Image

    from naviewer.data.sources import open_dataset
    from naviewer.workspace import Workspace

    demo = make_demo_session(40, 5, seed=1)
    for i, (image, label) in enumerate(zip(np.asarray(demo.images), demo.labels)):
        folder = root / "images" / f"c{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    with Workspace.create(root / "ws", open_dataset(root / "images")) as ws:
        ws.store.add_detection_pass("dift", dict(demo.scores), {"k": 10}, run="r", epoch=0)
    return root / "ws"


def test_docked_analyst_keys_appear_in_the_window_and_go_with_it(qtbot, window, tmp_path):
    assert window.show_analyst(_folder_workspace(tmp_path)) is not None
    assert {"Run", "Analyst: Gallery", "Analyst: Density map"} <= set(window.shortcuts_panel.groups())
    gallery = window.analyst_dock.panel.gallery
    first = int(gallery.model.ids[0])
    gallery.session.set_current(first, source=None)
    gallery.view.setFocus()
    qtbot.keyClick(gallery.view, "c")  # the listed key does what the list says
    assert gallery.session.state_of(first) == "confirmed"
    qtbot.keyClick(gallery.view, "a", modifier=Qt.KeyboardModifier.ControlModifier)
    assert len(gallery.session.selection) == gallery.model.rowCount()
    window.analyst_dock.close()
    assert not [g for g in window.shortcuts_panel.groups() if g.startswith("Analyst")]


def test_review_keys_do_nothing_while_the_panel_is_behind_another_tab(qtbot, window, tmp_path):
    """A dock tabbed behind the Training monitor keeps isVisible() and the keyboard focus: C typed with the monitor
    in front confirmed a sample in the hidden gallery, R on the Jobs tab rejected one, U on the Log tab undid one, and
    nothing on screen changed (newcomer session 21). The keys now act only while their view can be seen."""
    from PySide6.QtWidgets import QTabBar

    from naviewer.gui.analyst.common import on_screen

    window.resize(1280, 720)
    window.show()
    qtbot.waitExposed(window)
    assert window.show_analyst(_folder_workspace(tmp_path)) is not None
    panel = window.analyst_dock.panel
    gallery = panel.gallery
    first = int(gallery.model.ids[0])
    gallery.session.set_current(first, source=None)
    bar = next(b for b in window.findChildren(QTabBar)
               if {"Training monitor", "Log"} <= {b.tabText(i) for i in range(b.count())}
               and any(b.tabText(i).startswith("Analyst") for i in range(b.count())))
    texts = [bar.tabText(i) for i in range(bar.count())]
    analyst_tab = next(i for i, t in enumerate(texts) if t.startswith("Analyst"))
    bar.setCurrentIndex(texts.index("Training monitor"))
    qtbot.waitUntil(lambda: not on_screen(gallery), timeout=3000)

    def press(widget_shortcuts, key: str) -> None:
        next(s for s in widget_shortcuts if s.key().toString() == key).activated.emit()

    press(gallery.shortcuts, "C")
    gallery._on_review_key("rejected")  # the view's own key path
    press(panel.map.shortcuts, "R")
    press(panel.inspector.shortcuts, "C")
    assert gallery.session.state_of(first) == "unreviewed"
    assert "behind another tab" in window.statusBar().currentMessage()
    bar.setCurrentIndex(analyst_tab)
    qtbot.waitUntil(lambda: on_screen(gallery), timeout=3000)
    press(gallery.shortcuts, "C")
    assert gallery.session.state_of(first) == "confirmed"
    bar.setCurrentIndex(texts.index("Log"))
    qtbot.waitUntil(lambda: not on_screen(gallery), timeout=3000)
    press(gallery.shortcuts, "U")
    assert gallery.session.state_of(first) == "confirmed"  # U there undid a decision unseen


def test_the_overview_next_step_follows_the_review_and_the_export(qtbot, window, tmp_path):
    """"Next: review the flags, then Export…" stayed after every flag was decided and an export written (a newcomer,
    session 21)."""
    path = _folder_workspace(tmp_path)
    window.state.set_workspace(path, {"samples": 40, "pass_id": 1, "runs": []})
    assert window.show_analyst(path) is not None
    session = window.analyst_dock.panel.session
    assert "review the flags" in window.overview.next_step.text()
    session.confirm(session.review_queue())
    assert "every flag is decided: Export…" in window.overview.next_step.text()
    window.show_export_result(str(tmp_path / "exports" / "20261204"), "done").close()
    assert "exported (20261204)" in window.overview.next_step.text()
    session.reject(session.review_queue()[:1])  # a decision changed after it: the export no longer matches
    assert "decisions changed since the export (20261204): Export… again" in window.overview.next_step.text()


def test_an_export_newer_than_the_last_decision_is_found_when_the_workspace_opens(tmp_path):
    """After a restart the Overview said "review the flags, then Export…" over a finished, exported review (a
    newcomer, session 21): the workspace summary names its newest export and whether a decision came after it."""
    import os
    import time

    from naviewer.gui.tasks import workspace_summary
    from naviewer.jobs import JobContext
    from naviewer.workspace import Workspace

    path = _folder_workspace(tmp_path)
    with Workspace.open(path) as ws:
        ws.store.set_review([0], "confirmed", "alice")
    export = path / "exports" / "20261204-1"
    export.mkdir(parents=True)
    (export / "provenance.json").write_text("{}")
    assert workspace_summary(path, JobContext())["last_export"] == {"folder": str(export), "current": True}
    old = time.time() - 3600
    os.utime(export / "provenance.json", (old, old))  # made before the decision
    assert workspace_summary(path, JobContext())["last_export"]["current"] is False


def test_a_decision_during_a_retrain_is_said_at_once(qtbot, window, tmp_path):
    """R pressed while Remove and retrain ran was flagged only after the retrain ended (a newcomer, session 21)."""
    from types import SimpleNamespace

    assert window.show_analyst(_folder_workspace(tmp_path)) is not None
    dock = window.analyst_dock
    session = dock.panel.session
    session.confirm(session.review_queue()[:1])
    assert "runs on the decisions" not in window.statusBar().currentMessage()
    dock.finetune_job = SimpleNamespace(running=True, name="Remove 1 confirmed poison and retrain")
    session.reject(session.review_queue()[1:2])
    assert "runs on the decisions as they were when it started" in window.statusBar().currentMessage()
    assert "runs on the decisions" in dock.panel.gallery.notice.toolTip() + dock.panel.gallery.notice.text()
    dock.finetune_job = None


def test_a_reopened_review_focuses_the_first_flag_awaiting_a_decision(qtbot, window, tmp_path):
    """Reopened, the gallery's focus sat on the first tile, a confirmed poison, and one R rejected it (a newcomer,
    session 21): it starts on the first flag still to decide."""
    from naviewer.workspace import Workspace

    path = _folder_workspace(tmp_path)
    assert window.show_analyst(path) is not None
    gallery = window.analyst_dock.panel.gallery
    first, second = (int(i) for i in gallery.shown_ids()[:2])
    gallery.session.confirm([first])
    window.analyst_dock.close()
    window.analyst_dock = None
    assert window.show_analyst(path) is not None
    gallery = window.analyst_dock.panel.gallery
    assert gallery.session.state_of(first) == "confirmed"
    assert gallery.focused_id() == second and gallery.session.current == second
    # and C / R act on it, the sample the inspector shows: the highlight stayed on the first tile and C confirmed
    # that one while the inspector showed another (a newcomer, session 22)
    assert gallery.target_ids().tolist() == [second]
    assert window.analyst_dock.panel.inspector.sample == second
