"""The Train dialog's DIFT in the loop: the window could only train without it, so a newcomer with their own data
had to learn ``naviewer run --dift`` (session 22). A tiny workspace, DIFT from the first epoch: the run stops for the
review and the window opens the Analyst on its flags."""

from __future__ import annotations

import numpy as np
import pytest

from naviewer.errors import NaviewerError

pytest.importorskip("naviewer.ssl.trainer")

SETTINGS = {"method": "simclr", "augment_recipe": "", "epochs": 3, "batch_size": 32, "lr": None, "device": "cpu",
            "backbone": {"arch": "resnet10", "width": 8}, "image_size": 16, "max_steps_per_epoch": 2,
            "knn_every": 0, "num_threads": 1, "dift": True}


def _workspace(root, dift: dict):
    from PIL import Image

    from naviewer.analysis.demo import make_demo_session
    from naviewer.data.sources import open_dataset
    from naviewer.workspace import Workspace

    demo = make_demo_session(120, 12, seed=2, n_classes=3)
    for i, (image, label) in enumerate(zip(np.asarray(demo.images), demo.labels)):
        folder = root / "images" / f"c{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    with Workspace.create(root / "ws", open_dataset(root / "images")) as ws:
        ws.update_config("dift", dift)
    return root / "ws"


def test_too_few_epochs_for_dift_is_refused_before_anything_starts(tmp_path):
    from naviewer.gui import tasks

    path = _workspace(tmp_path, {"start_epoch": 5})
    with pytest.raises(NaviewerError, match="it would never detect"):
        tasks.default_training_job(dict(SETTINGS), workspace=path, dataset_path=None)
    with pytest.raises(NaviewerError, match="needs a workspace"):
        tasks.default_training_job(dict(SETTINGS), workspace=None, dataset_path=tmp_path / "images")


def test_the_train_dialog_offers_dift_only_with_a_workspace(qtbot):
    from naviewer.gui.train_dialog import TrainDialog, validate_train_settings

    dialog = TrainDialog(None, {"dift": True}, dift_available=False)
    qtbot.addWidget(dialog)
    assert not dialog.dift.isEnabled() and not dialog.dift.isChecked()
    dialog = TrainDialog(None, {"dift": True}, dift_available=True)
    qtbot.addWidget(dialog)
    assert dialog.dift.isEnabled() and dialog.dift.isChecked() and dialog.raw_values()["dift"] is True
    settings, errors = validate_train_settings({**dialog.raw_values(), "epochs": "4"})
    assert settings["dift"] is True
    # ticked or unticked last, the settings follow (the box changed nothing until another field did; session 22)
    dialog.dift.setChecked(False)
    assert dialog.settings()["dift"] is False
    dialog.dift.setChecked(True)
    assert dialog.settings()["dift"] is True


def test_a_dift_training_from_the_window_opens_its_flags(qtbot, window, tmp_path, monkeypatch):
    path = _workspace(tmp_path, {"start_epoch": 0, "patience": 1, "k": 5, "n_min": 2, "guard_separation": 1e-6,
                                 "guard_check_split": False, "max_detection_epochs": 1, "anchors_per_class": 3})
    window.open_workspace(path)
    qtbot.waitUntil(lambda: window.workspace_path is not None, timeout=30000)
    said = []
    inform = window.inform
    monkeypatch.setattr(window, "inform", lambda title, text, *a, **k: (said.append(text), inform(title, text, *a, **k))[1])
    job = window.start_training(dict(SETTINGS))
    assert job is not None and "with DIFT" in job.name and not job.plain_training
    qtbot.waitUntil(lambda: job.state.value in ("finished", "failed", "cancelled"), timeout=180000)
    assert job.state.value == "finished", job.error_message()
    # random images: DIFT may stop for the review or flag nothing; either way its pass opens in the Analyst
    assert job.result["status"] in ("awaiting_review", "noop") and job.result["pass_id"] is not None
    qtbot.waitUntil(lambda: window.analyst_dock is not None, timeout=60000)
    assert window.analyst_dock.pass_id == job.result["pass_id"]
    # the run's encoder embedded every sample for the map (it was a paragraph over a strip of ranks; session 27)
    from naviewer.workflows.finetune_record import REVIEW_TAG
    from naviewer.workspace import Workspace

    with Workspace.open(path) as ws:
        assert (job.result["run"], REVIEW_TAG) in set(ws.embeddings())
    if job.result["status"] != "awaiting_review":  # said in a box, not only in the run's record
        assert any("did not stop the training for a review" in text for text in said)


def test_after_a_review_train_leaves_out_the_confirmed_poisons(qtbot, tmp_path):
    """Train after a post-hoc review trained on every sample, the confirmed poisons too, without a word (a
    newcomer, session 25; the command line had --leave-out-confirmed). The dialog offers it (ticked), never with
    DIFT in the loop, and the run leaves them out and records it."""
    from naviewer.gui import tasks
    from naviewer.gui.train_dialog import TrainDialog
    from naviewer.jobs import JobContext
    from naviewer.workspace import Workspace

    path = _workspace(tmp_path, {"start_epoch": 0})
    dialog = TrainDialog(None, {"epochs": "2"}, dift_available=True, confirmed=0)
    qtbot.addWidget(dialog)
    assert not dialog.raw_values()["leave_out_confirmed"]  # nothing confirmed: no such choice
    dialog = TrainDialog(None, {"epochs": "2"}, dift_available=True, confirmed=7)
    qtbot.addWidget(dialog)
    assert "7 samples confirmed" in dialog.leave_out.text() and dialog.settings()["leave_out_confirmed"]
    dialog.dift.setChecked(True)  # the two exclude each other
    assert not dialog.leave_out.isChecked() and dialog.settings()["dift"] and not dialog.settings()["leave_out_confirmed"]
    dialog.leave_out.setChecked(True)
    assert not dialog.dift.isChecked() and dialog.settings()["leave_out_confirmed"]
    # DIFT remembered from the training before the review: Leave out comes first all the same (a newcomer, session 32)
    dialog = TrainDialog(None, {"epochs": "2", "dift": True}, dift_available=True, confirmed=80)
    qtbot.addWidget(dialog)
    assert dialog.leave_out.isChecked() and not dialog.dift.isChecked()
    dialog = TrainDialog(None, {"epochs": "2", "dift": True, "leave_out_confirmed": False}, dift_available=True,
                         confirmed=80)  # unticked by the user last time: their choice stays
    qtbot.addWidget(dialog)
    assert not dialog.leave_out.isChecked() and dialog.dift.isChecked()
    with Workspace.open(path) as ws:
        ws.store.set_review(np.arange(7), "confirmed", "me")
        n = ws.store.sample_count()
    settings = {**SETTINGS, "dift": False, "leave_out_confirmed": True, "epochs": 1}
    job, _run_dir = tasks.default_training_job(settings, workspace=path, dataset_path=None)
    out = job(JobContext())
    assert out["left_out"] == 7
    with Workspace.open(path) as ws:
        runs = [r for r in ws.store.runs() if r["name"] == out["run"]]
        assert sorted(runs[0]["config"]["exclude"]) == list(range(7))  # a resume leaves out the same samples
    assert n > 7


def test_a_dift_training_that_flagged_nothing_says_it_and_its_warnings_in_one_box(qtbot, window, tmp_path,
                                                                                   monkeypatch):
    """Two boxes came stacked after a DIFT training that flagged nothing: the anchors' warning, and under it "DIFT did
    not stop the training" (a newcomer, session 27). One box says both; the warning is not said again."""
    boxes = []
    inform = window.inform
    monkeypatch.setattr(window, "inform", lambda title, text, *a, **k: (boxes.append((title, text)),
                                                                        inform(title, text, *a, **k))[1])
    monkeypatch.setattr(window, "open_workspace", lambda path: None)
    window.workspace_path = tmp_path

    def flagged_nothing(ctx):
        ctx.event("warning", message="DIFT: the anchors do not separate their classes (43 %)")
        return {"status": "noop", "pass_id": 1, "note": "DIFT flagged nothing"}

    window.training_job_factory = lambda settings, win: (flagged_nothing, None)
    job = window.start_training({**SETTINGS, "dift": True})
    qtbot.waitUntil(lambda: job.state.value in ("finished", "failed", "cancelled"), timeout=30000)
    qtbot.wait(100)
    assert len(boxes) == 1, boxes
    title, text = boxes[0]
    assert "did not stop the training" in text and "anchors do not separate their classes" in text


def test_a_training_without_the_confirmed_poisons_is_read_beside_the_reviewed_encoder(qtbot, window, tmp_path,
                                                                                       monkeypatch):
    """Train with Leave out ended in silence: whether the backdoor went was for the analyst to dig out of two runs'
    monitors (a newcomer, session 27). Its end says the new run's figures beside the reviewed encoder's."""
    import json

    from naviewer.workspace import Workspace

    path = _workspace(tmp_path, {"start_epoch": 0})
    with Workspace.open(path) as ws:
        n = ws.store.sample_count()
        for run, asr in (("train", 0.97), ("retrain", 0.08)):
            (ws.run_dir(run) / "metrics.jsonl").write_text(
                json.dumps({"kind": "epoch", "epoch": 5, "knn_acc": 0.9, "asr": asr}) + "\n", encoding="utf-8")
        ws.store.add_run("detect-1", "posthoc", {"checkpoint": str(ws.path / "checkpoints" / "train" / "last.pt")})
        ws.store.add_detection_pass("dift", {"score": np.zeros(n), "flagged": np.zeros(n, bool)}, {}, run="detect-1")
    boxes = []
    monkeypatch.setattr(window, "inform", lambda title, text, *a, **k: boxes.append((title, text)))
    window.workspace_path = path
    window.training_job_factory = lambda settings, win: (lambda ctx: {"run": "retrain", "left_out": 7}, None)
    job = window.start_training({**SETTINGS, "dift": False, "leave_out_confirmed": True})
    assert "without the confirmed" in job.name
    qtbot.waitUntil(lambda: bool(boxes), timeout=30000)
    title, text = boxes[0]
    assert "without the confirmed poisons" in title
    assert "Trained without the 7 confirmed poisons (run retrain): kNN accuracy 90.0 %, ASR 8.0 %" in text
    assert "(run train): kNN accuracy 90.0 %, ASR 97.0 %" in text


def test_the_leave_out_box_keeps_the_users_last_choice_across_a_restart(qtbot, window, tmp_path, monkeypatch):
    """Unticked and trained, the box came back ticked after a restart, and the next training left the confirmed
    samples out unmeant (a newcomer, session 28): the user's last choice where the box was offered is kept; a
    training where it was not offered (nothing confirmed) leaves that choice alone."""
    from naviewer.gui.train_dialog import TrainDialog

    path = _workspace(tmp_path, {"start_epoch": 0})
    window.workspace_path = path
    window.training_job_factory = lambda settings, win: (lambda ctx: {}, None)
    monkeypatch.setattr(window, "_confirmed_count", lambda: 7)
    job = window.start_training({**SETTINGS, "dift": False, "leave_out_confirmed": False})
    qtbot.waitUntil(lambda: not job.running, timeout=30000)
    window.train_settings = None  # a restart: the window's own memory is gone, the settings file stays
    assert window._last_train_settings()["leave_out_confirmed"] is False
    monkeypatch.setattr(window, "_confirmed_count", lambda: 0)
    job = window.start_training({**SETTINGS, "dift": False, "leave_out_confirmed": False})  # not offered: kept
    qtbot.waitUntil(lambda: not job.running, timeout=30000)
    window.train_settings = None
    monkeypatch.setattr(window, "_confirmed_count", lambda: 7)
    window.state.workspace_summary["train_settings"] = {"epochs": 120, "augment_recipe": "simclr-cifar"}
    from naviewer.gui.main_window import default_training_factory

    window.training_job_factory = default_training_factory  # (the dialog offers the box only with the real trainer)
    dialog = window.train_dialog()
    assert isinstance(dialog, TrainDialog)
    assert dialog.leave_out.isVisibleTo(dialog) and not dialog.leave_out.isChecked()
    assert dialog.recipe.currentIndex() == 0  # the method's own recipe, recorded by name, reads as such
    dialog.reject()
    # DIFT chosen while samples are confirmed is a "no" to Leave out, kept: the form did not tick Leave out over it
    # the next time (a review, session 32)
    window.training_job_factory = lambda settings, win: (lambda ctx: {}, None)
    job = window.start_training({**SETTINGS, "dift": True, "leave_out_confirmed": False})
    qtbot.waitUntil(lambda: not job.running, timeout=30000)
    assert window._last_train_settings()["leave_out_confirmed"] is False


def test_a_resumed_training_without_the_confirmed_poisons_is_read_too(qtbot, window, tmp_path, monkeypatch):
    """A leave-out training stopped and resumed from the Run menu ended with no figures, where a fresh one says them
    (a newcomer, session 28)."""
    import json

    from naviewer.gui import tasks
    from naviewer.workspace import Workspace

    path = _workspace(tmp_path, {"start_epoch": 0})
    with Workspace.open(path) as ws:
        (ws.run_dir("retrain") / "metrics.jsonl").write_text(
            json.dumps({"kind": "epoch", "epoch": 5, "knn_acc": 0.9, "asr": 0.08}) + "\n", encoding="utf-8")
    boxes = []
    monkeypatch.setattr(window, "inform", lambda title, text, *a, **k: boxes.append((title, text)))
    window.open_workspace(path)
    qtbot.waitUntil(lambda: window.workspace_path is not None, timeout=20000)
    window.state.workspace_summary["interrupted"] = ["retrain"]
    monkeypatch.setattr(tasks, "resume_run", lambda p, name, ctx: {"status": "finished", "pass_id": None,
                                                                   "run": name, "left_out": 7})
    job = window.resume_interrupted_run()
    qtbot.waitUntil(lambda: bool(boxes), timeout=30000)
    assert job is not None and "Trained without the 7 confirmed poisons (run retrain)" in boxes[0][1]
