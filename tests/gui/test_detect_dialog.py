"""The Detect dialog's encoder: the workspace's finished training by default, a training still going said as such."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from naviewer.gui.detect_dialog import workspace_checkpoints


def _run(root: Path, name: str, finished: bool) -> Path:
    checkpoint = root / "checkpoints" / name / "last.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"x")
    records = [{"kind": "run_start", "total_epochs": 60}] + ([{"kind": "event", "event": "finished"}] if finished else [])
    (root / "runs" / name).mkdir(parents=True)
    (root / "runs" / name / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return checkpoint


def test_a_checkpoint_still_training_or_cut_short_is_said_and_a_finished_one_is_the_default(tmp_path, window):
    """During a Train, Detect offered its half-trained last.pt (epoch 19 of 60) without a word; after it, the field
    started empty though the workspace had one finished training (a newcomer, session 19)."""
    from naviewer.workspace.runs import finished_checkpoints, training_lock

    done = _run(tmp_path, "simclr-a", finished=True)
    cut = _run(tmp_path, "simclr-b", finished=False)
    live = _run(tmp_path, "simclr-c", finished=False)
    with training_lock(SimpleNamespace(path=tmp_path), "simclr-c"):
        words = {p.parent.name: w for p, w in workspace_checkpoints(tmp_path / "checkpoints")}
        assert "STILL TRAINING" in words["simclr-c"]
    assert "stopped before its end" in words["simclr-b"]
    assert "trained without DIFT" in words["simclr-a"]
    assert finished_checkpoints(tmp_path) == [done]
    assert cut.is_file() and live.is_file()
    window.state.set_workspace(tmp_path, {"samples": 3, "runs": []})
    assert window._workspace_encoder() == done


def test_a_training_newer_than_the_reviewed_passs_encoder_is_offered(tmp_path, window):
    """A newcomer trained a better encoder and Detect… offered the reviewed pass's older one, the two paths differing
    only in a time stamp (session 28): the newest finished training is offered when it is newer."""
    import os

    old = _run(tmp_path, "simclr-old", finished=True)
    new = _run(tmp_path, "simclr-new", finished=True)
    os.utime(old, (1_000_000, 1_000_000))
    window.state.set_workspace(tmp_path, {"samples": 3, "runs": [], "encoder_path": str(old)})
    assert window._workspace_encoder() == new
    os.utime(new, (500_000, 500_000))  # the reviewed pass's encoder is the newest: it stays
    window.state.set_workspace(tmp_path, {"samples": 3, "runs": [], "encoder_path": str(old)})
    assert window._workspace_encoder() == old


def test_the_no_poison_floors_encoder_is_never_offered(tmp_path, window):
    """Measured after a review, the floor's encoder (trained on the clean set) was the newest finished training, and
    Detect… offered it (a review, session 28)."""
    import os

    import numpy as np

    from naviewer.data.base import ArrayDataset
    from naviewer.workspace import Workspace

    ws_path = tmp_path / "ws"
    Workspace.create(ws_path, ArrayDataset(np.zeros((4, 8, 8, 3), np.uint8), [0, 1, 0, 1], ["a", "b"])).close()
    trained = _run(ws_path, "simclr-a", finished=True)
    floor = _run(ws_path, "floor", finished=True)
    os.utime(trained, (1_000_000, 1_000_000))
    with Workspace.open(ws_path) as ws:
        ws.store.add_run("floor", "floor", {"train": {}})
    window.state.set_workspace(ws_path, {"samples": 4, "runs": []})
    assert window._workspace_encoder() == trained and floor.is_file()


def test_a_detector_the_workspace_is_too_small_for_is_not_offered(qtbot):
    """Detect on 58 images refused lid (64 neighbours), ticked by default, with a terminal option for advice (a
    newcomer, session 29): the dialog unticks and disables it, saying why; on a large workspace it stays."""
    from naviewer.gui.detect_dialog import DetectDialog

    small = DetectDialog(None, samples=58)
    qtbot.addWidget(small)
    assert not small.boxes["lid"].isEnabled() and "lid" not in small.detectors()
    from PySide6.QtWidgets import QLabel

    said = [label for label in small.findChildren(QLabel) if "Not here:" in label.text()]
    assert said and not said[0].isEnabled() and ". Not here: k=64 neighbours" in said[0].text()  # greyed, a sentence
    assert "kdist" in small.detectors() or not small.boxes["kdist"].isEnabled()
    large = DetectDialog(None, samples=5000)
    qtbot.addWidget(large)
    assert large.boxes["lid"].isEnabled() and "lid" in large.detectors()


def test_a_file_that_is_plainly_no_checkpoint_is_said_before_detect_starts(qtbot, tmp_path):
    """A text file typed in as the encoder left the line under it blank, and Detect started a job that then failed (a
    newcomer, session 30): its first bytes say it is no checkpoint, and Detect stays greyed."""
    from PySide6.QtWidgets import QDialogButtonBox

    from naviewer.gui.detect_dialog import DetectDialog

    text = tmp_path / "notes.pt"
    text.write_text("hello, not weights\n")
    dialog = DetectDialog(None, text, samples=500)
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert "Not a readable checkpoint: its content is neither a zip archive nor a pickle" in dialog.problem.text()
    assert not ok.isEnabled()
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    dialog.checkpoint_edit.setText(str(empty))
    assert "the file is empty" in dialog.problem.text() and not ok.isEnabled()
    import pickle

    good = tmp_path / "weights.pt"
    good.write_bytes(pickle.dumps({"a": 1}, protocol=2))  # a pickle: torch may read it; the job says the rest
    dialog.checkpoint_edit.setText(str(good))
    assert dialog.problem.text() == "" and ok.isEnabled()
