from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from workflow_kit import attacked_workspace, dift_config, train_config
from naviewer.errors import NaviewerError
from naviewer.ssl.trainer import build_trainer
from naviewer.workflows.dift_training import ReviewGate, resume_after_review, train_with_dift
from naviewer.workspace.runs import read_state
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace


def _records(ws, run="dift"):
    lines = (ws.path / "runs" / run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _trained_ids(ws, run="dift") -> np.ndarray:
    state = torch.load(ws.checkpoint_dir(run) / "last.pt", weights_only=True)
    indices = state["source_indices"]
    return np.arange(state["original_size"]) if indices is None else indices.numpy()


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


def test_accept_all_detects_finetunes_and_restarts_without_the_confirmed(accepted_run):
    path, outcome = accepted_run
    with Workspace.open(path) as ws:
        # the run's own pass (the shared workspace may hold later post-hoc passes when test_posthoc ran first)
        first = min(int(p["id"]) for p in ws.store.passes() if p["method"] == "dift" and p["run"] == "dift")
        assert outcome.status == "finished" and outcome.pass_id == first
        confirmed = np.flatnonzero(ws.store.review_states() == "confirmed")
        flagged = np.flatnonzero(ws.store.pass_scores(outcome.pass_id)["flagged"])
        assert confirmed.size >= 5 and np.array_equal(confirmed, flagged)
        assert ground_truth_mask(ws)[confirmed].mean() >= 0.9
        kept = _trained_ids(ws)
        assert not np.isin(confirmed, kept).any() and kept.size == 240 - confirmed.size
        assert outcome.finetune["removed"] == confirmed.size and outcome.finetune["remaining_epochs"] >= 1
        # the spec's base_lr (0.06) on near-duplicates: finite, no divergence (it went to NaN at step 4 before)
        ft = outcome.finetune["finetune"]
        assert ft["lr"] == pytest.approx(0.006) and not ft["diverged"] and ft["steps"] >= 1
        weights = torch.load(outcome.checkpoint, weights_only=True)
        tensors = [t for t in _tensors(weights) if t.is_floating_point()]
        assert tensors and all(bool(torch.isfinite(t).all()) for t in tensors)
        records = _records(ws)
        epochs = [r for r in records if r["kind"] == "epoch"]
        assert any("dift_detected" in r and "dift_precision" in r for r in epochs)
        assert all("knn_acc" in r and "asr" in r for r in epochs)
        events = [r["event"] for r in records if r["kind"] == "event"]
        assert events.index("dift_stop") < events.index("dift_decision") < events.index("finetune") \
            < events.index("restart")
        decision = next(r for r in records if r.get("event") == "dift_decision")
        assert decision["decision"] == "accepted" and decision["accepted"] == confirmed.size
        assert read_state(ws, "dift")["status"] == "finished"
        audit = ws.store.audit_log()
        assert {row["reviewer"] for row in audit} == {"auto-accept"}


def test_review_gate_stops_then_finetunes_only_the_confirmed(tmp_path, tiny_data):
    setup = attacked_workspace(tmp_path / "ws", tiny_data)
    with setup.workspace as ws:
        out = train_with_dift(ws, train_config(4), dift_config(), accept_all=False, monitor=False)
        assert out.status == "awaiting_review" and out.fit["stopped"] == "dift_review"
        assert read_state(ws, "dift")["status"] == "awaiting_review"
        assert any(r.get("event") == "dift_review" for r in _records(ws))
        # one gate: the hook reports what the workflow decided, never "accepted" while the run waits
        decisions = [r["decision"] for r in _records(ws) if r.get("event") == "dift_decision"]
        assert decisions == ["awaiting_review"]
        flagged = np.flatnonzero(ws.store.pass_scores(out.pass_id)["flagged"])
        assert flagged.size >= 6
        confirmed, rejected = flagged[: flagged.size // 2], flagged[flagged.size // 2:]
        ws.store.set_review(confirmed, "confirmed", "analyst")
        ws.store.set_review(rejected, "rejected", "analyst")
        done = resume_after_review(ws, monitor=False)
        assert done.status == "finished" and done.finetune["removed"] == confirmed.size
        kept = _trained_ids(ws)
        assert not np.isin(confirmed, kept).any() and np.isin(rejected, kept).all()
        assert done.fit["epochs"] == 4
        with pytest.raises(NaviewerError):
            resume_after_review(ws, "dift")  # nothing waits any more


def test_retrain_restart_reports_the_epochs_it_trained(tmp_path, tiny_data):
    """restart_mode=retrain trains retrain_epochs after the removal; the record said what was left before."""
    setup = attacked_workspace(tmp_path / "ws", tiny_data)
    with setup.workspace as ws:
        out = train_with_dift(ws, train_config(3), dift_config(restart_mode="retrain", retrain_epochs=2),
                              accept_all=False, monitor=False)
        assert out.status == "awaiting_review"
        stopped_at = out.fit["epochs"]
        flagged = np.flatnonzero(ws.store.pass_scores(out.pass_id)["flagged"])
        ws.store.set_review(flagged, "confirmed", "analyst")
        done = resume_after_review(ws, monitor=False)
        assert done.finetune["remaining_epochs"] == 2 == done.fit["epochs"] - stopped_at


def test_a_cancelled_retrain_after_the_review_is_kept_resumable_and_goes_on(tmp_path, tiny_data):
    """A newcomer cancelled Remove and retrain after a few epochs: the run then read as done ("Done earlier:
    removed ... retrained"), nothing could finish it, and last.pt (the encoder DIFT flagged with) had become the
    half-trained retrain. Now the flag-time encoder is kept as at-review.pt, the run is listed as interrupted, and
    resuming it trains the kept samples to the retrain's end."""
    from naviewer.jobs import JobCancelled
    from naviewer.workflows.dift_training import REVIEW_CHECKPOINT, resume_stopped_run
    from naviewer.workflows.posthoc import latest_finetune_result
    from naviewer.workspace.runs import interrupted_runs, stopped_after_review

    setup = attacked_workspace(tmp_path / "ws", tiny_data)
    with setup.workspace as ws:
        out = train_with_dift(ws, train_config(3), dift_config(restart_mode="retrain", retrain_epochs=3),
                              accept_all=False, monitor=False)
        assert out.status == "awaiting_review" and not interrupted_runs(ws)
        stopped_at = out.fit["epochs"]
        review_bytes = (ws.checkpoint_dir("dift") / "last.pt").read_bytes()
        flagged = np.flatnonzero(ws.store.pass_scores(out.pass_id)["flagged"])
        ws.store.set_review(flagged, "confirmed", "analyst")
        with pytest.raises(JobCancelled):  # Cancel once the retrain's first epoch is done
            resume_after_review(ws, monitor=False, ctx=_CancelAfterEpoch(stopped_at + 1))
        assert (ws.checkpoint_dir("dift") / REVIEW_CHECKPOINT).read_bytes() == review_bytes
        assert read_state(ws, "dift")["status"] == "restarted"
        assert stopped_after_review(ws, "dift") and interrupted_runs(ws) == ["dift"]
        assert latest_finetune_result(ws, "dift", out.pass_id)["interrupted"] is True
        # finetune again pointed at starting over ("start one with: naviewer run WORKSPACE --dift"; a probe, session 28)
        with pytest.raises(NaviewerError, match="stopped while training on: go on with naviewer run WORKSPACE --resume"
                           ) as refused:
            resume_after_review(ws, monitor=False)
        # which of the two it did ("fine-tuned, or retrained from scratch" named neither; a probe, session 29)
        assert f"took out {flagged.size} confirmed samples and retrained from scratch" in str(refused.value)
        assert "fine-tuned" not in str(refused.value)
        from naviewer.jobs import JobContext

        said = []

        class Log(JobContext):
            def event(self, kind, **fields):
                said.append(fields.get("message", ""))
                super().event(kind, **fields)

        done = resume_stopped_run(ws, monitor=False, ctx=Log())
        assert not done.plain and done.outcome.status == "finished"
        import re

        resumed_at = re.search(r"after its review's retrain, at epoch (\d+) of (\d+)", " ".join(said))
        assert resumed_at and stopped_at < int(resumed_at[1]) < int(resumed_at[2]) == stopped_at + 3
        assert done.outcome.fit["epochs"] == stopped_at + 3  # the retrain's whole budget, not what was left
        assert read_state(ws, "dift")["status"] == "finished" and not interrupted_runs(ws)
        assert latest_finetune_result(ws, "dift", out.pass_id)["interrupted"] is False
        assert not np.isin(flagged, _trained_ids(ws)).any()  # still trained without the removed samples


def test_gui_gate_waits_in_process_until_released(tmp_path, tiny_data):
    setup = attacked_workspace(tmp_path / "ws", tiny_data)
    seen = []

    def analyst(info):  # the GUI would open the review views; here another thread decides
        seen.append(info)

        def decide():
            with Workspace.open(info["workspace"]) as other:
                flagged = np.flatnonzero(other.store.pass_scores(info["pass_id"])["flagged"])
                other.store.set_review(flagged[:3], "confirmed", "analyst")
            gate.release()

        threading.Thread(target=decide).start()

    gate = ReviewGate(on_review=analyst)
    with setup.workspace as ws:
        out = train_with_dift(ws, train_config(4), dift_config(), gate=gate, monitor=False)
        assert seen and out.status == "finished" and out.finetune["removed"] == 3
        assert _trained_ids(ws).size == 237


def test_a_run_being_trained_elsewhere_is_refused_and_a_failed_start_leaves_no_folders(tmp_path, tiny_data):
    """Two ``naviewer run`` of one name started together both passed the checkpoint check and wrote one run's
    files mixed; the run's lock refuses the second. A run whose dataset is gone left an empty checkpoints/NAME/."""
    from filelock import FileLock

    setup = attacked_workspace(tmp_path / "ws", tiny_data)
    with setup.workspace as ws:
        held = FileLock(ws.path / "runs" / ".dift.lock", timeout=0)
        (ws.path / "runs").mkdir(exist_ok=True)
        held.acquire()
        try:
            with pytest.raises(NaviewerError, match="being trained by another process"):
                train_with_dift(ws, train_config(2), dift_config(), accept_all=False, monitor=False)
        finally:
            held.release()
        assert not (ws.path / "checkpoints" / "dift").exists()

        import naviewer.workflows.dift_training as module

        def gone(*_args, **_kwargs):
            raise NaviewerError("folder not found", "/nonexistent/data")

        original = module._store_of
        module._store_of = gone
        try:
            with pytest.raises(NaviewerError, match="folder not found"):
                train_with_dift(ws, train_config(2), dift_config(), accept_all=False, monitor=False, run="gone")
        finally:
            module._store_of = original
        assert not (ws.path / "checkpoints" / "gone").exists()
        # the name is checked before it becomes a lock's path (filelock makes missing parent folders)
        with pytest.raises(NaviewerError):
            train_with_dift(ws, train_config(2), dift_config(), accept_all=False, monitor=False, run="../outside")
        assert not (tmp_path / "outside").exists() and not (ws.path / "outside.lock").exists()


class _CancelAfterEpoch:
    """A job context that asks to stop once epoch ``epoch``'s record (with its detection) is written (Ctrl-C then),
    or, ``inside``, at the first progress report of epoch ``epoch + 1``'s detection (Ctrl-C in the middle of it)."""

    def __new__(cls, epoch: int, inside: bool = False):
        from naviewer.jobs import JobContext

        class Context(JobContext):
            armed = False

            def metric(self, **values):
                super().metric(**values)
                if values.get("kind") == "epoch" and values.get("epoch") == epoch:
                    if inside:
                        self.armed = True
                    else:
                        self.cancel()

            def progress(self, done, total=None, message=""):
                super().progress(done, total, message)
                if self.armed and str(message).startswith("DIFT"):
                    self.cancel()

        return Context()


@pytest.mark.parametrize("where", ["after an epoch", "inside a detection"])
def test_an_interrupted_dift_run_resumes_to_the_same_flags(tmp_path, tiny_data, where):
    """A Ctrl-C'd `naviewer run --dift` could not be continued: hours of training lost. Resumed from its checkpoint
    (the buffer rebuilt from the detection epochs it kept; a detection cut short done again first), it stops at the
    same epoch with the same flags as the run that was never interrupted."""
    from naviewer.jobs import JobCancelled
    from naviewer.workflows.dift_training import resume_interrupted

    settings = dict(patience=2)
    with attacked_workspace(tmp_path / "a", tiny_data).workspace as ws:
        whole = train_with_dift(ws, train_config(8), dift_config(**settings), monitor=False)
        assert whole.status == "awaiting_review"
        flags_whole = np.flatnonzero(ws.store.pass_scores(whole.pass_id)["flagged"])
        epoch_whole = ws.store.pass_info(whole.pass_id)["epoch"]
    assert epoch_whole == 6  # the interruption below (after epoch 5) falls inside the stable stretch (4-6)

    with attacked_workspace(tmp_path / "b", tiny_data).workspace as ws:
        with pytest.raises(JobCancelled):
            train_with_dift(ws, train_config(8), dift_config(**settings), monitor=False,
                            ctx=_CancelAfterEpoch(4 if where == "inside a detection" else 5,
                                                  inside=where == "inside a detection"))
        assert read_state(ws, "dift")["status"] == "detecting"
        assert sorted(p.name for p in (ws.path / "runs" / "dift" / "dift_selected").iterdir()) == [
            f"epoch_{e:05d}.npy" for e in range(6 if where == "after an epoch" else 5)]
        with pytest.raises(NaviewerError, match="--resume --run dift"):  # the old advice: it cannot be continued
            train_with_dift(ws, train_config(8), dift_config(**settings), monitor=False)
        resumed = resume_interrupted(ws, monitor=False)
        assert resumed.status == "awaiting_review"
        assert ws.store.pass_info(resumed.pass_id)["epoch"] == epoch_whole
        assert np.array_equal(np.flatnonzero(ws.store.pass_scores(resumed.pass_id)["flagged"]), flags_whole)
        assert any(r.get("resumed_from_epoch") == 6 for r in _records(ws))
        if where == "inside a detection":  # epoch 5 was counted done; its detection is done again before epoch 6
            assert any(r.get("event") == "epoch_end_resumed" and r.get("epoch") == 5 for r in _records(ws))
        with pytest.raises(NaviewerError, match="waits for the review"):
            resume_interrupted(ws, "dift")


def test_a_resume_from_a_damaged_checkpoint_refuses_before_touching_the_run_record(tmp_path, tiny_data):
    """A fuzzed last.pt (one tensor of the weights gone) was refused, but only after dift_state.json had been
    rewritten as going on; and the message ended at "for SimCLR:". Now the records are untouched and the key named."""
    from naviewer.jobs import JobCancelled
    from naviewer.workflows.dift_training import resume_interrupted

    with attacked_workspace(tmp_path / "ws", tiny_data).workspace as ws:
        with pytest.raises(JobCancelled):
            train_with_dift(ws, train_config(8), dift_config(patience=2), monitor=False, ctx=_CancelAfterEpoch(2))
        last = ws.checkpoint_dir("dift") / "last.pt"
        state = torch.load(last, weights_only=False)
        dropped = next(k for k in state["model"] if k.endswith("num_batches_tracked"))
        del state["model"][dropped]
        torch.save(state, last)
        record = ws.run_dir("dift") / "dift_state.json"
        config_file = ws.config_path
        before, config_before, config_time = record.read_bytes(), config_file.read_bytes(), config_file.stat().st_mtime_ns
        with pytest.raises(NaviewerError, match="damaged training checkpoint") as caught:
            resume_interrupted(ws, monitor=False)
        assert dropped in str(caught.value) and record.read_bytes() == before
        # nor is workspace.toml's [dift] written again before the checkpoint is read (a review of session 23)
        assert config_file.read_bytes() == config_before and config_file.stat().st_mtime_ns == config_time


def test_a_finetune_from_a_damaged_checkpoint_refuses_before_confirming_or_keeping_anything(tmp_path, tiny_data):
    """`finetune --accept-all` on a damaged last.pt confirmed every flag and kept the review encoder, then refused
    (a review of session 23): the checkpoint is read first, and nothing is decided or kept."""
    from naviewer.workflows.dift_training import resume_after_review
    from naviewer.workspace.runs import REVIEW_CHECKPOINT

    with attacked_workspace(tmp_path / "ws", tiny_data).workspace as ws:
        out = train_with_dift(ws, train_config(8), dift_config(patience=2), monitor=False)
        assert out.status == "awaiting_review"
        last = ws.checkpoint_dir("dift") / "last.pt"
        state = torch.load(last, weights_only=False)
        del state["model"][next(k for k in state["model"] if k.endswith("num_batches_tracked"))]
        torch.save(state, last)
        with pytest.raises(NaviewerError, match="damaged training checkpoint"):
            resume_after_review(ws, accept_all=True, monitor=False)
        assert not (ws.store.review_states() == "confirmed").any()
        assert not (last.parent / REVIEW_CHECKPOINT).exists()


def test_a_plain_training_of_the_window_resumes_from_its_checkpoint(tmp_path, tiny_data):
    """The window's Train (no DIFT, no run record) stopped by a closed window could not go on: Run ▸ Resume
    interrupted run and `naviewer run WS --resume` only knew DIFT runs. Now it is listed, goes on to the epochs it
    was started for, and is not listed once it has ended."""
    from naviewer.data.store import ImageStore
    from naviewer.jobs import JobCancelled
    from naviewer.workflows.dift_training import resume_interrupted, resume_plain_training, the_interrupted_run
    from naviewer.workspace.runs import interrupted_trainings, resumable_runs

    with attacked_workspace(tmp_path / "ws", tiny_data).workspace as ws:
        store = ImageStore.from_dataset(ws.dataset())
        name = "simclr-20261204-000000"  # as the window names it: the trainer alone, into the workspace's folders
        trainer = build_trainer(train_config(3, knn_every=0), store, ws.run_dir(name), checkpoint_dir=ws.checkpoint_dir(name))
        with pytest.raises(JobCancelled):
            trainer.fit(_CancelAfterEpoch(0))
        assert interrupted_trainings(ws) == [name] and resumable_runs(ws) == [name]
        assert the_interrupted_run(ws) == name
        from filelock import FileLock

        with FileLock(ws.path / "runs" / f".{name}.lock"):  # being trained (by another process): not offered
            assert interrupted_trainings(ws) == []
            with pytest.raises(NaviewerError, match="being trained by another process"):
                resume_plain_training(ws, name)
        with pytest.raises(NaviewerError, match="plain training"):
            resume_interrupted(ws, name)
        out = resume_plain_training(ws, name)
        assert out["epochs"] == 3
        assert torch.load(ws.checkpoint_dir(name) / "last.pt", weights_only=False)["completed_epochs"] == 3
        assert any(r.get("resumed_from_epoch") == 1 for r in _records(ws, name))
        assert interrupted_trainings(ws) == []
        with pytest.raises(NaviewerError, match="not a plain training that stopped"):
            resume_plain_training(ws, name)


def test_resume_refuses_what_cannot_go_on(tmp_path, tiny_data):
    from naviewer.workflows.dift_training import resume_interrupted

    with attacked_workspace(tmp_path / "ws", tiny_data).workspace as ws:
        with pytest.raises(NaviewerError, match="nothing to resume"):
            resume_interrupted(ws)
        with pytest.raises(NaviewerError, match="cannot be resumed"):
            resume_interrupted(ws, "nope")


def test_a_resume_refuses_replaced_anchors_and_a_fresh_run_forgets_old_selections(tmp_path, tiny_data):
    """The buffer of the epochs before a resume was built with the anchors of then: replaced since, the resume is
    refused. A new run of a reused name (its checkpoint deleted) starts without the old run's S_t."""
    import shutil

    from naviewer.jobs import JobCancelled
    from naviewer.workflows.anchor_sources import set_workspace_anchors
    from naviewer.workflows.dift_training import resume_interrupted

    with attacked_workspace(tmp_path / "ws", tiny_data).workspace as ws:
        with pytest.raises(JobCancelled):
            train_with_dift(ws, train_config(8), dift_config(patience=2), monitor=False, ctx=_CancelAfterEpoch(3))
        selected = ws.path / "runs" / "dift" / "dift_selected"
        assert len(list(selected.iterdir())) == 4
        set_workspace_anchors(ws, "labels", 3, 1)
        with pytest.raises(NaviewerError, match="anchors were replaced"):
            resume_interrupted(ws)
        shutil.rmtree(ws.path / "checkpoints" / "dift")
        with pytest.raises(JobCancelled):
            train_with_dift(ws, train_config(8), dift_config(patience=2, start_epoch=2), monitor=False,
                            ctx=_CancelAfterEpoch(2))
        assert sorted(p.name for p in selected.iterdir()) == ["epoch_00002.npy"]


def test_a_dift_run_that_would_never_detect_is_refused(tmp_path, tiny_data):
    """`run --dift --dift-start 1000 --epochs 2` trained, said "done" and never detected (a sweep)."""
    with attacked_workspace(tmp_path / "ws", tiny_data).workspace as ws:
        with pytest.raises(NaviewerError, match="starts detecting at epoch 6 but the run has 2 epochs"):
            train_with_dift(ws, train_config(2), dift_config(start_epoch=5), monitor=False)
        assert not (ws.path / "checkpoints" / "dift" / "last.pt").exists()


def test_a_run_dift_never_stopped_says_why_in_words() -> None:
    """"run too short for E_start + patience" was said after 40 epochs of which DIFT had watched 30 with a buffer
    that never held enough (a newcomer, session 25): the note now says which of the three happened."""
    from types import SimpleNamespace

    import numpy as np

    from naviewer.defense.buffer import DetectionBuffer
    from naviewer.defense.config import DiftConfig
    from naviewer.workflows.dift_training import never_stopped_note

    config = DiftConfig(n_min=10, patience=2)
    buffer = DetectionBuffer(config, total_epochs=40)
    assert "never ran" in never_stopped_note(SimpleNamespace(buffer=buffer), 40)
    for epoch in range(10, 40):
        buffer.update(epoch, np.arange(epoch % 3))  # at most 2 selected: never n_min
    note = never_stopped_note(SimpleNamespace(buffer=buffer), 40)
    assert "never held the 10 samples" in note and "at most 2" in note and "not a clean bill" in note
    assert "E_start" not in note and "no crowded group away from the anchors" in note
    # the guard took nothing at every epoch: said as that, not as "no crowded group" (a newcomer, session 32)
    log = [(epoch, "rejected", 2.4 + 0.02 * epoch) for epoch in range(10, 40)]
    note = never_stopped_note(SimpleNamespace(buffer=buffer, guard_log=log), 40)
    assert "at 30 of its 30 detection epochs the candidates split in two (separation 2.6-3.2)" in note
    assert "so the guard took nothing" in note and "not a clean bill" in note
    said = never_stopped_note(SimpleNamespace(buffer=buffer, guard_log=log), 40, terminal=True)
    assert said.startswith("it watched epochs 11-40") and "Run ▸" not in said and "naviewer detect" not in said
    moving = DetectionBuffer(config, total_epochs=40)
    for epoch in range(10, 20):
        moving.update(epoch, np.arange(epoch, epoch + 30))  # 30 a time, sliding: fills, intersects, never stable
    assert "never stayed the same for 2 epochs" in never_stopped_note(SimpleNamespace(buffer=moving), 20)


def test_a_run_stopped_after_dift_found_nothing_resumes_the_rest_of_its_training(tmp_path, tiny_data):
    """DIFT's verdict had nothing to act on, the training went on, and a Ctrl-C after that lost the rest of it: `run
    --resume` said "nothing to resume" (a bad-input probe, session 27). It goes on to the planned epochs without the
    detection (its pass is kept), and a second stop on the way is resumable too."""
    from naviewer.jobs import JobCancelled
    from naviewer.workflows.dift_training import resume_interrupted
    from naviewer.workspace.runs import resumable_runs

    with attacked_workspace(tmp_path / "ws", tiny_data).workspace as ws:
        with pytest.raises(JobCancelled):
            # n_min above the set: the detection cap (2 epochs) ends in a verdict of nothing to act on
            train_with_dift(ws, train_config(10), dift_config(patience=1, n_min=100_000, max_detection_epochs=2),
                            monitor=False, ctx=_CancelAfterEpoch(6))
        state = read_state(ws, "dift")
        assert state["status"] == "noop", state
        passes = [p["id"] for p in ws.store.passes()]
        assert resumable_runs(ws) == ["dift"]
        with pytest.raises(JobCancelled):  # stopped again on the way
            resume_interrupted(ws, monitor=False, ctx=_CancelAfterEpoch(8))
        assert resumable_runs(ws) == ["dift"]
        resumed = resume_interrupted(ws, monitor=False)
        assert resumed.status == "finished" and read_state(ws, "dift")["status"] == "finished"
        assert [p["id"] for p in ws.store.passes()] == passes  # no second detection
        epochs = [r["epoch"] for r in _records(ws) if r.get("kind") == "epoch"]
        assert max(epochs) == 9 and resumable_runs(ws) == []


def test_a_dift_run_whose_flags_never_held_still_says_so_at_its_end(capsys) -> None:
    """`naviewer run --dift` ended on "done: 50 epochs" alone after 21 detection epochs that never settled (an
    outside test, session 29): the end says DIFT flagged nothing, that it is not a clean bill, and what to run."""
    from types import SimpleNamespace

    from naviewer.cli.run import _report

    out = SimpleNamespace(status="finished", pass_id=None, finetune=None, fit={"epochs": 50}, checkpoint="ck/last.pt")
    _report(out, "WS", 50, None, dift_on=True)
    said = capsys.readouterr().out
    assert "DIFT flagged nothing" in said and "not a clean bill" in said and "--detector patchsearch" in said
    _report(out, "WS", 50, None, dift_on=False)  # a plain training: nothing about DIFT
    assert "DIFT" not in capsys.readouterr().out


def test_a_run_whose_restart_fell_back_to_a_retrain_says_so(capsys) -> None:
    """run --accept-all retrained from scratch when Eq. 7 took no step and said only that it retrained (a review,
    session 29): the fallback and its reason are said, as finetune says them."""
    from types import SimpleNamespace

    from naviewer.cli.run import _report
    from naviewer.defense.mitigate import FALLBACK_WORDS

    out = SimpleNamespace(status="finished", pass_id=1, checkpoint="ck/last.pt", fit={"epochs": 83},
                          finetune={"restart_mode": "retrain", "removed": 113, "finetune": {"fallback": "retrain"}})
    _report(out, "WS", 50, None, dift_on=True)
    said = capsys.readouterr().out
    assert "113 confirmed samples removed" in said and FALLBACK_WORDS in said


@pytest.mark.parametrize("record, words", [
    ({"removed": 12, "restart_mode": "retrain", "finetune": {"steps": 0, "fallback": "retrain"}},
     "took out 12 confirmed samples and retrained from scratch: the paper's restart fell back to it"),
    ({"removed": 1, "restart_mode": "continue", "finetune": {"steps": 40}},
     "took out 1 confirmed sample and fine-tuned (40 Eq. 7 steps), then restarted training"),
    ({}, "fine-tuned, then restarted training"),
])
def test_a_run_stopped_after_its_review_names_what_the_review_did(monkeypatch, record, words):
    import naviewer.workflows.dift_training as dt
    from naviewer.workspace.runs import RunState, RunStatus

    monkeypatch.setattr(dt, "read_state", lambda ws, run: RunState(RunStatus.RESTARTED, finetune=record))
    assert dt._what_the_review_did(None, "dift").startswith(words)


@pytest.mark.parametrize("damage, words", [
    (np.array([1, 2, 9999]), "ids outside the run's"),
    (np.array([0.5, np.nan]), "not a list of sample ids"),
])
def test_a_resume_refuses_a_damaged_detection_record_before_training(tmp_path, tiny_data, damage, words):
    """An S_t record with ids past the end, or floats, raised an IndexError at the resumed run's first detection, an
    epoch of training later (a bad-input probe, session 30): refused before training, the run record untouched."""
    from naviewer.jobs import JobCancelled
    from naviewer.workflows.dift_training import resume_interrupted

    with attacked_workspace(tmp_path / "ws", tiny_data).workspace as ws:
        with pytest.raises(JobCancelled):
            train_with_dift(ws, train_config(8), dift_config(patience=2), monitor=False, ctx=_CancelAfterEpoch(3))
        record = ws.path / "runs" / "dift" / "dift_selected" / "epoch_00002.npy"
        np.save(record, damage)
        state_before = (ws.run_dir("dift") / "dift_state.json").read_bytes()
        last_before = (ws.checkpoint_dir("dift") / "last.pt").read_bytes()
        with pytest.raises(NaviewerError, match=f"record of a detection epoch is damaged \\({words}"):
            resume_interrupted(ws, monitor=False)
        assert (ws.checkpoint_dir("dift") / "last.pt").read_bytes() == last_before
        assert (ws.run_dir("dift") / "dift_state.json").read_bytes() == state_before


@pytest.mark.parametrize("damage", ["records deleted", "one record deleted", "records a file", "stray file",
                                    "metrics a pipe", "state a folder", "checkpoint a folder"])
def test_a_resume_refuses_damaged_run_files_before_training(tmp_path, tiny_data, damage):
    """Deleted S_t records were taken as an empty history (exit 0, no word); a dift_selected made a file was found
    after an epoch of training; a metrics.jsonl made a pipe hung the resume; a state file or last.pt made a folder
    read as "missing" or "status: ..." (a bad-input probe, session 30). A stray copy beside the records is ignored."""
    import os
    import shutil

    from naviewer.jobs import JobCancelled
    from naviewer.workflows.dift_training import resume_interrupted

    with attacked_workspace(tmp_path / "ws", tiny_data).workspace as ws:
        with pytest.raises(JobCancelled):
            train_with_dift(ws, train_config(8), dift_config(patience=2), monitor=False, ctx=_CancelAfterEpoch(3))
        run_dir, records = ws.run_dir("dift"), ws.run_dir("dift") / "dift_selected"
        last = ws.checkpoint_dir("dift") / "last.pt"
        if damage == "records deleted":
            shutil.rmtree(records)
            words = "records of detection epochs 1, 2, 3, 4 are missing"
        elif damage == "one record deleted":
            (records / "epoch_00001.npy").unlink()
            words = "records of detection epoch 2 are missing"
        elif damage == "records a file":
            shutil.rmtree(records)
            records.write_text("x")
            words = "record of its detection epochs is a file, not a folder"
        elif damage == "stray file":
            shutil.copy(records / "epoch_00001.npy", records / "epoch_copy.npy")
            words = None
        elif damage == "metrics a pipe":
            (run_dir / "metrics.jsonl").unlink()
            os.mkfifo(run_dir / "metrics.jsonl")
            words = "metrics.jsonl: the run's metrics file is not a regular file"
        elif damage == "state a folder":
            (run_dir / "dift_state.json").unlink()
            (run_dir / "dift_state.json").mkdir()
            words = "dift_state.json: the DIFT run state file is a folder"
        else:
            last.unlink()
            last.mkdir()
            words = "last.pt: the run's checkpoint is a folder"
        if words is None:
            assert resume_interrupted(ws, monitor=False).status == "awaiting_review"
            return
        before = (run_dir / "metrics.jsonl").read_bytes() if (run_dir / "metrics.jsonl").is_file() else None
        with pytest.raises(NaviewerError, match=words):
            resume_interrupted(ws, "dift", monitor=False)  # named, as --run dk was (unnamed, a broken run is not listed)
        if before is not None:  # nothing trained, nothing written
            assert (run_dir / "metrics.jsonl").read_bytes() == before
