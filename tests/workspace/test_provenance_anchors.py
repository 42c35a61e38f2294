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
