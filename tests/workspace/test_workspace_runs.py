"""Run state (``naviewer.workspace.runs``): the status enum keeps the stored strings, the state merges."""

from __future__ import annotations

import json

import numpy as np
import pytest

from naviewer.errors import NaviewerError
from naviewer.workspace.runs import (
    STATE_FILE,
    RunState,
    RunStatus,
    confirmed_ids,
    pending_review_runs,
    read_state,
    write_state,
)


def test_state_file_keeps_plain_strings_and_merges(ws) -> None:
    assert read_state(ws, "dift") is None and pending_review_runs(ws) == []
    write_state(ws, "dift", status=RunStatus.DETECTING, dift=True)
    state = write_state(ws, "dift", status=RunStatus.AWAITING_REVIEW, pass_id=3, epoch=5)
    stored = json.loads((ws.path / "runs" / "dift" / STATE_FILE).read_text(encoding="utf-8"))
    assert stored["status"] == "awaiting_review" and stored["dift"] is True and stored["pass_id"] == 3
    read = read_state(ws, "dift")
    assert isinstance(read, RunState) and read.status is RunStatus.AWAITING_REVIEW == state.status
    assert read.pass_id == 3 and read.epoch == 5 and read.extra == {"dift": True}
    assert read.get("status") == "awaiting_review" and read["pass_id"] == 3 and read.get("missing") is None
    assert pending_review_runs(ws) == ["dift"]
    assert f"{RunStatus.FINISHED}" == str(RunStatus.FINISHED) == "finished"


def test_unknown_status_is_a_garbled_state(ws) -> None:
    path = ws.run_dir("old") / STATE_FILE
    path.write_text(json.dumps({"status": "exploded"}), encoding="utf-8")
    with pytest.raises(NaviewerError, match="garbled DIFT run state"):
        read_state(ws, "old")


def test_a_state_that_is_no_object_or_cannot_be_read_is_said(ws) -> None:
    """A JSON list read as "no state" (Fine-tune said "Status unknown") and an unreadable file raised Python's own
    errors out of the window (a GUI sweep): each is a NaviewerError naming the file (random bytes here)."""
    path = ws.run_dir("odd") / STATE_FILE
    path.write_text("[1, 2, 3]", encoding="utf-8")
    with pytest.raises(NaviewerError, match="a JSON list, not an object"):
        read_state(ws, "odd")
    path.write_bytes(bytes(range(256)))
    with pytest.raises(NaviewerError, match="garbled DIFT run state"):
        read_state(ws, "odd")


def test_workspace_summary_says_an_unreadable_part_and_opens_the_rest(ws, monkeypatch) -> None:
    from naviewer.gui import tasks

    def unreadable(_path):
        raise PermissionError(13, "Permission denied", str(ws.path / "runs"))

    monkeypatch.setattr(tasks, "_runs_with_metrics", unreadable)
    ws.close()
    from naviewer.jobs import JobContext

    with pytest.warns(UserWarning, match="runs: permission denied; the training runs cannot be listed"):
        summary = tasks.workspace_summary(ws.path, JobContext())
    assert summary["runs"] == [] and summary["samples"] > 0


def test_confirmed_ids_follow_the_review(ws) -> None:
    assert confirmed_ids(ws).size == 0
    ws.store.set_review(np.array([2, 5]), "confirmed", "tester")
    assert confirmed_ids(ws).tolist() == [2, 5]


def test_one_finetune_outcome_for_the_three_paths():
    """In training (Eq. 7 or retrain), skipped, and post hoc: one type, the records the workspace keeps."""
    from pathlib import Path

    from naviewer.workspace.runs import FinetuneOutcome

    eq7 = FinetuneOutcome(5, {"steps": 3}, pass_id=2, removed=5, kept=95, remaining_epochs=4, restart_mode="continue",
                          seconds=1.5)
    assert eq7.kind == "finetune" and eq7.to_dict() == {
        "pass_id": 2, "confirmed": 5, "removed": 5, "finetune": {"steps": 3}, "restart_mode": "continue",
        "kept": 95, "remaining_epochs": 4, "seconds": 1.5}
    assert FinetuneOutcome.from_dict(eq7.to_dict()) == eq7
    retrain = FinetuneOutcome(5, {"steps": 0}, removed=5, kept=95, remaining_epochs=2, restart_mode="retrain")
    assert retrain.kind == "retrain"
    one = FinetuneOutcome(1, None, pass_id=2, removed=1, kept=99, remaining_epochs=4, seconds=0.1)
    assert one.to_dict() == {"pass_id": 2, "confirmed": 1, "removed": 1, "finetune": None, "kept": 99,
                             "remaining_epochs": 4, "seconds": 0.1}
    none = FinetuneOutcome(3, pass_id=2, removed=0, skipped=True, seconds=0.0)
    assert none.to_dict() == {"pass_id": 2, "confirmed": 3, "removed": 0, "skipped": True, "seconds": 0.0}
    posthoc = FinetuneOutcome(4, {"steps": 2}, source=Path("a.pt"), checkpoint=Path("b.pt"), run="p-finetune",
                              before={"asr": 0.9}, after={"asr": 0.1}, embeddings={"after": Path("e.npy")})
    record = posthoc.to_dict()
    assert posthoc.kind == "posthoc" and record["source"] == "a.pt" and record["embeddings"] == {"after": "e.npy"}
    assert FinetuneOutcome.from_dict(record).kind == "posthoc"


def test_one_damaged_run_state_leaves_that_run_out_of_the_lists_and_says_so(ws) -> None:
    """A state file that is a JSON list once read as no state; refused now, it must not refuse the lists over every
    run (finetune without --run, run --resume and the window's resume list read them)."""
    write_state(ws, "good", status=RunStatus.AWAITING_REVIEW, pass_id=1)
    (ws.run_dir("bad") / STATE_FILE).write_text("[1]", encoding="utf-8")
    with pytest.warns(UserWarning, match="run 'bad' is left out"):
        assert pending_review_runs(ws) == ["good"]
