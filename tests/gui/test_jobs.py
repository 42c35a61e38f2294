"""The background job runner: progress, throttling, cancel, failure, conflicts."""

from __future__ import annotations

import time

import pytest

from naviewer.errors import NaviewerError
from naviewer.gui.jobs import BufferedReporter, JobConflict, JobManager, JobState

from .fakes import counting_job, endless_job


@pytest.fixture
def manager(qtbot):
    manager = JobManager()
    yield manager
    manager.cancel_all()
    manager.wait_all(5)


def test_job_reports_progress_and_finishes(qtbot, manager):
    progress, metrics = [], []
    job = manager.start(counting_job(steps=20), "count")
    job.progress.connect(lambda done, total, msg: progress.append((done, total, msg)))
    job.metrics.connect(metrics.extend)
    with qtbot.waitSignal(job.finished, timeout=5000) as blocker:
        pass
    assert blocker.args == ["finished"]
    assert job.state is JobState.FINISHED and job.result == 20
    assert progress[-1] == (20.0, 20.0, "counting")
    assert [m["step"] for m in metrics] == list(range(20))  # every metric arrives, in order
    assert not manager.running_jobs()


def test_reports_are_throttled(qtbot, manager):
    """A job reporting thousands of times a second reaches the GUI at ~15 deliveries a second."""

    def chatty(ctx):
        end = time.monotonic() + 0.6
        n = 0
        while time.monotonic() < end:
            n += 1
            ctx.progress(n, None, "chatty")
            ctx.metric(step=n)
        return n

    deliveries = []
    job = manager.start(chatty, "chatty")
    job.progress.connect(lambda *a: deliveries.append("p"))
    job.metrics.connect(lambda batch: deliveries.append(len(batch)))
    qtbot.waitSignal(job.finished, timeout=5000).wait()
    assert deliveries.count("p") <= 20
    assert sum(x for x in deliveries if x != "p") == job.result


def test_cancelled_job_stops(qtbot, manager):
    """Cancelling moves through CANCELLING to CANCELLED; no wall-clock limit (a loaded machine
    stretches any fixed one), the long wait only keeps a broken cancel from hanging the suite."""
    job = manager.start(endless_job, "endless")
    qtbot.wait(100)
    with qtbot.waitSignal(job.finished, timeout=30_000):
        job.cancel()
        assert job.state is JobState.CANCELLING
    assert job.state is JobState.CANCELLED


def test_pause_blocks_and_resume_continues(qtbot, manager):
    job = manager.start(endless_job, "endless")
    events = []
    job.event.connect(lambda kind, data: events.append(kind))
    qtbot.wait(50)
    job.pause()
    qtbot.waitUntil(lambda: "paused" in events, timeout=2000)
    done = job.done
    qtbot.wait(150)
    assert job.done == done  # nothing moved while paused
    job.resume()
    qtbot.waitUntil(lambda: "resumed" in events and job.done != done, timeout=2000)
    assert job.state is JobState.RUNNING


def test_failure_keeps_message_and_traceback(qtbot, manager):
    def broken(ctx):
        raise ValueError("boom")

    def user_error(ctx):
        raise NaviewerError("not a CIFAR batch", "/data/x.pkl")

    failed = []
    manager.job_failed.connect(failed.append)
    job = manager.start(broken, "broken")
    qtbot.waitSignal(job.finished, timeout=5000).wait()
    assert job.state is JobState.FAILED
    assert job.error_message() == "ValueError: boom"
    assert "Traceback" in job.error_details and "boom" in job.error_details
    job2 = manager.start(user_error, "user error")
    qtbot.waitSignal(job2.finished, timeout=5000).wait()
    assert job2.error_message() == "/data/x.pkl: not a CIFAR batch"
    assert failed == [job, job2]


def test_conflicting_job_is_refused(qtbot, manager):
    job = manager.start(endless_job, "Train simclr", resources=["training"])
    with pytest.raises(JobConflict, match="Train simclr.*training"):
        manager.start(counting_job(), "Train byol", resources=["training", "/ws"])
    other = manager.start(counting_job(steps=2), "export", resources=["/ws"])  # unrelated resource: fine
    qtbot.waitSignal(other.finished, timeout=5000).wait()
    job.cancel()
    qtbot.waitSignal(job.finished, timeout=2000).wait()
    again = manager.start(counting_job(steps=2), "Train byol", resources=["training"])  # free again
    qtbot.waitSignal(again.finished, timeout=5000).wait()


class FakeClock:
    """The jobs module's clock, moved by the test: the estimates are checked as arithmetic, never against how
    long the machine took (timings live in naviewer bench)."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    import types

    import naviewer.gui.jobs as jobs_module

    fake = FakeClock()
    monkeypatch.setattr(jobs_module, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    return fake


def test_remaining_time_is_estimated(qtbot, manager, clock):
    import threading

    halfway, stop = threading.Event(), threading.Event()

    def job(ctx):
        ctx.progress(0, 200, "count")
        halfway.wait(5)
        ctx.progress(100, 200, "count")
        while not stop.is_set():
            ctx.check()
            stop.wait(0.01)

    running = manager.start(job, "count")
    qtbot.waitUntil(lambda: running.fraction is not None, timeout=4000)  # the estimate starts here, at clock 0
    clock.now = 10.0
    halfway.set()
    qtbot.waitUntil(lambda: running.fraction == 0.5, timeout=4000)
    assert 0 < running.remaining_s < float("inf")  # an estimate: half done in 10 s, so 10 s left
    assert running.remaining_s == pytest.approx(10.0)
    # paused for a minute: no work done, and none counted (the estimate grew while paused; a newcomer, session 22)
    running.pause()
    clock.now = 70.0
    assert running.remaining_s == pytest.approx(10.0)
    running.resume()
    assert running.remaining_s == pytest.approx(10.0)
    stop.set()
    qtbot.waitSignal(running.finished, timeout=2000).wait()


def test_buffered_reporter_coalesces_progress():
    reporter = BufferedReporter()
    for i in range(100):
        reporter.progress(i, 100, "x")
    reporter.metric({"a": 1})
    reporter.event("log", {"message": "hi"})
    progress, metrics, events = reporter.drain()
    assert progress == (99.0, 100.0, "x") and metrics == [{"a": 1}] and events == [("log", {"message": "hi"})]
    assert reporter.drain() == (None, [], [])


def _four_epoch_training(hold_at: int, go_on):
    """A training job of 4 epochs x 10 steps that reports as the trainer does and waits at step ``hold_at``."""

    def training(ctx):
        ctx.metric(kind="run_start", total_epochs=4, steps_per_epoch=10, method="simclr")
        for step in range(40):
            ctx.check()
            ctx.progress(step % 10 + 1, 10, f"epoch {step // 10 + 1}/4")
            ctx.metric(kind="step", epoch=step // 10, step=step, loss=1.0)
            if step == hold_at:
                go_on.wait(5)

    return training


def test_training_jobs_estimate_the_whole_run_from_step_records(qtbot, manager, clock):
    import threading

    go_on = threading.Event()
    job = manager.start(_four_epoch_training(13, go_on), "Train")  # held at step 13 of 40 while the test reads
    qtbot.waitUntil(lambda: job.run_fraction is not None and job._run_step == 13, timeout=5000)
    clock.now = 13.0  # 13 steps since the first one, one second each
    # the whole run is left, not just the current epoch: 26 steps to go, where the epoch has 6
    epoch_ends = [6.0]
    assert job.remaining_s > epoch_ends[0]
    assert job.remaining_s == pytest.approx(26.0)
    go_on.set()
    qtbot.waitSignal(job.finished, timeout=10000).wait()
    manager.clear_finished()
    assert manager.jobs == []


def test_a_retrain_on_fewer_samples_is_counted_in_epochs(qtbot, manager):
    """After the review the run retrains on fewer samples: fewer steps an epoch while the step count goes on. Counted
    in steps it read 55 % at epoch 44 of 84 and 100 % at 81 (newcomer session 16); in epochs it is 3 of 4 here."""
    import threading

    go_on = threading.Event()

    def training(ctx):
        ctx.metric(kind="run_start", total_epochs=2, steps_per_epoch=10, method="simclr")
        for step in range(20):
            ctx.metric(kind="step", epoch=step // 10, step=step, loss=1.0)
        ctx.metric(kind="run_start", total_epochs=4, steps_per_epoch=5, method="simclr")  # the retrain: 2 more
        for step in range(20, 30):
            ctx.metric(kind="step", epoch=2 + (step - 20) // 5, step=step, loss=1.0)
            if step == 24:  # the end of epoch 3 of 4
                go_on.wait(5)

    job = manager.start(training, "Retrain")
    qtbot.waitUntil(lambda: job._run_step == 24, timeout=5000)
    assert job.run_fraction == pytest.approx(0.75)
    go_on.set()
    qtbot.waitSignal(job.finished, timeout=10000).wait()


@pytest.mark.parametrize("resumed", [False, True])
def test_a_retrain_after_the_review_counts_from_its_restart(qtbot, manager, resumed):
    """"epoch 15 of 50 after the restart (49 of 84 in all)" showed 57 %, the epochs before the review counted
    (a newcomer, session 18); and a retrain resumed after a cancel knew nothing of its restart. Both count from it."""
    import threading

    go_on = threading.Event()

    def training(ctx):
        if resumed:  # Run ▸ Resume: the run begins again at epoch 3 of 6, restarted at 2
            ctx.metric(kind="run_start", total_epochs=6, steps_per_epoch=5, method="simclr", restart_epoch=2,
                       resumed_from_epoch=3)
            first = 3
        else:
            ctx.metric(kind="run_start", total_epochs=3, steps_per_epoch=10, method="simclr")
            for step in range(20):
                ctx.metric(kind="step", epoch=step // 10, step=step, loss=1.0)
            ctx.metric(kind="event", event="restart", n_samples=50, remaining_epochs=4, restart_epoch=2,
                       total_epochs=6, steps_per_epoch=5)
            first = 2
        for i in range(5 * (6 - first)):
            epoch = first + i // 5
            ctx.metric(kind="step", epoch=epoch, step=100 + i, loss=1.0)
            if epoch == 3 and i % 5 == 4:  # the end of the retrain's second epoch of four
                go_on.wait(5)

    job = manager.start(training, "Retrain")
    qtbot.waitUntil(lambda: job._run_position == 4.0, timeout=5000)
    assert job.run_fraction == pytest.approx(0.5)
    go_on.set()
    qtbot.waitSignal(job.finished, timeout=10000).wait()
    assert job.run_fraction == pytest.approx(1.0)


def test_the_jobs_list_shows_how_far_the_whole_run_is(qtbot, manager):
    """The list read "epoch 2/4 … 100 %" (the epoch's share) where the status bar said 50 %."""
    import threading

    from naviewer.gui.jobs_panel import JobsPanel

    panel = JobsPanel(manager)
    qtbot.addWidget(panel)
    go_on = threading.Event()
    job = manager.start(_four_epoch_training(19, go_on), "Train")  # the end of epoch 2: the epoch 100 %, the run 50 %
    qtbot.waitUntil(lambda: job._run_step == 19 and job.done == 10, timeout=5000)
    panel._update_item(job)
    assert panel._items[job.id].text(2).endswith(" 50 %")
    go_on.set()
    qtbot.waitSignal(job.finished, timeout=10000).wait()


def test_a_finished_training_reads_whole_whatever_its_last_step_record(qtbot, manager):
    """The Jobs list read "finished 98 %" after a retrain whose last step record fell short of the epoch's end."""
    def training(ctx):
        ctx.metric(kind="run_start", total_epochs=2, steps_per_epoch=10, method="simclr")
        for step in range(18):  # two steps of the last epoch never logged
            ctx.metric(kind="step", epoch=step // 10, step=step, loss=1.0)

    job = manager.start(training, "Train")
    qtbot.waitSignal(job.finished, timeout=10000).wait()
    assert job.run_fraction == 1.0


def test_a_finished_job_reads_whole_in_the_list_whatever_its_last_stage_said(qtbot, manager):
    """A detection's last stage reported 99 % and its finished row kept "99 %" (a newcomer, session 25)."""
    from naviewer.gui.jobs_panel import JobsPanel

    panel = JobsPanel(manager)
    qtbot.addWidget(panel)

    def detect(ctx):
        ctx.progress(99, 100, "saving the passes")

    job = manager.start(detect, "Detect")
    qtbot.waitSignal(job.finished, timeout=10000).wait()
    panel._update_item(job)
    assert panel._items[job.id].text(2) == "100 %"


def test_a_second_run_in_one_job_starts_its_bar_at_its_start(qtbot, manager):
    """A job that trains twice showed the second run's "epoch 1 of 50" at the first one's 91 % until its first step
    (a newcomer, session 26)."""
    import threading

    go_on = threading.Event()

    def two_runs(ctx):
        ctx.metric(kind="run_start", total_epochs=2, steps_per_epoch=5, method="simclr")
        for step in range(9):
            ctx.metric(kind="step", epoch=step // 5, step=step, loss=1.0)
        ctx.metric(kind="run_start", total_epochs=50, steps_per_epoch=5, method="simclr")
        go_on.wait(5)

    job = manager.start(two_runs, "Two trainings")
    qtbot.waitUntil(lambda: job._run_total_epochs == 50.0, timeout=5000)
    assert job.run_fraction == pytest.approx(0.0)
    go_on.set()
    qtbot.waitSignal(job.finished, timeout=10000).wait()


def test_the_time_a_job_spent_paused_is_not_its_working_time(qtbot, manager, monkeypatch):
    """The Jobs list's Time counted on while a training was paused (1:04 -> 1:06; a newcomer, session 26): it shows
    the time the job worked, and says "(paused)" meanwhile. A fake clock: no wall-clock assertion."""
    import naviewer.gui.jobs as jobs_module
    from naviewer.gui.jobs_panel import JobsPanel

    clock = {"now": 1000.0}
    monkeypatch.setattr(jobs_module, "time", type("FakeTime", (), {"monotonic": staticmethod(lambda: clock["now"]),
                                                                   "sleep": staticmethod(time.sleep)}))
    panel = JobsPanel(manager)
    qtbot.addWidget(panel)
    job = manager.start(endless_job, "endless")
    clock["now"] += 64.0
    job.pause()
    clock["now"] += 120.0  # two minutes paused
    assert job.working_s == 64.0
    qtbot.waitUntil(lambda: panel.item_for(job) is not None and panel.item_for(job).text(3).endswith("(paused)"),
                    timeout=5000)
    item = panel.item_for(job)
    assert item.text(3).startswith("1:04")
    job.resume()
    clock["now"] += 6.0
    assert job.working_s == 70.0
    with qtbot.waitSignal(job.finished, timeout=30_000):
        job.cancel()


def test_a_superseded_speed_estimate_leaves_no_row(qtbot, manager):
    """Each edit in the Train dialog starts a speed estimate and cancels the one before: the Jobs list filled with
    "cancelled 25 %" rows (a newcomer, session 27). A cancelled estimate leaves the list; other cancelled jobs stay."""
    from naviewer.gui.jobs_panel import JobsPanel

    panel = JobsPanel(manager)
    qtbot.addWidget(panel)
    estimate = manager.start(endless_job, "Estimate the training speed", kind="estimate")
    other = manager.start(endless_job, "endless", resources=["other"])
    qtbot.waitUntil(lambda: panel.item_for(estimate) is not None and panel.item_for(other) is not None, timeout=5000)
    # its first progress report delivered (cancelled before it, under load, the row had no percent to say: CI)
    qtbot.waitUntil(lambda: other.fraction is not None, timeout=30_000)
    for job in (estimate, other):
        with qtbot.waitSignal(job.finished, timeout=30_000):
            job.cancel()
    qtbot.waitUntil(lambda: panel.item_for(estimate) is None, timeout=5000)
    assert panel.item_for(other) is not None and panel.item_for(other).text(1) == "cancelled"
    # where it stopped, not a bare "100 %" beside "failed" or "cancelled" that read as done (a newcomer, session 27)
    progress = panel.item_for(other).text(2)
    assert progress.startswith("stopped at "), progress
