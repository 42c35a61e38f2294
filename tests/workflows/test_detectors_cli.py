"""naviewer detect --detector NAME: every detector beside DIFT, each a pass with its metrics."""

from __future__ import annotations

import shutil

import numpy as np

from naviewer.cli import main
from naviewer.workspace import Workspace


def test_detect_runs_other_detectors_as_passes(accepted_run, tmp_path, capsys):
    shared, outcome = accepted_run
    path = tmp_path / "copy"
    shutil.copytree(shared, path)
    argv = ["detect", str(path), "--checkpoint", str(outcome.checkpoint), "--run", "many", "--dift-set", "k=5",
            "--dift-set", "n_min=5", "--detector", "kdist", "--detector", "lid", "--detector-set", "kdist:k=5",
            "--detector-set", "lid:k=8", "--detector-set", "lid:fraction=0.1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "kdist pass" in out and "lid pass" in out and "AUROC" in out
    # a fixed share is said as one, not read as a count of poisons (an outside test, session 29)
    assert "(its top 10 %: a ranking, read its score, not a count of poisons)" in out
    with Workspace.open(path) as ws:
        methods = {ws.store.pass_info(p["id"])["method"] for p in ws.store.passes()}
        assert {"kdist", "lid", "dift"} <= methods
        lid = [p for p in ws.store.passes() if p["method"] == "lid"][-1]
        scores = ws.store.pass_scores(lid["id"])
        assert scores["score"].shape == (240,) and int(np.sum(scores["flagged"])) == 24
        info = ws.store.pass_info(lid["id"])
        assert info["settings"]["k"] == 8 and info["settings"]["summary"]["auroc"] is not None
    assert main(["detect", str(path), "--checkpoint", str(outcome.checkpoint), "--detector", "nope"]) == 2
    assert "choose from" in capsys.readouterr().err


def test_the_report_lists_every_detector(accepted_run, tmp_path):
    from naviewer.analysis.report import write_report
    from naviewer.analysis.session import AnalysisSession
    from naviewer.workflows.posthoc import posthoc_detect
    from workflow_kit import dift_config

    shared, outcome = accepted_run
    path = tmp_path / "copy"
    shutil.copytree(shared, path)
    with Workspace.open(path) as ws:
        out = posthoc_detect(ws, outcome.checkpoint, config=dift_config(), run="rep", detectors=["kdist", "slof"],
                             detector_settings={"kdist": {"k": 5}, "slof": {"k": 5}})
        assert ws.store.latest_pass_id() == out.pass_id  # DIFT's pass stays the one reviewed and exported
        session = AnalysisSession.from_workspace(ws, out.pass_id)
        text = write_report(session, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Other detectors" in text and "kdist" in text and "slof" in text
    assert "AUROC against the ground truth" in text  # a crafted workspace: its truth measured


def test_the_detector_table_has_no_ground_truth_columns_without_a_truth():
    """A dataset of one's own has no ground truth, and the report's table was AUROC, precision and recall columns of
    dashes (a newcomer following the docs, session 34)."""
    from types import SimpleNamespace

    from naviewer.analysis.report import _detector_table

    rows = [{"id": 2, "method": "kdist", "scores": ["score", "flagged"],
             "settings": {"summary": {"flagged": 8}, "threshold": {"rule": "top_fraction", "fraction": 0.01}}}]
    text = "".join(_detector_table(SimpleNamespace(store=SimpleNamespace(passes=lambda: rows))))
    assert "kdist" in text and "AUROC" not in text and "precision" not in text
    rows[0]["settings"]["summary"].update(auroc=0.9, auroc_reversed=0.1, precision=0.5, recall=0.5)
    assert "AUROC against the ground truth" in "".join(
        _detector_table(SimpleNamespace(store=SimpleNamespace(passes=lambda: rows))))
