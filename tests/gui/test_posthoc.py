"""Run ▸ Detect (post-hoc) and fine-tuning a post-hoc pass from the analyst panel, offscreen and tiny.

The encoder is a one-epoch ResNet-10 (width 8, 16 px) trained without a defence: what an analyst
would bring to ``naviewer detect WS --checkpoint C``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from naviewer.gui.jobs import JobState

pytest.importorskip("naviewer.ssl.trainer")


def _kit():
    """tests/workflows/workflow_kit.py (tests/gui is a package, so that folder is not on sys.path)."""
    path = Path(__file__).resolve().parents[1] / "workflows" / "workflow_kit.py"
    spec = importlib.util.spec_from_file_location("_gui_workflow_kit", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """(workspace, checkpoint): an attacked tiny workspace and a plain one-epoch encoder trained on it."""
    import torch

    from naviewer.workflows.dift_training import train_with_dift

    kit = _kit()
    base = tmp_path_factory.mktemp("posthoc_gui")
    data = kit.write_folder(base / "train", 60), kit.write_folder(base / "test", 15, seed=1)
    setup = kit.attacked_workspace(base / "ws", data)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with setup.workspace as ws:
            out = train_with_dift(ws, kit.train_config(1, knn_every=0), dift=False, monitor=False, run="plain")
            # small fine-tuning budget: the window reads the workspace's [dift] as the CLI does
            ws.update_config("dift", kit.dift_config(ft_max_steps=4, ft_check_every=2).to_dict())
    finally:
        torch.set_num_threads(threads)
    return Path(setup.workspace.path), Path(out.checkpoint)




def _open(qtbot, window, path: Path) -> None:
    job = window.open_workspace(path)
    qtbot.waitSignal(job.finished, timeout=20000).wait()
    assert job.state is JobState.FINISHED, job.error_details


def test_the_overview_names_a_finished_trainings_encoder_before_any_detection(qtbot, window, trained):
    """Right after a Train finished the Overview read "Encoder: none" and a newcomer thought the encoder lost (session
    20): with no pass and no encoder opened, the newest finished training's checkpoint is named (the file Detect…
    starts from). (First in this module: the workspace has no detection pass yet.)"""
    path, checkpoint = trained
    _open(qtbot, window, path)
    text = window.overview.encoder.text()
    assert "last.pt" in text and "newest finished training" in text
    assert Path(window.overview.encoder.toolTip()).resolve() == checkpoint.resolve()


def test_detect_action_docks_analyst_then_posthoc_finetune_shows_before_after(qtbot, window, trained, monkeypatch):
    from naviewer.workflows.workspace_setup import ground_truth_mask
    from naviewer.workspace import Workspace

    path, checkpoint = trained
    _open(qtbot, window, path)
    assert window.act_detect.isEnabled()
    window.encoder_path = checkpoint  # as File ▸ Open encoder leaves it: the dialog starts from it
    started = []
    window.jobs.job_started.connect(started.append)
    window.act_detect.trigger()
    dialog = window.detect_dialog_widget          # the settings come first: nothing runs before Detect is pressed
    assert not started and Path(dialog.checkpoint_edit.text()) == checkpoint
    for box in dialog.boxes.values():  # DIFT alone: its pass opens (and is what the post-hoc fine-tune reads)
        box.setChecked(False)
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    job = next(j for j in started if j.name.startswith("Detect"))
    qtbot.waitSignal(job.finished, timeout=30000).wait()
    assert job.state is JobState.FINISHED, job.error_details
    pass_id = job.result["pass_id"]
    qtbot.waitUntil(lambda: window.analyst_dock is not None and window.analyst_dock.pass_id == pass_id, timeout=10000)
    dock = window.analyst_dock
    assert dock.run == "posthoc" and window.docks["analystDock"].widget() is dock.panel
    assert dock.posthoc_checkpoint() == checkpoint
    assert dock.panel.session.embeddings is not None          # the features the detection saved

    # review: the poisons confirmed (the truth: one epoch is too short for complete flags), the rest decided
    with Workspace.open(path) as ws:
        poisons = np.flatnonzero(ground_truth_mask(ws))
    session = dock.panel.session
    session.confirm(poisons)
    gate = dock.panel.finetune_gate
    gate.override.setChecked(True)
    gate.update_gate()
    assert gate.button.isEnabled()
    gate.button.click()
    ft = dock.finetune_job
    assert ft is not None
    qtbot.waitSignal(ft.finished, timeout=60000).wait()
    assert ft.state is JobState.FINISHED, ft.error_details
    assert ft.result["confirmed"] == poisons.size
    for side in ("before", "after"):
        assert {"confirmed_density", "knn_acc", "asr"} <= set(ft.result[side])
    assert Path(ft.result["checkpoint"]).is_file()
    qtbot.waitUntil(lambda: not gate.result.isHidden() and gate.result.rowCount() >= 3, timeout=5000)
    rows = [gate.result.item(r, 0).text() for r in range(gate.result.rowCount())]
    assert any("density" in r for r in rows)
    # the ASR names its test-time protocol; no floor was trained for this workspace, and the gate says so
    assert any(r.startswith("attack success rate, test-time protocol ") for r in rows)
    assert not gate.floor_line.isHidden() and "floor not measured" in gate.floor_line.text()
    assert dock.panel.tabs.currentWidget() is gate and not gate.button.isEnabled()


def test_a_detect_that_ends_mid_review_offers_its_pass_and_leaves_the_keys_where_they_were(qtbot, window, trained,
                                                                                            tmp_path):
    """A Detect that ended while the analyst reviewed pass 5 by keyboard switched the panel to the new pass under
    their keys: R then rejected another pass's tile, never looked at (a newcomer, session 19)."""
    import shutil

    path, checkpoint = trained
    copy = tmp_path / "ws"
    shutil.copytree(path, copy)
    _open(qtbot, window, copy)
    first = window.detect(checkpoint, detectors=())
    qtbot.waitSignal(first.finished, timeout=30000).wait()
    qtbot.waitUntil(lambda: window.analyst_dock is not None and window.analyst_dock.pass_id == first.result["pass_id"],
                    timeout=10000)
    dock = window.analyst_dock
    reviewed = dock.pass_id
    dock.panel.session.reject(np.arange(2))  # the analyst is reviewing here
    second = window.detect(checkpoint, run="again", detectors=())
    qtbot.waitSignal(second.finished, timeout=30000).wait()
    assert second.state is JobState.FINISHED, second.error_details
    qtbot.wait(200)
    assert window.analyst_dock is dock and dock.pass_id == reviewed  # not switched under the keys
    offered = f"Detection ready (DIFT pass {second.result['pass_id']}:"
    assert offered in window.log.toPlainText()
    notice = dock.panel.gallery.notice.text()
    assert notice.startswith("Detection ready, open: <a") and f'href="pass:{second.result["pass_id"]}"' in notice
    # a restart reopens the pass under review, not the one only offered (a newcomer, session 34)
    from naviewer.gui.settings import pass_to_reopen

    assert pass_to_reopen(window.settings, str(copy.absolute()), int(second.result["pass_id"])) == reviewed
    # the pass a click away, when the analyst chooses (a newcomer, session 27): the notice's link opens it
    new = second.result["pass_id"]
    assert f'href="pass:{new}"' in dock.panel.gallery.notice.text()
    dock.panel.gallery.notice_link.emit(f"pass:{new}")
    qtbot.waitUntil(lambda: window.analyst_dock is not None and window.analyst_dock.pass_id == new, timeout=10000)
    dock = window.analyst_dock
    dock.panel.reviewed_here = False  # (as a panel opened afresh) no decision here, the keys elsewhere: it opens
    window.setFocus()
    third = window.detect(checkpoint, run="third", detectors=())
    qtbot.waitSignal(third.finished, timeout=30000).wait()
    qtbot.waitUntil(lambda: window.analyst_dock is not None and window.analyst_dock.pass_id == third.result["pass_id"],
                    timeout=10000)


def test_detect_with_a_bad_checkpoint_shows_a_message(qtbot, window, trained, tmp_path, monkeypatch):
    path, _ = trained
    _open(qtbot, window, path)
    import pickle

    bad = tmp_path / "bad.pt"
    bad.write_bytes(pickle.dumps({"epoch": 3}, protocol=2))  # a pickle (plain text is refused in the dialog already)
    # no encoder open: the dialog asks for a checkpoint file (Browse… or typed)
    assert window.encoder_path is None
    monkeypatch.setattr("naviewer.gui.detect_dialog.QFileDialog.getOpenFileName", lambda *a, **k: (str(bad), ""))
    started = []
    window.jobs.job_started.connect(started.append)
    window.act_detect.trigger()
    dialog = window.detect_dialog_widget
    dialog.checkpoint_edit.setText("")
    dialog.browse_button.click()
    assert dialog.checkpoint() == bad
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    job = next(j for j in started if j.name.startswith("Detect"))
    qtbot.waitSignal(job.finished, timeout=20000).wait()
    assert job.state is JobState.FAILED
    box = window.last_message_box
    assert box is not None and "bad.pt" in box.text() and box.detailedText() == ""
    assert "Traceback" not in box.text()


def test_the_panel_refuses_a_pass_whose_embeddings_were_rewritten(qtbot, window, trained, tmp_path):
    import shutil

    from naviewer.errors import NaviewerError
    from naviewer.gui.analyst_dock import AnalystDock
    from naviewer.workflows.posthoc import posthoc_detect
    from naviewer.workspace import Workspace

    path, checkpoint = trained
    copy = tmp_path / "ws"
    shutil.copytree(path, copy)
    with Workspace.open(copy) as ws:
        out = posthoc_detect(ws, checkpoint, run="post")
        np.save(out.embeddings_path, np.zeros((ws.store.sample_count(), 4), np.float32))
    with pytest.raises(NaviewerError, match="other embeddings"):
        AnalystDock(window, copy, pass_id=out.pass_id)


def test_a_reopened_workspace_shows_its_earlier_finetune_and_does_not_offer_it_again(qtbot, window, trained, tmp_path):
    import shutil

    from naviewer.gui.analyst_dock import AnalystDock
    from naviewer.workflows.posthoc import finetune_posthoc, latest_finetune_result, posthoc_detect
    from naviewer.workflows.workspace_setup import ground_truth_mask
    from naviewer.workspace import Workspace

    path, checkpoint = trained
    copy = tmp_path / "again"
    shutil.copytree(path, copy)
    with Workspace.open(copy) as ws:
        out = posthoc_detect(ws, checkpoint, run="again")
        ws.store.set_review(np.flatnonzero(ground_truth_mask(ws)), "confirmed", "tester")
        done = finetune_posthoc(ws, checkpoint)
        result = latest_finetune_result(ws, "again", out.pass_id)
        assert result["kind"] == "posthoc" and result["finetune"]["steps"] == done.finetune["steps"]
    dock = AnalystDock(window, copy, pass_id=out.pass_id)
    try:
        header = dock.panel.header.text()
        assert "Verdict:" in header and "resnet10 width 8, 16 px (inferred from its weights)" in header
        gate = dock.panel.finetune_gate
        assert not gate.button.isEnabled() and gate.reason.text().startswith("Done earlier")
        # what it did, in steps (a 0-step one read "fine-tuned"), and the window's way to train them out
        # (a newcomer read only a terminal command; session 27)
        said = gate.reason.text()
        assert ("nothing to fine-tune" in said) == (done.finetune["steps"] == 0) and "Run ▸ Train…" in said
        assert not gate.result.isHidden() and gate.result.rowCount() >= 2
        dock.panel.session.reject([0])            # a later decision does not re-arm the step
        gate.update_gate()
        assert not gate.button.isEnabled() and gate.reason.text().startswith("Done earlier")
    finally:
        dock.close()


def test_a_pass_whose_encoder_is_gone_says_so_in_the_finetune_tab(qtbot, window, trained, tmp_path):
    """The encoder a post-hoc pass was detected with was deleted: the Fine-tune tab read "Ready" and the error came
    only on the click (newcomer session 16). It says at once what is missing and what to do."""
    import shutil

    from naviewer.gui.analyst_dock import AnalystDock
    from naviewer.workflows.posthoc import posthoc_detect
    from naviewer.workflows.workspace_setup import ground_truth_mask
    from naviewer.workspace import Workspace

    path, checkpoint = trained
    copy = tmp_path / "gone"
    shutil.copytree(path, copy)
    encoder = tmp_path / "encoder.pt"
    shutil.copy(checkpoint, encoder)
    with Workspace.open(copy) as ws:
        out = posthoc_detect(ws, encoder, run="gone")
        ws.store.set_review(np.flatnonzero(ground_truth_mask(ws)), "confirmed", "tester")
    encoder.unlink()
    dock = AnalystDock(window, copy, pass_id=out.pass_id)
    try:
        gate = dock.panel.finetune_gate
        gate.override.setChecked(True)
        assert not gate.button.isEnabled()
        assert "is missing" in gate.reason.text() and "encoder.pt" in gate.reason.text()
    finally:
        dock.close()


def test_detect_with_other_detectors_runs_each_as_a_pass(qtbot, window, trained):
    """Run ▸ Detect (post-hoc): the dialog names every detector with its summary; accepting it runs
    DIFT and the ticked ones, each saved as a pass the Analyst shows side by side."""
    from naviewer.catalogue import DETECTOR_NAMES
    from naviewer.gui.analyst.detector_scores import detector_table
    from naviewer.workspace import Workspace

    path, checkpoint = trained
    _open(qtbot, window, path)
    assert window.act_detect.isEnabled()
    dialog = window.detect_dialog()  # the window owns it; it deletes itself when closed
    assert set(dialog.boxes) == set(DETECTOR_NAMES) - {"dift"}
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    dialog.checkpoint_edit.setText("")  # (it starts from the reviewed pass's encoder when an earlier test made one)
    assert not ok.isEnabled() and "Choose the encoder checkpoint" in dialog.problem.text()
    dialog.checkpoint_edit.setText(str(path / "missing.pt"))
    assert not ok.isEnabled() and "No such file" in dialog.problem.text()
    dialog.checkpoint_edit.setText(str(path))  # a folder that exists is named as one, not "No such file"
    assert not ok.isEnabled() and "A folder, not a checkpoint file" in dialog.problem.text()
    dialog.checkpoint_edit.setText(str(checkpoint))
    assert ok.isEnabled()
    for name, box in dialog.boxes.items():
        box.setChecked(name in ("kdist", "slof"))
    started = []
    window.jobs.job_started.connect(started.append)
    ok.click()
    job = next(j for j in started if j.name.startswith("Detect"))
    assert "kdist, slof" in job.name
    qtbot.waitSignal(job.finished, timeout=60000).wait()
    assert job.state is JobState.FINISHED, job.error_details
    assert set(job.result["detector_passes"]) == {"kdist", "slof"}
    assert "Workspace ▸ Detection passes opens the others" in window.log.toPlainText()
    with Workspace.open(path) as ws:
        methods = {p["method"] for p in ws.store.passes()}
    assert {"kdist", "slof"} <= methods
    # DIFT's pass opens, unless it flagged nothing and another did: then the one with the most flags (session 28)
    flagged = {name: job.result["detector_metrics"][name]["flagged"] for name in ("kdist", "slof")}
    method, opened = "DIFT", job.result["pass_id"]
    if not job.result["summary"].get("flagged") and max(flagged.values()):
        method = max(flagged, key=flagged.get)
        opened = job.result["detector_passes"][method]
    qtbot.waitUntil(lambda: window.analyst_dock is not None and window.analyst_dock.pass_id == opened, timeout=10000)
    shown = {item.method for item in detector_table(window.analyst_dock.panel.session)}
    assert {"kdist", "slof"} <= shown
    # the dock names its detector: "detection pass 3" alone sent a newcomer looking for passes 1 and 2
    assert window.analyst_dock.dock.windowTitle().startswith(f"Analyst — {method} pass {opened}")
    assert window.detectors_chosen == ("kdist", "slof")  # ticked again next time
    # opened again, the workspace's reviewed pass names its encoder: Detect… starts from it (it started empty)
    _open(qtbot, window, path)
    assert window.encoder_path is None
    again = window.detect_dialog()
    assert Path(again.checkpoint_edit.text()).resolve() == Path(checkpoint).resolve()
    assert again.buttons.button(again.buttons.StandardButton.Ok).isEnabled()
    again.reject()


def test_the_detect_dialog_lists_and_describes_the_workspaces_checkpoints(qtbot, tmp_path):
    """A newcomer detected with demo/last.pt, the encoder after the demo's remove-and-retrain, and got "no poison
    detected" with nothing to say why: the dialog lists the workspace's checkpoints and says what each is."""
    import json

    from naviewer.gui.detect_dialog import DetectDialog

    for run, state in (("demo", {"status": "finished", "finetune": {"restart_mode": "retrain"}}),
                       ("dift", {"status": "awaiting_review"})):
        (tmp_path / "checkpoints" / run).mkdir(parents=True)
        (tmp_path / "checkpoints" / run / "last.pt").write_bytes(b"x")
        (tmp_path / "runs" / run).mkdir(parents=True)
        (tmp_path / "runs" / run / "dift_state.json").write_text(json.dumps(state))
    dialog = DetectDialog(None, None, tmp_path / "checkpoints")
    qtbot.addWidget(dialog)
    assert dialog.known.count() == 3 and "retrained WITHOUT the confirmed poisons" in dialog.known.itemText(1)
    dialog.known.setCurrentIndex(2)
    assert dialog.checkpoint() == tmp_path / "checkpoints" / "dift" / "last.pt"
    assert "stopped for the review" in dialog.described.text()


def test_the_detect_dialog_offers_the_encoder_kept_at_the_review_and_says_a_retrain_stopped(qtbot, tmp_path):
    """A cancelled Remove and retrain left demo/last.pt half-trained, offered as "the encoder after the defense"
    (newcomer session 17): the flag-time encoder kept as at-review.pt is offered, and last.pt said for what it is."""
    import json

    from naviewer.gui.detect_dialog import DetectDialog

    folder = tmp_path / "checkpoints" / "demo"
    folder.mkdir(parents=True)
    for name in ("last.pt", "at-review.pt"):
        (folder / name).write_bytes(b"x")
    (tmp_path / "runs" / "demo").mkdir(parents=True)
    (tmp_path / "runs" / "demo" / "dift_state.json").write_text(
        json.dumps({"status": "restarted", "finetune": {"restart_mode": "retrain"}}))
    dialog = DetectDialog(None, None, tmp_path / "checkpoints")
    qtbot.addWidget(dialog)
    texts = [dialog.known.itemText(i) for i in range(1, dialog.known.count())]
    assert texts[0].startswith("demo/at-review.pt: the encoder DIFT flagged with")
    assert texts[1].startswith("demo/last.pt: in its fine-tune / retrain after the review, not finished")


def test_the_detect_dialog_says_when_the_workspaces_own_encoder_is_gone(qtbot, tmp_path):
    """It said only "Choose the encoder checkpoint." with the reviewed pass's encoder deleted (newcomer session 16)."""
    from naviewer.gui.detect_dialog import DetectDialog

    dialog = DetectDialog(None, None, tmp_path, missing="/x/last.pt (resnet10 width 16, 16 px; the reviewed pass's)")
    qtbot.addWidget(dialog)
    assert dialog.problem.text().startswith("Choose the encoder checkpoint. The reviewed pass's encoder is gone: /x/last.pt")


def test_a_retrain_stopped_after_the_review_says_how_it_goes_on_not_done(qtbot, window, trained, tmp_path, monkeypatch):
    """A cancelled Remove and retrain read "Done earlier: removed ... retrained" (newcomer session 17): the tab now
    says it stopped, and that Run ▸ Resume interrupted run goes on with it; the step is not offered again."""
    import shutil

    from naviewer.gui.analyst_dock import AnalystDock
    from naviewer.workflows.posthoc import posthoc_detect
    from naviewer.workspace import Workspace

    path, checkpoint = trained
    copy = tmp_path / "stopped"
    shutil.copytree(path, copy)
    with Workspace.open(copy) as ws:
        out = posthoc_detect(ws, checkpoint, run="stopped")
    monkeypatch.setattr("naviewer.workflows.posthoc.latest_finetune_result",
                        lambda *_a, **_k: {"kind": "retrain", "confirmed": 12, "interrupted": True})
    dock = AnalystDock(window, copy, pass_id=out.pass_id)
    try:
        gate = dock.panel.finetune_gate
        assert not gate.button.isEnabled()
        assert gate.reason.text().startswith("Stopped during the retrain on the kept samples (not finished)")
        assert "Run ▸ Resume interrupted run" in gate.reason.text() and "at-review.pt" in gate.reason.text()
    finally:
        dock.close()


def test_the_dock_title_names_the_passs_detector_run_and_epoch():
    from naviewer.gui.analyst_dock import dock_title

    assert dock_title(3, {"method": "dift", "run": "posthoc"}) == "Analyst — DIFT pass 3 of run posthoc"
    assert dock_title(2, {"method": "kdist", "run": "posthoc"}) == "Analyst — kdist pass 2 of run posthoc"
    assert dock_title(5, {"method": "dift", "run": "dift", "epoch": 35}) == "Analyst — DIFT pass 5 of run dift, epoch 36"
    assert dock_title(1, {}) == "Analyst — detection pass 1"


def test_a_finished_detect_says_what_each_of_its_passes_flagged():
    """A newcomer ran patchsearch as "What to try next" advised: DIFT's empty pass opened and patchsearch's 163
    flags were found only behind a menu. The Log, the status bar (and the offer mid-review) name every pass's count."""
    from naviewer.gui.main_window import detection_outcome

    result = {"pass_id": 7, "summary": {"flagged": 0}, "detector_passes": {"kdist": 5, "patchsearch": 6},
              "detector_metrics": {"kdist": {"flagged": 15}, "patchsearch": {"flagged": 163}}}
    assert detection_outcome(result) == "DIFT pass 7: 0 flagged; kdist pass 5: 15; patchsearch pass 6: 163"
    assert detection_outcome({"pass_id": 3, "summary": {"flagged": 0}}) == "DIFT pass 3: 0 flagged"


def test_a_detect_whose_dift_flagged_nothing_opens_the_pass_that_holds_flags(qtbot, window, tmp_path, monkeypatch):
    """The empty DIFT pass opened while patchsearch's held 11 flags, found only through the passes menu (a newcomer,
    session 28): with no review open, the detector pass with the most flags opens, and the status bar says why."""
    from .analyst.analyst_kit import folder_workspace

    from naviewer.gui import tasks
    from naviewer.workspace import Workspace

    path = folder_workspace(tmp_path / "a")
    with Workspace.open(path) as ws:
        n = ws.store.sample_count()
        none = {"score": np.zeros(n), "flagged": np.zeros(n, bool)}
        kdist = ws.store.add_detection_pass("kdist", none, {})
        patch = ws.store.add_detection_pass("patchsearch", {**none, "flagged": np.arange(n) < 11}, {})
        dift = ws.store.add_detection_pass("dift", none, {}, run="posthoc")
    result = {"pass_id": dift, "run": "posthoc", "summary": {"flagged": 0, "noop": True},
              "detector_passes": {"kdist": kdist, "patchsearch": patch},
              "detector_metrics": {"kdist": {"flagged": 0}, "patchsearch": {"flagged": 11}}}
    monkeypatch.setattr(tasks, "posthoc_detect", lambda *a, **k: result)
    checkpoint = tmp_path / "enc.pt"
    checkpoint.write_bytes(b"x")
    job = window.detect(checkpoint, path, detectors=("kdist", "patchsearch"))
    qtbot.waitUntil(lambda: window.analyst_dock is not None and window.analyst_dock.pass_id == patch, timeout=30000)
    assert job.result is result
    assert f"DIFT flagged nothing; opened patchsearch's pass {patch} (11 flagged)" in window.log.toPlainText()


def test_a_pass_whose_scores_set_its_flags_opens_before_a_fixed_share():
    """kdist's 8 flags (its fixed 1 % of 800, all clean) opened over patchsearch's 6, which held the poisons (a
    newcomer, session 34): a pass that flags a fixed share of any set comes after one whose scores set its flags."""
    from naviewer.gui.main_window import _pass_to_open

    top = {"threshold": {"rule": "top_fraction", "fraction": 0.01}}
    metrics = {"kdist": {"flagged": 8, **top}, "lid": {"flagged": 8, **top},
               "patchsearch": {"flagged": 6, "threshold": {"rule": "robust_z"}}}
    flagged = {name: m["flagged"] for name, m in metrics.items()}
    assert _pass_to_open(flagged, metrics) == "patchsearch"
    assert _pass_to_open({**flagged, "patchsearch": 0}, metrics) in ("kdist", "lid")  # else the most flags
    assert _pass_to_open({}, {}) is None


def test_the_passes_menu_names_each_post_hoc_passs_encoder(qtbot, window, tmp_path):
    """Passes of three encoders all read "(run posthoc, post-hoc)" in Workspace ▸ Detection passes, and their
    checkpoints were all last.pt (a newcomer, session 28): a post-hoc pass names its checkpoint's run and file."""
    from .analyst.analyst_kit import folder_workspace

    from naviewer.gui.main_window import checkpoint_name
    from naviewer.workspace import Workspace

    assert checkpoint_name("/w/checkpoints/simclr-150947/last.pt") == "simclr-150947/last.pt"
    assert checkpoint_name("/elsewhere/enc.pt") == "enc.pt"
    path = folder_workspace(tmp_path / "a")
    with Workspace.open(path) as ws:
        n = ws.store.sample_count()
        ws.store.add_detection_pass("patchsearch", {"score": np.zeros(n), "flagged": np.zeros(n, bool)},
                                    {"encoder": {"checkpoint": str(path / "checkpoints" / "simclr-b" / "last.pt")},
                                     "summary": {"flagged": 0}}, run="posthoc")
    window.state.set_workspace(path, {"samples": n, "pass_id": 2, "runs": []})
    labels = [label for _pid, _run, label in window.pass_choices()]
    assert labels[0].startswith("Pass 2: patchsearch (post-hoc on simclr-b/last.pt)"), labels
    assert labels[1].startswith("Pass 1: dift (run r, epoch 1)"), labels


def test_the_overviews_encoder_follows_the_open_pass(qtbot, window, tmp_path):
    """With a pass of another encoder open, the Overview still named the encoder of the pass the workspace opened on,
    "(the reviewed pass's)" (a newcomer, session 28)."""
    from .analyst.analyst_kit import folder_workspace

    from naviewer.workspace import Workspace

    path = folder_workspace(tmp_path / "a")
    with Workspace.open(path) as ws:
        n = ws.store.sample_count()
        none = {"score": np.zeros(n), "flagged": np.zeros(n, bool)}
        first = ws.store.add_detection_pass("kdist", none, {"encoder": {"checkpoint": "/x/checkpoints/enc-a/last.pt"}})
        second = ws.store.add_detection_pass("kdist", none, {"encoder": {"checkpoint": "/x/checkpoints/enc-b/last.pt"}})
    window.state.set_workspace(path, {"samples": n, "pass_id": second, "runs": []})
    def shown() -> str:
        return window.overview.encoder.text().replace("\u200b", "")  # (break points for wrapping)

    window.show_analyst(path, first)
    assert "enc-a" in shown() and "enc-b" not in shown()
    window.show_analyst(path, second)
    assert "enc-b" in shown()


def test_detect_takes_precomputed_embeddings_as_the_command_line_does(qtbot, window, trained, tmp_path):
    """naviewer detect --embeddings FILE (features made elsewhere, e.g. on a GPU machine) had no counterpart in the
    window (seen, session 33): the Detect dialog's Embeddings field passes the file to the same workflow, which checks
    it and takes it in; a file of another shape is said in the dialog, Detect greyed."""
    import shutil

    from naviewer.gui.detect_dialog import DetectDialog

    path, checkpoint = trained
    _open(qtbot, window, path)
    first = window.detect(checkpoint, run="embedded-here")
    qtbot.waitSignal(first.finished, timeout=30000).wait()
    assert first.state is JobState.FINISHED, first.error_details
    features = tmp_path / "features.npy"
    shutil.copyfile(first.result["embeddings"], features)
    again = window.detect(checkpoint, run="brought", embeddings=features)
    qtbot.waitSignal(again.finished, timeout=30000).wait()
    assert again.state is JobState.FINISHED, again.error_details
    assert np.array_equal(np.load(again.result["embeddings"]), np.load(features))
    assert again.result["summary"]["flagged"] == first.result["summary"]["flagged"]

    samples = np.load(features).shape[0]
    dialog = DetectDialog(None, checkpoint, samples=samples)
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    dialog.embeddings_edit.setText(str(features))
    assert dialog.problem.text() == "" and ok.isEnabled() and dialog.embeddings() == features
    short = tmp_path / "short.npy"
    np.save(short, np.load(features)[:-1])
    dialog.embeddings_edit.setText(str(short))
    assert f"short.npy has {samples - 1:,} rows; the workspace has {samples:,} samples" in dialog.problem.text()
    assert not ok.isEnabled()
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros(samples, dtype=np.float32))
    dialog.embeddings_edit.setText(str(flat))
    assert "2-D (samples, dims)" in dialog.problem.text() and not ok.isEnabled()
    dialog.embeddings_edit.setText(str(checkpoint))  # a checkpoint where the features go
    assert dialog.problem.text().startswith("Not embeddings:") and not ok.isEnabled()
    dialog.embeddings_edit.setText(str(tmp_path / "nowhere.npy"))
    assert "No such file" in dialog.problem.text() and not ok.isEnabled()
    dialog.embeddings_edit.setText("")
    assert dialog.problem.text() == "" and ok.isEnabled() and dialog.embeddings() is None
