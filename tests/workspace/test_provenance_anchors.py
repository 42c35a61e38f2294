"""provenance.json says plainly whether DIFT's anchors were trusted."""

from __future__ import annotations

import json

from naviewer.workspace.export import export_manifests


def test_provenance_says_when_anchors_were_not_trusted(ws, tmp_path):
    ws.update_config("anchors", {"kind": "labels", "trusted": False, "indices": [0], "labels": [0],
                                 "source": "dataset labels (NOT trusted: an attack labels its poisons)"})
    out = export_manifests(ws, tmp_path / "a")
    anchors = json.loads(out.provenance_path.read_text())["anchors"]
    assert anchors["trusted"] is False and "attack controls" in anchors["notice"]
    ws.update_config("anchors", {"kind": "external", "trusted": True, "source": "trusted dataset x"})
    anchors = json.loads(export_manifests(ws, tmp_path / "b").provenance_path.read_text())["anchors"]
    assert anchors == {"kind": "external", "trusted": True, "source": "trusted dataset x"}


def test_samples_csv_carries_every_detectors_score(ws, tmp_path):
    import csv

    import numpy as np

    n = ws.store.sample_count()
    ws.store.add_detection_pass("lid", {"score": np.arange(n, dtype=float), "flagged": np.arange(n) >= n - 2}, {})
    ws.store.add_detection_pass("kdist", {"score": -np.arange(n, dtype=float), "flagged": np.arange(n) < 2}, {})
    ws.store.add_detection_pass("dift", {"density": np.linspace(1, 0, n), "flagged": np.arange(n) < 3}, {})
    out = export_manifests(ws, tmp_path / "csv")  # the latest pass (DIFT's) is the exported one
    with open(out.out_dir / "samples.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {"kdist_score", "kdist_flagged", "lid_score", "lid_flagged"} <= set(rows[0])
    assert float(rows[-1]["lid_score"]) == n - 1 and rows[-1]["lid_flagged"] in ("1", "true", "True")


def test_an_export_of_a_detectors_own_pass_carries_its_score(ws, tmp_path):
    """Exported from a slof pass, samples.csv had no slof_score (the reviewed pass was left out as "the one above")
    though its own columns are DIFT's (a newcomer, session 19); a later slof pass does not stand in for it."""
    import csv

    import numpy as np

    n = ws.store.sample_count()
    reviewed = ws.store.add_detection_pass("slof", {"score": np.arange(n, dtype=float), "flagged": np.arange(n) < 2}, {})
    ws.store.add_detection_pass("slof", {"score": np.zeros(n), "flagged": np.zeros(n, bool)}, {})
    out = export_manifests(ws, tmp_path / "csv", pass_id=reviewed)
    with open(out.out_dir / "samples.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["slof_score"]) for r in rows] == list(map(float, range(n)))
