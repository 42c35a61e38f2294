"""Retrain again on the decisions changed after the remove-and-retrain (the window had no way to: a newcomer)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from naviewer.errors import NaviewerError

from test_demo import demo_ws  # noqa: F401 - the tiny demo workspace (module fixture)


@pytest.fixture()
def retrained(demo_ws, tmp_path):  # noqa: F811
    """A copy of the tiny demo after its first remove-and-retrain (2 epochs), the flags all confirmed."""
    from naviewer.workflows.demo import RUN, finetune_and_finish
    from naviewer.workspace import Workspace
    from naviewer.workspace.runs import confirm_flags, read_state

    path = tmp_path / "ws"
    shutil.copytree(demo_ws, path)
    with Workspace.open(path) as ws:
        ws.update_config("dift", {**ws.config["dift"], "restart_mode": "retrain", "retrain_epochs": 2})
        confirm_flags(ws, int(read_state(ws, RUN)["pass_id"]))
        finetune_and_finish(ws, RUN, config_overrides={"num_threads": 1})
    return path


def _metrics(path, run):
    return [json.loads(line) for line in (path / "runs" / run / "metrics.jsonl").read_text().splitlines()]


def test_a_second_retrain_leaves_out_the_samples_confirmed_now(retrained):
    from naviewer.workflows.demo import RUN
    from naviewer.workflows.posthoc import latest_finetune_result
    from naviewer.workflows.retrain_again import AGAIN_KIND, retrain_on_decisions
    from naviewer.workspace import Workspace
    from naviewer.workspace.runs import confirmed_ids

    with Workspace.open(retrained) as ws:
        first = latest_finetune_result(ws, RUN)
        confirmed = confirmed_ids(ws)
        ws.store.set_review(confirmed[:1], "rejected", "analyst")  # the analyst changed one decision after it
        out = retrain_on_decisions(ws, RUN)
        name = out["again"]
        assert name == f"{RUN}-again-1" and out["confirmed"] == confirmed.size - 1
        assert out["before"]["confirmed_density"] and out["after"]["confirmed_density"]
        start = [r for r in _metrics(retrained, name) if r["kind"] == "run_start"][0]
        assert start["n_samples"] == ws.store.sample_count() - (confirmed.size - 1)
        assert max(r["epoch"] for r in _metrics(retrained, name) if r["kind"] == "epoch") == 1  # the first's 2 epochs
        record = next(r for r in ws.store.runs() if r["name"] == name)
        assert record["kind"] == AGAIN_KIND and record["config"]["from"] == RUN
        assert record["config"]["exclude"] == confirmed[1:].tolist()
        shown = latest_finetune_result(ws, RUN)  # what a reopened window's Fine-tune tab shows: the newest
        assert shown["again"] == name and shown["kind"] == "retrain" and shown["confirmed"] == confirmed.size - 1
        # the first retrain's figures go with it (the table showed the again's alone; a newcomer, session 30)
        assert [(e["run"], e["first"], e["confirmed"]) for e in out["earlier"]] == [(RUN, True, confirmed.size)]
        assert shown["earlier"] == out["earlier"] and out["earlier"][0]["after"] == first["after"]
        assert first["confirmed"] == confirmed.size


def test_a_second_retrain_cancelled_and_resumed_leaves_out_the_same_samples(retrained):
    from naviewer.jobs import JobCancelled, JobContext, RecordingReporter
    from naviewer.workflows.demo import RUN
    from naviewer.workflows.dift_training import resume_stopped_run
    from naviewer.workflows.posthoc import latest_finetune_result
    from naviewer.workflows.retrain_again import retrain_on_decisions
    from naviewer.workspace import Workspace
    from naviewer.workspace.runs import confirmed_ids

    class CancelAtTheFirstEpoch(RecordingReporter):
        def metric(self, values):
            super().metric(values)
            if values.get("kind") == "epoch":
                ctx.cancel()

    ctx = JobContext(CancelAtTheFirstEpoch())
    with Workspace.open(retrained) as ws:
        confirmed = confirmed_ids(ws)
        ws.store.set_review(confirmed[:2], "rejected", "analyst")
        with pytest.raises(JobCancelled):
            retrain_on_decisions(ws, RUN, ctx)
        name = f"{RUN}-again-1"
        assert latest_finetune_result(ws, RUN).get("again") is None  # not a result yet
        resume_stopped_run(ws, name, monitor=False, config_overrides={"num_threads": 1})
        starts = [r for r in _metrics(retrained, name) if r["kind"] == "run_start"]
        assert len(starts) == 2 and {s["n_samples"] for s in starts} == {ws.store.sample_count() - (confirmed.size - 2)}
        shown = latest_finetune_result(ws, RUN)
        assert shown["again"] == name and shown["before"] and shown["after"] and shown["confirmed"] == confirmed.size - 2


def test_nothing_to_train_again_after_is_said(demo_ws, tmp_path):  # noqa: F811
    from naviewer.workflows.demo import RUN
    from naviewer.workflows.retrain_again import retrain_on_decisions
    from naviewer.workspace import Workspace

    path = tmp_path / "ws"
    shutil.copytree(demo_ws, path)
    with Workspace.open(path) as ws, pytest.raises(NaviewerError, match="no finished remove-and-retrain"):
        retrain_on_decisions(ws, RUN)


def test_a_retrain_the_command_line_made_can_be_trained_again(retrained):
    """`naviewer finetune --accept-all` (and the matrix) write no finetune_result.json: the window's Fine-tune tab said
    "Done earlier: removed 109 ... retrained" from the run's state and offered Retrain again, which failed with "no
    finished remove-and-retrain" (session 34). The state's record of the retrain is enough; no "before" figures."""
    from naviewer.workflows.demo import RUN
    from naviewer.workflows.retrain_again import retrain_on_decisions
    from naviewer.workspace import Workspace

    (retrained / "runs" / RUN / "finetune_result.json").unlink()
    with Workspace.open(retrained) as ws:
        result = retrain_on_decisions(ws, RUN)
    assert result["again"] == f"{RUN}-again-1" and "knn_acc" in result["after"]
    assert set(result["before"]) <= {"confirmed_density", "knn_acc", "asr"}  # the review embeddings and the monitor at the review
    # the first retrain's figures from its monitor, for the window's "Before this one, the first retrain read ..."
    # (it had nothing to compare the again with; session 35)
    (first,) = result["earlier"]
    assert first["first"] and first["run"] == RUN and "knn_acc" in first["after"] and first["confirmed"] >= 1
