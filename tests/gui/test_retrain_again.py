"""The Fine-tune tab's Retrain again, in the window: the decisions changed after the remove-and-retrain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from naviewer.gui.jobs import JobState

pytest.importorskip("naviewer.ssl.trainer")

#: tests/workflows/test_demo.py's tiny demo (a pass with flags after 2 epochs), its retrain 2 epochs long
TINY = ["data_size=16", "image_size=16", "arch=resnet10", "width=8", "batch_size=128", "dift_start=0",
        "patience=1", "k=5", "knn_every=0", "trigger_size=6", "max_steps_per_epoch=2",
        'dift_settings={"n_min": 2, "guard_separation": 1e-6, "guard_check_split": false, "max_detection_epochs": 1, '
        '"restart_mode": "retrain", "retrain_epochs": 2}']


@pytest.fixture()
def retrained(tmp_path) -> Path:
    import torch

    from naviewer.cli import main
    from naviewer.workflows.demo import RUN, finetune_and_finish
    from naviewer.workspace import Workspace
    from naviewer.workspace.runs import confirm_flags, read_state

    path = tmp_path / "ws"
    argv = ["demo", "--no-gui", "--workspace", str(path), "--epochs", "4", "--threads", "1"]
    for item in TINY:
        argv += ["--set", item]
    threads = torch.get_num_threads()
    try:
        assert main(argv) == 0
        with Workspace.open(path) as ws:
            confirm_flags(ws, int(read_state(ws, RUN)["pass_id"]))
            finetune_and_finish(ws, RUN, config_overrides={"num_threads": 1})
    finally:
        torch.set_num_threads(threads)
    return path


def test_retrain_again_trains_a_new_run_and_the_tab_shows_it(qtbot, window, retrained):
    from naviewer.workflows.demo import RUN

    job = window.open_workspace(retrained)
    qtbot.waitSignal(job.finished, timeout=30000).wait()
    assert job.state is JobState.FINISHED, job.error_details
    qtbot.waitUntil(lambda: window.analyst_dock is not None and window.analyst_dock.panel is not None, timeout=15000)
    dock = window.analyst_dock
    gate, session = dock.panel.finetune_gate, dock.panel.session
    assert gate.done_text.startswith("Done earlier") and gate.again_button.isHidden()
    confirmed = np.flatnonzero(session.state_codes == 1)
    session.reject(confirmed[:1])
    assert gate.again_button.isEnabled()
    gate.again_button.click()
    again = dock.finetune_job
    assert again is not None
    qtbot.waitSignal(again.finished, timeout=120000).wait()
    assert again.state is JobState.FINISHED, again.error_details
    qtbot.waitUntil(lambda: "retrained again" in gate.reason.text(), timeout=10000)
    assert f"run {RUN}-again-1" in gate.reason.text() and gate.again_button.isHidden()
    assert gate.result.rowCount() >= 1
    assert (retrained / "runs" / f"{RUN}-again-1" / "finetune_result.json").is_file()
    assert window.monitor is None or window.monitor.follower is None or \
        window.monitor.follower.path.parent.name == f"{RUN}-again-1"


def test_the_check_after_the_retrain_proposes_and_the_analyst_confirms_then_retrains_again(qtbot, window, retrained,
                                                                                            monkeypatch):
    """The review loop's second round in one tab: Look for triggers in the retrained encoder runs PatchSearch (here
    kdist, which always flags: the tiny encoder has no trigger to find) in a job, names what it found still in the
    training set and decides nothing; one click confirms those, Retrain again is then offered; the link opens its
    pass."""
    import naviewer.workflows.check_after_retrain as module

    monkeypatch.setattr(module, "CHECK_DETECTOR", "kdist")
    job = window.open_workspace(retrained)
    qtbot.waitSignal(job.finished, timeout=30000).wait()
    qtbot.waitUntil(lambda: window.analyst_dock is not None and window.analyst_dock.panel is not None, timeout=15000)
    dock = window.analyst_dock
    gate, session = dock.panel.finetune_gate, dock.panel.session
    assert gate.check_button.isVisibleTo(gate) and gate.check_button.isEnabled()
    assert gate.confirm_check_button.isHidden() and gate.again_button.isHidden()
    before = session.state_codes.copy()
    started = []
    window.jobs.job_started.connect(started.append)
    gate.check_button.click()
    check = next(j for j in started if j.name.startswith("Look for triggers"))
    qtbot.waitSignal(check.finished, timeout=120000).wait()
    assert check.state is JobState.FINISHED, check.error_details
    qtbot.waitUntil(lambda: gate.check_line.isVisibleTo(gate), timeout=10000)
    added = np.asarray(check.result["added"])
    assert added.size and "still in the training set" in gate.check_line.text()
    assert np.array_equal(session.state_codes, before)  # it decided nothing
    assert gate.confirm_check_button.isVisibleTo(gate) and f"these {added.size:,}" in gate.confirm_check_button.text()
    gate.confirm_check_button.click()
    assert (session.state_codes[added] == 1).all() and gate.confirm_check_button.isHidden()
    assert "every one is decided now" in gate.check_line.text()
    session.undo()  # U: the proposal is back, said as before (the line kept "decided now"; session 35)
    assert gate.confirm_check_button.isVisibleTo(gate) and "still in the training set" in gate.check_line.text()
    gate.confirm_check_button.click()
    assert gate.again_button.isVisibleTo(gate) and gate.again_button.isEnabled()
    gate.check_line.linkActivated.emit(f"pass:{check.result['pass_id']}")
    qtbot.waitUntil(lambda: window.analyst_dock is not None and window.analyst_dock.pass_id == check.result["pass_id"],
                    timeout=15000)
