"""File ▸ New workspace…: the anchors choice (labels NOT trusted by default, with the warning in view, or a
trusted set) and, with an attack, its test-time protocol, passed to the core's workspace setup."""

from __future__ import annotations

from .fakes import finish as _finish, image_folder as _image_folder
from naviewer.gui.jobs import JobState


def _dialog(qtbot, **kwargs):
    from naviewer.gui.new_workspace_dialog import NewWorkspaceDialog

    dialog = NewWorkspaceDialog(**kwargs)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_default_anchors_are_the_labels_with_the_warning_in_view(qtbot, tmp_path):
    data = _image_folder(tmp_path / "data")
    dialog = _dialog(qtbot)
    assert not dialog.ok_button.isEnabled() and "Choose the dataset" in dialog.error_label.text()
    dialog.dataset.setText(str(data))
    dialog.folder.setText(str(tmp_path / "ws"))
    assert dialog.ok_button.isEnabled()
    assert dialog.anchor_choice() == "default" and "NOT trusted" in dialog.anchor_radios["default"].text()
    assert dialog.anchor_warning.isVisible() and "an attack controls" in dialog.anchor_warning.text()
    assert not dialog.anchor_path_row.isVisible() and not dialog.attack_box.isVisible()
    assert not dialog.anchor_radios["labels"].isVisible()  # only with an attack
    assert dialog.values()["anchors"] is None and "attack" not in dialog.values()

    # a trusted set: the warning goes, its path is required and checked
    dialog.set_anchor_choice("dataset")
    assert not dialog.anchor_warning.isVisible() and dialog.anchor_note.isVisible()
    assert dialog.anchor_path_row.isVisible() and not dialog.ok_button.isEnabled()
    dialog.anchor_path.setText(str(tmp_path / "missing"))
    assert "no such file or folder" in dialog.error_label.text()
    dialog.anchor_path.setText(str(data))
    assert dialog.ok_button.isEnabled() and dialog.values()["anchors"] == str(data)
    ids = tmp_path / "ids.txt"
    ids.write_text("0\n9\n")
    dialog.set_anchor_choice("ids", ids)
    assert dialog.values()["anchors"] == f"ids:@{ids}" and not dialog.anchor_browse_folder.isVisible()
    dialog.set_anchor_choice("keys", data)
    assert "not a file" in dialog.error_label.text() and not dialog.ok_button.isEnabled()

    # a non-empty folder is no place for a workspace
    dialog.set_anchor_choice("default")
    dialog.folder.setText(str(data))
    assert "not empty" in dialog.error_label.text()


def test_paths_that_cannot_be_asked_about_are_said_inline_and_the_dataset_keeps_its_own_folder(qtbot, tmp_path):
    """A folder that cannot be listed, a name too long or a NUL raised on every keystroke and Create did nothing; a
    workspace inside its own dataset folder was made (the command line refuses it). All said inline now, OK off."""
    import os

    data = _image_folder(tmp_path / "data")
    dialog = _dialog(qtbot)
    dialog.dataset.setText(str(data))
    dialog.folder.setText(str(data / "ws"))  # inside the dataset: it would become one of its classes
    assert not dialog.ok_button.isEnabled() and "inside the dataset's own folder" in dialog.error_label.text()
    dialog.folder.setText(str(tmp_path / ("x" * 300)))  # typed one key at a time, each one asked the file system
    assert not dialog.ok_button.isEnabled() and "too long" in dialog.error_label.text()
    dialog.folder.setText(str(tmp_path / "a\x00b"))
    assert not dialog.ok_button.isEnabled() and "NUL" in dialog.error_label.text()
    dialog.folder.setText("~nosuchuserhere/ws")  # expanduser raised RuntimeError on every keystroke
    assert not dialog.ok_button.isEnabled() and "a user this system does not know" in dialog.error_label.text()
    dialog.folder.setText(str(tmp_path / "ws"))
    dialog.dataset.setText(str(tmp_path / ("d" * 300)))
    assert not dialog.ok_button.isEnabled() and "too long" in dialog.error_label.text()
    if os.geteuid() != 0:  # root lists any folder: the unlistable case needs a plain user (the sweep dropped caps)
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0)
        try:
            dialog.dataset.setText(str(data))
            dialog.folder.setText(str(locked))
            assert "cannot be read" in dialog.error_label.text() and not dialog.ok_button.isEnabled()
        finally:
            locked.chmod(0o755)
    dialog.dataset.setText(str(data))
    dialog.folder.setText(str(tmp_path / "ws"))
    assert dialog.ok_button.isEnabled()


def test_an_attack_offers_its_test_time_protocols(qtbot, tmp_path):
    from naviewer.attacks import make_attack

    dialog = _dialog(qtbot, dataset=_image_folder(tmp_path / "data"), folder=tmp_path / "ws")
    dialog.attack.setCurrentIndex(dialog.attack.findData("na"))
    assert dialog.attack_box.isVisible()
    offered = [dialog.protocol.itemData(i) for i in range(dialog.protocol.count())]
    assert offered == list(make_attack("na").test_protocols)
    assert dialog.protocol.currentData() == "uniform" and "0.15 W" in dialog.protocol_text.text()
    dialog.protocol.setCurrentIndex(dialog.protocol.findData("code"))
    assert "released code" in dialog.protocol_text.text()
    # with an attack the default anchors come from the clean set before poisoning: trusted, no warning
    assert "clean set before poisoning" in dialog.anchor_radios["default"].text()
    assert not dialog.anchor_warning.isVisible() and dialog.anchor_radios["labels"].isVisible()
    dialog.set_anchor_choice("labels")
    assert dialog.anchor_warning.isVisible() and dialog.values()["anchors"] == "labels"
    dialog.rate.setText("lots")
    assert not dialog.ok_button.isEnabled() and "Poison rate" in dialog.error_label.text()
    dialog.rate.setText("10")  # read as 10 %, and said so beside it (it said nothing; a newcomer, session 27)
    assert dialog.rate_echo.text() == "= 10 % of the training set"
    dialog.rate.setText("0.5")
    assert dialog.rate_echo.text() == "= 50 % of the training set"
    dialog.rate.setText("10 %")
    values = dialog.values()
    # the target class is named beside its number (a newcomer typed 0 without knowing it was "airplane")
    assert dialog.target_name.text() == "= class0" and dialog.target.maximum() == 1
    dialog.target.setValue(1)
    assert dialog.target_name.text() == "= class1"
    dialog.target.setValue(0)
    # a folder of class folders has no test split: said before Create (a newcomer learnt it only after)
    assert dialog.test_note.isVisible() and "no test split" in dialog.test_note.text()
    real = dialog.dataset.text()
    dialog.dataset.setText("demo")
    assert not dialog.test_note.isVisible()
    dialog.dataset.setText(str(tmp_path / "nowhere"))
    assert dialog.target_name.text() == "" and dialog.target.maximum() == 100000
    dialog.dataset.setText(real)
    assert values["attack"] == "na" and values["test_protocol"] == "code"
    assert values["attack_settings"] == {"target": 0, "rate": 0.1}
    dialog.attack.setCurrentIndex(dialog.attack.findData("ctrl"))
    assert [dialog.protocol.itemData(i) for i in range(dialog.protocol.count())] == ["paper"]
    assert dialog.anchor_choice() == "labels"
    dialog.attack.setCurrentIndex(0)  # no attack: the "crafted set's labels" choice goes back to the default
    assert dialog.anchor_choice() == "default" and dialog.anchor_warning.isVisible()


def test_new_workspace_with_a_trusted_set_from_the_dialog(qtbot, window, tmp_path):
    from naviewer.workspace import Workspace

    data = _image_folder(tmp_path / "data")
    trusted = _image_folder(tmp_path / "trusted", per_class=3, seed=7)
    dialog = window.new_workspace_dialog()
    dialog.dataset.setText(str(data))
    dialog.folder.setText(str(tmp_path / "ws"))
    dialog.set_anchor_choice("dataset", trusted)
    dialog.per_class.setValue(2)
    started = []
    window.jobs.job_started.connect(started.append)
    dialog.ok_button.click()
    job = _finish(qtbot, next(j for j in started if j.name.startswith("Create workspace")))
    assert job.result["anchors_trusted"] and job.result["anchors_kind"] == "external" and job.result["anchors"] == 4
    with Workspace.open(tmp_path / "ws") as ws:
        section = ws.config["anchors"]
        assert section["kind"] == "external" and section["trusted"] is True and section["spec"] == str(trusted)
    assert window.workspace_path == tmp_path / "ws"


def test_new_attacked_workspace_records_the_chosen_protocol(qtbot, window, tmp_path):
    from naviewer.workspace import Workspace

    data = _image_folder(tmp_path / "data", per_class=20)
    dialog = window.new_workspace_dialog()
    dialog.dataset.setText(str(data))
    dialog.folder.setText(str(tmp_path / "ws"))
    dialog.attack.setCurrentIndex(dialog.attack.findData("patch"))
    dialog.protocol.setCurrentIndex(dialog.protocol.findData("paper"))
    dialog.rate.setText("0.1")
    dialog.per_class.setValue(2)
    started = []
    window.jobs.job_started.connect(started.append)
    dialog.ok_button.click()
    job = _finish(qtbot, next(j for j in started if j.name.startswith("Create workspace")))
    assert job.result["attack"] == "patch" and job.result["test_protocol"] == "paper"
    assert job.result["anchors_kind"] == "clean-before-poisoning" and job.result["anchors_trusted"]
    with Workspace.open(tmp_path / "ws") as ws:
        assert ws.config["attack"]["test_protocol"] == "paper" and ws.config["attack"]["name"] == "patch"
        n, poisons = ws.store.sample_count(), int(ws.config["attack"]["num_poisons"])
    # the Log says what the rate counted ("10 %" asked, 8.98 % in the ground truth, unexplained; a newcomer)
    assert (f"crafted patch: {poisons} poisons, {100 * poisons / n:.1f} % of the {n} samples (the rate counts the "
            f"{n - 4} the attack could use; the 4 anchors drawn first stay clean)") in window.log.toPlainText()
    # a plain folder has no test split: the ASR cannot be measured, and a box says so (only the Log did; a newcomer)
    box = window.last_message_box
    assert box is not None and "No attack success rate" in box.windowTitle() and "--test-dataset" in box.text()


def test_a_trusted_set_missing_a_class_fails_with_the_file_named(qtbot, window, tmp_path):
    data = _image_folder(tmp_path / "data")
    ids = tmp_path / "clean_ids.txt"
    ids.write_text("0\n1\n")  # both of class 0
    job = window.new_workspace(tmp_path / "ws", data, anchors=f"ids:@{ids}")
    qtbot.waitSignal(job.finished, timeout=30000).wait()
    assert job.state is JobState.FAILED
    box = window.last_message_box
    assert str(ids) in box.text() and "no anchor for class 1" in box.text() and box.detailedText() == ""
    assert window.workspace_path is None  # nothing opened, and nothing left behind to refuse the next try
    assert not (tmp_path / "ws").exists() or not any((tmp_path / "ws").iterdir())
    box.close()


def test_a_failed_create_keeps_the_dialog_open_with_what_was_typed(qtbot, window, tmp_path):
    """A newcomer pointed the dialog at a folder of text files: the error was clear, but the dialog had closed and
    every field had to be typed again. It stays open now, says the failure, and Create works once it is fixed."""
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not an image")
    dialog = window.new_workspace_dialog()
    dialog.dataset.setText(str(junk))
    dialog.folder.setText(str(tmp_path / "ws"))
    dialog.per_class.setValue(2)
    started = []
    window.jobs.job_started.connect(started.append)
    dialog.ok_button.click()
    job = next(j for j in started if j.name.startswith("Create workspace"))
    qtbot.waitUntil(lambda: not job.running, timeout=30000)
    qtbot.waitUntil(lambda: dialog.ok_button.isEnabled(), timeout=5000)
    assert dialog.isVisible() and "failed" in dialog.error_label.text() and str(junk) in dialog.error_label.text()
    assert dialog.folder.text() == str(tmp_path / "ws") and dialog.per_class.value() == 2
    box = getattr(window, "last_message_box", None)
    assert box is None or not box.isVisible()  # said once, in the dialog

    dialog.dataset.setText(str(_image_folder(tmp_path / "data")))
    dialog.ok_button.click()
    job = [j for j in started if j.name.startswith("Create workspace")][-1]
    _finish(qtbot, job)
    qtbot.waitUntil(lambda: window.workspace_path == tmp_path / "ws", timeout=10000)
    from shiboken6 import isValid  # closed, the dialog deletes itself (WA_DeleteOnClose): maybe before this looks

    qtbot.waitUntil(lambda: not isValid(dialog) or not dialog.isVisible(), timeout=5000)


def test_tab_goes_from_the_dataset_to_the_workspace_folder(qtbot, tmp_path):
    """Tab from Dataset landed on its Folder… button and the path typed next went nowhere (a newcomer, session 25):
    the fields come first in the Tab order, the browse buttons after them."""
    from PySide6.QtCore import Qt

    dialog = _dialog(qtbot)
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.dataset.setFocus()
    qtbot.keyClick(dialog.dataset, Qt.Key.Key_Tab)
    assert dialog.focusWidget() is dialog.folder
    qtbot.keyClicks(dialog.folder, str(tmp_path / "ws"))
    assert dialog.folder.text() == str(tmp_path / "ws")


def test_create_stays_put_as_the_last_hint_goes(qtbot, tmp_path):
    """Fixed to its content, the dialog shrank as the red hints went and Create moved up under the pointer: a
    newcomer's click missed it (session 33)."""
    from naviewer.gui.new_workspace_dialog import NewWorkspaceDialog

    dialog = NewWorkspaceDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.error_label.text() and not dialog.ok_button.isEnabled()
    before = dialog.ok_button.mapTo(dialog, dialog.ok_button.rect().topLeft())
    (tmp_path / "data" / "a").mkdir(parents=True)
    dialog.dataset.setText(str(tmp_path / "data"))
    dialog.folder.setText(str(tmp_path / "ws"))
    qtbot.waitUntil(lambda: dialog.ok_button.isEnabled(), timeout=3000)
    qtbot.wait(50)
    assert dialog.error_label.text() == ""
    assert dialog.ok_button.mapTo(dialog, dialog.ok_button.rect().topLeft()) == before
