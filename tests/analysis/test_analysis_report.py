"""The HTML review report: self-contained, lists clusters, decisions and plots."""

from __future__ import annotations

import base64

import numpy as np

from naviewer.analysis.demo import make_demo_session
from naviewer.analysis.report import png_base64, write_report


def test_report_embeds_thumbnails_decisions_and_plots(tmp_path) -> None:
    s = make_demo_session(400, 20, seed=5)
    s.confirm(s.clusters()[0].members)
    s.reject(s.review_queue()[-1:])
    png = base64.b64decode(png_base64(s.image(0)))
    path = write_report(s, tmp_path / "r" / "report.html", plots={"density map": png}, settings={"reviewer_note": "<b>x</b>"})
    text = path.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") > s.clusters()[0].size // 2
    assert "confirmed" in text and "rejected" in text and "density map" in text
    assert "&lt;b&gt;x&lt;/b&gt;" in text  # settings are escaped
    assert not list((tmp_path / "r").glob("*.tmp"))


def test_png_thumbnail_keeps_aspect() -> None:
    import io

    import numpy as np
    from PIL import Image

    data = base64.b64decode(png_base64(np.zeros((32, 64, 3), np.uint8), size=64))
    assert Image.open(io.BytesIO(data)).size == (64, 32)


def test_report_says_when_the_anchors_were_not_trusted(tmp_path) -> None:
    s = make_demo_session(200, 10, seed=1)
    s.settings["summary"] = {"anchors_trusted": False, "anchors": 95}
    s.settings["anchor_notes"] = ["anchor 17 (class 0) dropped: the densest samples' label spreading reaches it"]
    s.settings["warnings"] = ["the embeddings are nearly one-dimensional"]
    text = write_report(s, tmp_path / "untrusted.html").read_text(encoding="utf-8")
    assert "Anchors NOT trusted" in text and "anchor 17 (class 0) dropped" in text
    assert "nearly one-dimensional" in text
    s.settings["summary"] = {"anchors_trusted": True, "anchors": 100}
    s.settings.pop("warnings")
    text = write_report(s, tmp_path / "trusted.html").read_text(encoding="utf-8")
    assert "NOT trusted" not in text and "100 trusted clean samples" in text


def test_the_summary_counts_read_as_flags_and_samples_and_kept_is_listed_once(tmp_path) -> None:
    """"unreviewed 0 of the flags (1,404 of all samples)" and "kept" twice (newcomer session 18)."""
    s = make_demo_session(300, 10, seed=1)
    flagged = int(s.flagged_mask.sum())
    text = write_report(s, tmp_path / "r.html", export_summary={"kept": 290, "removed": 10}).read_text()
    assert f"0 of the {flagged:,} flags · " in text and f"of all {s.n:,} samples" in text
    assert text.count("<th>kept</th>") == 1


def test_a_report_that_cannot_be_written_leaves_nothing_and_names_itself(tmp_path, monkeypatch) -> None:
    """`review --report` on a full disk said "the disk is full" alone and left r.html.tmp behind (a bad-input probe,
    session 27): the error names the report, and no temporary file stays."""
    import errno

    import pytest

    import naviewer.io as io_module

    class FullDisk:
        def __init__(self, path, mode="r", *args, **kwargs):
            self.handle = open(path, mode, *args, **kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_module, "open", FullDisk, raising=False)
    target = tmp_path / "r.html"
    with pytest.raises(OSError) as caught:
        write_report(make_demo_session(), target)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []


def test_the_report_carries_the_retrains_before_and_after_beside_the_floor(tmp_path) -> None:
    """The report said nothing of the remove-and-retrain, though its table is what the review was for (a newcomer,
    session 30): before / after / floor, the retrain again's run and the first retrain's figures."""
    s = make_demo_session(200, 10, seed=1)
    record = {"kind": "retrain", "again": "demo-again-1", "confirmed": 116, "protocol": "uniform",
              "before": {"asr": 1.0, "knn_acc": 0.925}, "after": {"asr": 0.404, "knn_acc": 0.94},
              "floor": {"asr": 0.144, "knn_acc": 0.94},
              "earlier": [{"run": "demo", "after": {"asr": 0.213, "knn_acc": 0.931}, "first": True}]}
    text = write_report(s, tmp_path / "report.html", finetune=record).read_text(encoding="utf-8")
    assert "<h2>Fine-tune / retrain</h2>" in text and "without 116 confirmed samples" in text and "demo-again-1" in text
    assert "<td>100.0 %</td><td>40.4 %</td><td>14.4 %</td>" in text
    assert "Before it, the first retrain (run demo) read attack success rate 21.3 %, ASR, every test image –" not in text
    assert "the first retrain (run demo) read attack success rate 21.3 %, kNN accuracy 93.1 %" in text
    plain = write_report(s, tmp_path / "plain.html", finetune={"before": {}, "after": {}}).read_text(encoding="utf-8")
    assert "Fine-tune / retrain" not in plain  # nothing measured: no section


def test_the_report_says_what_the_trigger_check_leaves_unconfirmed(tmp_path) -> None:
    """The report said nothing of the trigger check (a newcomer, session 31): its cleared flags and ids."""
    import numpy as np

    s = make_demo_session(200, 10, seed=1)
    flagged = np.asarray(s.scores["flagged"], bool)
    ids = np.flatnonzero(flagged)
    reach = np.zeros(s.n)
    reach[ids[:2]] = 0.9
    patch = flagged.copy()
    patch[ids[:1]] = False  # PatchSearch finds no trigger in the first reached flag only
    s.scores["anchor_reach"] = reach
    s.settings["trigger_check"] = {"patchsearch_pass": 4, "reach_limit": 0.5, "coverage": 0.5}
    s.store.pass_scores = lambda pass_id: {"flagged": patch}
    text = write_report(s, tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"1 flag the trusted anchors reach as clean (above 0.5) carries no trigger it can find; accept-all leaves " \
           f"them unconfirmed: {int(ids[0])}." in text
    s.store.pass_scores = lambda pass_id: {"flagged": np.zeros(s.n, bool)}  # it finds no trigger anywhere: no verdict
    assert "so it clears none" in write_report(s, tmp_path / "r2.html").read_text(encoding="utf-8")


def test_the_summary_says_how_many_of_the_removed_were_poisons_where_the_attack_is_known(tmp_path) -> None:
    """"removed (confirmed poisons) 117" of a demo with 113 poisons (a newcomer, session 31): the crafted attack's
    ground truth counts the poisons and the clean samples among the removed, and the poisons left in the kept set."""
    s = make_demo_session(300, 10, seed=1)
    truth = s.truth_poison_mask()
    assert truth is not None and truth.any()
    poisons, clean = np.flatnonzero(truth), np.flatnonzero(~truth)
    s.confirm(np.concatenate([poisons[1:], clean[:2]]))
    text = write_report(s, tmp_path / "r.html").read_text(encoding="utf-8")
    assert (f"removed: {poisons.size - 1:,} poisons and 2 clean samples · kept: 1 of the {poisons.size:,} poisons"
            in text)


def test_every_detection_pass_is_listed_those_that_found_nothing_too() -> None:
    """Three DIFT passes that flagged nothing were absent from the report, which listed passes with a score only
    (a newcomer, session 32): one line a pass, its verdict in words."""
    from types import SimpleNamespace

    from naviewer.analysis.report import _passes_list

    records = [{"id": 1, "method": "kdist", "run": "posthoc", "epoch": None, "settings": {"flagged": 11}},
               {"id": 2, "method": "patchsearch", "run": "posthoc", "epoch": None, "settings": {"flagged": 0, "summary": {
                   "threshold": {"refused": "97% of the samples flagged"}}}},
               {"id": 3, "method": "dift", "run": "r", "epoch": 49, "settings": {"summary": {"noop": True, "flagged": 0}}}]
    session = SimpleNamespace(store=SimpleNamespace(passes=lambda: records), pass_id=3)
    text = "".join(_passes_list(session))
    assert "<td>11 flagged</td>" in text and "no verdict: 97% of the samples flagged" in text
    assert "<td>3 (this report's)</td><td>dift</td><td>run r, epoch 50</td><td>flagged nothing: no crowded group" in text
