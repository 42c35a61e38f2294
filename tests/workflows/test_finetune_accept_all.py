"""``naviewer finetune --accept-all``'s checks before it confirms anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from naviewer.data.base import ArrayDataset
from naviewer.errors import NaviewerError
from naviewer.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path):
    images = np.random.default_rng(0).integers(0, 255, (12, 8, 8, 3), dtype=np.uint8)
    workspace = Workspace.create(tmp_path / "ws", ArrayDataset(images, np.arange(12) % 3, ["a", "b", "c"]))
    yield workspace
    workspace.close()


def test_accept_all_with_nothing_to_accept_says_why(ws) -> None:
    """`finetune --accept-all` on a pass that flagged nothing, or whose every flag was rejected, said "confirm flags
    first" (a bad-input probe, session 30): the cause is said, and another pass with flags is named."""
    from naviewer.cli.finetune import refuse_nothing_to_accept

    n = ws.store.sample_count()
    flagged = np.zeros(n, bool)
    flagged[:4] = True
    kd = ws.store.add_detection_pass("kdist", {"score": np.zeros(n), "flagged": flagged}, {"flagged": 4})
    empty = ws.store.add_detection_pass("dift", {"score": np.zeros(n), "flagged": np.zeros(n, bool)}, {"flagged": 0})
    with pytest.raises(NaviewerError, match=rf"detection pass {empty} flagged nothing; pass {kd} \(kdist\) has 4 flags"):
        refuse_nothing_to_accept(ws, empty)
    ws.store.set_review(np.arange(4), "rejected", "t")
    with pytest.raises(NaviewerError, match=rf"every one of the 4 flags of detection pass {kd} was rejected"):
        refuse_nothing_to_accept(ws, kd)
    ws.store.set_review(np.arange(2), "unreviewed", "t")
    refuse_nothing_to_accept(ws, kd)  # two left to accept: the usual path goes on


def test_finetune_ends_with_the_accuracy_and_asr_before_and_after(ws, capsys) -> None:
    """The terminal said only "removed 117 confirmed samples ... checkpoint": the ASR after stood in the last epoch
    line and the one before 50 lines up. The figures measured last before the review was acted on, and the last."""
    import json

    from naviewer.cli.finetune import say_before_after

    records = [{"kind": "epoch", "epoch": 34, "knn_acc": 0.9, "asr": 1.0, "time": 10},
               {"kind": "event", "event": "review_done", "time": 20},
               {"kind": "epoch", "epoch": 40, "knn_acc": 0.5, "asr": 0.5, "time": 30},
               {"kind": "epoch", "epoch": 89, "knn_acc": 0.944, "asr": 0.043, "time": 40}]
    metrics = ws.run_dir("demo") / "metrics.jsonl"
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_text("\n".join(json.dumps(r) for r in records) + "\nnot json\n")
    say_before_after(ws, "demo")
    said = capsys.readouterr().out
    assert "kNN accuracy 90.0 % -> 94.4 %, ASR 100.0 % -> 4.3 %; no-poison floor not measured" in said
    metrics.write_text(json.dumps(records[0]) + "\n")  # no review acted on: nothing to compare
    say_before_after(ws, "demo")
    assert capsys.readouterr().out == ""
    # retrained under --no-monitor: nothing measured after the review, so no "100 % -> 100 %" (a review, session 31)
    metrics.write_text("\n".join(json.dumps(r) for r in records[:2] + [{"kind": "epoch", "epoch": 89, "time": 40}])
                       + "\n")
    say_before_after(ws, "demo")
    assert capsys.readouterr().out == ""
    # damaged lines (not objects, a time that is no number, bytes that are no UTF-8) are skipped, never a traceback
    damaged = [b"1", b"[1]", json.dumps({**records[2], "time": None}).encode(), json.dumps({**records[2], "time": "x"}).encode(),
               b"\xff\xfe", *(json.dumps(r).encode() for r in records)]
    metrics.write_bytes(b"\n".join(damaged) + b"\n")
    say_before_after(ws, "demo")
    assert "ASR 100.0 % -> 4.3 %" in capsys.readouterr().out


def _pass_with_a_check(ws, also_reached: int = -1, **where) -> int:
    """A DIFT pass of 8 flags on trusted anchors, #1 and #5-7 reached at 0.9 (and ``also_reached`` at 0.6), with a
    trigger check whose PatchSearch pass flags #0-4: it clears #5-7. Its id."""
    n = ws.store.sample_count()
    flagged, reach, found = np.zeros(n, bool), np.zeros(n), np.zeros(n, bool)
    flagged[:8], reach[[1, 5, 6, 7]], found[:5] = True, 0.9, True
    if also_reached >= 0:
        reach[also_reached] = 0.6
    patch = ws.store.add_detection_pass("patchsearch", {"score": found * 1.0, "flagged": found}, {}, **where)
    settings = {"summary": {"anchors_trusted": True, "flagged": 8},
                "trigger_check": {"patchsearch_pass": patch, "reach_limit": 0.5, "coverage": 0.5}}
    return ws.store.add_detection_pass("dift", {"flagged": flagged, "anchor_reach": reach}, settings, **where)


def test_demo_and_accept_all_say_what_the_trigger_check_leaves(ws, capsys) -> None:
    """`naviewer demo` says which flags `finetune --accept-all` will leave unconfirmed, and accept-all's note on the
    flags the anchors reach as clean counts only those it will confirm."""
    from naviewer.cli.demo import _say_reached
    from naviewer.cli.finetune import say_reached_before_accepting

    dift = _pass_with_a_check(ws, also_reached=2)  # #2 above the check's 0.5, below the default 0.7: counted
    _say_reached(ws.path, dift)
    said = capsys.readouterr().out
    assert "note: 5 flags the trusted anchors reach as clean samples (anchor reach above 0.5" in said
    assert "3 of the 5 flags the trusted anchors reach as clean" in said
    assert "accept-all leaves them unconfirmed" in said and "--confirm removes them, --reject keeps them: naviewer review" in said
    assert "--leave-out-confirmed" not in said  # before accept-all, confirming them is enough
    say_reached_before_accepting(ws, dift)
    assert "confirms 2 flags the trusted anchors reach" in capsys.readouterr().out  # #1, #2: PatchSearch found a trigger


def test_a_report_of_a_pass_finetuned_on_the_command_line_has_its_before_and_after(ws) -> None:
    """naviewer finetune writes no before/after record (the window's retrain does): the report's section reads the
    run's own metrics then."""
    import json

    from naviewer.workflows.posthoc import pass_finetune_result
    from naviewer.workspace.runs import RunStatus, write_state

    n = ws.store.sample_count()
    pass_id = ws.store.add_detection_pass("dift", {"flagged": np.ones(n, bool)}, {}, run="demo", epoch=3)
    ws.store.add_run("demo", "dift", {"dift": {}})
    write_state(ws, "demo", status=RunStatus.FINISHED, pass_id=pass_id,
                finetune={"restart_mode": "retrain", "removed": 3, "pass_id": pass_id})
    ws.checkpoint_dir("demo").mkdir(parents=True, exist_ok=True)
    records = [{"kind": "epoch", "knn_acc": 0.9, "asr": 1.0, "time": 10}, {"kind": "event", "event": "review_done", "time": 20},
               {"kind": "epoch", "knn_acc": 0.94, "asr": 0.05, "time": 30}]
    (ws.run_dir("demo") / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    result = pass_finetune_result(ws, pass_id)
    assert result["kind"] == "retrain" and result["before"] == {"knn_acc": 0.9, "asr": 1.0}
    assert result["after"] == {"knn_acc": 0.94, "asr": 0.05} and result["floor"] is None
    assert pass_finetune_result(ws, None) is None and pass_finetune_result(ws, 999) is None


def test_review_after_the_retrain_says_it_ran_and_lists_only_the_flags_awaiting(ws, capsys) -> None:
    """After the retrain `naviewer review` said the flags "await a decision" with no word of it, and listed 46 ids
    under "45 of them await" (a newcomer, session 31): the retrain's figures, the undecided ids, the one phrasing."""
    import json

    from naviewer.cli import main
    from naviewer.workspace.runs import RunStatus, write_state

    dift = _pass_with_a_check(ws, run="demo", epoch=3)
    ws.store.add_run("demo", "dift", {"dift": {}})
    ws.store.set_review(np.array([0, 1, 2, 3, 4]), "confirmed", "t")  # accept-all: every flag but the cleared 5-7
    write_state(ws, "demo", status=RunStatus.FINISHED, pass_id=dift,
                finetune={"restart_mode": "retrain", "removed": 5, "pass_id": dift})
    ws.checkpoint_dir("demo").mkdir(parents=True, exist_ok=True)
    records = [{"kind": "epoch", "knn_acc": 0.9, "asr": 1.0, "time": 10}, {"kind": "event", "event": "review_done", "time": 20},
               {"kind": "epoch", "knn_acc": 0.94, "asr": 0.05, "time": 30}]
    (ws.run_dir("demo") / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert main(["review", str(ws.path)]) == 0
    said = capsys.readouterr().out
    assert ("the last remove and retrain without the 5 confirmed is done: kNN accuracy 90.0 % -> 94.0 %, "
            "ASR 100.0 % -> 5.0 %; no-poison floor not measured") in said
    assert "the ids awaiting a decision: 5, 6, 7 (" in said  # #1 of the 4 reached is confirmed
    assert "the retrain kept them in its training set (--confirm removes them, --reject keeps them" in said
    assert f"--confirm 5-7, then naviewer run {ws.path} --leave-out-confirmed trains without them" in said
