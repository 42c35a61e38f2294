"""The main window is a view of its AppState (issue 16 item 7): a change of the state, whoever makes
it, shows in the title, the actions, the Overview and the Log."""

from __future__ import annotations

from .fakes import endless_job


def test_a_state_change_updates_the_window(qtbot, window, tmp_path):
    state = window.state
    assert window.windowTitle() == "naviewer" and not window.act_export.isEnabled()
    assert not window.act_detect.isEnabled() and not window.act_anchors.isEnabled()

    state.set_workspace(tmp_path / "case-7", {"samples": 1234, "runs": []})
    assert window.windowTitle() == "case-7 — naviewer"
    assert window.act_export.isEnabled() and window.act_detect.isEnabled() and window.act_anchors.isEnabled()
    assert "1,234 samples" in window.overview.workspace.text()
    assert window.workspace_path == tmp_path / "case-7"  # the window reads through to the state
    assert window.recent_menu.actions()[0].text() == str(tmp_path / "case-7")

    state.set_dataset(tmp_path / "images", {"samples": 12, "kind": "(image folders)"})
    state.set_encoder(tmp_path / "last.pt")
    state.set_run("starting…")
    assert "12 images" in window.overview.dataset.text()
    # short in a narrow column (at 1280 px a full path wrapped a folder a line), whole in the tooltip
    assert window.overview.encoder.toolTip() == str(tmp_path / "last.pt") and window.overview.run.text() == "starting…"
    assert window.overview.encoder.text().endswith("/last.pt") and len(window.overview.encoder.text()) <= 34
    state.set_encoder(tmp_path / "the review's.pt")  # shown as typed: "review&#x27;s" was seen under Xvfb
    assert window.overview.encoder.text().endswith("the review's.pt")
    state.set_encoder(tmp_path / "last.pt")

    state.log("a line from a controller")
    assert window.log.toPlainText().splitlines()[-1].endswith("a line from a controller")

    job = window.start_job(endless_job, "endless", kind="training")
    state.set_training(job)  # what the demo and the analyst's fine-tune do with their jobs
    qtbot.waitUntil(lambda: window.act_pause.isEnabled(), timeout=2000)
    assert not window.act_train.isEnabled() and window.act_cancel.isEnabled()
    job.cancel()
    qtbot.waitSignal(job.finished, timeout=5000).wait()
    qtbot.waitUntil(lambda: window.act_train.isEnabled(), timeout=2000)
    assert state.training is None and not window.act_pause.isEnabled()

    state.set_workspace(None)
    assert window.windowTitle() == "naviewer" and not window.act_export.isEnabled()
    assert window.overview.workspace.text() == "none" and window.overview.run.text() == "none"


def test_a_long_run_name_can_wrap_in_the_overview(qtbot, window, tmp_path):
    """"simclr-20261204-231340" could not wrap: the Overview dock widened 20 px each time a run started, moving every
    view right of it (a newcomer, session 22). A break may fall after - and _; the tooltip keeps the plain path."""
    run = tmp_path / "runs" / "simclr-20261204-231340"
    window.state.set_run(run)
    label = window.overview.run
    assert "simclr-\u200b20261204-\u200b231340" in label.text() and label.toolTip() == str(run)
