"""``naviewer review``: cluster listing, bulk decisions and the report from the command line."""

from __future__ import annotations

import numpy as np

from naviewer.analysis.demo import make_demo_session


def _demo_data():
    """The built-in demo set (re-openable: the report decodes thumbnails from the source) and demo scores over it."""
    from naviewer.data import open_dataset

    dataset = open_dataset("demo")
    return dataset, make_demo_session(len(dataset), 20, seed=3, labels=np.array(dataset.labels), images=None)


def test_review_cli_lists_decides_and_reports(tmp_path, capsys) -> None:
    from naviewer.cli import main
    from naviewer.workspace import Workspace

    dataset, demo = _demo_data()
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
    from naviewer.interrupts import saved_notes

    # what a Ctrl-C or SIGTERM after this point names as saved (a probe, session 28)
    assert saved_notes() == [f"confirmed {len(top)} samples of cluster 1"]
    assert (tmp_path / "r.html").read_text().count("data:image/png;base64,") >= 6
    assert main(["review", *args, "--undo"]) == 0
    assert (Workspace.open(tmp_path / "ws").store.review_states()[top] == "unreviewed").all()
    assert main(["review", *args, "--confirm-cluster", "999"]) != 0


def test_each_cluster_shows_how_strongly_the_trusted_anchors_reach_it(tmp_path, capsys) -> None:
    """The demo's clean flags formed clusters of their own, reached by the anchors like any clean sample (reach
    0.2-1.0) while the poison clusters read 0.00-0.06: the listing, the report and the table show the median."""
    from naviewer.analysis.clusters import REACH_LEGEND, flagged_clusters
    from naviewer.cli import main
    from naviewer.workspace import Workspace

    reach = np.ones(12)
    reach[[0, 1, 2]] = [0.0, 0.1, 0.02]
    clusters = flagged_clusters(np.arange(6), precomputed=np.array([0, 0, 0, 1, 1, 1] + [-1] * 6), reach=reach)
    assert sorted(round(c.anchor_reach, 2) for c in clusters) == [0.02, 1.0]
    assert np.isnan(flagged_clusters(np.arange(3), precomputed=np.zeros(12, int))[0].anchor_reach)

    dataset, demo = _demo_data()
    scores = dict(demo.scores)
    flagged = np.flatnonzero(demo.flagged_mask)
    scores["anchor_reach"] = np.full(len(dataset), 1.0, np.float32)
    scores["anchor_reach"][flagged] = 0.03
    ws = Workspace.create(tmp_path / "ws", dataset)
    ws.store.add_detection_pass("dift", scores, {"k": 10}, run="r", epoch=0)
    ws.save_embeddings("r", "e", demo.embeddings)
    report = tmp_path / "r.html"
    assert main(["review", str(tmp_path / "ws"), "--embeddings", "r:e", "--report", str(report), "--no-thumbnails"]) == 0
    listing = capsys.readouterr().out
    header = next(line for line in listing.splitlines() if line.lstrip().startswith("#"))
    assert "reach" in header and " 0.03 " in listing and REACH_LEGEND in listing
    assert "anchor reach" in report.read_text() and "<td>0.03</td>" in report.read_text()


def test_outputs_are_never_written_over_someone_elses_file(tmp_path, capsys) -> None:
    """review --report over a document, export twice into one folder, embed --out over a text file, craft into its
    own source: each refused with a message naming the file (they used to replace it without a word)."""
    from naviewer.cli import main
    from naviewer.workspace import Workspace

    dataset, demo = _demo_data()
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


def test_flags_the_trusted_anchors_reach_are_pointed_out_and_decided_by_id(tmp_path, capsys) -> None:
    """A flag the trusted anchors reach like a clean sample (session 21: clean flags 0.49-1.34, poisons 0.00-0.02)
    is named for a look before confirming; with anchors drawn from the labels it is not (they may be poisons).
    ``--reject IDS`` decides samples one by one (the command line could only decide whole clusters)."""
    from naviewer.analysis.reach import reached_flags
    from naviewer.cli import main
    from naviewer.workspace import Workspace

    dataset, demo = _demo_data()
    scores = dict(demo.scores)
    flagged = np.flatnonzero(demo.flagged_mask)
    scores["anchor_reach"] = np.full(len(dataset), 1.0, np.float32)
    scores["anchor_reach"][flagged] = 0.01
    scores["anchor_reach"][flagged[:3]] = [0.9, 1.2, np.nan]
    assert reached_flags(scores).tolist() == sorted(flagged[:2].tolist())
    ws = Workspace.create(tmp_path / "ws", dataset)
    ws.store.add_detection_pass("dift", scores, {"summary": {"anchors_trusted": True}}, run="r", epoch=0)
    ws.store.add_detection_pass("dift", scores, {"summary": {"anchors_trusted": False}}, run="u", epoch=0)
    trigger = np.zeros(len(dataset), bool)
    trigger[sorted(flagged[:2].tolist())[0]] = True  # PatchSearch finds a trigger in one of the two
    ws.store.add_detection_pass("patchsearch", {"score": trigger.astype(np.float32), "flagged": trigger,
                                                "cluster": np.where(trigger, 0, -1)}, {"flagged": 1}, run="p")
    ws.save_embeddings("r", "e", demo.embeddings)
    ws.close()
    args = [str(tmp_path / "ws"), "--embeddings", "r:e", "--pass", "1"]
    assert main(["review", *args]) == 0
    out = capsys.readouterr().out
    assert "2 flags the trusted anchors reach as clean samples" in out and "2 of them await a decision" in out
    assert "PatchSearch (pass 3) finds a trigger in 1 of them, none in 1." in out
    assert f"of them, PatchSearch finds no trigger in: {sorted(flagged[:2].tolist())[1]}\n" in out
    assert ", ".join(str(i) for i in sorted(flagged[:2].tolist())) in out
    assert main(["review", str(tmp_path / "ws"), "--embeddings", "r:e", "--pass", "2"]) == 0
    assert "reach as clean samples" not in capsys.readouterr().out  # anchors from the labels: no pointer

    ids = ",".join(str(i) for i in flagged[:2])
    assert main(["review", *args, "--reject", ids]) == 0
    out = capsys.readouterr().out
    assert "rejected: 2 samples" in out and "All of them are decided" in out
    states = Workspace.open(tmp_path / "ws", read_only=True).store.review_states()
    assert (states[flagged[:2]] == "rejected").all()
    (tmp_path / "ids.txt").write_text(f"# the first flag\n{flagged[0]}\n")
    assert main(["review", *args, "--confirm", f"@{tmp_path / 'ids.txt'}"]) == 0
    assert Workspace.open(tmp_path / "ws", read_only=True).store.review_states()[flagged[0]] == "confirmed"
    for bad, words in (("x", "is not a sample id"), (f"0-{len(dataset)}", "outside the workspace's sample ids"),
                       ("-3", "outside"), (",", "no sample id given"), (f"@{tmp_path / 'none.txt'}", "none.txt")):
        assert main(["review", *args, "--later", bad]) == 2, bad
        assert words in capsys.readouterr().err, bad


def test_accept_all_says_it_confirms_flags_the_trusted_anchors_reach(tmp_path, capsys) -> None:
    from naviewer.cli.finetune import say_reached_before_accepting
    from naviewer.workspace import Workspace

    dataset, demo = _demo_data()
    scores = dict(demo.scores)
    flagged = np.flatnonzero(demo.flagged_mask)
    scores["anchor_reach"] = np.zeros(len(dataset), np.float32)
    scores["anchor_reach"][flagged[:4]] = 1.0
    with Workspace.create(tmp_path / "ws", dataset) as ws:
        trusted = ws.store.add_detection_pass("dift", scores, {"summary": {"anchors_trusted": True}}, run="r", epoch=0)
        labels = ws.store.add_detection_pass("dift", scores, {"summary": {"anchors_trusted": False}}, run="u", epoch=0)
        ws.store.set_review(flagged[:1], "rejected", "alice")
        say_reached_before_accepting(ws, labels)
        assert capsys.readouterr().out == ""  # anchors from the labels: no pointer
        say_reached_before_accepting(ws, trusted)
        out = capsys.readouterr().out
        assert "--accept-all confirms 3 flags the trusted anchors reach as clean samples" in out  # 1 rejected already
    from naviewer.cli.demo import _say_reached  # demo --no-gui, before "review the flags"

    _say_reached(tmp_path / "ws", trusted)
    assert "note: 4 flags the trusted anchors reach as clean samples" in capsys.readouterr().out


def test_review_of_a_pass_of_nothing_names_the_passes_that_flagged(tmp_path, capsys) -> None:
    """``naviewer review`` opened the latest pass (DIFT, nothing flagged) and said "confirmed 0" while 16 samples of
    another pass were confirmed (a newcomer, session 22): it names the pass it shows and those that flagged."""
    from naviewer.cli import main
    from naviewer.workspace import Workspace

    dataset, demo = _demo_data()
    flagged = np.zeros(len(dataset), bool)
    flagged[:134] = True
    with Workspace.create(tmp_path / "ws", dataset) as ws:
        ws.store.add_detection_pass("patchsearch", {"score": np.arange(len(dataset), dtype=np.float32),
                                                    "flagged": flagged, "cluster": np.where(flagged, 0, -1)},
                                    {"flagged": 134}, run="posthoc")
        ws.store.add_detection_pass("dift", {**dict(demo.scores), "flagged": np.zeros(len(dataset), bool)},
                                    {"summary": {"flagged": 0, "noop": True}}, run="posthoc", epoch=None)
        ws.save_embeddings("r", "e", demo.embeddings)
    assert main(["review", str(tmp_path / "ws"), "--embeddings", "r:e", "--no-thumbnails"]) == 0
    out = capsys.readouterr().out
    assert "detection pass 2 (dift, run posthoc)" in out
    assert "other passes flagged samples: patchsearch pass 1: 134 (--pass 1)" in out
    # getting-started's next step on that pass: refused, naming the way on (a newcomer, session 34)
    assert main(["review", str(tmp_path / "ws"), "--confirm-cluster", "1"]) == 2
    assert ("cluster 1 does not exist (pass 2 has 0 clusters); other passes flagged samples: patchsearch pass 1: 134 "
            "(--pass 1)") in capsys.readouterr().err


def test_a_clusters_members_are_listed_and_unflagged_decisions_are_said(tmp_path, capsys) -> None:
    """The listing named no sample, and --confirm / --reject take ids: from the terminal a cluster's ids could not be
    seen; and --confirm on samples no pass flagged said "confirmed: 24" over a summary of "confirmed 0" (a newcomer
    following the docs, session 34)."""
    from naviewer.cli import main
    from naviewer.workflows.trigger_check import id_ranges
    from naviewer.workspace import Workspace

    dataset, demo = _demo_data()
    with Workspace.create(tmp_path / "ws", dataset) as ws:
        ws.store.add_detection_pass("dift", dict(demo.scores), {"k": 10}, run="r", epoch=0)
        ws.save_embeddings("r", "e", demo.embeddings)
    args = [str(tmp_path / "ws"), "--embeddings", "r:e"]
    top = np.sort(demo.clusters()[0].members)
    assert main(["review", *args, "--reject", str(int(top[0]))]) == 0
    capsys.readouterr()
    assert main(["review", *args, "--members", "1"]) == 0
    out = capsys.readouterr().out
    assert f"cluster 1: {top.size:,} samples" in out
    assert f"  unreviewed ({top.size - 1:,}): {id_ranges(top[1:])}" in out and f"  rejected (1): {int(top[0])}" in out
    assert main(["review", *args, "--members", "99"]) == 2
    unflagged = np.flatnonzero(~demo.flagged_mask)[:3]
    assert main(["review", *args, "--confirm", ",".join(str(int(i)) for i in unflagged)]) == 0
    assert "3 of them are not among this pass's flags: recorded all the same (the export removes them)" in \
        capsys.readouterr().out


def test_an_id_file_that_is_not_text_and_a_missing_gpu_are_said_in_plain_words(tmp_path) -> None:
    """`review --confirm @binary` quoted the codec ("can't decode byte 0x80 in position 128") and `--device cuda:7`
    was reported as "device 'cuda'" (a bad-input corpus, session 23)."""
    import pytest
    import torch

    from naviewer.cli.review import parse_sample_ids
    from naviewer.errors import NaviewerError
    from naviewer.ssl.device import resolve_device

    binary = tmp_path / "ids.bin"
    binary.write_bytes(b"1\n" + bytes(range(128, 256)))
    with pytest.raises(NaviewerError, match="not UTF-8 text") as caught:
        parse_sample_ids(f"@{binary}", 10, "--confirm")
    assert "position" not in str(caught.value)
    if not torch.cuda.is_available():
        with pytest.raises(NaviewerError, match="device 'cuda:7' requested"):
            resolve_device("cuda:7")


def test_sample_ids_are_plain_digits_a_bom_is_not_an_id_and_a_backward_range_says_so(tmp_path) -> None:
    """`--confirm 1_0` confirmed sample 10 (int() reads the underscore), an id file saved with a BOM was refused on
    its first line, and `5-3` was said to be outside the workspace (a bad-input sweep, session 26)."""
    import pytest

    from naviewer.cli.review import parse_sample_ids
    from naviewer.errors import NaviewerError

    for text in ("1_0", "٣", "+3", " 3 - 5x", "0x3"):
        with pytest.raises(NaviewerError, match="is not a sample id"):
            parse_sample_ids(text, 20, "--confirm")
    with pytest.raises(NaviewerError, match="runs backwards"):
        parse_sample_ids("5-3", 20, "--confirm")
    with pytest.raises(NaviewerError, match="outside the workspace"):
        parse_sample_ids("3-25", 20, "--confirm")
    ids = tmp_path / "ids.txt"
    ids.write_bytes("\ufeff3\r\n17 # a note\r\n4-5\r\n".encode("utf-8"))
    assert parse_sample_ids(f"@{ids}", 20, "--confirm").tolist() == [3, 4, 5, 17]
    assert parse_sample_ids(" 3 , 4-6 ", 20, "--confirm").tolist() == [3, 4, 5, 6]


def test_a_patchsearch_pass_that_refused_to_flag_is_no_evidence_of_no_trigger() -> None:
    """A refused PatchSearch pass (its classifier called a third of the samples poisoned) has all flags False: the box
    read "a trigger in 0 of them, none in N" and offered every reached flag (session 23's review)."""
    import numpy as np

    from naviewer.analysis.reach import latest_patchsearch, refused_reason

    class Store:
        def __init__(self, rows, scores):
            self.rows, self.scores = rows, scores

        def passes(self):
            return self.rows

        def pass_scores(self, pass_id):
            return self.scores[pass_id]

    found = np.array([True, False, False])
    refused = {"threshold": {"refused": "33% of the samples flagged, more than max_fraction 0.2"}}
    store = Store([{"id": 1, "method": "patchsearch", "settings": {}}, {"id": 2, "method": "patchsearch",
                                                                          "settings": refused}],
                  {1: {"flagged": found}, 2: {"flagged": np.zeros(3, bool)}})
    assert refused_reason(refused).startswith("33%") and refused_reason({"summary": 3}) == ""
    pass_id, flags = latest_patchsearch(store, 3)
    assert pass_id == 1 and flags.tolist() == found.tolist()
    store.rows = store.rows[1:]
    assert latest_patchsearch(store, 3) is None
    # a pass that averages each image with its neighbours keeps the classifier's word on each image alone: that one
    # says "a trigger in it" (a clean image among poisons is flagged by the average, not by its own image)
    store.rows = [{"id": 3, "method": "patchsearch", "settings": {}}]
    store.scores[3] = {"flagged": np.array([True, True, False]), "trigger_found": np.array([1, 0, 0], np.uint8)}
    assert latest_patchsearch(store, 3)[1].tolist() == [True, False, False]
