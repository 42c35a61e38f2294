"""The window's real jobs: open/create a workspace, open a dataset, train with the SSL engine."""

from __future__ import annotations

import pytest

from .fakes import finish as _finish, image_folder
from naviewer.gui.jobs import JobState


def _image_folder(root, per_class=6, size=16):
    return image_folder(root, per_class, size)


def test_a_dataset_whose_images_cannot_be_read_is_said_when_opened(tmp_path):
    """A folder whose one "image" was text opened without a word; a few images are decoded when it opens."""
    from naviewer.errors import NaviewerError
    from naviewer.gui.tasks import dataset_summary
    from naviewer.jobs import JobContext

    bogus = tmp_path / "bogus" / "cat"
    bogus.mkdir(parents=True)
    (bogus / "fake.png").write_text("not an image")
    with pytest.raises(NaviewerError, match="none of the 1 images tried could be read"):
        dataset_summary(tmp_path / "bogus", JobContext())
    folder = _image_folder(tmp_path / "images")
    (folder / sorted(p.name for p in folder.iterdir())[0] / "zz.png").write_text("not an image")
    out = dataset_summary(folder, JobContext())
    assert out["samples"] == 13 and ("warning" not in out or "could not be read" in out["warning"])


def test_a_datasets_warnings_are_shown_in_a_box_every_time_it_is_opened(qtbot, window, tmp_path):
    """A folder with an empty class and an unreadable image: its warnings went to the terminal (the empty class) and
    the Log tab (the images), where a person at the window never looked (newcomer session 16). Said again when
    opened again (Python says a warning once per place)."""
    folder = _image_folder(tmp_path / "images")
    (folder / "zz-empty").mkdir()
    (folder / sorted(p.name for p in folder.iterdir())[0] / "zz.png").write_text("not an image")
    for _ in range(2):
        window.last_message_box = None
        job = _finish(qtbot, window.open_dataset(folder))
        assert job.state is JobState.FINISHED and any("zz-empty" in w for w in job.warnings)
        box = window.last_message_box
        assert box is not None and "warning" in box.windowTitle() and "zz-empty" in box.text()
    assert "zz-empty" in window.log.toPlainText()


def test_a_warning_said_in_a_box_is_not_boxed_again_by_other_jobs(qtbot, window, tmp_path):
    """ "cat/notes.txt was skipped" came back as a box at every Detect and Fine-tune, and twice in one box when the
    workspace was made (a newcomer, session 19): other jobs say a dataset's warning in a box once, then the Log."""
    said = "notes.txt is not an image: skipped"
    job = type("J", (), {"warnings": [said, said], "name": "Create workspace w", "kind": "workspace"})()
    window.last_message_box = None
    box = window.show_job_warnings(job, window.unsaid_warnings(job.warnings))
    assert box.text().count(said) == 1
    assert window.unsaid_warnings([said], again=False) == []  # the next Detect: no box
    assert window.unsaid_warnings([said, "another"]) == ["another"]
    assert window.unsaid_warnings([said], again=True) == [said]  # Open dataset says it every time (test above)


def test_open_dataset_then_create_and_open_workspace(qtbot, window, tmp_path):
    folder = _image_folder(tmp_path / "images")
    _finish(qtbot, window.open_dataset(folder))
    assert window.dataset_path == folder and window.dataset_summary["samples"] == 12
    assert "12 images" in window.overview.dataset.text()
    other = _image_folder(tmp_path / "other")

    ws = tmp_path / "ws"
    _finish(qtbot, window.new_workspace(ws))
    assert window.workspace_path == ws and window.workspace_summary["samples"] == 12
    assert window.workspace_summary["anchors"] == 12  # the open dataset's labels, as `naviewer new` records
    assert window.act_export.isEnabled() and "ws — naviewer" in window.windowTitle()
    assert window.recent_menu.actions()[0].text() == str(ws)

    assert "not the workspace's" not in window.overview.dataset.text()  # the workspace was made of it
    _finish(qtbot, window.open_dataset(other))  # another dataset beside the workspace: which one Train uses is said
    assert "not the workspace's: Train and Detect use the workspace" in window.overview.dataset.text()

    window.workspace_path = None
    _finish(qtbot, window.open_workspace(ws))
    assert window.workspace_path == ws


def test_new_workspace_records_anchors_and_test_split_like_the_cli(qtbot, window, tmp_path):
    """File > New workspace runs the CLI's workflow: same [anchors], an [evaluation] with the test split."""
    from naviewer.cli import main
    from naviewer.workspace import Workspace

    source = tmp_path / "split"
    _image_folder(source / "train", per_class=12)
    _image_folder(source / "test", per_class=3)
    job = _finish(qtbot, window.new_workspace(tmp_path / "gui", source, anchors_per_class=4))
    assert job.result["anchors"] == 8 and job.result["test_set"] and window.workspace_summary["samples"] == 24
    assert main(["new", str(tmp_path / "cli"), "--dataset", str(source), "--anchors-per-class", "4"]) == 0
    with Workspace.open(tmp_path / "gui") as gui, Workspace.open(tmp_path / "cli") as cli:
        assert gui.config["anchors"]["indices"] and gui.config["anchors"] == cli.config["anchors"]
        assert gui.config["evaluation"] == cli.config["evaluation"] and gui.config["evaluation"]["test"]


def test_new_workspace_without_a_dataset_says_what_to_do(qtbot, window, tmp_path):
    assert window.new_workspace(tmp_path / "ws") is None
    assert "Open a dataset first" in window.last_message_box.text()
    window.last_message_box.close()
    assert not (tmp_path / "ws").exists()


def test_open_missing_workspace_shows_the_problem(qtbot, window, tmp_path):
    job = window.open_workspace(tmp_path / "nope")
    qtbot.waitSignal(job.finished, timeout=20000).wait()
    assert job.state is JobState.FAILED
    assert "no such workspace" in window.last_message_box.text()
    window.last_message_box.close()


def test_train_from_the_window_with_the_ssl_engine(qtbot, window, tmp_path, monkeypatch):
    """Train -> default job factory -> naviewer.ssl Trainer; the monitor plots its live records."""
    pytest.importorskip("naviewer.ssl.trainer")
    monkeypatch.setenv("NAVIEWER_RUNS_DIR", str(tmp_path / "runs"))
    folder = _image_folder(tmp_path / "images")
    _finish(qtbot, window.open_dataset(folder))
    qtbot.waitUntil(lambda: window.monitor is not None, timeout=20000)
    settings = {"method": "simclr", "epochs": 2, "batch_size": 4, "lr": None, "device": "cpu",
                # advanced keys a script may pass through to TrainConfig (the dialog does not show them)
                "backbone": {"arch": "resnet10", "cifar_stem": True, "width": 8}, "image_size": 16,
                "log_every": 1, "num_threads": 1}
    job = window.start_training(settings)
    _finish(qtbot, job, timeout=120000)
    qtbot.waitUntil(lambda: len(window.monitor.data.get(("loss", "epoch"), ([], []))[0]) == 2, timeout=5000)
    assert window.monitor.run_info["method"] == "simclr"
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "metrics.jsonl").is_file() and (runs[0] / "checkpoints" / "last.pt").is_file()
    assert job.result["epochs"] == 2



def test_the_overview_names_the_open_workspaces_dataset_and_encoder(qtbot, window, tmp_path, monkeypatch):
    """With only a workspace open the Overview said "Dataset: none, Encoder: none" (session 10's newcomer)."""
    from types import SimpleNamespace

    from naviewer.cli import main
    from naviewer.gui.tasks import _sources

    folder = _image_folder(tmp_path / "images")
    assert main(["new", str(tmp_path / "ws"), "--dataset", str(folder)]) == 0
    _finish(qtbot, window.open_workspace(tmp_path / "ws"))
    assert window.dataset_path is None
    assert str(folder) in window.overview.dataset.toolTip() and "the workspace's" in window.overview.dataset.text()
    assert window.overview.encoder.text() == "none"  # no detection pass yet: no encoder to name
    assert "Run ▸ Detect" in window.overview.next_step.text()  # what to do next, said (a newcomer saw nothing)

    passes = [{"id": 3, "settings": {"encoder": {"checkpoint": "/x/last.pt", "arch": "resnet10", "width": 16,
                                                 "image_size": 16}}}]
    ws = SimpleNamespace(dataset_record=lambda: {"kind": "filelist", "path": "/d/train.txt"},
                         store=SimpleNamespace(pass_info=lambda pid: next(p for p in passes if p["id"] == pid)))
    assert _sources(ws, 3) == {"dataset": "/d/train.txt (filelist)", "dataset_path": "/d/train.txt",
                               "encoder": "/x/last.pt (resnet10 width 16, 16 px; the reviewed pass's)"}
    # a pass made inside training (the demo's) records no checkpoint: its run's latest is named and Detect… starts
    # from it (the dialog started empty on the demo workspace)
    from naviewer.workspace.runs import RunStatus

    latest = tmp_path / "checkpoints" / "demo" / "last.pt"
    latest.parent.mkdir(parents=True)
    latest.write_bytes(b"")
    passes.append({"id": 4, "run": "demo", "settings": {}})
    ws.path = tmp_path
    status = {"demo": RunStatus.AWAITING_REVIEW}
    monkeypatch.setattr("naviewer.workspace.runs.read_state",
                        lambda _ws, run: SimpleNamespace(status=status.get(run, RunStatus.FINISHED)))
    out = _sources(ws, 4)
    assert out["encoder_path"] == str(latest.resolve()) and "run demo's latest checkpoint" in out["encoder"]
    passes.append({"id": 5, "run": "gone", "settings": {}})
    assert "encoder" not in _sources(ws, 5) and not (tmp_path / "checkpoints" / "gone").exists()  # nothing made
    status["demo"] = RunStatus.RESTARTED  # retrained since: last.pt is another model
    assert "encoder" not in _sources(ws, 4)
    kept = latest.with_name("at-review.pt")  # the encoder DIFT flagged with, kept when the retrain began
    kept.write_bytes(b"")
    out = _sources(ws, 4)
    assert out["encoder_path"] == str(kept.resolve()) and "the encoder DIFT flagged with" in out["encoder"]


def test_opening_an_encoder_refuses_a_file_without_backbone_weights(tmp_path):
    """File ▸ Open encoder took a file of a bare list of tensors without a word; Detect refused it later ("no weights
    found in this file"), as the CLI does at once (a sweep, session 21)."""
    import pytest
    import torch

    from naviewer.errors import NaviewerError
    from naviewer.gui.tasks import check_checkpoint
    from naviewer.jobs import JobContext
    from naviewer.ssl.backbones import BackboneConfig, build_backbone

    listed = tmp_path / "list.pt"
    torch.save([torch.zeros(3), torch.ones(2)], listed)
    with pytest.raises(NaviewerError, match="no weights found"):
        check_checkpoint(listed, JobContext())
    flat = tmp_path / "flat.pt"  # one conv1.weight, 2-D: opened without a word, then "no conv1.weight" (session 34)
    torch.save({"conv1.weight": torch.zeros(3, 3)}, flat)
    with pytest.raises(NaviewerError, match=r"conv1.weight has shape \(3, 3\); a ResNet's first convolution is 4-D"):
        check_checkpoint(flat, JobContext())
    good = tmp_path / "good.pt"
    torch.save(build_backbone(BackboneConfig(arch="resnet10", width=8)).state_dict(), good)
    out = check_checkpoint(good, JobContext())
    assert out["tensors"] > 0 and out["encoder"].startswith("resnet10 width 8")


def test_a_digits_workspace_offers_the_demos_recipe(tmp_path):
    """On the built-in grey digits the Train form offered ResNet-18 with SimCLR's paper augmentation, and a newcomer's
    encoder stayed at 15 % kNN (session 22): a workspace over 'digits' offers the demo's recipe until it has trained."""
    from naviewer.data.sources import open_dataset
    from naviewer.gui import tasks
    from naviewer.jobs import JobContext
    from naviewer.workspace import Workspace

    with Workspace.create(tmp_path / "ws", open_dataset("digits")):
        pass
    settings = tasks.workspace_summary(tmp_path / "ws", JobContext())["train_settings"]
    assert settings["augment_recipe"] == "aug+" and settings["arch"] == "resnet10" and settings["image_size"] == 16
    with Workspace.create(tmp_path / "tinted", open_dataset("demo")):
        pass
    assert "train_settings" not in tasks.workspace_summary(tmp_path / "tinted", JobContext())


def test_a_copied_workspace_offers_its_own_checkpoint_not_the_originals(tmp_path):
    """In a copy of a workspace, Detect… prefilled the original folder's checkpoint that the pass recorded (a
    newcomer, session 27): where the copy holds the same checkpoints/RUN/FILE, that one is offered."""
    from pathlib import Path
    from types import SimpleNamespace

    from naviewer.gui.tasks import _existing_checkpoint

    original, copy = tmp_path / "ws", tmp_path / "ws-copy"
    for folder in (original, copy):
        (folder / "checkpoints" / "posthoc").mkdir(parents=True)
        (folder / "checkpoints" / "posthoc" / "last.pt").write_bytes(b"")
    recorded = str(original / "checkpoints" / "posthoc" / "last.pt")
    assert _existing_checkpoint(SimpleNamespace(path=copy), recorded) == (copy / "checkpoints/posthoc/last.pt").resolve()
    assert _existing_checkpoint(SimpleNamespace(path=original), recorded) == Path(recorded).resolve()
    outside = tmp_path / "elsewhere" / "encoder.pt"  # an encoder of no workspace: as recorded
    outside.parent.mkdir()
    outside.write_bytes(b"")
    assert _existing_checkpoint(SimpleNamespace(path=copy), str(outside)) == outside.resolve()
