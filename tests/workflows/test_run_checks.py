"""What a run, its resume and its evaluation check before they go on: the run's own checkpoint, its files, [attack]."""

from __future__ import annotations

import json

import numpy as np

from naviewer.data.base import ArrayDataset
from naviewer.workspace import Workspace


def make_dataset(n: int) -> ArrayDataset:
    images = np.random.default_rng(0).integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    return ArrayDataset(images, np.arange(n) % 3, ["cat", "dog", "bird"])


def test_a_runs_resume_refuses_another_runs_checkpoint(tmp_path):
    """Another run's last.pt copied into a run's folder was resumed "after epoch 2 of 2", the run marked finished and
    its other 295 epochs dropped (a bad-input probe, session 28): a checkpoint whose settings are not the run's first
    start's is refused, naming the difference and the run's latest epoch checkpoint."""
    import pytest

    from naviewer.errors import NaviewerError
    from naviewer.workflows.dift_training import check_own_checkpoint

    with Workspace.create(tmp_path / "ws", make_dataset(12)) as ws:
        config = {"method": "simclr", "epochs": 300, "batch_size": 32, "image_size": 16,
                  "backbone": {"arch": "resnet10", "width": 8}, "device": "cpu"}
        with open(ws.run_dir("r2") / "metrics.jsonl", "w", encoding="utf-8") as handle:
            handle.write(json.dumps({"kind": "run_start", "config": config, "total_epochs": 300}) + "\n")
        folder = ws.checkpoint_dir("r2")
        (folder / "epoch_0003.pt").write_bytes(b"x")
        check_own_checkpoint(ws, "r2", {**config, "device": "cuda"}, folder / "last.pt")  # its own: passes
        other = {**config, "epochs": 2, "backbone": {"arch": "resnet10", "width": 16}}
        with pytest.raises(NaviewerError) as caught:
            check_own_checkpoint(ws, "r2", other, folder / "last.pt")
        assert "not run 'r2''s" in caught.value.message and "epochs 2 against 300" in caught.value.message
        assert "epoch_0003.pt" in caught.value.message
        check_own_checkpoint(ws, "r9", other, folder / "last.pt")  # no record of its start: nothing to compare


def test_a_resume_says_which_file_of_the_run_went_missing(tmp_path):
    """With last.pt deleted (its epoch checkpoints there) or the state file deleted, run --resume said "cannot be
    resumed (status: training ...)" or "(status: never started ...)" (a bad-input probe, session 28)."""
    import pytest

    from naviewer.errors import NaviewerError
    from naviewer.workflows.dift_training import resume_interrupted
    from naviewer.workspace.runs import RunStatus, write_state

    with Workspace.create(tmp_path / "ws", make_dataset(12)) as ws:
        ws.store.add_run("r2", "train", {"train": {"epochs": 300}})
        write_state(ws, "r2", status=RunStatus.TRAINING)
        (ws.checkpoint_dir("r2") / "epoch_0003.pt").write_bytes(b"x")
        with pytest.raises(NaviewerError, match="last.pt is missing; epoch_0003.pt is there: copy it to last.pt"):
            resume_interrupted(ws, "r2")
        (ws.run_dir("r2") / "dift_state.json").unlink()
        (ws.run_dir("r2") / "metrics.jsonl").write_text(json.dumps({"kind": "epoch", "epoch": 1}) + "\n")
        with pytest.raises(NaviewerError, match="state file is missing"):
            resume_interrupted(ws, "r2")


def test_a_hand_added_attack_section_without_its_settings_is_named(tmp_path):
    """A hand-added [attack] with only a name made every ASR that of an attack with default settings, as if it were
    the workspace's (a bad-input probe, session 28)."""
    import pytest

    from naviewer.errors import NaviewerError
    from naviewer.jobs import JobContext
    from naviewer.workflows.workspace_setup import evaluation_sets

    with Workspace.create(tmp_path / "ws", make_dataset(12)) as ws:
        ws.update_config("evaluation", {"train": dict(ws.dataset_record())})
        ws.update_config("attack", {"name": "patch"})
        with pytest.raises(NaviewerError, match=r"\[attack\] has no settings or target_class"):
            evaluation_sets(ws, JobContext())


def test_replacing_the_anchors_while_a_dift_run_trains_says_what_it_means(tmp_path, capsys):
    """`naviewer anchors WS SPEC` while `run --dift` trained exited 0 without a word; after a crash its resume refused
    the new anchors without saying what the old ones were (a bad-input probe, session 28)."""
    from naviewer.cli import main
    from naviewer.workspace.runs import training_lock

    assert main(["new", str(tmp_path / "ws"), "--dataset", "digits"]) == 0
    with Workspace.open(tmp_path / "ws") as ws:
        ws.store.add_run("dift", "dift-train", {"dift": {"k": 10}, "train": {}})
        capsys.readouterr()
        with training_lock(ws, "dift"):
            assert main(["anchors", str(tmp_path / "ws"), "labels", "--per-class", "3"]) == 0
    err = capsys.readouterr().err
    assert "run 'dift' trains with DIFT now" in err and "a resume after a stop refuses the new ones" in err
