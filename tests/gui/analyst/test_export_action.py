"""Issue 14 item 5: one export action, with a dialog that writes the report too, and a message that says
where the files went (the panel's Export… button used to do nothing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from naviewer.gui.analyst.export_dialog import ExportDialog

from analyst_kit import folder_workspace as _folder_workspace

FILES = ["README.txt", "classes.txt", "kept.txt", "provenance.json", "review-report.html", "samples.csv"]


def click_export(qtbot, dialog) -> None:
    """Press Export and wait for its background job (the dialog writes off the GUI thread)."""
    dialog.export_button.click()
    qtbot.waitUntil(lambda: dialog.job is None, timeout=30000)


def test_panel_export_button_opens_the_dialog_and_the_window_says_where(qtbot, window, tmp_path):
    path = _folder_workspace(tmp_path)
    window.state.set_workspace(path, {"samples": 40, "pass_id": 1, "runs": []})
    panel = window.analyst_dock.panel
    panel.session.confirm(panel.session.review_queue()[:2])
    panel.export_button.click()
    dialog = panel.export_dialog
    assert isinstance(dialog, ExportDialog)
    qtbot.waitUntil(dialog.isVisible, timeout=3000)
    assert dialog.write_report.isChecked()
    out = tmp_path / "out"
    dialog.path_edit.setText(str(out))
    click_export(qtbot, dialog)
    assert sorted(p.name for p in out.iterdir()) == FILES
    box = window.last_message_box
    assert box is not None and box.windowTitle() == "Export finished"
    assert str(out) in box.text() and "review-report.html" in box.text() and "38 samples kept" in box.text()
    assert str(out) in window.log.toPlainText()


def test_file_export_opens_the_panel_dialog(qtbot, window, tmp_path):
    path = _folder_workspace(tmp_path)
    window.state.set_workspace(path, {"samples": 40, "pass_id": 1, "runs": []})
    window.act_export.trigger()
    dialog = window.export_dialog_widget
    assert dialog is window.analyst_dock.panel.export_dialog and dialog.isVisible()
    assert "Density map" in dialog.plots
    dialog.reject()


def test_file_export_without_a_detection_pass(qtbot, window, tmp_path):
    from naviewer.analysis.demo import make_demo_session
    from naviewer.data.base import ArrayDataset
    from naviewer.workspace import Workspace

    demo = make_demo_session(60, 4, seed=1, n_classes=4)
    with Workspace.create(tmp_path / "ws", ArrayDataset(np.asarray(demo.images), demo.labels, demo.class_names)):
        pass
    window.state.set_workspace(tmp_path / "ws", {"samples": 60, "runs": []})
    assert window.analyst_dock is None
    dialog = window.export_dialog()
    qtbot.waitUntil(dialog.isVisible, timeout=3000)
    assert "no detection pass yet" in dialog.summary.text()  # "60 kept, 0 removed" said nothing of why
    assert not dialog.drop_flags.isEnabled()  # no flag to remove (it was offered; a newcomer, session 29)
    out = tmp_path / "out"
    dialog.path_edit.setText(str(out))
    click_export(qtbot, dialog)
    assert sorted(p.name for p in out.iterdir()) == FILES
    assert str(out) in window.last_message_box.text()
    assert len((out / "kept.txt").read_text().splitlines()) == 60


def test_export_while_a_training_runs_says_its_flags_are_still_to_come(qtbot, window, tmp_path):
    """Export stays enabled while the demo trains; an export then keeps every sample, and the dialog said "run a
    detection first" while one was running (session 21). It says the flags are still to come."""
    from types import SimpleNamespace

    from naviewer.analysis.demo import make_demo_session
    from naviewer.data.base import ArrayDataset
    from naviewer.workspace import Workspace

    demo = make_demo_session(60, 4, seed=1, n_classes=4)
    with Workspace.create(tmp_path / "ws", ArrayDataset(np.asarray(demo.images), demo.labels, demo.class_names)):
        pass
    window.state.set_workspace(tmp_path / "ws", {"samples": 60, "runs": []})
    from naviewer.gui.jobs import JobState

    window.training_job = SimpleNamespace(running=True, state=JobState.RUNNING, name="training")
    try:
        dialog = window.export_dialog()
        qtbot.waitUntil(dialog.isVisible, timeout=3000)
        text = dialog.summary.text()
        assert "still running" in text and "no detection pass yet" not in text
        dialog.reject()
    finally:
        window.training_job = None


def test_exporting_over_an_earlier_export_asks_and_a_file_is_named(qtbot, window, tmp_path, bulk_answers,
                                                                    monkeypatch):
    """An earlier export in the folder is replaced only after a yes; a file where the folder should be is named
    in plain words (it used to read "[Errno 17] File exists")."""
    from PySide6.QtWidgets import QMessageBox

    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, title, text: warnings.append((title, text)))
    path = _folder_workspace(tmp_path)
    window.state.set_workspace(path, {"samples": 40, "pass_id": 1, "runs": []})
    panel = window.analyst_dock.panel
    panel.session.confirm(panel.session.review_queue()[:2])
    out = tmp_path / "out"
    dialog = window.export_dialog()
    dialog.path_edit.setText(str(out))
    click_export(qtbot, dialog)
    first = (out / "provenance.json").read_text()
    panel.session.confirm(panel.session.review_queue()[2:3])
    dialog = window.export_dialog()
    dialog.path_edit.setText(str(out))
    bulk_answers.answer = False
    click_export(qtbot, dialog)
    assert bulk_answers.asked[-1].startswith(f"{out} holds an earlier naviewer export")
    assert (out / "provenance.json").read_text() == first and dialog.isVisible()
    bulk_answers.answer = True
    click_export(qtbot, dialog)
    assert (out / "provenance.json").read_text() != first
    afile = tmp_path / "a-file"
    afile.write_text("x")
    dialog = window.export_dialog()
    dialog.path_edit.setText(str(afile))
    click_export(qtbot, dialog)
    assert warnings and "a-file" in warnings[-1][1] and "not a folder" in warnings[-1][1] and "Errno" not in warnings[-1][1]


def test_a_folder_of_the_users_own_files_is_refused_before_any_question(qtbot, window, tmp_path, bulk_answers,
                                                                          monkeypatch):
    """A folder holding the user's own README.txt and kept.txt is not "an earlier export": the dialog says the
    folder is not one before asking anything, and the files stay as they were."""
    from PySide6.QtWidgets import QMessageBox

    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, title, text: warnings.append((title, text)))
    path = _folder_workspace(tmp_path)
    window.state.set_workspace(path, {"samples": 40, "pass_id": 1, "runs": []})
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "README.txt").write_text("mine")
    (notes / "kept.txt").write_text("also mine")
    asked_before = len(bulk_answers.asked)
    dialog = window.export_dialog()
    dialog.path_edit.setText(str(notes))
    click_export(qtbot, dialog)
    assert len(bulk_answers.asked) == asked_before
    assert warnings and "not an earlier naviewer export" in warnings[-1][1] and str(notes) in warnings[-1][1]
    assert (notes / "README.txt").read_text() == "mine" and (notes / "kept.txt").read_text() == "also mine"
    dialog.reject()


def test_the_export_checks_the_images_unless_told_not_to(qtbot, tmp_path) -> None:
    """An image deleted since the review: the export refuses (naming what changed) and writes nothing; with the
    check unticked (a workspace reviewed away from its images) it exports from the workspace alone."""
    import pytest

    from naviewer.errors import NaviewerError

    path = _folder_workspace(tmp_path / "a")
    sorted((tmp_path / "a" / "images").rglob("*.png"))[-1].unlink()
    dialog = ExportDialog.for_workspace(path)
    qtbot.addWidget(dialog)
    dialog.write_report.setChecked(False)
    dialog.path_edit.setText(str(tmp_path / "out"))
    assert dialog.verify.isChecked()
    with pytest.raises(NaviewerError, match="--unverified|changed|now has"):
        dialog.export()
    assert not (tmp_path / "out" / "kept.txt").exists()
    dialog.verify.setChecked(False)
    dialog.export()
    assert (tmp_path / "out" / "kept.txt").is_file()


def test_the_export_runs_off_the_gui_thread_and_cancel_leaves_the_folder(qtbot, tmp_path) -> None:
    """The writing is a background job (the dataset check and the manifests took minutes on a large set with the
    window frozen): the dialog shows its step, only Cancel stays usable, and Cancel stops it with nothing written."""
    import threading
    import time

    from naviewer.gui.analyst.export_dialog import default_exporter

    seen = {}

    def slow_exporter(ws, out_dir, drop, verify, ctx, **_kw):
        seen["thread"] = threading.current_thread()
        ctx.progress(1, 2, "checking the dataset")
        while True:  # until cancelled
            ctx.check()
            time.sleep(0.01)

    path = _folder_workspace(tmp_path / "a")
    dialog = ExportDialog.for_workspace(path)
    qtbot.addWidget(dialog)
    dialog.exporter = slow_exporter
    dialog.show()
    out = tmp_path / "out"
    dialog.path_edit.setText(str(out))
    dialog.export_button.click()
    qtbot.waitUntil(lambda: "checking the dataset" in dialog.progress_label.text(), timeout=10000)
    assert seen["thread"] is not threading.main_thread()
    assert not dialog.export_button.isEnabled() and not dialog.path_edit.isEnabled()
    dialog.reject()  # Cancel / Esc while exporting: stop the job, keep the dialog
    assert dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.job is None, timeout=10000)
    assert "cancelled" in dialog.progress_label.text() and dialog.isVisible() and dialog.export_button.isEnabled()
    assert not out.exists()  # the folder the dialog made for it went with it
    dialog.exporter = default_exporter  # the same dialog can export after a cancel
    click_export(qtbot, dialog)
    assert (out / "kept.txt").is_file() and not dialog.isVisible()


def test_a_failed_background_export_is_said_in_the_dialog(qtbot, tmp_path, monkeypatch) -> None:
    """The dataset check fails inside the job: the dialog says why (naming the way out), stays open and writes
    nothing; the window does not show a second box for the same failure."""
    from PySide6.QtWidgets import QMessageBox, QPushButton

    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, title, text: warnings.append((title, text)))
    path = _folder_workspace(tmp_path / "a")
    sorted((tmp_path / "a" / "images").rglob("*.png"))[-1].unlink()
    dialog = ExportDialog.for_workspace(path)
    qtbot.addWidget(dialog)
    dialog.show()
    out = tmp_path / "out"
    dialog.path_edit.setText(str(out))
    click_export(qtbot, dialog)
    assert warnings and warnings[-1][0] == "Export failed" and "--unverified" in warnings[-1][1]
    assert "untick \u201cCheck that the dataset" in warnings[-1][1]  # the dialog's own way out first (a newcomer)
    assert dialog.isVisible() and dialog.export_button.isEnabled()
    # Enter retries the export: it went to Browse… and opened the folder chooser (a newcomer, session 27)
    assert dialog.export_button.isDefault() and dialog.focusWidget() is dialog.export_button
    assert not [b for b in dialog.findChildren(QPushButton) if b.text() == "Browse…" and b.autoDefault()]
    assert not out.exists()  # a newcomer's failed export left an empty dated folder behind
    out.mkdir()  # a folder the analyst had made stays, empty as it was
    click_export(qtbot, dialog)
    assert warnings[-1][0] == "Export failed" and out.is_dir() and list(out.iterdir()) == []


def test_the_panel_exports_the_pass_it_shows(qtbot, window, tmp_path) -> None:
    """The panel showed pass 1 while the export recorded the workspace's latest pass, a later post-hoc detection, and
    would have dropped that pass's undecided flags (a newcomer). The dialog names the pass; the export is of it."""
    import json

    from naviewer.workspace import Workspace

    path = _folder_workspace(tmp_path)
    with Workspace.open(path) as ws:
        n = ws.store.sample_count()
        later = ws.store.add_detection_pass("kdist", {"score": np.zeros(n), "flagged": np.ones(n, bool)}, {})
    window.state.set_workspace(path, {"samples": 40, "pass_id": 1, "runs": []})
    panel = window.analyst_dock.panel
    assert panel.session.pass_id == 1 != later
    panel.export_button.click()
    dialog = panel.export_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=3000)
    assert "detection pass 1" in dialog.summary.text()
    dialog.drop_flags.setChecked(True)
    dialog.path_edit.setText(str(tmp_path / "out"))
    click_export(qtbot, dialog)
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert provenance["detection_pass"]["id"] == 1
    kept = (tmp_path / "out" / "kept.txt").read_text().splitlines()
    assert len(kept) == n - int(panel.session.flagged_mask.sum())  # pass 1's flags dropped, not every sample


def test_the_summary_says_when_confirmed_samples_were_never_flagged_by_the_pass(qtbot, window, tmp_path) -> None:
    """"From the review of detection pass 3" read as if the pass had flagged the 20 samples a newcomer confirmed by
    browsing All samples (session 25)."""
    path = _folder_workspace(tmp_path)
    window.state.set_workspace(path, {"samples": 40, "pass_id": 1, "runs": []})
    session = window.analyst_dock.panel.session
    session.confirm(np.flatnonzero(~session.flagged_mask)[:2])
    dialog = window.export_dialog()
    assert "2 of the confirmed were never flagged by this pass" in dialog.summary.text()
    dialog.reject()
