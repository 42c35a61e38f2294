"""Accept-all's check after the retrain (naviewer.workflows.check_after_retrain): a detector on the retrained encoder,
its flags among the kept samples confirmed, and the recipe trained again without them."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from naviewer.errors import NaviewerError

from test_demo import demo_ws  # noqa: F401 - the tiny demo workspace (module fixture)
from test_retrain_again import retrained  # noqa: F401 - a copy of it after its first remove-and-retrain


def test_the_check_confirms_its_flags_among_the_kept_and_retrains_without_every_confirmed(retrained, monkeypatch):
    """Its pass is saved on the retrained encoder with the embeddings it ranked (the Analyst panel opens it), DIFT's
    pass stays the one a review opens, only undecided flags are confirmed (a rejection stands), and the second training leaves
    out every confirmed sample. The detector is one that always flags (kdist's top fraction), so both rounds run."""
    import naviewer.workflows.check_after_retrain as module
    from naviewer.analysis.embeddings import pass_embeddings
    from naviewer.workflows.demo import RUN
    from naviewer.workspace import Workspace
    from naviewer.workspace.runs import AUTO_REVIEWER, confirmed_ids

    monkeypatch.setattr(module, "CHECK_DETECTOR", "kdist")
    with Workspace.open(retrained) as ws:
        latest = ws.store.latest_pass_id("dift")
        first_confirmed = confirmed_ids(ws)
        preview = module.check_after_retrain(ws, RUN, retrain=False)  # what it flags on this encoder
        flags = np.flatnonzero(ws.store.pass_scores(preview.pass_id)["flagged"])
        kept_flags = flags[~np.isin(flags, first_confirmed)]
        assert kept_flags.size >= 2 and np.array_equal(np.sort(preview.added), kept_flags)
        ws.store.set_review(kept_flags, "unreviewed", "t")  # undo the preview's decisions
        ws.store.set_review(kept_flags[:1], "rejected", "analyst")  # an analyst kept one: it stays kept

        out = module.check_after_retrain(ws, RUN)
        info = ws.store.pass_info(out.pass_id)
        assert info["method"] == "kdist" and info["run"] == RUN
        assert info["settings"][module.RECORD_KEY]["checkpoint"] == str(ws.checkpoint_dir(RUN) / "last.pt")
        assert pass_embeddings(ws, out.pass_id) is not None
        assert ws.store.latest_pass_id("dift") == latest  # DIFT's pass stays the one a review and an export open
        assert ws.store.latest_pass_id() == out.pass_id and ws.store.review_pass_id() == latest
        from naviewer.analysis.session import AnalysisSession

        opened = AnalysisSession.from_workspace(ws, out.pass_id, with_ground_truth=False)  # its link, in the window
        assert not opened.post_hoc and opened.restart_mode == "retrain"  # the run's tab: Retrain again, no Eq. 7
        assert np.array_equal(np.sort(out.added), kept_flags[1:])
        states = ws.store.review_states()
        assert states[kept_flags[0]] == "rejected" and (states[kept_flags[1:]] == "confirmed").all()
        last = [row for row in ws.store.audit_log() if row["sample_id"] == int(kept_flags[1])][-1]
        assert last["reviewer"] == AUTO_REVIEWER and f"pass {out.pass_id}" in last["note"]
        record = next(r for r in ws.store.runs() if r["name"] == out.again["again"])
        assert sorted(record["config"]["exclude"]) == sorted(first_confirmed.tolist() + kept_flags[1:].tolist())
        assert f"confirmed {kept_flags.size - 1:,} more among the kept samples" in out.words()
        assert out.words().endswith(f"retrained again as run {out.again['again']}")


def test_nothing_new_among_the_kept_means_no_second_training(retrained, monkeypatch):
    import naviewer.workflows.check_after_retrain as module
    from naviewer.workflows.demo import RUN
    from naviewer.workspace import Workspace

    monkeypatch.setattr(module, "CHECK_DETECTOR", "kdist")
    with Workspace.open(retrained) as ws:
        module.check_after_retrain(ws, RUN, retrain=False)  # confirms what it flags
        runs = {r["name"] for r in ws.store.runs()}
        out = module.check_after_retrain(ws, RUN)  # the same encoder, the same flags: all decided now
        assert out.added.size == 0 and out.again is None
        assert {r["name"] for r in ws.store.runs()} == runs
        assert "every flag was removed already; no second retrain" in out.words()


def test_a_run_without_a_retrain_is_refused_before_anything_is_done(demo_ws):  # noqa: F811
    from naviewer.workflows.check_after_retrain import check_after_retrain
    from naviewer.workflows.demo import RUN
    from naviewer.workspace import Workspace

    with Workspace.open(demo_ws) as ws:  # stopped for its review: nothing retrained yet
        passes = len(ws.store.passes())
        with pytest.raises(NaviewerError, match="has no remove-and-retrain to check after"):
            check_after_retrain(ws, RUN)
        assert len(ws.store.passes()) == passes


def test_the_command_line_runs_it_only_when_the_setting_is_on_after_a_retrain(capsys, monkeypatch):
    """finetune --accept-all / run --dift --accept-all: off by default (one round), on in the demo's recipe; after a
    paper restart (no retrain) it says it is skipped instead of checking an encoder the poisons shaped."""
    import naviewer.workflows.check_after_retrain as module
    from naviewer.cli.finetune import say_check_after_retrain
    from naviewer.defense.config import DiftConfig
    from naviewer.workflows.demo import DEMO_DIFT_SETTINGS

    assert DiftConfig().check_after_retrain is False and DEMO_DIFT_SETTINGS["check_after_retrain"] is True
    called = []
    monkeypatch.setattr(module, "check_after_retrain", lambda *a, **k: called.append(a))
    retrained = SimpleNamespace(status="finished", run="demo", finetune={"restart_mode": "retrain"})
    say_check_after_retrain(None, retrained, DiftConfig(), None, None)
    assert not called and capsys.readouterr().out == ""
    waiting = SimpleNamespace(status="awaiting_review", run="demo", finetune=None)
    say_check_after_retrain(None, waiting, DiftConfig(check_after_retrain=True), None, None)
    assert not called and capsys.readouterr().out == ""
    went_on = SimpleNamespace(status="finished", run="demo", finetune={"restart_mode": "continue"})
    say_check_after_retrain(None, went_on, DiftConfig(check_after_retrain=True), None, None)
    assert not called and "restart_mode=continue): skipped" in capsys.readouterr().out


def test_it_is_a_fine_tuning_setting_so_finetune_takes_it():
    from naviewer.defense.config import finetune_setting_names

    assert "check_after_retrain" in finetune_setting_names()


def test_the_windows_check_proposes_and_decides_nothing_and_looks_at_the_newest_retrain(retrained, monkeypatch):
    """The Fine-tune tab's check leaves the decision to the analyst: it names the undecided flags among the kept
    samples and confirms none; after a Retrain again it looks at that newer encoder, not the first retrain's."""
    import naviewer.workflows.check_after_retrain as module
    from naviewer.workflows.demo import RUN
    from naviewer.workflows.retrain_again import retrain_on_decisions
    from naviewer.workspace import Workspace

    monkeypatch.setattr(module, "CHECK_DETECTOR", "kdist")
    with Workspace.open(retrained) as ws:
        before = ws.store.review_states().copy()
        proposal = module.check_after_retrain(ws, RUN, confirm=False)
        assert proposal.added.size and proposal.again is None and not proposal.confirmed
        assert np.array_equal(ws.store.review_states(), before)
        assert "still in the training set, undecided" in proposal.words()
        assert proposal.to_dict()["added"] == proposal.added.tolist()
        assert module.checked_encoder(ws, RUN) == ws.checkpoint_dir(RUN) / "last.pt"
        ws.store.set_review(proposal.added[:1], "confirmed", "analyst")
        again = retrain_on_decisions(ws, RUN)
        assert module.checked_encoder(ws, RUN) == ws.checkpoint_dir(again["again"]) / "last.pt"
        later = module.check_after_retrain(ws, RUN, confirm=False)
        assert later.checkpoint == ws.checkpoint_dir(again["again"]) / "last.pt"


def test_finetune_accept_all_runs_the_second_round_when_the_recipe_asks(demo_ws, tmp_path, capsys, monkeypatch):  # noqa: F811
    """The demo's recipe end to end on the command line: accept-all, the remove-and-retrain, the check on the
    retrained encoder, its flags confirmed, the second retrain, and its figures against the first's."""
    import torch

    import naviewer.workflows.check_after_retrain as module
    from naviewer.cli import main
    from naviewer.workflows.demo import RUN
    from naviewer.workspace import Workspace
    from naviewer.workspace.runs import confirmed_ids

    monkeypatch.setattr(module, "CHECK_DETECTOR", "kdist")
    path = tmp_path / "ws"
    shutil.copytree(demo_ws, path)
    with Workspace.open(path) as ws:
        ws.update_config("dift", {**ws.config["dift"], "restart_mode": "retrain", "retrain_epochs": 2,
                                  "check_after_retrain": True})
    threads = torch.get_num_threads()
    try:
        # --device named: the second retrain records it in its run's config (a torch.device there was a TypeError)
        assert main(["finetune", str(path), "--accept-all", "--threads", "1", "--device", "cpu"]) == 0
    finally:
        torch.set_num_threads(threads)
    captured = capsys.readouterr()
    said = captured.out + captured.err  # (the log's lines go to stderr with the progress)
    assert "check after the retrain (kdist pass" in said and "confirmed" in said
    assert "first retrain -> second: kNN accuracy" in said and f"checkpoints/{RUN}-again-1/last.pt" in said
    with Workspace.open(path) as ws:
        record = next(r for r in ws.store.runs() if r["name"] == f"{RUN}-again-1")
        assert sorted(record["config"]["exclude"]) == confirmed_ids(ws).tolist()


def test_a_check_that_fails_leaves_the_first_retrain_standing_and_says_so(capsys, monkeypatch):
    import naviewer.workflows.check_after_retrain as module
    from naviewer.cli.finetune import say_check_after_retrain
    from naviewer.defense.config import DiftConfig

    def fails(*_a, **_k):
        raise NaviewerError("PatchSearch: the images cannot be decoded")

    monkeypatch.setattr(module, "check_after_retrain", fails)
    ws = SimpleNamespace(run_dir=lambda run: __import__("pathlib").Path("/nonexistent") / run,
                         checkpoint_dir=lambda run: __import__("pathlib").Path("/ws/checkpoints") / run)
    out = SimpleNamespace(status="finished", run="demo", finetune={"restart_mode": "retrain"})
    say_check_after_retrain(ws, out, DiftConfig(check_after_retrain=True), None, None)
    said = capsys.readouterr().out
    assert "WARNING - the check after the retrain did not run to the end: PatchSearch" in said
    assert "the first retrain stands (checkpoint /ws/checkpoints/demo/last.pt)" in said
