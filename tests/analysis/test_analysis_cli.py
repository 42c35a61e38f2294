"""``naviewer review``: cluster listing, bulk decisions and the report from the command line."""

from __future__ import annotations

import numpy as np

from naviewer.analysis.demo import make_demo_session


def test_review_cli_lists_decides_and_reports(tmp_path, capsys) -> None:
    from naviewer.cli import main
    from naviewer.data import open_dataset
    from naviewer.workspace import Workspace

    dataset = open_dataset("demo")  # re-openable (the report decodes thumbnails from the source)
    demo = make_demo_session(len(dataset), 20, seed=3, labels=np.array(dataset.labels), images=None)
    ws = Workspace.create(tmp_path / "ws", dataset)
    ws.store.add_detection_pass("dift", dict(demo.scores), {"k": 10}, run="r", epoch=0)
    ws.save_embeddings("r", "e", demo.embeddings)
    args = [str(tmp_path / "ws"), "--embeddings", "r:e", "--reviewer", "cli"]
    assert main(["review", *args]) == 0
    listing = capsys.readouterr().out
    assert "clusters" in listing and "   1 " in listing
    assert main(["review", *args, "--confirm-cluster", "1", "--report", str(tmp_path / "r.html")]) == 0
    states = Workspace.open(tmp_path / "ws").store.review_states()
    top = demo.clusters()[0].members
    assert (states[top] == "confirmed").all()
    assert (tmp_path / "r.html").read_text().count("data:image/png;base64,") >= 6
    assert main(["review", *args, "--undo"]) == 0
    assert (Workspace.open(tmp_path / "ws").store.review_states()[top] == "unreviewed").all()
    assert main(["review", *args, "--confirm-cluster", "999"]) != 0
