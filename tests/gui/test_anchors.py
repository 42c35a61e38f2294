"""Issue 12 in the window: the untrusted-anchor notice where the verdict is, the Anchors view, replacing
the anchors with a trusted set (and a bad one refused with a dialog naming the file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from naviewer.gui.jobs import JobState

from .analyst.analyst_kit import folder_workspace


def _trusted_folder(root: Path, classes: int = 10, per_class: int = 3, size: int = 24) -> Path:
    """Known-clean labelled images outside the training set, numbered like the workspace (c0..c9)."""
    rng = np.random.default_rng(5)
    for c in range(classes):
        folder = root / f"c{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
            pixels[..., c % 3] += 150
            Image.fromarray(pixels).save(folder / f"clean{i}.png")
    return root


def _wait_job(qtbot, view, timeout=30000):
    qtbot.waitUntil(lambda: not view.busy, timeout=timeout)


def _anchors(path: Path) -> dict:
    from naviewer.workspace import Workspace

    with Workspace.open(path) as ws:
        return dict(ws.config.get("anchors") or {})


def test_untrusted_notice_then_trusted_folder_replaces_the_anchors(qtbot, window, tmp_path, monkeypatch):
    ws = folder_workspace(tmp_path / "a")
    window.state.set_workspace(ws, {"samples": 40, "pass_id": 1, "runs": []})
    panel = window.analyst_dock.panel
    notice = panel.trust
    # the workspace never named anchors: DIFT draws them from the labels, and the panel says so, persistently
    assert notice.isVisible() and notice.anchors.isVisible()
    assert "NOT trusted" in notice.text.text() and "an attack controls" in notice.text.text()
    assert notice.choose.isVisible() and notice.choose.text() == "Choose trusted anchors…"
    # whole, not scrolled, when the window has room (it only scrolls on a window squeezed to its minimum)
    qtbot.waitUntil(lambda: not notice.scroll.verticalScrollBar().isVisible(), timeout=3000)
    assert notice.minimumSizeHint().height() <= 32 < notice.height()

    notice.choose.click()
    dialog = window.anchors_dialog
    assert dialog is not None and dialog.isVisible() and Path(dialog.workspace) == ws
    view = dialog.view
    _wait_job(qtbot, view)
    assert view.overview["kind"] == "labels" and view.overview["trusted"] is False
    assert view.notice.isVisible() and "NOT trusted" in view.notice.text()
    assert "NOT trusted" in view.headline.text()
    assert view.thumbnail_count() == view.overview["count"] > 0  # in-set anchors, from the dataset
    assert sorted(view.class_rows) == list(range(10))

    trusted = _trusted_folder(tmp_path / "trusted")
    monkeypatch.setattr("naviewer.gui.anchors_view.QFileDialog.getExistingDirectory", lambda *a, **k: str(trusted))
    view.per_class.setValue(2)
    job = view.choose("folder")
    assert job is not None
    qtbot.waitSignal(job.finished, timeout=30000).wait()
    assert job.state is JobState.FINISHED, job.error_details
    _wait_job(qtbot, view)
    assert view.overview["kind"] == "external" and view.overview["trusted"] is True
    assert view.overview["per_class"] == {c: 2 for c in range(10)}
    assert not view.notice.isVisible() and "trusted" in view.headline.text()
    assert view.thumbnail_count() == 20  # the trusted images themselves, from outside the training set
    assert str(trusted) in view.source.text()
    section = _anchors(ws)
    assert section["kind"] == "external" and section["trusted"] is True
    # the analyst's notice follows; the dock's own connection re-read workspace.toml (exports record it)
    qtbot.waitUntil(lambda: not notice.isVisible(), timeout=5000)
    assert window.analyst_dock.ws.config["anchors"]["kind"] == "external"


def test_a_bad_ids_file_is_refused_with_a_dialog_naming_it(qtbot, window, tmp_path, monkeypatch):
    ws = folder_workspace(tmp_path / "a")
    window.state.set_workspace(ws, {"samples": 40, "pass_id": 1, "runs": []})
    assert window.act_anchors.isEnabled()
    window.act_anchors.trigger()
    view = window.anchors_dialog.view
    _wait_job(qtbot, view)
    before = _anchors(ws)
    ids = tmp_path / "known_clean.txt"
    ids.write_text("0\n1\n")  # two samples of one class: the other classes have no anchor
    monkeypatch.setattr("naviewer.gui.anchors_view.QFileDialog.getOpenFileName", lambda *a, **k: (str(ids), ""))
    job = view.choose("ids")
    qtbot.waitSignal(job.finished, timeout=30000).wait()
    assert job.state is JobState.FAILED
    box = window.last_message_box
    assert box is not None and str(ids) in box.text() and "no anchor for class" in box.text()
    assert "Traceback" not in box.text() and box.detailedText() == ""
    assert view.error.isVisible() and str(ids) in view.error.text()
    assert _anchors(ws) == before  # nothing changed
    box.close()

    # a good ids file: one known-clean sample of every class (trusted, named by the analyst)
    from naviewer.workspace import Workspace

    with Workspace.open(ws) as w:
        labels = np.asarray(w.store.samples()["label"])
    chosen = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)]
    ids.write_text("\n".join(map(str, chosen)) + "\n")
    job = view.choose("ids")
    qtbot.waitSignal(job.finished, timeout=30000).wait()
    assert job.state is JobState.FINISHED, job.error_details
    _wait_job(qtbot, view)
    assert view.overview["kind"] == "ids" and view.overview["trusted"]
    assert not view.error.isVisible() and view.thumbnail_count() == len(chosen)
    assert _anchors(ws)["indices"] == chosen


def test_pass_on_untrusted_anchors_lists_warnings_and_dropped_anchors(qtbot, tmp_path):
    from naviewer.gui.analyst.panel import AnalystPanel
    from naviewer.workflows.anchor_sources import set_workspace_anchors
    from naviewer.workspace import Workspace

    path = folder_workspace(tmp_path / "a")
    ws = Workspace.open(path)
    try:
        scores = ws.store.pass_scores(1)
        settings = {"k": 10, "summary": {"anchors_trusted": False, "anchors": 38, "anchors_dropped": 2},
                    "warnings": ["the embeddings are nearly one-dimensional (97.0% of the variance along one axis)"],
                    "anchor_notes": ["anchor 3 (class 0) dropped: the densest samples' label spreading reaches it",
                                     "anchor 17 (class 4) dropped: the densest samples' label spreading reaches it"]}
        pass_id = ws.store.add_detection_pass("dift", scores, settings, run="r", epoch=1)
        panel = AnalystPanel.from_workspace(ws, pass_id, images=ws.dataset(), reviewer="t")
        qtbot.addWidget(panel)
        panel.resize(1280, 700)
        panel.show()
        notice = panel.trust
        assert notice.isVisible() and notice.warnings.isVisible()
        assert "Warnings before any verdict" in notice.warnings.text() and "one-dimensional" in notice.warnings.text()
        text = notice.text.text()
        assert "This pass ran on anchors that are NOT trusted" in text and "dropped 2 anchors" in text
        assert "anchor 17 (class 4)" in text
        notice.show_dropped.click()
        assert panel.session.selection.tolist() == [3, 17]

        # trusted anchors recorded since: the pass still rests on the old ones, and the notice says what to do
        labels = np.asarray(ws.store.samples()["label"])
        set_workspace_anchors(ws, "ids:" + ",".join(str(int(np.flatnonzero(labels == c)[0])) for c in np.unique(labels)))
        panel.refresh_trust()
        assert "The workspace has trusted anchors now (ids)" in notice.text.text() and "detect again" in notice.text.text()
        assert notice.choose.text() == "Anchors…"
    finally:
        ws.close()


def test_the_trust_notice_takes_at_most_a_sixth_of_the_window_and_reads_on_a_dark_theme(qtbot, tmp_path):
    """Three boxes at full height took ~180 px of a 720 px window (map ~100 px, one gallery row); the red box's text
    was the dark theme's pale colour on pink (a newcomer's own data, session 19)."""
    from PySide6.QtWidgets import QMainWindow

    from naviewer.gui.analyst.panel import AnalystPanel
    from naviewer.gui.analyst.trust import NOTICE_CAP_MIN
    from naviewer.workspace import Workspace

    path = folder_workspace(tmp_path / "a")
    ws = Workspace.open(path)
    try:
        scores = ws.store.pass_scores(1)
        settings = {"k": 10, "summary": {"anchors_trusted": False, "anchors": 38, "anchors_dropped": 12},
                    "warnings": [f"warning {i}: the flags may mean nothing for this reason" for i in range(6)],
                    "anchor_notes": [f"anchor {i} (class {i % 3}) dropped: spreading reaches it" for i in range(12)],
                    "advice": [f"advice {i}: read the flags wider" for i in range(4)]}
        pass_id = ws.store.add_detection_pass("dift", scores, settings, run="r", epoch=1)
        panel = AnalystPanel.from_workspace(ws, pass_id, images=ws.dataset(), reviewer="t")
        window = QMainWindow()
        qtbot.addWidget(window)
        window.setCentralWidget(panel)
        window.resize(1280, 660)
        window.show()
        qtbot.waitExposed(window)
        notice = panel.trust
        assert notice.isVisible()
        assert notice.scroll.sizeHint().height() <= max(NOTICE_CAP_MIN, 660 // 6)
        assert notice.height() <= max(NOTICE_CAP_MIN, 660 // 6) + 8
        assert "color: #5f1212" in notice.anchors.styleSheet().split("QLabel")[-1]
    finally:
        ws.close()


def test_trusted_pass_without_warnings_shows_no_notice(qtbot, tmp_path):
    from naviewer.gui.analyst.trust import read_trust

    trust = read_trust({"summary": {"anchors_trusted": True}}, {"kind": "external", "trusted": True,
                                                                 "external": {"ids": [1]}}, has_workspace=True)
    assert not trust.any
    trust = read_trust({"summary": {"anchors_trusted": True}}, {}, has_workspace=True)
    assert trust.untrusted and "next DIFT detection" in trust.headline
    assert read_trust({}, None, has_workspace=False).any is False


def test_a_pass_on_few_trusted_anchors_says_to_read_its_flags_wider(qtbot, tmp_path):
    from naviewer.gui.analyst.panel import AnalystPanel
    from naviewer.gui.analyst.trust import read_trust
    from naviewer.workspace import Workspace

    advice = "3 of 10 classes have fewer than 10 trusted anchors (the fewest: 2). Label spreading stops ..."
    trust = read_trust({"summary": {"anchors_trusted": True}, "advice": [advice]}, None, has_workspace=False)
    assert trust.any and not trust.untrusted and trust.advice == [advice]
    path = folder_workspace(tmp_path / "a")
    ws = Workspace.open(path)
    try:
        settings = {"k": 10, "summary": {"anchors_trusted": True}, "advice": [advice]}
        pass_id = ws.store.add_detection_pass("dift", ws.store.pass_scores(1), settings, run="r", epoch=1)
        panel = AnalystPanel.from_workspace(ws, pass_id, images=ws.dataset(), reviewer="t")
        qtbot.addWidget(panel)
        panel.resize(1280, 700)
        panel.show()
        notice = panel.trust
        assert notice.isVisible() and notice.advice.isVisible() and not notice.warnings.isVisible()
        assert "Read the flags wider" in notice.advice.text() and "fewer than 10 trusted anchors" in notice.advice.text()
        assert "What to try next" not in notice.advice.text()
        # a pass that flagged nothing says what to try next, under its own heading (a newcomer had no next step)
        from naviewer.defense.anchors import NOTHING_FLAGGED_ADVICE

        settings = {"k": 10, "summary": {"anchors_trusted": True, "noop": True}, "advice": [NOTHING_FLAGGED_ADVICE]}
        nothing = ws.store.add_detection_pass("dift", ws.store.pass_scores(1), settings, run="r", epoch=2)
        panel = AnalystPanel.from_workspace(ws, nothing, images=ws.dataset(), reviewer="t")
        qtbot.addWidget(panel)
        panel.show()
        text = panel.trust.advice.text()
        assert panel.trust.advice.isVisible() and "What to try next" in text and "patchsearch" in text
        assert "Read the flags wider" not in text
        # with advice beside it (a weak encoder's anchors), over no flag: not "may hold more clean samples"
        settings["advice"] = ["The anchors separate their classes only partly (58%)", NOTHING_FLAGGED_ADVICE]
        weak = ws.store.add_detection_pass("dift", ws.store.pass_scores(1), settings, run="r", epoch=3)
        panel = AnalystPanel.from_workspace(ws, weak, images=ws.dataset(), reviewer="t")
        qtbot.addWidget(panel)
        panel.show()
        text = panel.trust.advice.text()
        assert "Read the verdict with care" in text and "only partly" in text and "Read the flags wider" not in text
    finally:
        ws.close()


@pytest.mark.parametrize("choice,path,expected", [("ids", "/x/ids.txt", "ids:@/x/ids.txt"),
                                                  ("keys", "/x/k.txt", "keys:@/x/k.txt"),
                                                  ("folder", "/data/clean", "/data/clean"),
                                                  ("list", "ids:odd.txt", "dataset:ids:odd.txt")])
def test_spec_for_choices(choice, path, expected):
    from naviewer.gui.anchors_view import spec_for

    assert spec_for(choice, path) == expected


def test_the_view_marks_the_anchors_the_screen_dropped(qtbot, tmp_path):
    """Standalone (its own job manager): the anchors the latest DIFT pass's screen dropped are marked."""
    from naviewer.gui.anchors_view import AnchorsView
    from naviewer.workflows.anchor_sources import set_workspace_anchors
    from naviewer.workspace import Workspace

    path = folder_workspace(tmp_path / "a")
    with Workspace.open(path) as ws:
        section = set_workspace_anchors(ws, "labels", 3, 0)
        dropped = int(section["indices"][1])
        ws.store.add_detection_pass("dift", ws.store.pass_scores(1), {
            "summary": {"anchors_trusted": False},
            "anchor_notes": [f"anchor {dropped} (class {section['labels'][1]}) dropped: the densest samples' label "
                             "spreading reaches it"]}, run="r", epoch=2)
    view = AnchorsView(path)
    qtbot.addWidget(view)
    view.show()
    _wait_job(qtbot, view)
    assert view.overview["dropped"] == [dropped] and view.dropped_count() == 1
    assert "untrusted-anchor screen of detection pass 2" in view.thumb_note.text()
    assert view.overview["per_class_setting"] == 3


def test_the_spec_dialog_wraps_its_help_within_a_laptop_screen(qtbot, window, tmp_path):
    """Its one-line help made the dialog 1,940 px wide, off a 1280 px screen."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QInputDialog

    ws = folder_workspace(tmp_path / "a")
    window.state.set_workspace(ws, {"samples": 40, "pass_id": 1, "runs": []})
    window.act_anchors.trigger()
    view = window.anchors_dialog.view
    _wait_job(qtbot, view)
    seen = []

    def close_it():
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QInputDialog):
            QTimer.singleShot(50, close_it)
            return
        seen.append(dialog.width())
        dialog.reject()

    QTimer.singleShot(50, close_it)
    assert view.choose("spec") is None  # cancelled: nothing replaced
    assert seen and seen[0] <= 720


def test_warnings_over_a_pass_say_which_flags_do_not_rest_on_the_anchors(qtbot):
    """The CIFAR cell's pass (390 flags at 89 / 99 %, 178 from the crop rules) read "the flags may mean nothing"
    under a warning that MinDist cannot tell far from near; the crop rules rank by crops, and the box says so."""
    from naviewer.gui.analyst.trust import TrustNotice, read_trust

    warning = "the anchors do not separate their classes (32%; chance 10%)"
    summary = {"anchors_trusted": True, "warnings": [warning], "flagged": 390,
               "spread": {"crop_added": 57, "crop_outliers_added": 121, "closure_added": 38}}
    trust = read_trust({"summary": summary}, None, has_workspace=False)
    assert "178 of the 390 flags came from the crop rules" in trust.crop_flags_note
    notice = TrustNotice()
    qtbot.addWidget(notice)
    notice.set_trust(trust)
    text = notice.warnings.text()
    assert "178 of the 390" in text and "not by MinDist" in text
    # no crop rule flags: the warning as it was
    plain = read_trust({"summary": {**summary, "spread": {"crop_added": 0}}}, None, has_workspace=False)
    assert plain.crop_flags_note == ""
    notice.set_trust(plain)
    assert "(the flags may mean nothing)" in notice.warnings.text() and "crop rules" not in notice.warnings.text()
    # no warning, or another one (a collapsed encoder concerns the crop scores too): no note
    assert read_trust({"summary": {**summary, "warnings": []}}, None, has_workspace=False).crop_flags_note == ""
    collapsed = {**summary, "warnings": ["the embeddings are collapsed"]}
    assert read_trust({"summary": collapsed}, None, has_workspace=False).crop_flags_note == ""
    # the HTML report's warnings box says the same
    from naviewer.analysis.report import _trust_notes

    assert any("178 of the 390 flags came from the crop rules" in part for part in _trust_notes({"summary": summary}))


@pytest.mark.parametrize("which", ["the training folder", "a class folder in it"])
def test_a_trusted_folder_that_is_the_training_data_asks_first(qtbot, window, tmp_path, monkeypatch, which):
    """Choosing the training folder itself as the trusted set made 2 poisons "cat" anchors under a green "trusted"
    and no question (a newcomer, session 30): it asks, as Draw from labels does, Cancel by default; Cancel keeps the
    anchors as they were."""
    from PySide6.QtWidgets import QMessageBox

    ws = folder_workspace(tmp_path / "a")
    window.state.set_workspace(ws, {"samples": 40, "pass_id": 1, "runs": []})
    window.act_anchors.trigger()
    view = window.anchors_dialog.view
    _wait_job(qtbot, view)
    before = _anchors(ws)
    chosen = tmp_path / "a" / "images" if which == "the training folder" else tmp_path / "a" / "images" / "c0"
    monkeypatch.setattr("naviewer.gui.anchors_view.QFileDialog.getExistingDirectory", lambda *a, **k: str(chosen))
    asked = []

    def answer(box):
        asked.append((box.text(), box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)))
        return QMessageBox.StandardButton.Cancel

    monkeypatch.setattr(QMessageBox, "exec", answer)
    assert view.choose("folder") is None
    (text, cancel_default), = asked
    assert "this workspace's training data" in text and "as untrusted as the labels" in text and cancel_default
    assert _anchors(ws) == before
