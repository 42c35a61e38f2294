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


def test_outputs_are_never_written_over_someone_elses_file(tmp_path, capsys) -> None:
    """review --report over a document, export twice into one folder, embed --out over a text file, craft into its
    own source: each refused with a message naming the file (they used to replace it without a word)."""
    from naviewer.cli import main
    from naviewer.data import open_dataset
    from naviewer.workspace import Workspace

    dataset = open_dataset("demo")
    demo = make_demo_session(len(dataset), 20, seed=3, labels=np.array(dataset.labels), images=None)
    with Workspace.create(tmp_path / "ws", dataset) as ws:
        ws.store.add_detection_pass("dift", dict(demo.scores), {"k": 10}, run="r", epoch=0)
    thesis = tmp_path / "thesis.txt"
    thesis.write_text("my thesis")
    assert main(["review", str(tmp_path / "ws"), "--no-thumbnails", "--report", str(thesis)]) == 2
    assert thesis.read_text() == "my thesis" and "not an earlier naviewer report" in capsys.readouterr().err
    assert main(["review", str(tmp_path / "ws"), "--no-thumbnails", "--report", str(tmp_path / "r.html")]) == 0
    assert main(["review", str(tmp_path / "ws"), "--no-thumbnails", "--report", str(tmp_path / "r.html")]) == 0
    assert main(["export", str(tmp_path / "ws"), "--out", str(tmp_path / "exp")]) == 0
    capsys.readouterr()
    assert main(["export", str(tmp_path / "ws"), "--out", str(tmp_path / "exp")]) == 2
    assert "earlier export" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "ws"), "--out", str(tmp_path / "exp"), "--overwrite"]) == 0
    assert main(["embed", "--checkpoint", "x.pt", "--dataset", "demo", "--out", str(thesis)]) == 2
    assert thesis.read_text() == "my thesis" and "not a .npy file" in capsys.readouterr().err
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.txt").write_text("")
    assert main(["craft", "--dataset", str(tmp_path / "src"), "--attack", "patch", "--out", str(tmp_path / "src"),
                 "--overwrite"]) == 2
    assert "never writes into its own source" in capsys.readouterr().err
