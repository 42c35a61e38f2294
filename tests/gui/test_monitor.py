"""The training monitor plots records from a live job and from a metrics.jsonl another process appends to."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import pyqtgraph as pg

from naviewer.gui.jobs import JobManager
from naviewer.gui.monitor import MetricsFollower, TrainingMonitor


def _records(epochs=3, steps_per_epoch=4, extra=None):
    yield {"kind": "run_start", "time": 0, "config": {}, "total_epochs": epochs, "steps_per_epoch": steps_per_epoch, "method": "byol"}
    for epoch in range(epochs):
        for s in range(steps_per_epoch):
            step = epoch * steps_per_epoch + s + 1  # like the trainer: the counter after the step
            yield {"kind": "step", "time": 0, "epoch": epoch, "step": step, "loss": 4.0 - 0.1 * step, "lr": 0.1, "images_per_s": 500.0}
        record = {"kind": "epoch", "time": 0, "epoch": epoch, "loss": 3.0 - epoch, "lr": 0.1, "images_per_s": 510.0,
                  "epoch_time_s": 1.0, "knn_acc": 0.2 + 0.1 * epoch}
        record.update((extra or {}).get(epoch, {}))
        yield record


@pytest.fixture
def monitor(qtbot):
    widget = TrainingMonitor()
    qtbot.addWidget(widget)
    return widget


def test_plots_points_from_a_running_job(qtbot, monitor):
    records = list(_records())

    def fake_training(ctx):
        for record in records:
            ctx.check()
            ctx.metric(**record)
        return len(records)

    manager = JobManager()
    job = manager.start(fake_training, "Train byol", resources=["training"])
    monitor.attach_job(job)
    qtbot.waitSignal(job.finished, timeout=5000).wait()
    qtbot.waitUntil(lambda: len(monitor.data.get(("loss", "epoch"), ([], []))[0]) == 3, timeout=2000)
    xs, ys = monitor.data[("loss", "step")]
    assert len(xs) == 12 and xs[3] == pytest.approx(1.0) and xs[4] == pytest.approx(1.25)  # step 4 of 4 ends epoch 1
    assert monitor.data[("loss", "epoch")] == ([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])
    assert monitor.data[("knn_acc", "epoch")][1] == pytest.approx([20.0, 30.0, 40.0])
    monitor.redraw()
    curve = monitor.curves[("loss", "loss", "epoch")]
    assert list(curve.getData()[1]) == [3.0, 2.0, 1.0]
    assert monitor.visible_plots() == ["loss", "lr", "throughput", "knn"]  # no ASR/DIFT data: hidden
    assert "BYOL" in monitor.header.text() and "epoch 3 of 3" in monitor.header.text()


def test_asr_and_dift_plots_appear_when_present(qtbot, monitor):
    extra = {2: {"asr": 0.9, "dift_detected": 40, "dift_precision": 0.8, "dift_recall": 0.5}}
    monitor.add_records(_records(extra=extra))
    monitor.add_records([{"kind": "event", "time": 0, "event": "dift_stop", "epoch": 2}])
    monitor.redraw()
    assert monitor.visible_plots() == ["loss", "lr", "throughput", "knn", "asr", "dift", "dift_pr"]
    assert monitor.plots["asr"].isVisibleTo(monitor)
    assert monitor.data[("dift_precision", "epoch")] == ([3.0], [80.0])
    assert len(monitor._markers) == 3  # the DIFT stop is marked on loss, kNN and DIFT plots
    monitor.reset()
    assert monitor.visible_plots() == ["loss", "lr", "throughput", "knn"] and not monitor._markers


def test_a_count_of_one_or_two_samples_is_drawn_on_whole_samples(qtbot, monitor):
    """The "DIFT detected" plot of a buffer holding 0-1 samples was drawn on ticks of 0.1 samples (a newcomer,
    session 25): a count plot spans at least five samples."""
    monitor.add_records(_records(extra={1: {"dift_detected": 0}, 2: {"dift_detected": 1}}))
    monitor.redraw()
    _x0, _x1, y0, y1 = monitor._ranges["dift"]
    assert y0 == 0.0 and y1 >= 5.0


WRITER = textwrap.dedent(
    """
    import json, sys, time
    path, records = sys.argv[1], json.loads(sys.argv[2])
    with open(path, "a") as f:
        for i, record in enumerate(records):
            line = json.dumps(record) + "\\n"
            if i == 3:  # a line written in two pieces: the reader must wait for its newline
                f.write(line[:10]); f.flush(); time.sleep(0.3); f.write(line[10:])
            else:
                f.write(line)
            f.flush()
            time.sleep(0.02)
    """
)


def test_follows_metrics_file_appended_by_another_process(qtbot, monitor, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    records = list(_records())
    follower = monitor.follow(run, interval_ms=50)  # the file does not exist yet
    assert monitor.state == "following"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(run / "metrics.jsonl"), json.dumps(records)])
    try:
        qtbot.waitUntil(lambda: len(monitor.data.get(("loss", "epoch"), ([], []))[0]) == 3, timeout=15000)
    finally:
        writer.wait(10)
    assert len(monitor.data[("loss", "step")][0]) == 12
    assert monitor.run_info["method"] == "byol"
    assert follower.offset == (run / "metrics.jsonl").stat().st_size


def test_follower_waits_for_partial_line_and_restarts_on_rewrite(qtbot, tmp_path):
    path = tmp_path / "metrics.jsonl"
    follower = MetricsFollower(path)
    got, restarts = [], []
    follower.records.connect(got.extend)
    follower.restarted.connect(lambda: restarts.append(1))
    path.write_text('{"kind":"step","step":1}\n{"kind":"st')
    assert follower.poll() == 1
    assert follower.poll() == 0  # half a line: nothing yet
    with open(path, "a") as f:
        f.write('ep","step":2}\n')
    assert follower.poll() == 1 and got[-1] == {"kind": "step", "step": 2}
    path.write_text('{"kind":"run_start"}\n')  # rewritten, shorter
    assert follower.poll() == 1 and restarts == [1]


def test_theme_switch_recolours_plots(qtbot, monitor):
    from naviewer.gui.resources import load_theme

    monitor.set_theme(load_theme("dark"))
    assert monitor.plots["loss"].backgroundBrush().color().name() == load_theme("dark").plot_background


def _steps(epochs, steps_per_epoch, first_epoch=0, first_step=0, log_every=1):
    """Step and epoch records like the trainer's: the last step of every epoch is always logged."""
    step = first_step
    for epoch in range(first_epoch, first_epoch + epochs):
        for s in range(1, steps_per_epoch + 1):
            step += 1
            if s % log_every == 0 or s == steps_per_epoch:
                yield {"kind": "step", "epoch": epoch, "step": step, "loss": 1.0, "lr": 0.1, "images_per_s": 9.0}
        yield {"kind": "epoch", "epoch": epoch, "loss": 1.0, "lr": 0.1, "images_per_s": 9.0}


def test_steps_follow_their_epoch_after_a_restart_in_the_file(qtbot, monitor):
    """A DIFT run reviewed by `naviewer finetune`: a second run_start with fewer steps per epoch."""
    records = [{"kind": "run_start", "total_epochs": 3, "steps_per_epoch": 11, "n_samples": 1437}]
    records += _steps(3, 11, log_every=5)
    records += [{"kind": "event", "event": "dift_stop", "epoch": 2, "reason": "stable", "flagged": 114},
                {"kind": "event", "event": "finetune", "skipped": True, "restart_mode": "retrain"},
                {"kind": "event", "event": "restart", "n_samples": 1323, "remaining_epochs": 3},
                {"kind": "run_start", "total_epochs": 6, "steps_per_epoch": 10, "n_samples": 1323}]
    records += _steps(3, 10, first_epoch=3, first_step=33, log_every=5)
    monitor.add_records(records)
    xs = monitor.data[("loss", "step")][0]
    assert xs == pytest.approx([5 / 11, 10 / 11, 1, 1 + 5 / 11, 1 + 10 / 11, 2, 2 + 5 / 11, 2 + 10 / 11, 3,
                                3.5, 4, 4.5, 5, 5.5, 6])
    assert monitor.data[("loss", "epoch")][0] == [1, 2, 3, 4, 5, 6]
    # the three events at the end of epoch 3 share one line and one readable label
    (group,) = monitor.marker_groups
    assert group.x == 3 and group.labels == ["DIFT stop", "restart (retrain)"]
    assert group.lines[0].label.toPlainText() == "DIFT stop\nrestart (retrain)"
    assert group.lines[0].toolTip().startswith("epoch 3 of 6\nDIFT stop: stable, 114 flagged")


@pytest.mark.parametrize("skipped", [True, False])
def test_a_restart_that_fell_back_to_a_retrain_is_marked_as_one(qtbot, monitor, skipped):
    """The paper's restart that retrained from scratch (Eq. 7 took no step) drew "restart" and a "fine-tune"
    line of its own (a review, session 29): it reads "restart (retrain)", as a retrain asked for does."""
    records = [{"kind": "run_start", "total_epochs": 3, "steps_per_epoch": 11, "n_samples": 1437}]
    records += _steps(3, 11, log_every=5)
    records += [{"kind": "event", "event": "dift_stop", "epoch": 2, "reason": "stable", "flagged": 114},
                {"kind": "event", "event": "finetune", "skipped": skipped, "restart_mode": "retrain",
                 "fallback": "retrain", "steps": 0, "removed": 114},
                {"kind": "event", "event": "restart", "n_samples": 1323, "remaining_epochs": 3}]
    monitor.add_records(records)
    (group,) = monitor.marker_groups
    assert group.labels == ["DIFT stop", "restart (retrain)"]


@pytest.mark.parametrize("mode", ["retrain", "continue"])
def test_a_retrain_from_scratch_breaks_the_curves_where_it_began(qtbot, monitor, mode):
    """After Remove and retrain the ASR line ran from the old encoder's 100 % at epoch 30 straight down to the new
    one's 4 % at 35, as if one encoder had unlearned it (a newcomer, session 30): a re-initialised encoder's curves
    start afresh; the paper's restart goes on from fine-tuned weights, and its line goes on."""
    monitor.add_records([{"kind": "run_start", "total_epochs": 2, "steps_per_epoch": 8, "n_samples": 80}])
    monitor.add_records(_steps(2, 8, log_every=4))
    finetune = ({"kind": "event", "event": "finetune", "skipped": True, "restart_mode": "retrain"} if mode == "retrain"
                else {"kind": "event", "event": "finetune", "steps": 12, "removed": 30})
    monitor.add_records([finetune, {"kind": "event", "event": "restart", "n_samples": 50, "remaining_epochs": 2}])
    monitor.add_records(list(_steps(2, 4, first_epoch=2, first_step=16)))
    monitor.redraw()  # the curves take the cut (pyqtgraph accepts the per-point connect array)
    x = np.asarray(monitor.data[("loss", "epoch")][0], float)
    joined = monitor._connections(x)
    if mode == "retrain":
        assert list(joined) == [True, False, True, True]  # epochs 1-2 (old encoder) | 3-4 (the new one)
    else:
        assert joined == "all"


def test_steps_follow_their_epoch_after_an_in_process_restart(qtbot, monitor):
    """The window's own DIFT job restarts inside the trainer: only a restart event, no run_start."""
    monitor.add_records([{"kind": "run_start", "total_epochs": 2, "steps_per_epoch": 8, "n_samples": 80}])
    monitor.add_records(_steps(2, 8, log_every=4))
    monitor.add_records([{"kind": "event", "event": "restart", "n_samples": 50, "remaining_epochs": 2}])
    assert monitor.run_info["total_epochs"] == 4
    monitor.add_records([{"kind": "step", "epoch": 2, "step": 18, "loss": 1.0}])
    assert monitor.data[("loss", "step")][0][-1] == pytest.approx(2.4)  # 2 of an estimated 5 steps
    monitor.add_records(list(_steps(2, 4, first_epoch=2, first_step=16))[2:])  # epoch 3 has 4 steps, not 5
    xs = monitor.data[("loss", "step")][0]
    assert xs[4:] == pytest.approx([2.5, 2.75, 3.0, 3.25, 3.5, 3.75, 4.0])
    assert monitor.data[("loss", "epoch")][0] == [1, 2, 3, 4]
    # the header counts the epochs since the restart first ("epoch 4 of 4" over a retrain from scratch read as the
    # poisoned run going on; a newcomer, session 26)
    monitor._update_header()
    assert "epoch 2 of 2 after the restart (4 of 4 in all)" in monitor.header.text()


def test_resumed_run_places_steps_in_their_epoch(qtbot, monitor):
    monitor.add_records([{"kind": "run_start", "total_epochs": 4, "steps_per_epoch": 4,
                          "resumed_from_epoch": 2, "resumed_from_step": 8}])
    monitor.add_records(_steps(2, 4, first_epoch=2, first_step=8, log_every=2))
    assert monitor.data[("loss", "step")][0] == pytest.approx([2.5, 3.0, 3.5, 4.0])


def _stopped_then_started_again(monitor, event: str) -> None:
    """A run's file ending with ``event`` (the process gone), then a resumed run's start: said, then no longer."""
    monitor.add_records([{"kind": "run_start", "total_epochs": 4, "steps_per_epoch": 4, "method": "simclr"}])
    monitor.add_records(_steps(1, 4))
    monitor.add_records([{"kind": "event", "event": event, "epoch": 1}])
    assert monitor.state == event and event in monitor.header.text()
    monitor.add_records([{"kind": "run_start", "total_epochs": 4, "steps_per_epoch": 4, "method": "simclr",
                          "resumed_from_epoch": 1, "resumed_from_step": 4}])
    assert monitor.state == "running" and event not in monitor.header.text()


def test_a_run_started_again_after_it_stopped_is_not_said_stopped(qtbot, monitor):
    """A resumed run (and the retrain after a review) appends to the file that ended with "cancelled" (or
    "finished"): the header said so over the live run (newcomer session 16)."""
    _stopped_then_started_again(monitor, "cancelled")
    monitor.add_records([{"kind": "event", "event": "finished"}])
    assert monitor.state == "finished"


def test_a_run_that_ended_while_paused_is_not_said_paused_once_it_trains_again(qtbot, monitor):
    """The process ended while the run was paused (a closed window, a crash): "paused" was the file's last event, and
    the resumed run's header read "paused" from epoch 44 to 54 while it trained (a newcomer, session 30)."""
    _stopped_then_started_again(monitor, "paused")
    monitor.add_records([{"kind": "event", "event": "paused", "epoch": 2}])  # paused in this process: said again
    assert monitor.state == "paused"
    monitor.add_records([{"kind": "event", "event": "resumed", "epoch": 2}])
    assert monitor.state == "running"


def test_nearby_event_labels_are_stacked(qtbot, monitor):
    monitor.add_records(_records(epochs=3))
    monitor.add_records([{"kind": "event", "event": "dift_stop", "epoch": 1},
                         {"kind": "event", "event": "restart", "n_samples": 9, "remaining_epochs": 1, "epoch": 2}])
    first, second = monitor.marker_groups
    assert (first.x, second.x) == (2, 3) and first.slot != second.slot
    assert first.lines[0].label.orthoPos != second.lines[0].label.orthoPos


def test_epoch_points_say_their_epoch_one_based(qtbot, monitor):
    monitor.add_records(_records(epochs=3))
    scatter = monitor.curves[("knn", "knn_acc", "epoch")].scatter
    assert scatter.opts["tip"](x=1.0, y=20.0, data=None) == "epoch 1 of 3\nkNN accuracy (top-1): 20 %"


def _no_monitor_records(epochs=3, total=3, knn_every=5):
    """A run trained with --no-monitor: step and epoch records, no kNN/ASR values."""
    yield {"kind": "run_start", "config": {"knn_every": knn_every}, "total_epochs": total, "steps_per_epoch": 2}
    for record in _steps(epochs, 2):
        yield record


def test_knn_plot_says_why_it_is_empty_in_a_no_monitor_run(qtbot, monitor):
    monitor.add_records(_no_monitor_records(epochs=2, total=10))  # still running: kNN comes every 5 epochs
    note = monitor.notes["knn"]
    assert note.isVisible() and "every 5 epochs" in note.toPlainText()
    assert not monitor.plots["knn"].getPlotItem().getAxis("left").isVisible()  # no empty 0..1 axes
    monitor.add_records([{"kind": "event", "event": "finished"}])  # stopped at epoch 2 of 10: before the first kNN
    assert "stopped after epoch 2,\nbefore its first (every 5 epochs; never with --no-monitor)" in note.toPlainText()  # (it blamed
    monitor.reset()                                                      # --no-monitor; a newcomer, session 22)
    monitor.add_records(_no_monitor_records(epochs=6, total=6))
    monitor.add_records([{"kind": "event", "event": "finished"}])
    assert "no kNN or ASR evaluation in this run" in note.toPlainText() and "--no-monitor" in note.toPlainText()
    monitor.redraw()
    assert monitor.visible_plots() == ["loss", "lr", "throughput", "knn"]  # no attack, no DIFT: those stay hidden
    assert monitor.notes["loss"].isVisible() is False
    monitor.reset()
    assert not note.isVisible() and monitor.plots["knn"].getPlotItem().getAxis("left").isVisible()


def test_knn_note_goes_when_the_first_evaluation_arrives(qtbot, monitor):
    monitor.add_records(_no_monitor_records(epochs=2, total=4, knn_every=0))
    assert "at the end of the run" in monitor.notes["knn"].toPlainText()
    monitor.add_records([{"kind": "epoch", "epoch": 3, "loss": 1.0, "knn_acc": 0.5}])
    monitor.redraw()
    item = monitor.plots["knn"].getPlotItem()
    assert not monitor.notes["knn"].isVisible() and item.getAxis("left").isVisible()
    assert item.getViewBox().viewRange()[1][1] >= 100.0  # back on its 0..100 % range


def test_a_run_whose_last_epoch_is_written_counts_as_over(qtbot, monitor):
    monitor.add_records(_no_monitor_records(epochs=3, total=3))  # the last epoch written: over
    assert "in this run" in monitor.notes["knn"].toPlainText()
    from naviewer.gui.resources import load_theme

    monitor.set_theme(load_theme("dark"))
    assert monitor.notes["knn"].isVisible() and load_theme("dark").plot_foreground in monitor.notes["knn"].textItem.toHtml()


def test_header_says_retraining_while_the_run_retrains_after_the_removal(qtbot, monitor):
    """Issue 14 item 9: the monitor says "retraining" from the restart after removal until the end."""
    records = [{"kind": "run_start", "total_epochs": 3, "steps_per_epoch": 11, "n_samples": 1437, "method": "simclr"}]
    records += _steps(3, 11, log_every=5)
    records += [{"kind": "event", "event": "dift_stop", "epoch": 2, "reason": "stable", "flagged": 114},
                {"kind": "event", "event": "finished", "reason": "dift_review"},
                {"kind": "event", "event": "finetune", "skipped": True, "restart_mode": "retrain", "removed": 114},
                {"kind": "event", "event": "restart", "n_samples": 1323, "remaining_epochs": 3},
                {"kind": "run_start", "total_epochs": 6, "steps_per_epoch": 10, "n_samples": 1323, "method": "simclr"}]
    records += _steps(1, 10, first_epoch=3, first_step=33, log_every=5)
    monitor.add_records(records)
    assert "retraining from scratch on 1,323 kept samples (114 confirmed poisons removed)" in monitor.header.text()
    monitor.add_records([{"kind": "event", "event": "finished"}])
    assert "retraining" not in monitor.header.text()


def test_precision_recall_before_and_after_label_spreading(qtbot, monitor):
    """Issue 14 item 9: the buffer's per-epoch curves are labelled before label spreading; the pass's
    final figures (after it) are their own points."""
    monitor.add_records([{"kind": "run_start", "total_epochs": 5, "steps_per_epoch": 2}]
                        + [{"kind": "epoch", "epoch": e, "loss": 1.0, "dift_detected": 10 + e,
                            "dift_precision": 0.8, "dift_recall": 0.5} for e in range(3)])
    title = monitor.plots["dift_pr"].getPlotItem().titleLabel.text
    assert all(word in title for word in ("precision", "recall", "●&nbsp;before", "★&nbsp;after spreading"))
    assert monitor.add_spreading_result({"final_precision": 0.9, "final_recall": 0.97}, epoch=2)
    monitor.redraw()
    xs, ys = monitor.curves[("dift_pr", "final_recall", "spread")].getData()
    assert list(xs) == [3.0] and list(ys) == pytest.approx([97.0])
    assert not monitor.add_spreading_result({"noop": True}, epoch=2)  # neither flags nor ground truth
    assert monitor.add_spreading_result({"flagged": 3}, epoch=2)  # no ground truth: the flags' count only
    monitor.redraw()
    assert monitor.curves[("dift_pr", "final_recall", "spread")].getData()[0] is None or \
        not len(monitor.curves[("dift_pr", "final_recall", "spread")].getData()[0])  # the new pass replaced it
    assert list(monitor.curves[("dift", "final_flagged", "spread")].getData()[1]) == [3.0]


def test_the_header_and_the_detected_plot_say_the_passs_flags_not_the_buffers(qtbot, monitor):
    """The demo's monitor said "DIFT 26 flagged" (the buffer before label spreading) of a pass that flagged 110,
    and showed no after-spreading point when it only followed the run folder (session 18)."""
    monitor.add_records([{"kind": "run_start", "total_epochs": 5, "steps_per_epoch": 2}]
                        + [{"kind": "epoch", "epoch": e, "loss": 1.0, "dift_detected": 26,
                            "dift_precision": 1.0, "dift_recall": 0.23} for e in range(3)])
    assert "DIFT 26 in the buffer" in monitor.header.text()
    monitor.add_records([{"kind": "event", "event": "dift_stop", "epoch": 2, "reason": "stable", "buffer": 26,
                          "flagged": 110, "noop": False, "final_precision": 1.0, "final_recall": 0.973}])
    monitor.redraw()
    assert "DIFT 110 flagged" in monitor.header.text() and "in the buffer" not in monitor.header.text()
    assert list(monitor.curves[("dift", "final_flagged", "spread")].getData()[1]) == [110.0]
    assert list(monitor.curves[("dift_pr", "final_recall", "spread")].getData()[1]) == pytest.approx([97.3])


def _workspace_with_floor(tmp_path, floor):
    from naviewer.data.sources import open_dataset
    from naviewer.workspace import Workspace

    from .fakes import image_folder

    with Workspace.create(tmp_path / "ws", open_dataset(image_folder(tmp_path / "images", per_class=3, size=16))) as ws:
        if floor is not None:
            ws.update_config("floor", floor)
    run = tmp_path / "ws" / "runs" / "r"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("")
    return run


def test_workspace_floor_is_read_from_the_runs_workspace(tmp_path):
    """Issue 14 item 9: the floor comes from the [floor] of the workspace that holds the run."""
    from naviewer.gui.monitor import workspace_floor

    floor = {"asr": 0.213, "protocol": "code", "method": "simclr", "epochs": 20}
    run = _workspace_with_floor(tmp_path, floor)
    for path in (run, run / "metrics.jsonl", tmp_path / "ws"):
        assert workspace_floor(path)["asr"] == pytest.approx(0.213)
    assert workspace_floor(tmp_path / "elsewhere") is None and workspace_floor(None) is None
    (tmp_path / "ws" / "workspace.toml").write_text("this is [not toml")
    assert workspace_floor(run) is None  # an unreadable workspace.toml: no floor, no failure


def test_asr_plot_draws_the_no_poison_floor(qtbot, monitor):
    monitor.add_records(_records(extra={1: {"asr": 0.6}, 2: {"asr": 0.25}}))
    monitor.set_floor({"asr": 0.213, "protocol": "code", "method": "simclr", "epochs": 20})
    line = monitor.floor_line
    assert line is not None and line.angle == 0 and line.value() == pytest.approx(21.3)
    assert line in monitor.plots["asr"].getPlotItem().items
    assert line.label.format == "no-poison floor 21.3 %" and "clean set" in line.toolTip()
    assert "ASR 25.0 % (no-poison floor 21.3 %)" in monitor.header.text()
    monitor.reset()  # a new run of the same workspace keeps the workspace's floor
    assert monitor.floor_line is line
    monitor.set_floor(None)
    assert monitor.floor_line is None and line not in monitor.plots["asr"].getPlotItem().items
    monitor.add_records(_records(extra={2: {"asr": 0.25}}))
    assert "floor" not in monitor.header.text()


def test_window_following_a_workspace_run_shows_its_floor(qtbot, window, tmp_path):
    qtbot.waitUntil(lambda: window.monitor is not None, timeout=10000)
    run = _workspace_with_floor(tmp_path / "a", {"asr": 0.3, "protocol": "uniform"})
    window.follow_run(run)
    assert window.monitor.floor_label() == "no-poison floor 30.0 %"
    window.follow_run(_workspace_with_floor(tmp_path / "b", None))  # a workspace without a floor
    assert window.monitor.floor is None and window.monitor.floor_line is None


def test_a_long_run_path_never_widens_the_monitor(qtbot, monitor, tmp_path):
    """Found in the 1280x720 screenshots of a real run: 'following: /a/long/path/...' laid out in full made
    the window wider than the screen. The label shows the path's tail; the tooltip has all of it."""
    short = tmp_path / "r"
    short.mkdir()
    (short / "metrics.jsonl").write_text("")
    monitor.follow(short)  # (the charts show once a run is followed: the width with them, a short path)
    before = monitor.minimumSizeHint().width()
    run = tmp_path.joinpath(*[f"a-rather-long-folder-name-{i}" for i in range(8)], "runs", "demo")
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("")
    monitor.follow(run)
    assert monitor.minimumSizeHint().width() <= before
    assert monitor.source_label.text() == "following: …/runs/demo/metrics.jsonl"
    assert str(run / "metrics.jsonl") in monitor.source_label.toolTip()


def test_following_a_folder_that_cannot_feed_the_monitor_says_why(qtbot, tmp_path):
    from naviewer.gui.monitor import TrainingMonitor

    monitor = TrainingMonitor()
    qtbot.addWidget(monitor)
    (tmp_path / "empty").mkdir()
    monitor.follow(tmp_path / "empty")
    assert "There is no metrics.jsonl in" in monitor.header.text()
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "metrics.jsonl").write_text('{"kind": "ep\nGARBAGE\n')
    monitor.follow(tmp_path / "garbled")
    assert "no readable record" in monitor.header.text()
    # random bytes with no line end, and a pipe: "waiting for the first records" for ever, or "no metrics.jsonl"
    # (a GUI sweep, session 21)
    (tmp_path / "binary").mkdir()
    (tmp_path / "binary" / "metrics.jsonl").write_bytes(bytes(range(256)) * 80)
    monitor.follow(tmp_path / "binary")
    assert "20,480 bytes but no readable record" in monitor.header.text()
    import os

    if hasattr(os, "mkfifo"):
        (tmp_path / "pipe").mkdir()
        os.mkfifo(tmp_path / "pipe" / "metrics.jsonl")
        monitor.follow(tmp_path / "pipe")
        assert "is not a regular file" in monitor.header.text()
    # records of the wrong types left the header blank (a GUI sweep, session 21): they are counted and said
    (tmp_path / "typed").mkdir()
    (tmp_path / "typed" / "metrics.jsonl").write_text(
        '{"kind": "step", "epoch": "x", "loss": "NaN?"}\n[1,2]\n{"kind":"epoch","epoch":1e309}\nnull\n'
        '{"kind": "step", "step": -1, "loss": {"a":1}}\n{"no": "kind"}\n')
    monitor.follow(tmp_path / "typed")
    qtbot.waitUntil(lambda: "3 records of" in monitor.header.text(), timeout=5000)
    assert "skipped: not a naviewer run's" in monitor.header.text()


def test_following_a_folder_that_does_not_exist_is_said_in_a_dialog(qtbot, window, tmp_path):
    """A newcomer's wrong path waited for ever ("There is no metrics.jsonl in ... yet") and was listed as the
    monitored run."""
    assert window.follow_run(tmp_path / "no" / "such-run") is None
    box = window.last_message_box
    assert box is not None and "no such folder" in box.text() and "such-run" in box.text()
    assert window.state.run is None
    box.close()


def test_following_a_folder_that_is_not_a_run_is_said_in_a_dialog(qtbot, window, tmp_path):
    """A folder holding a readme, not a run, was followed in silence, waiting for ever (a newcomer, session 29); an
    empty folder may be a run about to start and is followed."""
    notes = tmp_path / "notdataset"
    notes.mkdir()
    (notes / "readme.txt").write_text("hello", encoding="utf-8")
    assert window.follow_run(notes) is None
    box = window.last_message_box
    assert box is not None and "not a run folder" in box.text() and window.state.run is None
    box.close()
    fresh = tmp_path / "fresh-run"
    fresh.mkdir()
    window.follow_run(fresh)
    assert window.state.run is not None


def test_a_step_and_epoch_pair_of_one_metric_has_a_legend_outside_the_data(qtbot, monitor):
    """The loss plot's line (each step) and dots (epoch means) had no legend; a newcomer asked what they were. Inside
    the plot every corner was under a curve or an event label at some point (newcomers, sessions 18, 21, 26): the
    legend is a line under the title, each series' mark in its curve's colour."""
    from naviewer.analysis.monitor_model import PLOTS

    for spec in PLOTS:
        item = monitor.plots[spec.name].getPlotItem()
        assert item.legend is None, spec.name  # nothing drawn over the data
        title = item.titleLabel.text
        for series, name in zip(spec.series, monitor.legend_names(spec)):
            colour = pg.mkColor(monitor._theme.color(series.color_index)).name()
            assert f'color:{colour}' in title and name.split(", ")[0].replace(" ", "&nbsp;") in title, (spec.name, name)
        # two lines at most, each short enough for a plot at 1280x720 (a title does not wrap: a long one squeezed the
        # plot's data; a third line was cut off at the top)
        lines = [re.sub(r"<[^>]+>", "", line).replace("&nbsp;", " ") for line in title.split("<br>")]
        assert len(lines) <= 2 and all(len(line) <= 32 for line in lines), (spec.name, lines)
    assert monitor.legend_names(next(p for p in PLOTS if p.name == "loss")) == ["step", "epoch mean"]
    assert monitor.legend_names(next(p for p in PLOTS if p.name == "knn")) == []  # one series: no legend


def test_naviewer_path_says_what_it_cannot_open_instead_of_waiting(qtbot, window, tmp_path):
    """`naviewer PATH` with a mistyped name, a checkpoint or a dataset folder waited for ever for a run's metrics
    (newcomer session 17): each is said in a dialog, and nothing is followed."""
    checkpoint = tmp_path / "last.pt"
    checkpoint.write_bytes(b"x")
    dataset = tmp_path / "images"
    (dataset / "cat").mkdir(parents=True)
    for target, words in ((tmp_path / "typo", "no such file or folder"), (checkpoint, "is a file, not a run folder"),
                          (dataset, "neither a workspace")):
        window.open_path(target)
        box = window.last_message_box
        assert box is not None and words in box.text() and str(target) in box.text(), target
        assert window.state.run is None
        box.close()
    assert window.follow_run(checkpoint) is None and "open its workspace and use Detect" in window.last_message_box.text()
    window.last_message_box.close()
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("")
    window.open_path(run)  # a run folder is followed, as before
    assert window.state.run == str(run)


def test_the_loss_keeps_its_label_band_free_of_data(qtbot, monitor):
    """The loss's band above the data holds the event labels ("DIFT stop" was drawn over the curve): the range refits
    before the curve reaches it, however the curve moves, live as it grows (the learning rate's schedule shapes a
    curve that rises, peaks and falls: a hard case for the band)."""
    import math

    from naviewer.analysis.monitor_model import PLOTS

    spec = next(p for p in PLOTS if p.name == "loss")
    assert spec.top_band > 0
    for warmup in (1, 8, 14):
        monitor.reset()
        monitor.add_records([{"kind": "run_start", "time": 0, "total_epochs": 15, "steps_per_epoch": 4, "method": "simclr"}])
        step = 0
        for epoch in range(15):
            for _ in range(4):
                step += 1
                t = step / 60
                w = warmup / 15
                lr = 0.5 * (t / w if t < w else 0.5 * (1 + math.cos(math.pi * (t - w) / (1 - w))))
                monitor.add_records([{"kind": "step", "time": 0, "epoch": epoch, "step": step, "lr": 1.0, "loss": lr}])
                monitor.redraw()
                _x0, _x1, y0, y1 = monitor._ranges["loss"]
                data_top = y0 + (y1 - y0) / (1 + spec.top_band)
                ys = monitor.data[("loss", "step")][1]
                assert max(ys) <= data_top + 1e-12, (warmup, step)


def test_a_run_stopped_for_review_says_so_not_finished(qtbot, monitor):
    """"epoch 34 of 50 · … · finished" after DIFT stopped the run for the review read as a training that ended early
    (a newcomer, session 21)."""
    monitor.add_records(_records(epochs=3))
    monitor.add_records([{"kind": "event", "time": 0, "event": "finished", "epochs": 2, "reason": "dift_review"}])
    assert monitor.state == "stopped for review" and monitor._run_over()
    monitor._on_job_state("finished")  # the job that ran it ends
    assert monitor.state == "stopped for review"
    assert "stopped for review" in monitor.header.text()
    monitor.add_records([{"kind": "event", "time": 0, "event": "restart", "n_samples": 10, "remaining_epochs": 2}])
    monitor.add_records([{"kind": "step", "time": 0, "epoch": 3, "step": 13, "loss": 1.0}])
    assert monitor.state != "stopped for review"  # the retrain after the review goes on


def test_before_any_run_the_monitor_says_how_to_start_one_instead_of_empty_charts(qtbot, monitor):
    """A fresh window showed four empty charts on 0-1 axes (a newcomer, session 21)."""
    monitor.show()
    assert monitor.placeholder.isVisible() and not monitor.plot_area.isVisible()
    assert "Run ▸ Run the demo" in monitor.placeholder.text()
    monitor.add_records(_records(epochs=1))
    assert monitor.plot_area.isVisible() and not monitor.placeholder.isVisible()
    monitor.reset()
    monitor.detach()
    assert monitor.placeholder.isVisible()


def test_a_forgotten_run_leaves_no_header_behind(qtbot, tmp_path):
    """After another workspace opened, the header still named the followed run's epoch and loss above "No training
    run yet" (a newcomer, session 22)."""
    from naviewer.gui.monitor import TrainingMonitor

    monitor = TrainingMonitor()
    qtbot.addWidget(monitor)
    monitor.add_records([{"kind": "run_start", "method": "simclr", "total_epochs": 150},
                         {"kind": "step", "epoch": 64, "step": 3, "loss": 4.47}])
    assert "SIMCLR" in monitor.header.text()
    monitor.detach()
    monitor.reset()
    monitor._update_header()
    assert monitor.header.text() == "" and not monitor.placeholder.isHidden()


def test_the_monitors_axes_use_no_si_prefix(qtbot):
    """"samples (x1e-15)" stood on the DIFT plot's axis over a curve of zeros (a newcomer, session 22)."""
    from naviewer.gui.monitor import TrainingMonitor

    monitor = TrainingMonitor()
    qtbot.addWidget(monitor)
    for plot in monitor.plots.values():
        item = plot.getPlotItem()
        assert not item.getAxis("left").autoSIPrefix and not item.getAxis("bottom").autoSIPrefix
