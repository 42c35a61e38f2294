import json
import threading

import numpy as np
import pytest

from naviewer.errors import JobCancelled, NaviewerError
from naviewer.jobs import JobContext, RecordingReporter
from naviewer.ssl.trainer import LRSchedule, TrainConfig, Trainer, build_trainer
from sslkit import TINY, make_store


def _config(method="simclr", **kw):
    base = dict(method=method, backbone=TINY, epochs=2, batch_size=16, image_size=16, log_every=1,
                warmup_epochs=0.5, num_threads=1)
    if method == "mocov2":
        base["method_settings"] = {"queue_size": 32}
    base.update(kw)
    return TrainConfig(**base)


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _step_losses(run):
    return [r["loss"] for r in _records(run) if r["kind"] == "step"]


def test_metrics_contract_and_checkpoints(tmp_path, tiny_store):
    reporter = RecordingReporter()
    cfg = _config(checkpoint_every=1, knn_every=1)
    result = build_trainer(cfg, tiny_store, tmp_path / "run", eval_store=tiny_store).fit(JobContext(reporter))
    assert result["epochs"] == 2
    records = _records(tmp_path / "run")
    assert all("kind" in r and "time" in r for r in records)
    assert records[0]["kind"] == "run_start" and records[0]["total_epochs"] == 2
    assert records[0]["steps_per_epoch"] == 3 and records[0]["method"] == "simclr"
    steps = [r for r in records if r["kind"] == "step"]
    assert [r["step"] for r in steps] == list(range(1, 7))
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [0, 1]
    for r in epochs:
        assert {"loss", "lr", "images_per_s", "epoch_time_s", "knn_acc"} <= set(r)
        assert 0.0 <= r["knn_acc"] <= 1.0
    events = [r["event"] for r in records if r["kind"] == "event"]
    assert events[-1] == "finished" and "checkpoint" in events
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert ckpts == ["epoch_0000.pt", "epoch_0001.pt", "last.pt"]
    assert [m for m in reporter.metrics if m.get("kind") == "epoch"][0]["epoch"] == 0
    assert all("time" not in m for m in reporter.metrics)


def test_lr_schedule_warmup_then_cosine():
    s = LRSchedule(base_lr=1.0, start_step=0, total_steps=10, warmup_steps=2)
    assert s.lr_at(0) == pytest.approx(0.5) and s.lr_at(1) == pytest.approx(1.0)
    assert s.lr_at(2) == pytest.approx(1.0) and s.lr_at(10) == pytest.approx(0.0)
    assert s.lr_at(6) == pytest.approx(0.5)


@pytest.mark.parametrize("method", ["simclr", "byol", "mocov2"])
def test_resume_gives_same_losses(tmp_path, tiny_store, method):
    cfg = _config(method)
    build_trainer(cfg, tiny_store, tmp_path / "a").fit()

    class StopAfterFirst:
        def after_epoch(self, trainer, epoch):
            trainer.request_stop("test")

    build_trainer(cfg, tiny_store, tmp_path / "b", hooks=[StopAfterFirst()]).fit()
    assert len(_step_losses(tmp_path / "b")) == 3
    Trainer.resume(tmp_path / "b", tiny_store).fit()
    assert _step_losses(tmp_path / "a") == _step_losses(tmp_path / "b")


def test_cancel_mid_epoch_checkpoints_and_resumes(tmp_path, tiny_store):
    cfg = _config()
    build_trainer(cfg, tiny_store, tmp_path / "a").fit()
    ctx = JobContext()
    trainer = build_trainer(cfg, tiny_store, tmp_path / "c")
    original = trainer.augment.two_views

    def cancel_during_step(*args, **kwargs):
        if trainer.global_step == 4:  # second step of epoch 1; cancel from another thread
            t = threading.Thread(target=ctx.cancel)
            t.start()
            t.join()
        return original(*args, **kwargs)

    trainer.augment.two_views = cancel_during_step
    with pytest.raises(JobCancelled):
        trainer.fit(ctx)
    events = [r for r in _records(tmp_path / "c") if r["kind"] == "event"]
    assert events[-1]["event"] == "cancelled"
    resumed = Trainer.resume(tmp_path / "c", tiny_store)
    assert resumed.completed_epochs == 1 and resumed.step_in_epoch == 2
    assert resumed._epoch_time > 0.0  # the interrupted epoch's first part counts in its time (it saved 0)
    resumed.fit(resume=True)
    assert _step_losses(tmp_path / "a") == _step_losses(tmp_path / "c")


def test_replace_data_restarts_schedule(tmp_path):
    store = make_store(n=64)
    cfg = _config(epochs=4, warmup_epochs=0)
    keep = np.arange(0, 64, 2)

    class Restart:
        def after_epoch(self, trainer, epoch):
            if epoch == 0:
                trainer.add_epoch_metrics(dift_detected=32)
                trainer.replace_data(store.subset(keep), source_indices=keep)

    from naviewer.jobs import JobContext, RecordingReporter

    reporter = RecordingReporter()
    trainer = build_trainer(cfg, store, tmp_path / "r", hooks=[Restart()])
    trainer.fit(JobContext(reporter))
    # the progress counts the epochs since the restart, then the run's ("epoch 44 of 84" read as an 84-epoch retrain)
    messages = {m for _d, _t, m in reporter.progresses}
    assert "epoch 1 of 4" in messages and "epoch 3 of 3 after the restart (the run's 4 of 4)" in messages
    records = _records(tmp_path / "r")
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert epochs[0]["dift_detected"] == 32 and "dift_detected" not in epochs[1]
    steps = [r for r in records if r["kind"] == "step"]
    after = [r for r in steps if r["epoch"] == 1]
    assert after[0]["lr"] == pytest.approx(trainer.base_lr)  # restarted from the initial lr
    assert len(after) == 2  # 32 samples / batch 16
    assert any(r.get("event") == "restart" for r in records)
    resumed = Trainer.resume(tmp_path / "r", store)
    assert len(resumed.store) == 32 and resumed.restart_epoch == 1


def test_stop_request_and_small_dataset_error(tmp_path, tiny_store):
    with pytest.raises(NaviewerError):
        build_trainer(_config(batch_size=64), tiny_store, tmp_path / "x")
    with pytest.raises(NaviewerError):
        TrainConfig(optimizer="lars")


def test_checkpoint_dir_override(tmp_path, tiny_store):
    cfg = _config(epochs=1, max_steps_per_epoch=1)
    build_trainer(cfg, tiny_store, tmp_path / "run", checkpoint_dir=tmp_path / "ws" / "checkpoints" / "r").fit()
    assert (tmp_path / "ws" / "checkpoints" / "r" / "last.pt").is_file()
    assert not (tmp_path / "run" / "checkpoints").exists() and (tmp_path / "run" / "metrics.jsonl").is_file()
    resumed = Trainer.resume(tmp_path / "run", tiny_store, checkpoint_dir=tmp_path / "ws" / "checkpoints" / "r")
    assert resumed.completed_epochs == 1


def test_knn_monitor_ignores_unlabelled_bank_samples(tmp_path):
    store = make_store(n=32)
    store.labels[:5] = -1
    trainer = build_trainer(_config(epochs=1, max_steps_per_epoch=1), store, tmp_path / "k", eval_store=store)
    assert len(trainer.eval_store) == 27
    trainer.fit()
    epoch = [r for r in _records(tmp_path / "k") if r["kind"] == "epoch"][0]
    assert 0.0 <= epoch["knn_acc"] <= 1.0


def test_trains_on_mixed_size_buckets(tmp_path):
    store = make_store(n=40, wide=8)  # 16x16 images and 16x32 composites, cropped at their true size
    assert len(store.buckets) == 2
    result = build_trainer(_config(epochs=1), store, tmp_path / "m").fit()
    assert result["global_step"] == 3 and np.isfinite(result["loss"])


def test_the_first_epoch_is_named_before_its_first_step(tmp_path):
    """After "loading images 100 %" the job names its next stage at once (issue 14 item 10)."""
    from naviewer.jobs import JobContext, RecordingReporter
    from naviewer.ssl.trainer import TrainConfig, build_trainer
    from sslkit import TINY, make_store

    reporter = RecordingReporter()
    config = TrainConfig(method="simclr", backbone=dict(TINY), epochs=1, batch_size=16, image_size=16,
                         warmup_epochs=0, knn_every=0, checkpoint_every=0, device="cpu")
    build_trainer(config, make_store(), tmp_path / "run").fit(JobContext(reporter))
    first = reporter.progresses[0][2]
    assert first.startswith("epoch 1 of 1: first steps")


def test_a_pause_is_left_out_of_the_throughput_and_the_epochs_time(tmp_path, tiny_store, monkeypatch):
    """A paused epoch showed as a dip in the monitor's throughput plot: the pause counted as training time. The
    trainer's clock is a fake one here, so the check reads no wall time: the pause is 1,000 of its seconds."""
    import time as real_time
    from types import SimpleNamespace

    from naviewer.ssl import trainer as trainer_module

    clock = {"now": 0.0}

    def perf_counter() -> float:
        clock["now"] += 0.001
        return clock["now"]

    fake = SimpleNamespace(**{name: getattr(real_time, name) for name in dir(real_time) if not name.startswith("_")})
    fake.perf_counter = perf_counter
    monkeypatch.setattr(trainer_module, "time", fake)

    class PausesOnce(JobContext):
        calls = 0

        def check(self) -> None:
            PausesOnce.calls += 1
            if PausesOnce.calls == 3:  # inside the first epoch, as a Pause held for a while
                clock["now"] += 1000.0
            super().check()

    build_trainer(_config(), tiny_store, tmp_path / "run").fit(PausesOnce())
    records = _records(tmp_path / "run")
    first = [r for r in records if r["kind"] == "epoch"][0]
    # the paused 1,000 s of the fake clock are not the epoch's: below them however slow the machine (not a timing)
    assert first["epoch_time_s"] < 1000.0
    steps = [r for r in records if r["kind"] == "step" and r["epoch"] == 0]
    assert min(r["images_per_s"] for r in steps) > 1.0  # 1,000 s in a step's time read as ~0.01 images a second
