from __future__ import annotations

import numpy as np

from naviewer.cli import main
from naviewer.workflows.posthoc import posthoc_detect
from naviewer.workspace import Workspace


def test_posthoc_pass_and_baselines_are_stored_for_review(accepted_run):
    path, outcome = accepted_run
    with Workspace.open(path) as ws:
        before = len(ws.store.passes())
        out = posthoc_detect(ws, outcome.checkpoint, run="post", baselines=("dbscan", "optics"))
        assert out.embeddings_path.is_file() and ws.load_embeddings("post", out.tag).shape[0] == 240
        assert ws.store.latest_pass_id("dift") == out.pass_id
        scores = ws.store.pass_scores(out.pass_id)
        assert {"density", "rank", "candidate", "mindist", "flagged", "cluster"} <= set(scores)
        assert set(out.baseline_passes) == {"dbscan", "optics"}
        for method, pid in out.baseline_passes.items():
            info = ws.store.pass_info(pid)
            assert info["method"] == method and info["run"] == "post"
            assert ws.store.pass_scores(pid)["flagged"].dtype == bool
        assert len(ws.store.passes()) == before + 3
        assert "precision" in out.baseline_metrics["dbscan"]


def test_detect_cli(accepted_run, capsys):
    path, outcome = accepted_run
    assert main(["detect", str(path), "--checkpoint", str(outcome.checkpoint), "--run", "clirun",
                 "--dift-set", "k=5", "--dift-set", "candidate_fraction=0.1", "--dift-set", "n_min=5"]) == 0
    text = capsys.readouterr().out
    assert "DIFT pass" in text and "naviewer review" in text
    with Workspace.open(path) as ws:
        assert ws.store.pass_info(ws.store.latest_pass_id())["run"] == "clirun"


def test_detect_cli_reports_a_bad_checkpoint(accepted_run, tmp_path, capsys):
    path, _ = accepted_run
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["detect", str(path), "--checkpoint", str(bad)]) == 2
    assert "bad.pt" in capsys.readouterr().err
