"""The trigger check in training (naviewer.workflows.trigger_check): PatchSearch on the encoder DIFT flagged with,
saved before DIFT's pass, and the flags it clears left unconfirmed by accept-all."""

from __future__ import annotations

import numpy as np
import torch

from workflow_kit import attacked_workspace, dift_config, train_config
from naviewer.workflows.dift_training import resume_after_review, train_with_dift
from naviewer.workflows.trigger_check import (
    RECORD_KEY,
    TriggerCheck,
    accept_all_words,
    id_ranges,
    run_trigger_check,
    trigger_check_of,
)


def test_the_check_runs_before_difts_pass_and_accept_all_leaves_what_it_clears(tmp_path, tiny_data, monkeypatch):
    """Wiring, on a tiny run whose anchors reach no flag (its reach is stood in for): PatchSearch runs on the
    encoder of the detection epoch and is saved first; accept-all confirms every flag but the cleared."""
    import naviewer.workflows.trigger_check as trigger_check

    monkeypatch.setattr(trigger_check, "reached_for_check", lambda scores, *_: np.flatnonzero(scores["flagged"])[:3])
    setup = attacked_workspace(tmp_path / "ws", tiny_data)
    with setup.workspace as ws:
        out = train_with_dift(ws, train_config(4), dift_config(trigger_check_reach=0.5), accept_all=False,
                              monitor=False)
        assert out.status == "awaiting_review"
        dift = ws.store.pass_info(out.pass_id)
        record = dift["settings"][RECORD_KEY]
        patch = ws.store.pass_info(record["patchsearch_pass"])
        # the same encoder: its run and epoch; DIFT's pass stays the latest (what review and export open)
        assert patch["method"] == "patchsearch" and (patch["run"], patch["epoch"]) == (dift["run"], dift["epoch"])
        assert ws.store.latest_pass_id() == out.pass_id
        from naviewer.workspace.anchor_record import section_fingerprint

        assert dift["settings"]["anchors_fingerprint"] == section_fingerprint(ws.config.get("anchors"))  # who judged
        flagged = np.flatnonzero(ws.store.pass_scores(out.pass_id)["flagged"])
        cleared = TriggerCheck(out.pass_id, record["patchsearch_pass"], 0.5, 0.5, 1.0, 3, flagged[:2])
        monkeypatch.setattr(trigger_check, "trigger_check_of", lambda *_: cleared)
        done = resume_after_review(ws, accept_all=True, monitor=False)
        states = ws.store.review_states()
        assert (states[flagged[:2]] == "unreviewed").all() and (states[flagged[2:]] == "confirmed").all()
        assert done.finetune["removed"] == flagged.size - 2


def test_a_stored_check_clears_the_reached_flags_its_patchsearch_pass_does_not_flag(tmp_path, tiny_data, capsys) -> None:
    from naviewer.workspace import Workspace

    setup = attacked_workspace(tmp_path / "ws", tiny_data)
    ws: Workspace
    with setup.workspace as ws:
        n = ws.store.sample_count()
        flagged, reach, found = np.zeros(n, bool), np.zeros(n), np.zeros(n, bool)
        flagged[:10], reach[[1, 7, 8]], found[:6] = True, 0.9, True
        patch = ws.store.add_detection_pass("patchsearch", {"score": found * 1.0, "flagged": found}, {})
        record = {RECORD_KEY: {"patchsearch_pass": patch, "reach_limit": 0.5, "coverage": 0.5},
                  "summary": {"anchors_trusted": True, "flagged": 10}}
        dift = ws.store.add_detection_pass("dift", {"flagged": flagged, "anchor_reach": reach}, record)
        check = trigger_check_of(ws, dift)
        assert check.cleared.tolist() == [7, 8] and check.reached == 3 and check.share == 0.6
        assert "2 of the 3 flags" in accept_all_words(check, ws.path) and "--confirm 7-8" in accept_all_words(check, ws.path)
        # naviewer review says the check's set, not another reading of PatchSearch beside it
        from naviewer.cli import main

        assert main(["review", str(ws.path), "--pass", str(dift)]) == 0
        said = capsys.readouterr().out
        assert "2 of the 3 flags the trusted anchors reach as clean (above 0.5) carry no trigger it can find: " in said
        assert "--confirm 7-8)" in said  # no retrain yet: confirming them is enough
        assert "PatchSearch (pass" not in said and "of them, PatchSearch finds no trigger in" not in said
        plain = ws.store.add_detection_pass("dift", {"flagged": flagged, "anchor_reach": reach}, {})
        other = ws.store.add_detection_pass("dift", {"flagged": flagged, "anchor_reach": reach},
                                            {RECORD_KEY: {"patchsearch_pass": plain, "reach_limit": 0.5}})
        assert trigger_check_of(ws, plain) is None and trigger_check_of(ws, other) is None  # none, or not PatchSearch's


def test_the_check_is_off_by_default(tmp_path, tiny_data):
    setup = attacked_workspace(tmp_path / "ws", tiny_data)
    with setup.workspace as ws:
        out = train_with_dift(ws, train_config(3), dift_config(), accept_all=False, monitor=False)
        assert RECORD_KEY not in ws.store.pass_info(out.pass_id)["settings"]
        assert [p["method"] for p in ws.store.passes()] == ["dift"]
        assert trigger_check_of(ws, out.pass_id) is None


class _Result:
    """An unsaved DIFT result as the hook holds it."""

    def __init__(self, n: int, trusted: bool = True) -> None:
        self.flagged = np.zeros(n, bool)
        self.flagged[:30] = True
        self.reach = np.where(np.arange(n) < 5, 2.0, 0.0)
        self.trusted = trusted
        self.settings: dict = {}

    def scores(self):
        return {"flagged": self.flagged}

    def extra_scores(self):
        return {"anchor_reach": self.reach}

    def summary(self):
        return {"anchors_trusted": self.trusted, "noop": False}


def test_the_check_leaves_the_training_encoder_and_random_state_as_they_were(tmp_path, tiny_data):
    """It runs in the middle of a training: on a copy of the backbone, with the random state put back (a run with
    the check trains on exactly as one without it)."""
    from naviewer.ssl.backbones import build_backbone
    from naviewer.jobs import ensure_context
    from naviewer.workflows.dift_training import _store_of

    setup = attacked_workspace(tmp_path / "ws", tiny_data)
    with setup.workspace as ws:
        store = _store_of(ws, ensure_context(None))
        backbone = build_backbone({"arch": "resnet10", "width": 8, "cifar_stem": True}).train()
        before = {k: v.clone() for k, v in backbone.state_dict().items()}
        torch.manual_seed(5)
        np.random.seed(5)
        rng = torch.random.get_rng_state(), np.random.get_state()[1].copy()
        result = _Result(len(store))
        assert run_trigger_check(ws, _Result(len(store), trusted=False), backbone=backbone, store=store, image_size=16,
                                 device=None, reach_limit=0.5, run="dift", epoch=2) is None
        patch_pass = run_trigger_check(ws, result, backbone=backbone, store=store, image_size=16, device=None,
                                       reach_limit=0.5, run="dift", epoch=2)
        assert result.settings[RECORD_KEY]["patchsearch_pass"] == patch_pass
        assert backbone.training and all(p.grad is None for p in backbone.parameters())
        assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())
        assert torch.equal(torch.random.get_rng_state(), rng[0]) and (np.random.get_state()[1] == rng[1]).all()


def test_cleared_ids_are_written_as_review_reads_them() -> None:
    assert id_ranges(np.array([40, 3, 41, 17, 42, 45])) == "3,17,40-42,45"
    assert id_ranges(np.array([], np.int64)) == ""


def test_a_failed_check_is_said_and_the_training_goes_on(tmp_path, tiny_data, monkeypatch) -> None:
    """An optional second look: PatchSearch failing (memory, images it refuses) ended the whole training at its
    detection epoch (a review, session 31); now the run stops for its review as without the check, and says why."""
    import naviewer.workflows.trigger_check as trigger_check
    from naviewer.jobs import JobContext, RecordingReporter

    def fail(*_a, **_k):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(trigger_check, "reached_for_check", lambda scores, *_: np.flatnonzero(scores["flagged"])[:3])
    import naviewer.workflows.detector_passes as detector_passes

    monkeypatch.setattr(detector_passes, "run_detectors", fail)
    reporter = RecordingReporter()
    ctx = JobContext(reporter)
    setup = attacked_workspace(tmp_path / "ws", tiny_data)
    with setup.workspace as ws:
        out = train_with_dift(ws, train_config(4), dift_config(trigger_check_reach=0.5), accept_all=False,
                              monitor=False, ctx=ctx)
        assert out.status == "awaiting_review" and RECORD_KEY not in ws.store.pass_info(out.pass_id)["settings"]
        assert [p["method"] for p in ws.store.passes()] == ["dift"]
    assert any(kind == "warning" and "trigger check skipped: out of memory" in data.get("message", "")
               for kind, data in reporter.events)


def test_a_run_stopped_between_the_checks_pass_and_difts_is_still_one_to_resume(tmp_path, tiny_data) -> None:
    """The check's PatchSearch pass is saved under the run just before DIFT's: a stop between the two left a run
    that counted as "saved its detection pass", refused with the wrong reason (a review, session 31)."""
    from naviewer.workspace.runs import RunStatus, interrupted_runs, write_state

    setup = attacked_workspace(tmp_path / "ws", tiny_data)
    with setup.workspace as ws:
        n = ws.store.sample_count()
        ws.store.add_run("dift", "dift", {"dift": {}})
        write_state(ws, "dift", status=RunStatus.DETECTING, dift=True)
        ws.checkpoint_dir("dift").mkdir(parents=True, exist_ok=True)
        (ws.checkpoint_dir("dift") / "last.pt").write_bytes(b"x")
        ws.store.add_detection_pass("patchsearch", {"score": np.zeros(n), "flagged": np.zeros(n, bool)}, {},
                                    run="dift", epoch=3)
        assert "dift" in interrupted_runs(ws)
        ws.store.add_detection_pass("dift", {"flagged": np.zeros(n, bool)}, {}, run="dift", epoch=3)
        assert "dift" not in interrupted_runs(ws)


def test_a_run_with_the_check_trains_on_exactly_as_one_without_it(tmp_path, tiny_data, monkeypatch) -> None:
    """The check runs in the middle of an accept-all training (PatchSearch draws random numbers and runs the
    encoder): with nothing cleared, the encoder at the end is the same to the bit as without the check."""
    import naviewer.workflows.trigger_check as trigger_check

    monkeypatch.setattr(trigger_check, "reached_for_check", lambda scores, *_: np.flatnonzero(scores["flagged"])[:3])
    monkeypatch.setattr(trigger_check, "trigger_check_clears", lambda *a, **k: (np.zeros(0, np.int64), 1.0))
    weights = []
    for reach, name in ((0.0, "off"), (0.5, "on")):
        setup = attacked_workspace(tmp_path / name, tiny_data)
        with setup.workspace as ws:
            out = train_with_dift(ws, train_config(4), dift_config(trigger_check_reach=reach), accept_all=True,
                                  monitor=False)
            assert out.status == "finished"
            assert ("patchsearch" in [p["method"] for p in ws.store.passes()]) == (reach > 0)
            state = torch.load(ws.checkpoint_dir("dift") / "last.pt", weights_only=True)
            weights.append(state)
    off, on = (w["model"] if "model" in w else w for w in weights)
    keys = [k for k, v in off.items() if isinstance(v, torch.Tensor)]
    assert keys and all(torch.equal(off[k], on[k]) for k in keys)
