"""``naviewer demo``'s window path offscreen with a tiny config: monitor -> flags -> analyst -> fine-tune."""

from __future__ import annotations

import numpy as np
import pytest

from naviewer.gui.jobs import JobState

pytest.importorskip("naviewer.ssl.trainer")

#: seconds, not minutes: 16 px digits, a width-8 ResNet-10, DIFT from the first epoch, no guard,
#: detection capped after 2 epochs so that a pass with flags always comes out
TINY = dict(data_size=16, image_size=16, arch="resnet10", width=8, batch_size=128, dift_start=0, patience=1, k=5,
            knn_every=0, trigger_size=6, max_steps_per_epoch=2, epochs=4, threads=1,
            dift_settings={"n_min": 2, "guard_separation": 1e-6, "guard_check_split": False,
                           "max_detection_epochs": 1, "ft_max_steps": 2, "ft_check_every": 2, "pool_random": 100})




def test_demo_window_monitor_then_analyst_then_finetune(qtbot, window, tmp_path):
    from naviewer.gui.demo import DemoController
    from naviewer.workflows.demo import DemoConfig

    controller = DemoController(window, tmp_path / "ws", DemoConfig.from_overrides(TINY))
    with qtbot.waitSignal(controller.workspace_ready, timeout=30000):
        job = controller.start()
    assert job is not None and window.training_job is job
    qtbot.waitUntil(lambda: window.monitor is not None and window.monitor.follower is not None, timeout=10000)
    assert window.workspace_path == (tmp_path / "ws").absolute()
    # the Overview says what the demo is doing (it said Dataset "none", Encoder "none", "Next: Run ▸ Detect…")
    assert window.overview.dataset.text() != "none" and "demo" in window.overview.dataset.toolTip()
    if job.running:
        assert "training runs" in window.overview.next_step.text() and "Detect" not in window.overview.next_step.text()
    with qtbot.waitSignal(controller.flags_ready, timeout=60000) as blocker:
        pass
    outcome = blocker.args[0]
    assert job.state is JobState.FINISHED and outcome.pass_id is not None and outcome.flagged > 0
    qtbot.waitUntil(lambda: len(window.monitor.data.get(("loss", "epoch"), ([], []))[0]) >= 1, timeout=5000)
    dock = window.docks["analystDock"]
    panel = window.analyst_dock.panel
    assert "review the flags" in window.overview.next_step.text()
    assert dock.widget() is panel and dock.isVisible()
    assert panel.session.embeddings is not None                # the embeddings DIFT ranked
    assert panel.session.flagged_ids().size == outcome.flagged
    # the monitor puts the pass's recall after label spreading beside the buffer's curve (issue 14 item 9)
    assert window.monitor.data.get(("final_recall", "spread"), ([], []))[0] == [outcome.detection_epoch + 1]

    # review: confirm the flags, then fine-tune from the gate
    panel.session.confirm(panel.session.flagged_ids())
    gate = panel.finetune_gate
    assert gate.button.isEnabled()
    gate.button.click()
    ft = window.analyst_dock.finetune_job
    assert ft is not None
    qtbot.waitSignal(ft.finished, timeout=60000).wait()
    assert ft.state is JobState.FINISHED, ft.error_details
    assert not gate.result.isHidden() and gate.result.rowCount() >= 1
    assert panel.tabs.currentWidget() is gate
    assert "confirmed_density" in ft.result["before"] and "confirmed_density" in ft.result["after"]
    # the map offers every sample re-embedded by the retrained encoder (issue 14 item 6)
    box = panel.map.projection_box
    # the paper's restart retrains from scratch when its fine-tune takes no step (session 29): said as a retrain
    fell_back = ((ft.result.get("finetune") or {}).get("finetune") or {}).get("fallback") == "retrain"
    retrained = gate.retrains or fell_back
    assert box.itemText(box.findData("after:pca")) == ("PCA, after retraining" if retrained else "PCA, after fine-tuning")
    if fell_back:
        assert "the fine-tune took no step" in gate.done_text
    assert "neighbourhood density" in panel.map.embedding_note.text()


def test_opening_a_workspace_with_a_pass_docks_the_analyst(qtbot, window, tmp_path):
    from naviewer.workflows.demo import DemoConfig, run_demo

    out = run_demo(tmp_path / "ws", DemoConfig.from_overrides(TINY))
    assert out.pass_id is not None
    job = window.open_workspace(out.workspace)
    qtbot.waitSignal(job.finished, timeout=20000).wait()
    assert job.state is JobState.FINISHED, job.error_details
    qtbot.waitUntil(lambda: "analystDock" in window.docks, timeout=10000)
    assert window.analyst_dock.pass_id == out.pass_id
    assert np.array_equal(window.analyst_dock.panel.session.flagged_ids().size, out.flagged)


def test_the_demo_starts_from_the_run_menu(qtbot, window, tmp_path, monkeypatch):
    """A newcomer who started the window found four empty charts and no way to the demo but a terminal command
    (session 21): Run ▸ Run the demo says what it does and where, then runs it in this window."""
    from naviewer.gui.settings import remember_folder
    from naviewer.workflows.demo import DemoConfig

    remember_folder(window.settings, "workspace", tmp_path)
    assert window.act_demo in window.menuBar().actions()[3].menu().actions()  # File, Workspace, View, Run
    assert "Run ▸ Run the demo" in window.overview.next_step.text()
    started = []
    monkeypatch.setattr(window, "start_demo", lambda path: started.append(path))
    box = window.demo_dialog()
    assert str(tmp_path / "naviewer-demo-") in box.text() and "stops for your review" in box.text()
    box.accept()
    assert len(started) == 1 and started[0].parent == tmp_path
    # Another folder…: the box comes back with the chosen folder, and Run puts the workspace there
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setattr(window, "_ask_directory", lambda *_a, **_k: elsewhere)
    box = window.demo_dialog()
    next(b for b in box.buttons() if b.text() == "Another folder…").click()
    qtbot.waitUntil(lambda: window.last_message_box is not box, timeout=3000)
    box = window.last_message_box
    assert str(elsewhere / "naviewer-demo-") in box.text()
    box.button(box.StandardButton.Ok).click()
    assert len(started) == 2 and started[1].parent == elsewhere
    monkeypatch.undo()
    job = window.start_demo(tmp_path / "ws", DemoConfig.from_overrides(TINY))
    assert job is not None and window.training_job is job
    qtbot.waitSignal(window.demo_controller.flags_ready, timeout=60000).wait()
    assert window.analyst_dock is not None
