"""The main window: opens, runs jobs from the GUI, shows failures, refuses conflicts, remembers its layout."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QMessageBox

from naviewer.errors import NaviewerError
from naviewer.gui.jobs import JobState
from naviewer.gui.main_window import MainWindow

from .fakes import counting_job, endless_job




def test_window_opens_with_menus_and_panels(window):
    menus = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert menus == ["File", "Workspace", "View", "Run", "Help"]
    workspace = [a.text().replace("&", "") for a in window.workspace_menu.actions() if not a.isSeparator()]
    assert workspace == ["Anchors…", "Detect (post-hoc)…", "Detection passes"]
    assert not window.act_anchors.isEnabled()
    assert {"overviewDock", "monitorDock", "jobsDock", "logDock", "shortcutsDock"} <= set(window.docks)
    shortcuts = dict(window.shortcuts_panel.rows())
    assert shortcuts["Train"] == "Ctrl+T" and "Pause" in shortcuts and shortcuts["Anchors"] == "Ctrl+Shift+A"
    assert not window.act_pause.isEnabled() and window.act_train.isEnabled()


def test_monitor_is_built_after_the_first_paint(qtbot, window):
    qtbot.waitUntil(lambda: window.monitor is not None, timeout=10000)
    assert window.docks["monitorDock"].widget() is window.monitor


def test_job_started_from_gui_reports_progress_and_finishes(qtbot, window):
    seen = []
    job = window.start_job(counting_job(steps=30, delay_s=0.01), "count")
    job.progress.connect(lambda done, total, msg: seen.append(done))
    qtbot.waitUntil(lambda: window.progress.isVisible(), timeout=2000)
    qtbot.waitSignal(job.finished, timeout=5000).wait()
    assert job.state is JobState.FINISHED and seen[-1] == 30
    item = window.jobs_panel.item_for(job)
    assert item is not None and item.text(1) == "finished"
    qtbot.waitUntil(lambda: not window.progress.isVisible(), timeout=2000)
    assert "finished: count" in window.log.toPlainText()


def test_cancel_button_in_jobs_panel_stops_the_job(qtbot, window):
    """Behaviour, not a wall-clock limit: the button ends an endless job as cancelled (the
    generous wait only keeps a broken cancel from hanging the suite on a loaded machine)."""
    job = window.start_job(endless_job, "endless")
    qtbot.wait(100)
    button = window.jobs_panel.cancel_button_for(job)
    with qtbot.waitSignal(job.finished, timeout=30_000):
        button.click()
    assert job.state is JobState.CANCELLED


def test_failing_job_shows_message_with_details_on_demand(qtbot, window):
    def broken(ctx):
        raise RuntimeError("disk on fire")

    job = window.start_job(broken, "broken job")
    qtbot.waitSignal(job.finished, timeout=5000).wait()
    box = window.last_message_box
    assert box is not None and box.isVisible()
    assert box.windowTitle() == "broken job failed" and box.text() == "RuntimeError: disk on fire"
    assert "Traceback" in box.detailedText()
    box.close()

    def user_mistake(ctx):
        raise NaviewerError("not a workspace", "/tmp/x")

    job = window.start_job(user_mistake, "open")
    qtbot.waitSignal(job.finished, timeout=5000).wait()
    assert window.last_message_box.text() == "/tmp/x: not a workspace"
    assert window.last_message_box.detailedText() == ""  # a user error needs no traceback
    window.last_message_box.close()


def test_conflicting_job_is_refused_with_reason(qtbot, window):
    first = window.start_job(endless_job, "Train simclr", resources=["training"])
    second = window.start_job(counting_job(), "Train byol", resources=["training"])
    assert second is None
    assert "Train simclr" in window.last_message_box.text() and "training" in window.last_message_box.text()
    window.last_message_box.close()
    assert first.running


def test_training_controls_pause_resume_cancel(qtbot, window):
    window.training_job_factory = lambda settings, win: (endless_job, None)
    job = window.start_training({"method": "simclr", "epochs": 1, "batch_size": 8, "lr": 0.1, "device": "cpu"})
    assert job is not None and window.training_job is job
    assert window.act_pause.isEnabled() and not window.act_train.isEnabled()
    window.state.set_workspace(Path("/tmp/ws-next-step"), {"samples": 3, "runs": []})
    # a plain Train has no DIFT: the next step is Detect on its encoder ("DIFT's flags open here" promised flags
    # that never came; a newcomer, session 19)
    assert "Run ▸ Detect" in window.overview.next_step.text() and "flags open" not in window.overview.next_step.text()
    qtbot.waitUntil(lambda: job.done > 0, timeout=60000)  # the worker first imports torch to set its threads
    window.act_pause.trigger()
    assert job.state is JobState.PAUSED and window.act_resume.isEnabled()
    window.act_resume.trigger()
    assert job.state is JobState.RUNNING
    window.act_cancel.trigger()
    qtbot.waitSignal(job.finished, timeout=1000).wait()
    assert job.state is JobState.CANCELLED and window.act_train.isEnabled()


def test_cancel_asks_first_when_a_training_has_run_a_while(qtbot, window, bulk_answers, monkeypatch):
    """One click on Cancel stopped a retrain minutes in (newcomer session 18): past a minute it asks, Enter keeps it
    running."""
    window.training_job_factory = lambda settings, win: (endless_job, None)
    job = window.start_training({"method": "simclr", "epochs": 1, "batch_size": 8, "lr": 0.1, "device": "cpu"})
    qtbot.waitUntil(lambda: job.done > 0, timeout=60000)
    monkeypatch.setattr(type(window), "CANCEL_ASK_AFTER_S", 0.0)
    bulk_answers.answer = False
    window.act_cancel.trigger()
    assert job.running and "Stop" in bulk_answers.asked[-1] and bulk_answers.defaults[-1] is False
    bulk_answers.answer = True
    window.act_cancel.trigger()
    qtbot.waitSignal(job.finished, timeout=5000).wait()
    assert job.state is JobState.CANCELLED


def test_toolbar_cancel_stops_a_detection_or_fine_tune_too(qtbot, window):
    """A post-hoc detection or fine-tune ran with the toolbar's Cancel greyed; the way to stop it was the Jobs tab."""
    assert not window.act_cancel.isEnabled()
    job = window.start_job(endless_job, "Detect (post-hoc) with last.pt", kind="detection")
    qtbot.waitUntil(window.act_cancel.isEnabled, timeout=5000)
    assert "Detect (post-hoc) with last.pt" in window.act_cancel.toolTip()
    window.act_cancel.trigger()
    qtbot.waitSignal(job.finished, timeout=2000).wait()
    assert job.state is JobState.CANCELLED
    qtbot.waitUntil(lambda: not window.act_cancel.isEnabled(), timeout=2000)
    assert window.start_job(endless_job, "Open dataset x", kind="dataset") is not None   # a short job: not Cancel's
    qtbot.wait(100)
    assert not window.act_cancel.isEnabled()
    window.jobs.cancel_all()


def test_training_without_data_is_refused(qtbot, window):
    assert window.start_training({"method": "simclr", "epochs": 1, "batch_size": 8, "lr": 0.1, "device": "cpu"}) is None
    assert "Open a workspace or a dataset" in window.last_message_box.text()
    window.last_message_box.close()


def test_close_while_running_asks_then_cancels_and_exits(qtbot, window, monkeypatch):
    job = window.start_job(endless_job, "endless")
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    assert not window.close()  # user said no: still open, job still running
    assert job.running
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    assert window.close()
    assert job.state is JobState.CANCELLED and not window.jobs.running_jobs()


def test_dock_layout_is_saved_and_restored(qtbot):
    from PySide6.QtCore import Qt

    first = MainWindow()
    qtbot.addWidget(first)
    first.show()
    qtbot.waitExposed(first)
    first.docks["shortcutsDock"].show()
    first.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, first.docks["overviewDock"])
    first.docks["logDock"].hide()
    first.set_theme("dark")
    first.close()

    second = MainWindow()
    qtbot.addWidget(second)
    second.show()
    qtbot.waitExposed(second)
    assert second.dockWidgetArea(second.docks["overviewDock"]) == Qt.DockWidgetArea.RightDockWidgetArea
    assert second.docks["shortcutsDock"].isVisible()
    assert not second.docks["logDock"].isVisible()
    assert second.theme_manager.theme.name == "dark"
    second.reset_layout()
    assert second.dockWidgetArea(second.docks["overviewDock"]) == Qt.DockWidgetArea.LeftDockWidgetArea
    second.set_theme("light")
    second.close()


def test_a_layout_saved_on_a_much_smaller_or_larger_screen_is_laid_out_afresh(qtbot):
    """Reopened at 1920x1080, a layout saved at 1280x720 kept its folded Overview and tabbed Jobs and Log (a newcomer,
    session 19): a layout saved on a screen a quarter or more off in width or height is not restored."""
    from PySide6.QtCore import Qt

    first = MainWindow()
    qtbot.addWidget(first)
    first.show()
    qtbot.waitExposed(first)
    first.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, first.docks["overviewDock"])
    first.close()
    here = first.settings.value("window/screen")
    assert here and "x" in str(here)  # the screen the layout was made on is saved with it
    width, height = (int(v) for v in str(here).split("x"))
    first.settings.setValue("window/screen", f"{int(width * 1.5)}x{int(height * 1.5)}")

    second = MainWindow()
    qtbot.addWidget(second)
    second.show()
    qtbot.waitExposed(second)
    assert second.dockWidgetArea(second.docks["overviewDock"]) == Qt.DockWidgetArea.LeftDockWidgetArea  # afresh
    second.close()  # saved again, on this screen
    third = MainWindow()
    qtbot.addWidget(third)
    third.show()
    qtbot.waitExposed(third)
    assert third._layout_restored  # the same screen: restored as saved
    third.close()


def test_recent_workspaces_menu(qtbot, window, tmp_path):
    from naviewer.gui.settings import add_recent_workspace

    ws = tmp_path / "ws"
    ws.mkdir()
    add_recent_workspace(window.settings, str(tmp_path / "gone"))
    add_recent_workspace(window.settings, str(ws))
    window._rebuild_recent_menu()
    texts = [a.text() for a in window.recent_menu.actions()]
    assert texts[:2] == [str(ws), str(tmp_path / "gone")]
    window.recent_menu.actions()[1].trigger()  # a workspace that no longer exists is dropped
    assert str(tmp_path / "gone") not in [a.text() for a in window.recent_menu.actions()]
    window.last_message_box.close()


def test_the_window_reopens_the_last_workspace_unless_turned_off(qtbot, window, tmp_path):
    """Started with no folder, the window opens the workspace used last (a newcomer came back to an empty window);
    a gone one is said in the status bar, not a dialog; the File menu's switch turns it off and is remembered."""
    import numpy as np

    from naviewer.data.base import ArrayDataset
    from naviewer.gui.settings import add_recent_workspace
    from naviewer.workspace import Workspace

    from .fakes import finish

    assert window.reopen_last_workspace() is None  # nothing used yet
    add_recent_workspace(window.settings, str(tmp_path / "gone"))
    assert window.reopen_last_workspace() is None and window.last_message_box is None
    assert "is gone" in window.statusBar().currentMessage()
    images = np.zeros((6, 8, 8, 3), dtype=np.uint8)
    Workspace.create(tmp_path / "ws", ArrayDataset(images, [0, 1, 0, 1, 0, 1], ["a", "b"])).close()
    add_recent_workspace(window.settings, str(tmp_path / "ws"))
    finish(qtbot, window.reopen_last_workspace())
    assert window.workspace_path == (tmp_path / "ws").absolute()
    qtbot.waitUntil(lambda: "Reopened the last workspace, ws" in window.statusBar().currentMessage(), timeout=5000)
    assert window.act_reopen_last.isChecked()
    window.act_reopen_last.trigger()  # off
    assert window.reopen_last_workspace() is None
    other = MainWindow()
    qtbot.addWidget(other)
    assert not other.act_reopen_last.isChecked()  # remembered


def test_about_shows_versions_without_blocking(qtbot, window, monkeypatch):
    import naviewer.gui.environment as environment

    release = threading.Event()

    def slow_probe():
        release.wait(30)  # held until the dialog is open: opening must not wait for it
        return {"torch": "9.9", "torchvision": "1.0", "device": "cpu (2 threads)", "devices": ["cpu"]}

    monkeypatch.setattr(environment, "_cache", None)
    monkeypatch.setattr(environment, "probe_environment", slow_probe)
    dialog = window.show_about()
    assert dialog.versions()["torch"] == "checking…"  # opened while the probe is still held
    release.set()
    qtbot.waitUntil(lambda: dialog.versions()["torch"] == "9.9", timeout=5000)
    assert "cpu (2 threads)" in dialog.text.text()
    dialog.close()


def test_train_menu_opens_dialog_and_accepting_starts_training(qtbot, window, monkeypatch):
    import naviewer.gui.environment as environment

    monkeypatch.setattr(environment, "_cache", {"torch": "x", "torchvision": "y", "device": "cpu", "devices": ["cpu"]})
    started = []
    window.training_job_factory = lambda settings, win: (started.append(settings) or counting_job(steps=3), None)
    window.act_train.trigger()
    dialog = window.train_dialog_widget
    qtbot.waitUntil(dialog.isVisible, timeout=2000)
    dialog.device.setCurrentIndex(dialog.device.findData("cuda"))
    assert not dialog.ok_button.isEnabled()  # the probe said: cpu only
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.epochs.setText("3")
    dialog.ok_button.click()
    assert started and started[0]["epochs"] == 3 and started[0]["device"] == "cpu"
    job = window.jobs.jobs[-1]
    if job.running:  # the worker first imports torch to set its thread count
        qtbot.waitSignal(job.finished, timeout=60000).wait()
    assert job.state is JobState.FINISHED


def test_an_interrupted_run_is_resumed_from_the_run_menu(qtbot, window, tmp_path):
    """A DIFT run stopped while training (the window closed, Ctrl-C) could only be trained again from scratch. The
    Overview says it can go on, Run ▸ Resume interrupted run goes on from its checkpoint, and its flags open in
    the Analyst when DIFT stops."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflows"))
    from workflow_kit import attacked_workspace, dift_config, train_config, write_folder

    from naviewer.jobs import JobCancelled, JobContext
    from naviewer.workflows.dift_training import train_with_dift

    class StopAfterEpoch2(JobContext):
        def metric(self, **values):
            super().metric(**values)
            if values.get("kind") == "epoch" and values.get("epoch") == 2:
                self.cancel()

    data = write_folder(tmp_path / "train", 60), write_folder(tmp_path / "test", 15, seed=1)
    with attacked_workspace(tmp_path / "ws", data).workspace as ws:
        try:
            train_with_dift(ws, train_config(8), dift_config(patience=2), monitor=False, ctx=StopAfterEpoch2())
        except JobCancelled:
            pass
    assert not window.act_resume_run.isEnabled()
    window.open_workspace(tmp_path / "ws")
    qtbot.waitUntil(lambda: window.workspace_path is not None, timeout=20000)
    assert window.act_resume_run.isEnabled() and "Resume interrupted run" in window.overview.next_step.text()
    started = []
    window.jobs.job_started.connect(started.append)
    window.act_resume_run.trigger()
    job = next(j for j in started if j.name == "Resume run dift")
    qtbot.waitUntil(lambda: not job.running, timeout=120000)
    assert job.result["status"] == "awaiting_review", job.error_details
    qtbot.waitUntil(lambda: window.analyst_dock is not None and window.analyst_dock.pass_id == job.result["pass_id"],
                    timeout=30000)
    assert not window.act_resume_run.isEnabled()
    # the map is of the embedding, as after a run never stopped (a resumed demo had none; a newcomer, session 29)
    assert window.analyst_dock.panel.session.embeddings is not None


def test_a_plain_training_stopped_with_the_window_is_resumed_from_the_run_menu(qtbot, window, tmp_path):
    """The window's Train (no DIFT, no run record) lost a training stopped by a closed window: only DIFT runs could
    go on. It is now offered by Run ▸ Resume interrupted run, trains to its epochs, and is not offered after."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflows"))
    from workflow_kit import attacked_workspace, train_config, write_folder

    from naviewer.data.store import ImageStore
    from naviewer.jobs import JobCancelled, JobContext
    from naviewer.ssl.trainer import build_trainer

    class StopAfterEpoch0(JobContext):
        def metric(self, **values):
            super().metric(**values)
            if values.get("kind") == "epoch" and values.get("epoch") == 0:
                self.cancel()

    data = write_folder(tmp_path / "train", 60), write_folder(tmp_path / "test", 15, seed=1)
    name = "simclr-20261204-010203"
    with attacked_workspace(tmp_path / "ws", data).workspace as ws:
        trainer = build_trainer(train_config(2, knn_every=0), ImageStore.from_dataset(ws.dataset()), ws.run_dir(name),
                                checkpoint_dir=ws.checkpoint_dir(name))
        try:
            trainer.fit(StopAfterEpoch0())
        except JobCancelled:
            pass
    window.open_workspace(tmp_path / "ws")
    qtbot.waitUntil(lambda: window.workspace_path is not None, timeout=20000)
    assert window.act_resume_run.isEnabled() and name in window.overview.next_step.text()
    # the toolbar's Resume does it too (it sat greyed beside the Overview's "Resume interrupted run")
    assert window.act_resume.isEnabled() and name in window.act_resume.toolTip()
    started = []
    window.jobs.job_started.connect(started.append)
    window.act_resume.trigger()
    job = next(j for j in started if j.name == f"Resume run {name}")
    qtbot.waitUntil(lambda: not job.running, timeout=120000)
    assert job.result == {"status": "finished", "pass_id": None, "run": name, "epochs": 2}, job.error_details
    qtbot.waitUntil(lambda: not window.state.workspace_summary.get("interrupted"), timeout=30000)
    assert not window.act_resume_run.isEnabled()


def test_a_workspace_open_in_two_windows_is_said(qtbot, window, tmp_path):
    """The same workspace open in two windows, both deciding and starting jobs, without a word (newcomer session
    16): the second window says so; once the first has let it go, nothing is said."""
    from naviewer.gui.main_window import MainWindow

    from .fakes import finish, image_folder

    folder = image_folder(tmp_path / "images", 4, 16)
    finish(qtbot, window.new_workspace(tmp_path / "ws", folder))
    assert window.workspace_path == tmp_path / "ws"
    other = MainWindow()
    try:
        other.show()
        finish(qtbot, other.open_workspace(tmp_path / "ws"))
        box = other.last_message_box
        assert box is not None and box.windowTitle() == "Open in another window" and "ws" in box.text()
        assert other.workspace_shared  # its U undoes only its own decisions (a newcomer, session 29)
        window.close()  # the first window lets it go
        other.last_message_box = None
        other.workspace_path = None
        finish(qtbot, other.open_workspace(tmp_path / "ws"))
        assert other.last_message_box is None or other.last_message_box.windowTitle() != "Open in another window"
        assert not other.workspace_shared
    finally:
        other.close()
        other.deleteLater()


def test_the_no_poison_floor_is_measured_from_the_run_menu(qtbot, window, tmp_path):
    """The README reads every "after" ASR against the floor, which only `naviewer run WS --floor` measured (a
    newcomer): Run ▸ Measure the no-poison floor trains the workspace's recipe on its clean set and records it."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflows"))
    from workflow_kit import attacked_workspace, train_config, write_folder

    from naviewer.errors import NaviewerError
    from naviewer.workflows.floor import floor_recipe, read_floor
    from naviewer.workspace import Workspace

    data = write_folder(tmp_path / "train", 60), write_folder(tmp_path / "test", 15, seed=1)
    with attacked_workspace(tmp_path / "ws", data).workspace as ws:
        with pytest.raises(NaviewerError, match="train a run first"):
            floor_recipe(ws)
        ws.store.add_run("dift", "dift", {"train": train_config(1, knn_every=0).to_dict()})
        config, name = floor_recipe(ws)
        assert config.epochs == 1 and name == "floor"
    window.state.set_workspace(tmp_path / "plain", {"samples": 3, "runs": [], "attack": None})
    assert not window.act_floor.isEnabled() and "crafted an attack" in window.act_floor.toolTip()  # nothing to measure
    window.open_workspace(tmp_path / "ws")
    qtbot.waitUntil(lambda: window.workspace_path == tmp_path / "ws", timeout=20000)
    assert window.act_floor.isEnabled()
    assert "crafted an attack" not in window.act_floor.toolTip()  # its own tooltip again (the other one stayed)
    started = []
    window.jobs.job_started.connect(started.append)
    window.act_floor.trigger()
    job = started[-1]
    qtbot.waitUntil(lambda: not job.running, timeout=120000)
    assert job.error is None, job.error_details
    assert window.last_message_box.windowTitle() == "No-poison floor measured"
    with Workspace.open(tmp_path / "ws") as ws:
        assert read_floor(ws)["run"] == "floor" and floor_recipe(ws)[1] == "floor-2"
    assert window.act_floor.text() == "Measure the no-poison &floor"
    # a floor cut short is what the menu goes on with, and says so (it went on in silence; newcomer session 18)
    window.state.set_workspace(tmp_path / "ws", {**window.state.workspace_summary, "floor_cut_short": ["floor-2"]})
    assert window.act_floor.text() == "Resume the no-poison &floor (floor-2, cut short)"


def test_help_opens_the_user_guide_inside_the_application(qtbot, window):
    """Help had no way to the guides (newcomer session 18); handed to the desktop's browser it opened nothing
    where no launcher is set up (newcomer session 26): the guides are read in the window's own viewer."""
    index = window.show_guide(opener=lambda url: False)
    viewer = window.guide_viewer
    assert index is not None and index.name == "index.md" and viewer.isVisible() and viewer.page() == index
    assert "naviewer documentation" in viewer.browser.toPlainText()
    viewer.browser.setSource(viewer.browser.source().resolved(QUrl("getting-started.md")))  # a relative link
    qtbot.waitUntil(lambda: viewer.page().name == "getting-started.md")
    assert "getting-started.md" in viewer.windowTitle() and "Getting started" in viewer.browser.toPlainText()
    assert viewer.back.isEnabled()
    viewer.back.click()
    assert viewer.page() == index
    assert not viewer.open_externally() and not viewer.external.isEnabled()  # no browser: said, not silent
    # a link to a section lands on it, not at the page's top (a newcomer, session 27)
    readme = index.parent.parent / "README.md"
    viewer.browser.setSource(QUrl.fromLocalFile(str(readme)).resolved(QUrl("#what-naviewer-demo-does")))
    qtbot.waitUntil(lambda: viewer.page().name == "README.md")
    cursor = viewer.browser.textCursor()
    assert cursor.block().text().lower().startswith("what naviewer demo does")
    assert viewer.browser.verticalScrollBar().value() > 0
    viewer.back.click()
    assert window.show_guide() == index and window.guide_viewer is viewer  # Help again raises the same one
    assert window.act_guide in window.menuBar().actions()[-1].menu().actions()
    viewer.close()


def test_the_save_every_epoch_is_not_a_log_line_but_a_tagged_one_is(qtbot, window):
    """One "checkpoint saved" line an epoch buried the rest of the Log (a newcomer, session 19)."""
    job = type("J", (), {"name": "Train simclr"})()
    window._log_event(job, "checkpoint", {"epoch": 3, "path": "x/last.pt"})
    assert "checkpoint saved" not in window.log.toPlainText()
    window._log_event(job, "checkpoint", {"epoch": 30, "tag": "review", "path": "x/last.pt"})
    assert "Train simclr: checkpoint saved at epoch 30 (review)" in window.log.toPlainText()


def test_train_with_nothing_open_says_so_before_the_form(qtbot, window):
    """A newcomer filled in the whole Train dialog with nothing open and was refused only at Train (session 21)."""
    from naviewer.gui.main_window import default_training_factory

    window.training_job_factory = default_training_factory
    assert window.train_dialog() is None
    box = window.last_message_box
    assert box is not None and "Open a workspace or a dataset first" in box.text()
    box.close()


def test_naviewer_path_on_a_pipe_or_a_damaged_workspace_says_what_it_is(qtbot, window, tmp_path):
    """`naviewer PATH` on a pipe followed it as a run folder; on a workspace whose workspace.toml is damaged it said
    "no workspace.toml" (a GUI sweep, session 21)."""
    import os

    if hasattr(os, "mkfifo"):
        pipe = tmp_path / "p"
        os.mkfifo(pipe)
        window.open_path(pipe)
        box = window.last_message_box
        assert box is not None and "is not a regular file or folder" in box.text()
        box.close()
        window.last_message_box = None  # (deleted on close)
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "workspace.toml").write_bytes(b"\xb7\x00\xff")
    window.open_path(tmp_path / "ws")
    qtbot.waitUntil(lambda: window.last_message_box is not None and "not text" in window.last_message_box.text(),
                    timeout=10000)
    window.last_message_box.close()


def test_a_recent_list_that_is_not_a_list_does_not_stop_the_start(qtbot, window):
    """An integer in recent/workspaces raised a TypeError in reopen_last_workspace (a GUI sweep, session 21)."""
    window.settings.setValue("recent/workspaces", 7)
    assert window.reopen_last_workspace() is None
    assert "is gone" in window.statusBar().currentMessage()


def test_the_log_keeps_the_newest_line_in_view(qtbot, window):
    """The Log stayed on its first lines (a newcomer, session 22): the newest is in view unless the reader scrolled
    up to read an older one."""
    log = window.log
    log.resize(400, 120)
    log.show()
    for i in range(200):
        window.state.log(f"line {i}")
    bar = log.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum(), timeout=3000)
    bar.setValue(0)  # reading an older line: a new one does not pull the view away
    window.state.log("one more")
    assert bar.value() == 0


def test_the_train_form_offers_the_last_trainings_fields_in_a_new_session(qtbot, window, tmp_path, monkeypatch):
    """A newcomer's next workspace offered ResNet-18 at width 64 again (and measured it for 45 s); the fields of the
    last training started are offered, from the settings file, in any session; odd values there are skipped."""
    window.settings.setValue("train/last", '{"epochs": 7, "arch": "resnet10", "width": 16, "image_size": 32, '
                                           '"backbone": [1, 2], "device": true}')
    assert window._last_train_settings() == {"epochs": 7, "arch": "resnet10", "width": 16, "image_size": 32}
    window.settings.setValue("train/last", "[" * 3000)
    assert window._last_train_settings() == {}
    window.settings.setValue("train/last", None)
    monkeypatch.setattr(window, "training_job_factory", lambda settings, w: (_ for _ in ()).throw(
        __import__("naviewer.errors", fromlist=["NaviewerError"]).NaviewerError("no")))
    monkeypatch.setattr(window, "inform", lambda *a, **k: None)
    window.start_training({"method": "byol", "epochs": 12, "batch_size": 64, "lr": None, "device": "cpu",
                           "backbone": {"arch": "resnet10", "width": 8, "cifar_stem": True}, "image_size": 16})
    last = window._last_train_settings()
    assert last["epochs"] == 12 and last["method"] == "byol" and last["arch"] == "resnet10" and last["width"] == 8


def test_a_training_keeps_the_status_line_against_a_short_job_beside_it(qtbot, window):
    """A t-SNE started during the floor's training took the status line, and the training's progress was gone from
    it (a newcomer, session 26); the Jobs list shows both."""
    training = window.start_job(endless_job, "Measure the no-poison floor", resources=["training"], kind="training")
    qtbot.wait(100)
    other = window.start_job(endless_job, "t-SNE of the map")
    qtbot.wait(100)
    assert window.job_label.text().startswith("Measure the no-poison floor")
    for job in (other, training):
        job.cancel()
        qtbot.waitSignal(job.finished, timeout=5000).wait() if job.running else None


def test_the_overviews_next_step_follows_a_training_that_ended(qtbot, window):
    """After the floor's training had ended the Overview still said "Next: the training runs…" (a newcomer, session
    26): a job's end refreshes it."""
    window.training_job_factory = lambda settings, win: (counting_job(steps=5, delay_s=0.01), None)
    window.state.set_workspace(Path("/tmp/ws-next-step-ended"), {"samples": 3, "runs": []})
    job = window.start_training({"method": "simclr", "epochs": 1, "batch_size": 8, "lr": 0.1, "device": "cpu"})
    assert "training runs" in window.overview.next_step.text()
    qtbot.waitSignal(job.finished, timeout=60000).wait() if job.running else None
    qtbot.waitUntil(lambda: "training runs" not in window.overview.next_step.text(), timeout=5000)


def test_a_message_beside_a_running_job_ends_in_an_ellipsis_where_the_jobs_line_begins(qtbot, window):
    """QStatusBar cut a message hard at the job's line: "Remove 110 confirmed poisons and re" right against "Remove 110
    confirmed poisons and retrain: epoch 3 of 50" read as two texts drawn over each other (a newcomer at 1280x720,
    session 26). The message ends in "…" before the line, whole in the tooltip; the line keeps to half the bar."""
    window.resize(1280, 720)
    window.show()
    qtbot.waitExposed(window)
    name = "Remove 110 confirmed poisons and retrain from scratch on the kept samples, the paper's protocol, " * 2
    job = window.start_job(endless_job, name.strip())
    qtbot.wait(100)
    status = window.statusBar()
    said = "Remove 110 confirmed poisons and retrain: started; the decisions made meanwhile wait for its end " * 3
    status.showMessage(said, 20_000)
    window._update_status()
    qtbot.wait(50)
    label = window.job_label
    assert label.text().endswith("…") and label.toolTip() == f"{name.strip()}: spinning"
    assert label.fontMetrics().horizontalAdvance(label.text()) <= status.width() // 2
    shown = status.currentMessage()
    assert shown.endswith("…") and status.full_message() == said and status.toolTip() == said
    assert status.fontMetrics().horizontalAdvance(shown) <= label.x()  # ends before the job's line
    job.cancel()
    qtbot.waitSignal(job.finished, timeout=30_000).wait() if job.running else None
    qtbot.waitUntil(lambda: not label.isVisible() or not label.text(), timeout=5000)
    qtbot.wait(50)
    assert len(status.currentMessage()) > len(shown)  # the room back: more of it shown


def test_the_overviews_next_step_after_an_export_names_what_the_pass_offers(qtbot, window, monkeypatch):
    """After a post-hoc review and export the Overview pointed at "the Fine-tune tab's Remove and retrain", a button
    post-hoc passes do not have (a newcomer, session 27): there it names Run ▸ Train's Leave out."""
    window.state.set_workspace(Path("/tmp/ws-next-step-export"), {"samples": 3, "runs": [], "pass_id": 1})
    monkeypatch.setattr(window, "review_progress", lambda: (4, 4))
    monkeypatch.setattr(window, "export_state", lambda: ("/tmp/export-1", True))
    monkeypatch.setattr(window, "review_retrains", lambda: False)
    assert "Run ▸ Train… with \"Leave out" in window.overview._next_step()
    monkeypatch.setattr(window, "review_retrains", lambda: True)
    assert "Remove and retrain" in window.overview._next_step()
    monkeypatch.setattr(window, "export_state", lambda: (None, False))  # decided, not exported: the demo's retrain
    assert window.overview._next_step().startswith("every flag is decided: the Fine-tune / retrain tab's Remove and "
                                                   "retrain")
    monkeypatch.setattr(window, "review_retrains", lambda: False)
    assert window.overview._next_step() == "every flag is decided: Export… writes the cleaned dataset"


def test_a_status_tip_is_not_replaced_by_the_last_message(qtbot, window):
    """Refitting the bar's message every half second while a job ran put a stale message back over a menu item's
    status tip (a review, session 27): a message Qt showed itself is left alone."""
    from PySide6.QtWidgets import QStatusBar

    status = window.statusBar()
    status.showMessage("Exported to /tmp/x", 20_000)
    QStatusBar.showMessage(status, "Open a workspace folder")  # as Qt shows a hovered action's status tip
    status.refit()
    assert status.currentMessage() == "Open a workspace folder"
    # and a long one is cut with "…" like the bar's own (it was cut mid-word; a newcomer, session 27)
    tip = "Open a workspace folder: its samples, passes, decisions and runs, as the command line's commands see them " * 4
    QStatusBar.showMessage(status, tip)
    assert status.currentMessage().endswith("…") and status.toolTip() == tip


def test_the_detect_notice_opens_any_pass_it_offers_and_no_other(qtbot, window, monkeypatch):
    """The notice linked DIFT's pass alone, and a newcomer opened an empty pass while patchsearch's held the flags
    (session 27): each pass of the Detect is a link, and only those open."""
    from types import SimpleNamespace

    opened = []
    monkeypatch.setattr(window, "show_analyst", lambda path, pass_id, run: opened.append((path, pass_id, run)))
    gallery = SimpleNamespace(offered_pass=(Path("/tmp/ws"), {7, 6, 5}, "posthoc"))
    for href in ("pass:6", "pass:9", "pass:x", "http://example.com"):
        window._open_offered_pass(gallery, href)
    assert opened == [(Path("/tmp/ws"), 6, "posthoc")]


def test_links_read_on_both_themes():
    """Links in labels and the guide viewer were Qt's dark blue on the dark theme's near-black (a newcomer, session
    28): the palette's link colours keep a readable contrast with the window on both themes."""
    from PySide6.QtGui import QPalette

    from naviewer.gui.resources import load_theme
    from naviewer.gui.theme import _palette

    def luminance(colour) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
        return 0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF()) + 0.0722 * channel(colour.blueF())

    for name in ("light", "dark"):
        palette = _palette(load_theme(name))
        for role in (QPalette.ColorRole.Link, QPalette.ColorRole.LinkVisited):
            a, b = sorted((luminance(palette.color(role)), luminance(palette.color(QPalette.ColorRole.Base))))
            assert (b + 0.05) / (a + 0.05) >= 4.5, (name, role)  # WCAG AA for body text


def test_the_overviews_next_step_names_a_training_waiting_to_resume_beside_a_pass(qtbot, window):
    """Reopened with a training cut short (closed mid-job) and a pass under review, the Overview said "review the
    flags, then Export…" and only the toolbar's Resume hinted at the training (a newcomer, session 28)."""
    window.state.set_workspace(Path("/tmp/ws-next-step-resume"), {"samples": 3, "runs": [], "pass_id": 1,
                                                                  "interrupted": ["simclr-150102"]})
    text = window.overview._next_step()
    assert text.startswith("run simclr-150102 stopped while training: Run ▸ Resume") and "review the flags" in text



def test_no_two_items_of_a_menu_share_a_mnemonic(qtbot, window):
    """In the Run menu Detect and Run the demo both took D (the first D only moved the highlight), Pause and the floor
    both P; the View menu's themes had none (a newcomer, session 28)."""
    import re

    for menu_action in window.menuBar().actions():
        menu = menu_action.menu()
        keys = [m.group(1).lower() for a in menu.actions() if not a.isSeparator()
                for m in [re.search(r"&([^&])", a.text())] if m]
        assert len(keys) == len(set(keys)), (menu.title(), keys)


def test_what_u_may_undo_is_the_windows_across_its_panels(qtbot, window, tmp_path):
    """A new panel (a pass switch, a job's end) took every batch written before it as undoable, a second window's
    included, and forgot its own window's (a review, session 29): the window hands its set from panel to panel."""
    import numpy as np

    from naviewer.analysis import AnalysisSession
    from naviewer.data.base import ArrayDataset
    from naviewer.workspace import Workspace

    ws = Workspace.create(tmp_path / "ws", ArrayDataset(np.zeros((6, 8, 8, 3), np.uint8), [0, 0, 0, 1, 1, 1], ["a", "b"]))
    ws.store.add_detection_pass("dift", {"flagged": np.ones(6, bool)}, {}, run="r", epoch=0)
    window.workspace_shared = False
    first = AnalysisSession.from_workspace(ws, reviewer="me")
    window.adopt_undo_batches(tmp_path / "ws", first)
    first.review([1], "confirmed")                      # this window's decision
    other = AnalysisSession.from_workspace(ws, reviewer="me")
    other.review([2], "rejected")                       # a second window's, meanwhile
    again = AnalysisSession.from_workspace(ws, reviewer="me")  # this window's next panel
    window.adopt_undo_batches(tmp_path / "ws", again)
    assert again.undo().tolist() == [1]                 # its own, not the other window's
    assert not again.can_undo() and again.state_of(2) == "rejected"
    ws.close()


def test_the_overviews_buttons_are_greyed_with_their_actions(qtbot, window):
    """Run ▸ Train… greyed while a training ran, and the Overview's Train… button beside it stayed enabled and did
    nothing when clicked (a newcomer, session 30)."""
    from PySide6.QtWidgets import QPushButton

    button = next(b for b in window.overview.findChildren(QPushButton) if b.text() == "Train…")
    assert button.isEnabled() == window.act_train.isEnabled()
    window.act_train.setEnabled(False)
    assert not button.isEnabled()
    window.act_train.setEnabled(True)
    assert button.isEnabled()


def test_the_overviews_next_step_says_when_the_review_was_acted_on(qtbot, window, tmp_path):
    """After Remove and retrain the Overview still said "the Fine-tune tab's Remove and retrain measures the cleaned
    set" (newcomers, sessions 26 and 30): once the step is done on the decisions as they are, it says so; a decision
    changed after it brings the old advice back."""
    from .analyst.analyst_kit import open_folder_workspace

    open_folder_workspace(window, tmp_path / "a")
    panel = window.analyst_dock.panel
    session = panel.session
    session.confirm(session.flagged_ids())
    gate = panel.finetune_gate
    gate.mark_done("Done: removed the confirmed poisons and retrained.", len(session.flagged_ids()))
    window.overview.refresh_next_step()
    assert "every flag is decided and acted on" in window.overview.next_step.text()
    session.reject(session.flagged_ids()[:1])
    window.overview.refresh_next_step()
    assert "acted on" not in window.overview.next_step.text()


@pytest.mark.parametrize("kind, words", [("retrain", "the Fine-tune / retrain tab compares before and after"),
                                         ("floor", "no-poison floor trains"), ("dift", "DIFT's flags open here"),
                                         (None, "what it finds opens here")])
def test_the_overviews_next_step_says_what_the_training_job_is(qtbot, window, kind, words):
    """Remove and retrain, Retrain again, a resumed plain training and the floor all read "DIFT's flags open here for
    review" (a newcomer, session 30): each training job says what it is, and the Next line follows."""
    window.state.set_workspace(Path("/tmp/ws-next-kind"), {"samples": 3, "runs": []})
    job = window.start_job(endless_job, "a training", resources=["training"], kind="training")
    job.training_kind = kind
    window.state.set_training(job)
    window.overview.refresh_next_step()
    assert words in window.overview.next_step.text()
    job.cancel()
    qtbot.waitSignal(job.finished, timeout=5000).wait() if job.running else None


def test_a_panel_shown_from_the_panels_menu_comes_to_the_front(qtbot, window):
    """View ▸ Panels ▸ Analyst brought the panel back as a tab behind the monitor, unseen (a newcomer, session 30):
    a panel shown from the menu is raised."""
    jobs, log = window.docks["jobsDock"], window.docks["logDock"]
    window.tabifyDockWidget(jobs, log)
    jobs.raise_()
    log.toggleViewAction().trigger()  # hide it
    assert log.isHidden()
    log.toggleViewAction().trigger()  # show it from the menu
    qtbot.waitUntil(lambda: not log.visibleRegion().isEmpty(), timeout=3000)
    assert jobs.visibleRegion().isEmpty()


def test_run_menu_measures_a_trigger_of_the_users_own(qtbot, window, tmp_path, monkeypatch):
    """A newcomer with their own patch poisons could not tell from the window whether the patch formed a backdoor
    (session 32): Run ▸ Measure a trigger's ASR… asks for the encoder, the trigger image, its size, the target class
    and a labelled test folder, measures in a job and says the result against the project's bar."""
    from PIL import Image

    import naviewer.workflows.trigger_asr as trigger_asr

    from .analyst.analyst_kit import open_folder_workspace

    open_folder_workspace(window, tmp_path / "a")
    assert window.act_trigger_asr.isEnabled() and window.act_trigger_asr in window.findChildren(type(window.act_trigger_asr))
    dialog = window.trigger_asr_dialog()
    assert dialog.target.count() >= 2 and not dialog.ok.isEnabled()
    trigger = tmp_path / "t.png"
    Image.new("RGB", (6, 6), (255, 0, 0)).save(trigger)
    checkpoint = tmp_path / "c.pt"
    checkpoint.write_bytes(b"x")
    dialog.checkpoint.setText(str(checkpoint))
    dialog.trigger.setText(str(trigger))
    assert not dialog.ok.isEnabled() and "choose the test folder" in dialog.problems()
    dialog.test.setText(str(tmp_path))
    assert dialog.ok.isEnabled() and dialog.size.value() == 6
    calls, said = [], []
    monkeypatch.setattr(trigger_asr, "measure_trigger_asr", lambda path, ctx=None, **values: calls.append(values) or {
        "asr": 0.62, "knn_acc": 0.9, "trigger_size": values["trigger_size"], "target_name": "a", "test_images": 40})
    monkeypatch.setattr(window, "inform", lambda title, text, *a, **k: said.append((title, text)))
    dialog.accept()
    qtbot.waitUntil(lambda: bool(said), timeout=10000)
    assert calls[0]["trigger"] == trigger and calls[0]["trigger_size"] == 6 and calls[0]["test_dataset"] == tmp_path
    assert said[0][0] == "Trigger ASR" and said[0][1].startswith("ASR 62.0 %") and "At or above the 50 % half" in said[0][1]
    # opened again on the same workspace, the form is the last measurement's (a failure lost it: a GUI probe)
    again = window.trigger_asr_dialog()
    assert again.values() == calls[0] | {"checkpoint": checkpoint}
    # a trigger file that is no image, or a decompression bomb's header, is said in the form, Measure waiting: the
    # bomb raised an unexpected-error box from Pillow (session 33)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    again.trigger.setText(str(text))
    again.test.setText("")  # said before the empty test folder: the fields' order (a newcomer, session 33)
    assert not again.ok.isEnabled() and "the trigger image cannot be read" in again.error.text()
    again.test.setText(str(tmp_path))
    assert str(text) in again.error.text()
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    bomb = tmp_path / "bomb.png"  # a header declaring 10^10 pixels
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
                     + chunk(b"IEND", b""))
    again.trigger.setText(str(bomb))
    assert not again.ok.isEnabled() and "pixels" in again.error.text() and str(bomb) in again.error.text()
    again.trigger.setText(str(trigger))
    assert again.ok.isEnabled()
