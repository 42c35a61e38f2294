"""Run ▸ Measure a trigger's ASR…: the attack success rate of a trigger image of the user's own on an encoder.

Why: with their own data a newcomer found a colour patch in the tiles and confirmed 80 poisons, but the window had no
way to say whether that patch had formed a backdoor (the monitor measures naviewer's own attacks only; session 32).
The measurement itself is :func:`naviewer.workflows.trigger_asr.measure_trigger_asr`, run as a job by the window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)


class TriggerAsrDialog(QDialog):
    """The encoder, the trigger image and its size, the target class and a labelled test folder; ``values()``."""

    def __init__(self, parent: Optional[QWidget] = None, *, checkpoint: Optional[Path] = None,
                 class_names: Sequence[str] = (), image_size: Optional[int] = None,
                 choices: Sequence[tuple[Path, str]] = ()) -> None:
        """``choices``: the workspace's checkpoints and what each is (the Detect dialog's list): the newest, a
        retrain without the poisons, is seldom the encoder to measure."""
        super().__init__(parent)
        self.setWindowTitle("Measure a trigger's ASR")
        self.image_size = image_size
        intro = QLabel("How often the encoder sends a test image carrying your trigger to the target class (kNN "
                       "over the workspace's labelled images). A backdoor formed when it is high, and far above an "
                       "encoder trained without the suspect images (Train ▸ Leave out).")
        intro.setWordWrap(True)
        intro.setObjectName("hintLabel")
        self.checkpoint_box = QComboBox()
        self.checkpoint_box.setEditable(True)
        for path, what in choices:
            self.checkpoint_box.addItem(f"{path}", str(path))
            self.checkpoint_box.setItemData(self.checkpoint_box.count() - 1, what, Qt.ItemDataRole.ToolTipRole)
        self.checkpoint = self.checkpoint_box.lineEdit()
        self.checkpoint.setText(str(checkpoint) if checkpoint else "")
        self.checkpoint_box.setToolTip("the encoder to measure: a checkpoint of this workspace (each one's tooltip says "
                                       "what it is); the encoder trained on the suspect images is the one to measure")
        self.checkpoint_words = QLabel("")
        self.checkpoint_words.setObjectName("hintLabel")
        self.checkpoint_words.setWordWrap(True)
        self._choices = {str(path): what for path, what in choices}
        self.checkpoint.textChanged.connect(lambda text: self.checkpoint_words.setText(self._choices.get(text.strip(), "")))
        self.checkpoint_words.setText(self._choices.get(self.checkpoint.text().strip(), ""))
        self._trigger_problem: Optional[str] = None
        self.trigger = QLineEdit()
        self.trigger.setPlaceholderText("an image of the trigger (PNG), e.g. cut from a suspect image")
        self.trigger.textChanged.connect(self._trigger_changed)
        self.size = QSpinBox()
        self.size.setRange(1, 1024)
        self.size.setValue(4)
        self.size.setSuffix(" px")
        self.size.setToolTip("the trigger's side as pasted on each test image")
        self.target = QComboBox()
        for index, name in enumerate(class_names):
            self.target.addItem(f"{index}: {name}", index)
        self.target.setToolTip("the class the backdoor sends triggered images to (where the suspect images sit)")
        self.test = QLineEdit()
        self.test.setPlaceholderText("a folder of labelled test images, one subfolder a class as in the workspace")
        form = QFormLayout()
        form.addRow("Encoder checkpoint", self._with_browse(self.checkpoint_box, "file", "Checkpoints (*.pt *.pth)",
                                                            self.checkpoint))
        form.addRow("", self.checkpoint_words)
        form.addRow("Trigger image", self._with_browse(self.trigger, "file", "Images (*.png *.jpg *.jpeg *.bmp *.webp)"))
        form.addRow("Trigger size", self.size)
        form.addRow("Target class", self.target)
        form.addRow("Test images", self._with_browse(self.test, "folder"))
        self.error = QLabel("")
        self.error.setObjectName("errorLabel")
        self.error.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.ok = self.buttons.addButton("Measure", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        for edit in (self.checkpoint, self.trigger, self.test):
            edit.textChanged.connect(self._check)
        self._check()
        self.resize(620, self.sizeHint().height())

    def _with_browse(self, field: QWidget, kind: str, pattern: str = "", edit: Optional[QLineEdit] = None) -> QWidget:
        edit = edit if edit is not None else field  # type: ignore[assignment]
        row = QWidget()
        box = QHBoxLayout(row)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(field, 1)
        button = QPushButton("Browse…")

        def browse() -> None:
            start = edit.text() or str(Path.home())
            chosen = (QFileDialog.getExistingDirectory(self, "Test images", start) if kind == "folder"
                      else QFileDialog.getOpenFileName(self, "Choose a file", start, pattern)[0])
            if chosen:
                edit.setText(chosen)

        button.clicked.connect(browse)
        box.addWidget(button)
        return row

    def _trigger_changed(self, text: str) -> None:
        self._trigger_problem = None
        text = text.strip()  # (a path with trailing spaces skipped the check; a review)
        if text and Path(text).is_file():
            from naviewer.errors import NaviewerError
            from naviewer.workflows.trigger_asr import default_trigger_size, trigger_side

            # said here, the Measure button waiting: a bomb's header raised an unexpected-error box, a text file
            # closed the dialog and its filled form with it (a GUI probe, session 33)
            try:
                side = trigger_side(text)
            except NaviewerError as exc:
                self._trigger_problem = str(exc)
            else:
                self.size.setValue(default_trigger_size(side, self.image_size))

    def problems(self) -> list[str]:
        """What stops the measurement, in words (the Measure button waits for none)."""
        out = []
        for edit, what, folder in ((self.checkpoint, "the encoder checkpoint", False),
                                   (self.trigger, "the trigger image", False), (self.test, "the test folder", True)):
            text = edit.text().strip()
            if not text:
                out.append(f"choose {what}")
            elif not (Path(text).is_dir() if folder else Path(text).is_file()):
                out.append(f"{what} is not {'a folder' if folder else 'a file'}: {text}")
            elif edit is self.trigger and self._trigger_problem:  # in the fields' order: said before the test folder
                out.append(f"the trigger image cannot be read: {self._trigger_problem}")
        if self.target.count() == 0:
            out.append("the workspace has no classes: the ASR needs labelled images")
        return out

    def _check(self) -> None:
        problems = self.problems()
        self.error.setText("; ".join(problems[:1]) if any(e.text() for e in (self.checkpoint, self.trigger, self.test))
                           else "")
        self.ok.setEnabled(not problems)

    def set_values(self, values: dict[str, Any]) -> None:
        """The form as :meth:`values` left it (the window passes the last measurement's, so a failed one, e.g. a test
        folder of other classes, is mended without typing every field again: a GUI probe, session 33)."""
        if values.get("checkpoint"):
            self.checkpoint.setText(str(values["checkpoint"]))
        if values.get("trigger"):
            self.trigger.setText(str(values["trigger"]))
        if values.get("trigger_size"):
            self.size.setValue(int(values["trigger_size"]))
        index = self.target.findData(values.get("target"))
        if index >= 0:
            self.target.setCurrentIndex(index)
        if values.get("test_dataset"):
            self.test.setText(str(values["test_dataset"]))

    def values(self) -> dict[str, Any]:
        return {"checkpoint": Path(self.checkpoint.text().strip()), "trigger": Path(self.trigger.text().strip()),
                "trigger_size": int(self.size.value()), "target": int(self.target.currentData() or 0),
                "test_dataset": Path(self.test.text().strip())}
