"""A training without the confirmed poisons is read beside the encoder the review was made on and the floor."""

from __future__ import annotations

import json

import numpy as np

from naviewer.data.base import ArrayDataset
from naviewer.workflows.leave_out import leave_out_comparison, leave_out_lines, reviewed_run
from naviewer.workspace import Workspace


def make_dataset(n: int) -> ArrayDataset:
    images = np.random.default_rng(0).integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    return ArrayDataset(images, np.arange(n) % 3, ["cat", "dog", "bird"])


def _metrics(ws, run: str, *epochs: dict) -> None:
    folder = ws.run_dir(run)
    with open(folder / "metrics.jsonl", "w", encoding="utf-8") as handle:
        for i, values in enumerate(epochs):  # the trainer counts epochs from 0
            handle.write(json.dumps({"kind": "epoch", "epoch": i, "time": float(i), **values}) + "\n")
        handle.write(json.dumps({"kind": "event", "event": "finished"}) + "\n")


def _workspace(tmp_path):
    ws = Workspace.create(tmp_path / "ws", make_dataset(12))
    _metrics(ws, "train", {"knn_acc": 0.5}, {"knn_acc": 0.91, "asr": 0.97})
    ws.store.add_run("detect-1", "posthoc", {"checkpoint": str(ws.path / "checkpoints" / "train" / "last.pt")})
    ws.store.add_detection_pass("dift", {"score": np.zeros(12), "flagged": np.zeros(12, bool)}, {}, run="detect-1")
    _metrics(ws, "retrain", {"knn_acc": 0.9, "asr": 0.08})
    return ws


def test_the_retrain_is_read_beside_the_reviewed_encoder_and_the_floor(tmp_path):
    """A retrain without the confirmed poisons said only "finished" (a newcomer, session 27): whether the backdoor
    went needs its ASR beside the reviewed encoder's and the floor."""
    with _workspace(tmp_path) as ws:
        assert reviewed_run(ws) == "train"
        comparison = leave_out_comparison(ws, "retrain", 7)
        assert comparison["before"] == {"knn_acc": 0.91, "asr": 0.97} and comparison["before_epochs"] == 2
        lines = leave_out_lines(comparison)
        assert lines[0] == "Trained without the 7 confirmed poisons (run retrain): kNN accuracy 90.0 %, ASR 8.0 % after epoch 1."
        assert lines[1] == "The encoder of the newest post-hoc detection (run train): kNN accuracy 91.0 %, ASR 97.0 % after epoch 2."
        assert "naviewer run WORKSPACE --floor" in lines[2]  # no floor measured yet: how to
        ws.store.add_run("train", "train", {"exclude": [1, 2]})  # the encoder before was itself a leave-out run
        assert "(run train, itself trained without 2 samples)" in leave_out_lines(leave_out_comparison(ws, "retrain", 7))[1]
        plain = leave_out_comparison(ws, "retrain", 7)
        plain["after"].pop("asr")
        # no crafted attack: the eval hint names the run's own checkpoint, not a path relative to the workspace
        # (a newcomer following the docs, session 34)
        assert f"naviewer eval --checkpoint {ws.path / 'checkpoints' / 'retrain' / 'last.pt'} " in \
            leave_out_lines(plain)[-1]
        ws.update_config("floor", {"asr": 0.06, "protocol": "paper"})
        assert leave_out_lines(leave_out_comparison(ws, "retrain", 7))[2].startswith("No-poison floor: ASR 6.0 % (paper)")


def test_without_a_test_set_or_a_workspace_encoder_it_says_what_it_can(tmp_path):
    with Workspace.create(tmp_path / "ws", make_dataset(12)) as ws:
        ws.store.add_run("detect-1", "posthoc", {"checkpoint": str(tmp_path / "elsewhere" / "encoder.pt")})
        ws.store.add_detection_pass("dift", {"score": np.zeros(12), "flagged": np.zeros(12, bool)}, {}, run="detect-1")
        _metrics(ws, "retrain", {"loss": 4.2}, {"loss": 4.1})
        assert reviewed_run(ws) is None  # the reviewed encoder came from outside the workspace
        lines = leave_out_lines(leave_out_comparison(ws, "retrain", 3))
        assert lines[0] == "Trained without the 3 confirmed poisons (run retrain): no evaluation recorded after epoch 2."
        assert len(lines) == 2 and "an attack naviewer crafted" in lines[1] and "trigger=TRIGGER.png" in lines[1] and "Detect" in lines[1]



def test_two_recipes_are_said_to_differ():
    """A 16 px, 60-epoch retrain was read beside a 32 px, 80-epoch encoder without a word (a newcomer, session 28)."""
    from naviewer.workflows.leave_out import recipe_differences

    before = {"image_size": 32, "epochs": 80, "method": "simclr", "backbone": {"arch": "resnet10", "width": 16}}
    after = {"image_size": 16, "epochs": 60, "method": "simclr", "backbone": {"arch": "resnet10", "width": 16}}
    assert recipe_differences(before, after) == ["16 px against 32 px", "60 epochs against 80"]
    assert recipe_differences(before, dict(before)) == [] and recipe_differences({}, after) == []


def test_a_detection_made_with_at_review_pt_reads_the_run_up_to_that_checkpoint(tmp_path):
    """The comparison quoted the run's last epoch (ASR 27.8 % after epoch 84, the encoder retrained since) for a
    detection made with at-review.pt at epoch 34, ASR 100 % (a newcomer, session 29): the figures are the run's
    records up to when that checkpoint was written."""
    import os

    with Workspace.create(tmp_path / "ws", make_dataset(12)) as ws:
        _metrics(ws, "demo", {"knn_acc": 0.9, "asr": 1.0}, {"knn_acc": 0.93, "asr": 1.0},
                 {"knn_acc": 0.92, "asr": 0.28})  # epochs at times 0, 1, 2: the last after the retrain began
        kept = ws.path / "checkpoints" / "demo" / "at-review.pt"
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_bytes(b"weights")
        os.utime(kept, (1.5, 1.5))  # written between the second epoch and the retrain's
        ws.store.add_run("detect-1", "posthoc", {"checkpoint": str(kept)})
        ws.store.add_detection_pass("dift", {"score": np.zeros(12), "flagged": np.zeros(12, bool)}, {}, run="detect-1")
        _metrics(ws, "retrain", {"knn_acc": 0.9, "asr": 0.08})
        comparison = leave_out_comparison(ws, "retrain", 7)
        assert comparison["before_run"] == "demo"
        assert comparison["before"] == {"knn_acc": 0.93, "asr": 1.0} and comparison["before_epochs"] == 2
