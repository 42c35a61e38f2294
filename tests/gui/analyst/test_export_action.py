"""Issue 14 item 5: one export action, with a dialog that writes the report too, and a message that says
where the files went (the panel's Export… button used to do nothing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from naviewer.gui.analyst.export_dialog import ExportDialog

from analyst_kit import folder_workspace as _folder_workspace

FILES = ["README.txt", "classes.txt", "kept.txt", "provenance.json", "review-report.html", "samples.csv"]


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
    dialog.export_button.click()
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
    out = tmp_path / "out"
    dialog.path_edit.setText(str(out))
    dialog.export_button.click()
    assert sorted(p.name for p in out.iterdir()) == FILES
    assert str(out) in window.last_message_box.text()
    assert len((out / "kept.txt").read_text().splitlines()) == 60


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
    dialog.export_button.click()
    first = (out / "provenance.json").read_text()
    panel.session.confirm(panel.session.review_queue()[2:3])
    dialog = window.export_dialog()
    dialog.path_edit.setText(str(out))
    bulk_answers.answer = False
    dialog.export_button.click()
    assert bulk_answers.asked[-1].startswith(f"{out} holds an earlier export")
    assert (out / "provenance.json").read_text() == first and dialog.isVisible()
    bulk_answers.answer = True
    dialog.export_button.click()
    assert (out / "provenance.json").read_text() != first
    afile = tmp_path / "a-file"
    afile.write_text("x")
    dialog = window.export_dialog()
    dialog.path_edit.setText(str(afile))
    dialog.export_button.click()
    assert warnings and "a-file" in warnings[-1][1] and "not a folder" in warnings[-1][1] and "Errno" not in warnings[-1][1]


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
