"""Issue 14 item 10: the Train dialog measures a few training steps in a background job (cancellable)
and shows the time an epoch and the run take before starting; it warns when the choice is slow. And
the training job names the stage after "loading images 100 %"."""

from __future__ import annotations

import time

import pytest

from naviewer.gui.jobs import JobManager, JobState
from naviewer.gui.train_dialog import TrainDialog, cpu_warning
from naviewer.gui.training import DEFAULT_BACKBONE, DEFAULT_IMAGE_SIZE, backbone_text, slow_warning

from .fakes import image_folder

TINY = {"backbone": {"arch": "resnet10", "width": 8, "cifar_stem": True}, "image_size": 16}


def fake_estimate(seconds_per_step: float, calls: list):
    """An estimator like the window's: a job function timing "steps" (here: reporting a given figure)."""

    def estimator(settings):
        calls.append(dict(settings))

        def job(ctx):
            for step in range(3):
                ctx.check()
                time.sleep(0.01)
                ctx.progress(step + 1, 3, "estimate: timing 3 training steps")
            steps = 1000 // settings["batch_size"]
            out = {"seconds_per_step": seconds_per_step, "steps_per_epoch": steps,
                   "seconds_per_epoch": seconds_per_step * steps, "seconds_total": seconds_per_step * steps * settings["epochs"],
                   "device": "cpu", "encoder": "ResNet-18 width 64, 32 px", "batch_size": settings["batch_size"],
                   "seconds_per_embedding_pass": 0.4}
            out["slow"] = slow_warning(out)
            return out

        return job

    return estimator


def _ticking_estimator(calls: list, ticks):
    """An estimator whose job checks its cancel flag ``ticks(batch size)`` times, 5 ms apart, then reports 1 s a step;
    ``calls`` records each measured batch size."""

    def estimator(settings):
        calls.append(settings["batch_size"])

        def job(ctx):
            for _ in range(ticks(settings["batch_size"])):
                ctx.check()
                time.sleep(0.005)
            return {"seconds_per_step": 1.0, "steps_per_epoch": 1000 // settings["batch_size"],
                    "seconds_per_epoch": 1000 / settings["batch_size"], "seconds_total": 1.0, "device": "cpu",
                    "encoder": "x", "batch_size": settings["batch_size"]}
        return job

    return estimator


def _dialog(qtbot, estimator, **kw):
    manager = JobManager()
    dialog = TrainDialog(n_samples=1000, estimator=estimator, job_manager=manager, **kw)
    qtbot.addWidget(dialog)
    return dialog, manager


def test_defaults_match_the_training_config():
    from naviewer.ssl.trainer import TrainConfig

    config = TrainConfig()
    assert DEFAULT_BACKBONE == config.backbone and DEFAULT_IMAGE_SIZE == config.image_size
    assert backbone_text({}) == "ResNet-18 width 64, 32 px"
    assert backbone_text(TINY) == "ResNet-10 width 8, 16 px"


def test_resnet18_at_batch_256_on_a_cpu_is_warned_about_before_measuring(qtbot):
    settings = {"batch_size": 256, "device": "auto"}
    assert cpu_warning(settings, None) == ""  # not probed yet: the device is unknown
    assert "ResNet-18 width 64, 32 px at batch 256 on a CPU" in cpu_warning(settings, ["cpu"])
    assert cpu_warning(settings, ["cpu", "cuda"]) == ""
    assert cpu_warning({**settings, "batch_size": 64}, ["cpu"]) == ""
    assert cpu_warning({**settings, **TINY}, ["cpu"]) == ""
    dialog = TrainDialog(available_devices=["cpu"], initial={"batch_size": 256})  # chosen: no CPU preset
    qtbot.addWidget(dialog)
    assert not dialog.warning_label.isHidden() and "is slow" in dialog.warning_label.text()
    assert not dialog.estimate_button.isVisibleTo(dialog)  # nothing open to measure on
    assert "estimate below" not in dialog.warning_label.text()  # so no estimate to point at
    dialog.batch_size.setText("64")
    assert dialog.warning_label.isHidden()


def test_the_dialog_measures_in_the_background_and_shows_the_epoch_time(qtbot):
    calls = []
    dialog, manager = _dialog(qtbot, fake_estimate(0.5, calls))
    dialog.show()  # the first show measures the default choice
    qtbot.waitUntil(lambda: dialog.estimate_job is not None, timeout=5000)
    job = dialog.estimate_job
    assert job.running and "Measuring" in dialog.estimate_label.text() and dialog.ok_button.isEnabled()
    qtbot.waitSignal(job.finished, timeout=10000).wait()
    assert job.state is JobState.FINISHED and calls[-1]["batch_size"] == 256
    text = dialog.estimate_label.text()
    assert "about <b>0:02 an epoch</b> (0.5 s a step × 3 steps)" in text and "for 100 epochs on cpu" in text
    dialog.epochs.setText("1000")  # the epochs only rescale the measured figure
    assert "<b>25:00</b> for 1,000 epochs" in dialog.estimate_label.text() and len(calls) == 1
    dialog.batch_size.setText("100")  # the batch changes the steps: measured again
    qtbot.waitUntil(lambda: len(calls) == 2, timeout=5000)
    qtbot.waitUntil(lambda: "× 10 steps" in dialog.estimate_label.text(), timeout=10000)


def test_dift_in_the_loop_adds_its_ranking_to_the_measured_epoch(qtbot):
    """A DIFT run embeds every sample each epoch from its start: the estimate left it out and the run took longer
    than it said (seen, session 33). Ticked, the dialog says what it adds; unticked, nothing."""
    dialog, manager = _dialog(qtbot, fake_estimate(0.5, []), dift_available=True)
    dialog.show()
    qtbot.waitUntil(lambda: "an epoch</b>" in dialog.estimate_label.text(), timeout=10000)
    assert "DIFT" not in dialog.estimate_label.text()
    dialog.dift.setChecked(True)
    assert "DIFT's ranking adds about 0.4 s an epoch" in dialog.estimate_label.text()
    dialog.dift.setChecked(False)
    assert "DIFT" not in dialog.estimate_label.text()


def test_a_slow_measurement_is_warned_about(qtbot):
    dialog, _ = _dialog(qtbot, fake_estimate(60.0, []), available_devices=["cpu"], initial={"batch_size": 256})
    job = dialog.start_estimate()
    qtbot.waitSignal(job.finished, timeout=10000).wait()
    assert not dialog.warning_label.isHidden()
    assert dialog.warning_label.text().startswith("Slow: ResNet-18 width 64, 32 px at batch 256 on cpu takes about 3:00 an epoch")
    assert "a GPU, a smaller batch or a narrower encoder" in dialog.warning_label.text()


def test_measuring_can_be_stopped_and_stops_when_the_dialog_closes(qtbot):
    def endless(_settings):
        def job(ctx):
            while True:
                ctx.check()
                time.sleep(0.005)
        return job

    dialog, manager = _dialog(qtbot, endless)
    job = dialog.start_estimate()
    assert dialog.estimate_button.text() == "Stop measuring"
    dialog.estimate_button.click()
    assert "Stopping the measurement" in dialog.estimate_label.text()  # not "Measuring: … %" frozen
    qtbot.waitSignal(job.finished, timeout=5000).wait()
    assert job.state is JobState.CANCELLED and dialog.estimate_job is None
    qtbot.waitUntil(lambda: "Measuring stopped; nothing was estimated" in dialog.estimate_label.text(), timeout=5000)
    job = dialog.start_estimate()
    dialog.reject()
    qtbot.waitSignal(job.finished, timeout=5000).wait()
    assert job.state is JobState.CANCELLED


def test_a_failed_measurement_says_why(qtbot):
    from naviewer.errors import NaviewerError

    def broken(_settings):
        def job(_ctx):
            raise NaviewerError("the dataset (10 images) is smaller than one batch of 256; lower the batch size")
        return job

    dialog, _ = _dialog(qtbot, broken)
    job = dialog.start_estimate()
    qtbot.waitSignal(job.finished, timeout=5000).wait()
    assert "Could not measure the speed: " in dialog.estimate_label.text()
    assert "smaller than one batch" in dialog.estimate_label.text() and "Traceback" not in dialog.estimate_label.text()


def test_the_estimate_times_real_steps_and_scales_them_to_an_epoch(tmp_path):
    from naviewer.gui.training import estimate_training_time
    from naviewer.jobs import JobContext, RecordingReporter

    folder = image_folder(tmp_path / "images", per_class=20, size=16)
    reporter = RecordingReporter()
    settings = {"method": "simclr", "augment_recipe": "", "epochs": 10, "batch_size": 8, "lr": None, "device": "cpu",
                **TINY}
    out = estimate_training_time(settings, JobContext(reporter), dataset_path=folder, steps=2)
    assert out["steps_per_epoch"] == 5 and out["seconds_per_step"] > 0
    assert out["seconds_per_epoch"] == pytest.approx(5 * out["seconds_per_step"])
    assert out["seconds_total"] == pytest.approx(10 * out["seconds_per_epoch"])
    assert out["encoder"] == "ResNet-10 width 8, 16 px" and out["device"] == "cpu"
    assert out["seconds_per_embedding_pass"] > 0  # DIFT's ranking each epoch: timed too
    messages = [m for _d, _t, m in reporter.progresses]
    assert any(m.startswith("estimate: loading a sample of 24 images") for m in messages)
    assert any(m.startswith("estimate: timing 3 training steps") for m in messages)


def test_cancelling_the_estimate_stops_it(tmp_path):
    from naviewer.gui.training import estimate_training_time
    from naviewer.jobs import JobCancelled, JobContext

    folder = image_folder(tmp_path / "images", per_class=20, size=16)
    ctx = JobContext()
    ctx.cancel()
    with pytest.raises(JobCancelled):
        estimate_training_time({"method": "simclr", "epochs": 1, "batch_size": 8, "device": "cpu", **TINY}, ctx,
                               dataset_path=folder)


def test_training_names_the_stage_after_loading_the_images(tmp_path):
    """"loading images 100 %" never sits there: the next progress names the encoder being built."""
    from naviewer.gui.training import run_training
    from naviewer.jobs import JobContext, RecordingReporter

    folder = image_folder(tmp_path / "images", per_class=8, size=16)
    reporter = RecordingReporter()
    run_training({"method": "simclr", "epochs": 1, "batch_size": 8, "device": "cpu", "max_steps_per_epoch": 1,
                  "knn_every": 0, **TINY}, JobContext(reporter), dataset_path=folder, run_name=str(tmp_path / "run"))
    messages = [m for _d, _t, m in reporter.progresses]
    last_loading = max(i for i, m in enumerate(messages) if m.startswith("loading images"))
    assert messages[last_loading + 1] == "images loaded; building the ResNet-10 width 8, 16 px encoder on cpu"


def test_the_window_measures_on_the_images_it_would_train_on(qtbot, window, tmp_path):
    window.dataset_path = image_folder(tmp_path / "images", per_class=20, size=16)
    dialog = window.train_dialog()
    assert dialog.estimator is not None and dialog.job_manager is window.jobs
    assert dialog.estimate_button.isVisibleTo(dialog)
    job_fn = dialog.estimator({"method": "simclr", "epochs": 1, "batch_size": 8, "device": "cpu"})
    assert job_fn.keywords == {"workspace": None, "dataset_path": window.dataset_path}
    dialog.reject()


def test_the_first_measurement_waits_for_the_device_probe(qtbot):
    """The window's probe imports torch in its own thread: measuring at the same time failed with a
    partially initialised torchvision, so the first measurement waits for the probe's answer."""
    calls = []
    dialog, _ = _dialog(qtbot, fake_estimate(0.5, calls), measure_after_probe=True)
    dialog.show()
    qtbot.wait(1200)  # longer than the debounce: nothing may start before the probe answered
    assert dialog.estimate_job is None and calls == []
    dialog.set_available_devices(["cpu"])
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=5000)


def test_long_warnings_never_overlap_the_form(qtbot):
    dialog = TrainDialog(available_devices=["cpu"], estimator=fake_estimate(60.0, []), job_manager=JobManager())
    qtbot.addWidget(dialog)
    dialog.resize(440, 200)
    dialog.show()
    qtbot.waitExposed(dialog)
    job = dialog.start_estimate()
    qtbot.waitSignal(job.finished, timeout=10000).wait()
    qtbot.wait(50)
    layout = dialog.layout()
    assert dialog.height() >= layout.totalHeightForWidth(dialog.width())
    rows = [dialog.epochs, dialog.batch_size, dialog.lr, dialog.device]
    bottoms = [w.mapTo(dialog, w.rect().bottomLeft()).y() for w in rows]
    tops = [w.mapTo(dialog, w.rect().topLeft()).y() for w in rows]
    assert all(bottoms[i] < tops[i + 1] for i in range(len(rows) - 1))  # the form's rows do not overlap
    warning_top = dialog.warning_label.mapTo(dialog, dialog.warning_label.rect().topLeft()).y()
    assert warning_top > bottoms[-1]


def test_a_failed_estimate_is_said_in_the_dialog_not_in_a_message_box(qtbot, window):
    from naviewer.errors import NaviewerError

    def broken(ctx):
        raise NaviewerError("no images")

    job = window.start_job(broken, "Estimate the training speed", resources=["train-estimate"], kind="estimate")
    qtbot.waitSignal(job.finished, timeout=5000).wait()
    qtbot.wait(50)
    assert window.last_message_box is None


def test_torch_is_imported_by_one_thread_at_a_time(qtbot, monkeypatch, tmp_path):
    """The device probe and a job imported torchvision at once and the job saw it half initialised: the
    probe, the job runner and the estimate take one lock around those imports."""
    import threading

    from naviewer.gui import environment
    from naviewer.gui.environment import TORCH_IMPORT_LOCK, EnvironmentProbe
    from naviewer.gui.training import estimate_training_time
    from naviewer.jobs import JobContext, RecordingReporter

    held = []

    def probe():
        other = threading.Thread(target=lambda: held.append(not TORCH_IMPORT_LOCK.acquire(timeout=0.01)))
        other.start()
        other.join()
        return {"devices": ["cpu"]}

    monkeypatch.setattr(environment, "probe_environment", probe)
    monkeypatch.setattr(environment, "_cache", None)
    EnvironmentProbe()._run()
    assert held == [True]  # the probe imports under the lock

    reporter = RecordingReporter()
    folder = image_folder(tmp_path / "images", per_class=20, size=16)
    settings = {"method": "simclr", "epochs": 1, "batch_size": 8, "device": "cpu", **TINY}
    ctx = JobContext(reporter)
    with TORCH_IMPORT_LOCK:  # "the probe is importing": the estimate waits before it does anything
        worker = threading.Thread(target=lambda: estimate_training_time(settings, ctx, dataset_path=folder, steps=1))
        worker.start()
        worker.join(0.3)
        assert worker.is_alive() and reporter.progresses == []
    worker.join(60)
    assert not worker.is_alive() and reporter.progresses


def test_a_new_choice_while_measuring_waits_for_the_old_measurement_to_stop(qtbot):
    """Re-measuring while a measurement runs raised a job conflict inside a slot (and aborted the app):
    the old one is cancelled and the new one starts once it has stopped."""
    calls = []

    dialog, _ = _dialog(qtbot, _ticking_estimator(calls, lambda _batch: 400))
    first = dialog.start_estimate()
    dialog.batch_size.setText("100")
    assert dialog.start_estimate() is None  # queued: the first is being cancelled
    assert dialog.start_estimate() is None  # asked twice: still one queued start
    qtbot.waitSignal(first.finished, timeout=5000).wait()
    assert first.state is JobState.CANCELLED
    qtbot.waitUntil(lambda: calls == [256, 100], timeout=5000)
    qtbot.waitUntil(lambda: "× 10 steps" in dialog.estimate_label.text(), timeout=10000)


def test_a_choice_changed_during_a_measurement_is_measured_instead(qtbot):
    """A newcomer picked ResNet-10 while the default ResNet-18 was being timed: the dialog went on timing ResNet-18
    and showed its minutes. The running measurement is stopped and the new choice measured."""
    calls = []

    dialog, _ = _dialog(qtbot, _ticking_estimator(calls, lambda batch: 2000 if batch == 256 else 1))
    dialog.show()
    qtbot.waitUntil(lambda: dialog.estimate_job is not None and dialog.estimate_job.running, timeout=5000)
    first = dialog.estimate_job
    dialog.batch_size.setText("100")
    assert "Measuring the new choice shortly" in dialog.estimate_label.text()
    qtbot.waitSignal(first.finished, timeout=10000).wait()
    assert first.state is JobState.CANCELLED
    qtbot.waitUntil(lambda: calls == [256, 100], timeout=5000)
    qtbot.waitUntil(lambda: "× 10 steps" in dialog.estimate_label.text(), timeout=10000)


def test_a_cancelled_estimate_stops_inside_a_forward_or_backward_pass():
    """The estimate checks the cancel flag before each layer, not only between steps (a step of a wide encoder on a
    loaded CPU took a minute, and "cancelling" sat there that long), and as each weight's gradient is computed
    (cancelling still took 21 s in the backward pass)."""
    import torch

    from naviewer.gui.training import cancel_within_step
    from naviewer.jobs import JobCancelled, JobContext

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(inplace=True),
                                torch.nn.Sequential(torch.nn.Linear(4, 2)))
    ctx = JobContext()
    hooks = cancel_within_step(model, ctx)
    assert len(hooks) == 3 + 4  # the leaves, then the weights and biases
    model(torch.zeros(1, 4)).sum().backward()  # not cancelled: runs both ways
    ctx.cancel()
    with pytest.raises(JobCancelled):
        model(torch.zeros(1, 4))
    ctx = JobContext()
    for hook in hooks:
        hook.remove()
    hooks = cancel_within_step(model, ctx)
    loss = model(torch.ones(1, 4)).sum()
    ctx.cancel()  # between the forward and the backward pass
    with pytest.raises(JobCancelled):
        loss.backward()
    for hook in hooks:
        hook.remove()
    model(torch.zeros(1, 4)).sum().backward()


def test_a_backward_pass_cancelled_from_a_hook_leaves_nothing_for_the_threads_exit():
    """A cancel raised in a gradient hook leaves the pass's unvisited nodes in the thread's autograd queue, freed at
    the thread's exit: when that overlapped the interpreter's exit the process aborted ("terminate called without an
    active exception", seen 2 of 3 times in a script that cancelled and quit). The drain graph, made first and so
    popped last, walks them out at once: here a tensor only those nodes hold is freed by it."""
    import gc
    import weakref

    import torch

    from naviewer.gui.training import _autograd_drain, cancel_within_step
    from naviewer.jobs import JobCancelled, JobContext

    model = torch.nn.Sequential(*[torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                                                      torch.nn.ReLU(inplace=True)) for _ in range(4)])
    ctx = JobContext()
    drain = _autograd_drain()
    hooks = cancel_within_step(model, ctx)
    images = torch.randn(2, 4, 8, 8)
    held = weakref.ref(images)  # saved by the first convolution, the last node a backward pass reaches
    loss = model(images).sum()
    ctx.cancel()
    with pytest.raises(JobCancelled):
        loss.backward()
    del images, loss
    gc.collect()
    assert held() is not None  # still in the queue
    drain.backward()
    gc.collect()
    assert held() is None
    for hook in hooks:
        hook.remove()


def test_the_dialog_starts_from_the_workspaces_last_training(qtbot, window):
    """It offered ResNet-18 width 64 at 32 px, batch 256, on a workspace trained with a ResNet-10 width 16 at 16 px,
    and warned at once that this was slow (a newcomer)."""
    from naviewer.gui.tasks import last_training_settings

    runs = [{"name": "old", "created": 1.0, "config": {"train": {"method": "byol", "batch_size": 64}}},
            {"name": "post", "created": 3.0, "config": {"checkpoint": "/x.pt"}},
            {"name": "demo", "created": 2.0, "config": {"train": {
                "method": "simclr", "epochs": 50, "batch_size": 128, "lr": None, "augment_recipe": "aug+",
                "backbone": {"arch": "resnet10", "cifar_stem": True, "width": 16}, "image_size": 16}}}]
    settings = last_training_settings(runs)
    assert settings == {"method": "simclr", "epochs": 50, "batch_size": 128, "lr": None, "augment_recipe": "aug+",
                        "image_size": 16, "arch": "resnet10", "width": 16}
    assert last_training_settings([{"name": "p", "config": {}}]) == {}
    # the Threads field comes back from a run that recorded its thread count (a review, session 33)
    runs[2]["config"]["train"]["num_threads"] = 2
    assert last_training_settings(runs)["threads"] == 2
    del runs[2]["config"]["train"]["num_threads"]
    window.state.workspace_summary = {"train_settings": settings}
    window.training_job_factory = lambda _settings, _window: (None, None)  # (nothing is open: no real training)
    dialog = window.train_dialog()
    chosen = dialog.settings()
    assert chosen["backbone"]["arch"] == "resnet10" and chosen["backbone"]["width"] == 16
    assert chosen["image_size"] == 16 and chosen["batch_size"] == 128 and chosen["epochs"] == 50
    dialog.reject()


def test_a_probe_whose_window_went_meanwhile_ends_quietly(qtbot, monkeypatch):
    """The window closed while the device probe imported torch: its thread's signal raised "Signal source has been
    deleted" with a traceback at exit (a GUI sweep, session 25). The cache is still filled for the next probe."""
    from naviewer.gui import environment
    from naviewer.gui.environment import EnvironmentProbe

    monkeypatch.setattr(environment, "probe_environment", lambda: {"devices": ["cpu"]})
    monkeypatch.setattr(environment, "_cache", None)
    probe = EnvironmentProbe()
    run = probe._run
    import shiboken6

    shiboken6.delete(probe)
    run()  # no RuntimeError
    assert environment._cache == {"devices": ["cpu"]}


def test_an_epoch_under_a_second_is_not_read_as_none():
    """A small set's epoch read "0:00 an epoch" (a newcomer, session 28)."""
    from naviewer.gui.train_dialog import epoch_time

    assert (epoch_time(0.4), epoch_time(0.04), epoch_time(42.0), epoch_time(125.0)) == ("0.4 s", "0.04 s", "0:42", "2:05")


def test_the_estimate_times_steps_on_a_set_of_one_to_two_batches(tmp_path):
    """255 images at the default batch of 128 gave one step, nothing to time, and a failed job each time the Train
    dialog opened (a newcomer, session 30): the sample repeats images so every timed step has a whole batch."""
    from naviewer.gui.training import estimate_training_time
    from naviewer.jobs import JobContext, RecordingReporter

    folder = image_folder(tmp_path / "images", per_class=6, size=16)  # 12 images: one batch of 8, a part of another
    settings = {"method": "simclr", "augment_recipe": "", "epochs": 10, "batch_size": 8, "lr": None, "device": "cpu",
                **TINY}
    reporter = RecordingReporter()
    out = estimate_training_time(settings, JobContext(reporter), dataset_path=folder, steps=2)
    assert out["steps_per_epoch"] == 1 and out["seconds_per_step"] > 0 and out["n_samples"] == 12
    assert out["seconds_total"] == pytest.approx(10 * out["seconds_per_step"])
