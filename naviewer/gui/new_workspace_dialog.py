"""File ▸ New workspace…: the dataset, the folder, DIFT's anchors, and (to study a defence) an attack.

What ``naviewer new WS --dataset D [--anchors SPEC] [--attack A --test-protocol P]`` takes, checked as
you type. The anchors choice is where the trust question is asked: by default they are drawn from
the dataset's own labels, which are **not trusted** (the warning stays in view while that is the
choice), or a trusted labelled dataset / a file of known-clean sample ids or source keys is named
(``anchors=`` of :func:`naviewer.workflows.workspace_setup.create_workspace`, checked by the core
when the job runs: a class without an anchor is refused with the file named). With an attack the
dataset is the clean set, the anchors are drawn from it before poisoning (trusted), and the
test-time protocol (how ASR pastes the trigger on test images) is one of the attack's
``test_protocols``.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any, Callable, Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from naviewer.data.sources import inside_dataset_folder, is_builtin
from naviewer.gui.anchors_view import NOTICE_STYLE, TRUSTED_STYLE, spec_for

#: attack registry names -> what a person reads
ATTACK_LABELS = {
    "na": "Noisy Alignment (na)",
    "patch": "SSL-Backdoor patch (patch)",
    "ctrl": "CTRL (ctrl)",
    "corruptencoder": "CorruptEncoder (corruptencoder)",
}
#: the anchors choices: key -> (text without an attack, text with one); "default" passes no spec
ANCHOR_CHOICES = (
    ("default", "Draw them from the dataset's labels — NOT trusted",
     "Draw them from the clean set before poisoning — trusted (the attack never sees them)"),
    ("dataset", "A trusted labelled dataset (image folder, file list or CSV of images known to be clean)",
     "A trusted labelled dataset (image folder, file list or CSV of images known to be clean)"),
    ("ids", "Known-clean sample ids of this dataset (a text file, one id a line)",
     "Known-clean sample ids of the crafted set (a text file, one id a line)"),
    ("keys", "Known-clean source keys of this dataset (a text file, one key a line)",
     "Known-clean source keys of the crafted set (a text file, one key a line)"),
    ("labels", None, "The crafted set's own labels — NOT trusted (as an analyst without a trusted set)"),
)
UNTRUSTED_WARNING = ("DIFT's anchors would be drawn from this dataset's own labels, which an attack controls: a "
                     "poisoned anchor can hide every poison. Name a trusted clean set if you have one; otherwise "
                     "every output (the analyst panel, the report, provenance.json) says the anchors were not "
                     "trusted, and you can replace them later (Workspace ▸ Anchors…).")
TRUSTED_NOTE = {
    "default": "Anchors drawn from the clean set before naviewer crafts the attack: no anchor is poisoned.",
    "dataset": "Trusted: per class, this many images are drawn from the set and embedded with the same encoder "
               "every time DIFT runs (they need not be in the training set). Every class needs at least one.",
    "ids": "Trusted: the samples you name are DIFT's anchors. Every class needs at least one.",
    "keys": "Trusted: the samples you name are DIFT's anchors. Every class needs at least one.",
}


def _row(*widgets: QWidget) -> QWidget:
    holder = QWidget()
    line = QHBoxLayout(holder)
    line.setContentsMargins(0, 0, 0, 0)
    for i, widget in enumerate(widgets):
        line.addWidget(widget, 1 if i == 0 else 0)
    return holder



def _probe(text: str, check: Callable[[Path], bool]) -> tuple[bool, str]:
    """``check`` on the path typed (``~`` expanded), or the reason it cannot be asked: a folder that cannot be
    listed, a name too long, a NUL, ``~nobody/`` raised on every keystroke, and Create then did nothing (a GUI
    bad-input sweep)."""
    if "\x00" in text:  # pathlib answers "does not exist" for it, and the create then failed on it
        return False, "holds a character no file name can (a NUL)"
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # "Could not determine home directory": ~name of no user
        return False, f"names the home folder of a user this system does not know ({text.split('/')[0]})"
    try:
        return bool(check(path)), ""
    except OSError as exc:
        from naviewer.io import describe_os_error

        reason = "a name in it is too long for the file system" if exc.errno == errno.ENAMETOOLONG else \
            describe_os_error(exc)
        return False, f"cannot be read ({reason})"
    except ValueError:  # "embedded null byte"
        return False, "holds a character no file name can (a NUL)"

class NewWorkspaceDialog(QDialog):
    """``NewWorkspaceDialog(parent=None, dataset=None, folder=None)``; :meth:`values` gives the keyword
    arguments of ``MainWindow.new_workspace`` once accepted (OK stays disabled until they are valid)."""

    def __init__(self, parent: Optional[QWidget] = None, dataset: "Optional[str | Path]" = None,
                 folder: "Optional[str | Path]" = None) -> None:
        super().__init__(parent)
        self._hint_room = 0  # the red hints' height once shown, kept while the form's rows stay (_revalidate)
        self.setObjectName("newWorkspaceDialog")
        self.setWindowTitle("New workspace")
        self.setMinimumWidth(620)
        self.errors: dict[str, str] = {}

        self.dataset = QLineEdit("" if dataset is None else str(dataset))
        self.dataset.setPlaceholderText("a folder (CIFAR batches or one folder a class), a file list, a CSV, or demo")
        dataset_folder, dataset_file = QPushButton("Folder…"), QPushButton("File…")
        dataset_folder.clicked.connect(lambda _c=False: self._browse(self.dataset, folder=True,
                                                                      title="The dataset: a folder"))
        dataset_file.clicked.connect(lambda _c=False: self._browse(self.dataset, folder=False,
                                                                    title="The dataset: a file list or CSV manifest"))
        self.folder = QLineEdit("" if folder is None else str(folder))
        self.folder.setPlaceholderText("a new or empty folder")
        folder_button = QPushButton("Choose…")
        folder_button.clicked.connect(lambda _c=False: self._browse(self.folder, folder=True,
                                                                     title="New workspace: an empty folder"))

        self.attack = QComboBox()
        self.attack.addItem("none: inspect this dataset for poisons", "")
        for name, label in ATTACK_LABELS.items():
            self.attack.addItem(f"craft {label} into it (the dataset is the clean set)", name)
        self.attack.setToolTip("to study a defence: naviewer crafts the poisons and records the ground truth apart "
                               "from detection (naviewer new --attack)")
        self.rate = QLineEdit()
        self.rate.setPlaceholderText("attack default (5 %)")
        self.rate.setToolTip("the share of the training set that is poisoned, e.g. 0.05 or 5 %")
        # what the number is read as, beside it: "10" took 10 % and said nothing of it (a newcomer, session 27), and
        # "0.5" reads as 50 %, not half a percent
        self.rate_echo = QLabel("")
        self.rate_echo.setObjectName("hintLabel")
        self.rate.textChanged.connect(lambda _t: self._say_rate())
        self.target = QSpinBox()
        self.target.setRange(0, 100000)
        self.target.setToolTip("the target class the poisons pull towards")
        self.target_name = QLabel("")  # "= airplane": the number's class, where the dataset's names can be read
        self.target_name.setObjectName("hintLabel")
        self._class_names: Optional[list[str]] = None
        self._peeked: Optional[str] = None
        self.target.valueChanged.connect(lambda _v: self._say_target())
        self.protocol = QComboBox()
        self.protocol.setToolTip("how ASR pastes the trigger on clean test images (the attack's test-time protocols)")
        self.protocol_text = QLabel()
        self.protocol_text.setObjectName("hintLabel")
        self.protocol_text.setWordWrap(True)
        self.attack_box = QWidget()
        attack_form = QFormLayout(self.attack_box)
        attack_form.setContentsMargins(0, 0, 0, 0)
        attack_form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        attack_form.addRow("Poison rate", _row(self.rate, self.rate_echo))
        attack_form.addRow("Target class", _row(self.target, self.target_name))
        attack_form.addRow("ASR test-time protocol", self.protocol)
        attack_form.addRow(self.protocol_text)  # spans both columns, under the combo
        # said before Create: a newcomer learnt only after it that a folder without a test split gives no ASR
        self.test_note = QLabel("This dataset has no test split, so the attack success rate (ASR) cannot be "
                                "measured; detection works as before. A folder with train/ and test/ folders, or "
                                "CIFAR batches, has one.")
        self.test_note.setObjectName("warningLabel")
        self.test_note.setWordWrap(True)
        self.test_note.hide()
        self._has_test: Optional[bool] = None
        attack_form.addRow(self.test_note)

        self.anchor_group = QButtonGroup(self)
        self.anchor_radios: dict[str, QRadioButton] = {}
        anchors_box = QGroupBox("DIFT's anchors (a few clean labelled samples per class)")
        anchors_layout = QVBoxLayout(anchors_box)
        for i, (key, _plain, _attacked) in enumerate(ANCHOR_CHOICES):
            radio = QRadioButton()
            self.anchor_group.addButton(radio, i)
            self.anchor_radios[key] = radio
            anchors_layout.addWidget(radio)
        self.anchor_radios["default"].setChecked(True)
        self.anchor_path = QLineEdit()
        self.anchor_path.setPlaceholderText("the trusted set or the file of ids / keys")
        self.anchor_browse_folder, self.anchor_browse_file = QPushButton("Folder…"), QPushButton("File…")
        self.anchor_browse_folder.clicked.connect(lambda _c=False: self._browse(self.anchor_path, folder=True,
                                                                                 title="Trusted anchors: a folder of "
                                                                                       "known-clean images"))
        self.anchor_browse_file.clicked.connect(lambda _c=False: self._browse(self.anchor_path, folder=False,
                                                                               title="Trusted anchors: a file"))
        self.anchor_path_row = _row(self.anchor_path, self.anchor_browse_folder, self.anchor_browse_file)
        anchors_layout.addWidget(self.anchor_path_row)
        self.per_class = QSpinBox()
        self.per_class.setRange(1, 10000)
        self.per_class.setValue(10)
        self.per_class.setToolTip("anchors a class, drawn from the labels or from a trusted dataset "
                                  "(ids and keys files are taken whole)")
        per_class_row = QWidget()
        per_line = QHBoxLayout(per_class_row)
        per_line.setContentsMargins(0, 0, 0, 0)
        per_line.addWidget(QLabel("Anchors a class:"))
        per_line.addWidget(self.per_class)
        per_line.addStretch(1)
        anchors_layout.addWidget(per_class_row)
        self.anchor_warning = QLabel(UNTRUSTED_WARNING)
        self.anchor_warning.setObjectName("untrustedAnchorsWarning")
        self.anchor_warning.setWordWrap(True)
        self.anchor_warning.setStyleSheet(NOTICE_STYLE)
        self.anchor_note = QLabel()
        self.anchor_note.setWordWrap(True)
        self.anchor_note.setStyleSheet(TRUSTED_STYLE)
        anchors_layout.addWidget(self.anchor_warning)
        anchors_layout.addWidget(self.anchor_note)

        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("Dataset", _row(self.dataset, dataset_folder, dataset_file))
        form.addRow("Workspace folder", _row(self.folder, folder_button))
        form.addRow("Attack", self.attack)
        self.error_label = QLabel()
        self.error_label.setObjectName("errorLabel")
        self.error_label.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        # the dialog follows what is shown (attack rows, the anchors' path, the warning) instead of
        # squeezing or spacing it
        layout.setSizeConstraint(QVBoxLayout.SizeConstraint.SetFixedSize)
        layout.addLayout(form)
        layout.addWidget(self.attack_box)
        layout.addWidget(anchors_box)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

        for edit in (self.dataset, self.folder, self.anchor_path, self.rate):
            edit.textChanged.connect(self._revalidate)
        self.attack.currentIndexChanged.connect(self._attack_changed)
        self.protocol.currentIndexChanged.connect(self._protocol_changed)
        self.anchor_group.idToggled.connect(lambda _id, on: on and self._revalidate())
        self._attack_changed()
        self._browse_buttons_last((dataset_folder, dataset_file, folder_button, self.anchor_browse_folder,
                                   self.anchor_browse_file))

    def _browse_buttons_last(self, browse: tuple) -> None:
        """Tab goes from field to field, the Folder… / File… / Choose… buttons after them: Tab from Dataset landed on
        its Folder… button, and the workspace path typed next went nowhere without a word (a newcomer, session 25)."""
        chain, widget = [], self.dataset
        while widget is not None and widget not in chain:
            chain.append(widget)
            widget = widget.nextInFocusChain()
        focusable = [w for w in chain if w.focusPolicy() & Qt.FocusPolicy.TabFocus and self.isAncestorOf(w)]
        order = [w for w in focusable if w not in browse] + [w for w in focusable if w in browse]
        for first, second in zip(order, order[1:]):
            QWidget.setTabOrder(first, second)

    @property
    def ok_button(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)

    # -- choices -----------------------------------------------------------------------------------
    def anchor_choice(self) -> str:
        return next(key for key, radio in self.anchor_radios.items() if radio.isChecked())

    def set_anchor_choice(self, key: str, path: "str | Path | None" = None) -> None:
        self.anchor_radios[key].setChecked(True)
        if path is not None:
            self.anchor_path.setText(str(path))
        self._revalidate()

    def _browse(self, edit: QLineEdit, folder: bool, title: str) -> None:
        start = edit.text().strip() or str(Path.home())
        if folder:
            chosen = QFileDialog.getExistingDirectory(self, title, start)
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, title, start, "File lists, CSV and text files "
                                                    "(*.txt *.csv *.lst);;All files (*)")
        if chosen:
            edit.setText(chosen)

    def _attack_changed(self, _index: int = 0) -> None:
        # the form's rows change here, so the buttons move anyway: the hints' kept room goes (kept, it pushed the
        # dialog with an attack's rows past a 720 px screen)
        self._hint_room = 0
        name = self.attack.currentData() or ""
        attacked = bool(name)
        for key, plain, with_attack in ANCHOR_CHOICES:
            radio = self.anchor_radios[key]
            text = with_attack if attacked else plain
            radio.setVisible(text is not None)
            radio.setText(text or "")
            if text is None and radio.isChecked():
                self.anchor_radios["default"].setChecked(True)
        self.protocol.blockSignals(True)
        self.protocol.clear()
        if attacked:
            from naviewer.attacks import make_attack

            attack = make_attack(name)
            self._protocols = dict(attack.test_protocols)
            for protocol in self._protocols:
                label = protocol + (" (the attack's default)" if protocol == attack.default_test_protocol else "")
                self.protocol.addItem(label, protocol)
            self.protocol.setCurrentIndex(max(0, self.protocol.findData(attack.default_test_protocol)))
            self.rate.setPlaceholderText(f"attack default ({100 * float(attack.settings.rate):g} %)")
        self.protocol.blockSignals(False)
        self.attack_box.setVisible(attacked)
        self._protocol_changed()
        self._revalidate()

    def _protocol_changed(self, _index: int = 0) -> None:
        protocol = self.protocol.currentData()
        self.protocol_text.setText(getattr(self, "_protocols", {}).get(protocol, "") if protocol else "")

    # -- checking ----------------------------------------------------------------------------------
    def _say_rate(self) -> None:
        rate, error = self._parse_rate()
        self.rate_echo.setText(f"= {100 * rate:.4g} % of the training set" if rate is not None and not error else "")

    def _parse_rate(self) -> tuple[Optional[float], Optional[str]]:
        text = self.rate.text().strip().replace(",", ".")
        if not text:
            return None, None
        percent = text.endswith("%")
        try:
            value = float(text.rstrip("%").strip())
        except ValueError:
            return None, f"Poison rate must be a number such as 0.05 or 5 %, not '{text}'."
        value = value / 100.0 if percent or value >= 1.0 else value
        if not 0.0 < value < 1.0:
            return None, "Poison rate must be above 0 and below 100 %."
        return value, None

    def _revalidate(self, *_args: Any) -> None:
        errors: dict[str, str] = {}
        dataset = self.dataset.text().strip()
        if not dataset:
            errors["dataset"] = "Choose the dataset."
        elif dataset.lower() != "demo":
            exists, problem = _probe(dataset, lambda p: p.exists())
            if problem or not exists:
                errors["dataset"] = f"{dataset}: {problem or 'no such file or folder'}."
        folder = self.folder.text().strip()
        if not folder:
            errors["folder"] = "Choose a folder for the workspace."
        else:
            taken, problem = _probe(folder, lambda p: p.exists() and (not p.is_dir() or any(p.iterdir())))
            if problem:
                errors["folder"] = f"{folder}: {problem}."
            elif taken:
                errors["folder"] = f"{folder}: the folder is not empty (a workspace needs a new or empty folder)."
            elif "dataset" not in errors and inside_dataset_folder(Path(folder).expanduser(), dataset):
                errors["folder"] = (f"{folder}: inside the dataset's own folder, where it would become one of its "
                                    "classes; put the workspace beside the dataset.")
        choice = self.anchor_choice()
        needs_path = choice in ("dataset", "ids", "keys")
        if needs_path:
            anchor_path = self.anchor_path.text().strip()
            if not anchor_path:
                errors["anchors"] = "Choose the trusted anchors' " + ("dataset." if choice == "dataset" else "file.")
            elif (found := _probe(anchor_path, lambda p: p.exists()))[1] or not found[0]:
                errors["anchors"] = f"{anchor_path}: {found[1] or 'no such file or folder'}."
            elif choice in ("ids", "keys") and not _probe(anchor_path, lambda p: p.is_file())[0]:
                errors["anchors"] = f"{anchor_path}: not a file (one {'id' if choice == 'ids' else 'key'} a line)."
        if dataset != self._peeked:  # a path that went wrong takes the names it had away with it
            from naviewer.data.sources import peek_class_names

            from naviewer.data.sources import has_split

            self._peeked = dataset
            self._class_names = None if "dataset" in errors else peek_class_names(dataset)
            try:
                self._has_test = None if "dataset" in errors else has_split(dataset, "test")
            except (OSError, ValueError):
                self._has_test = None
            self.target.setMaximum(len(self._class_names) - 1 if self._class_names else 100000)
            self._say_target()
        self.test_note.setVisible(bool(self.attack.currentData()) and self._has_test is False)
        if self.attack.currentData():
            _, error = self._parse_rate()
            if error:
                errors["rate"] = error
        self.errors = errors
        self.anchor_path_row.setVisible(needs_path)
        self.anchor_browse_folder.setVisible(choice == "dataset")
        untrusted = (choice == "default" and not self.attack.currentData()) or choice == "labels"
        self.anchor_warning.setVisible(untrusted)
        note = TRUSTED_NOTE.get(choice, "") if not untrusted else ""
        self.anchor_note.setText(note)
        self.anchor_note.setVisible(bool(note))
        self.error_label.setText("\n".join(errors.values()))
        # the hints' room is kept once shown (empty when they go): the dialog, fixed to its content, shrank as the
        # last hint went and Create moved up under the pointer, so a newcomer's click missed it (session 33)
        if errors:
            self._hint_room = max(self._hint_room, self.error_label.heightForWidth(max(1, self.error_label.width())))
        self.error_label.setMinimumHeight(0 if errors else self._hint_room)
        self.error_label.setVisible(bool(errors) or self._hint_room > 0)
        self.ok_button.setEnabled(not errors)

    def _say_target(self) -> None:
        names, value = self._class_names, int(self.target.value())
        self.target_name.setText(f"= {names[value]}" if names and 0 <= value < len(names) else "")

    def anchors_spec(self) -> Optional[str]:
        """The ``anchors=`` SPEC of the choice (None: the default, which passes none)."""
        choice = self.anchor_choice()
        if choice == "default":
            return None
        if choice == "labels":
            return "labels"
        path = str(Path(self.anchor_path.text().strip()).expanduser())
        return spec_for({"dataset": "folder"}.get(choice, choice), path)

    def values(self) -> dict[str, Any]:
        """Keyword arguments of ``MainWindow.new_workspace``."""
        attack = self.attack.currentData() or None
        values: dict[str, Any] = {
            "path": Path(self.folder.text().strip()).expanduser(),
            "dataset": self.dataset.text().strip() if is_builtin(self.dataset.text())
            else Path(self.dataset.text().strip()).expanduser(),
            "anchors": self.anchors_spec(), "anchors_per_class": int(self.per_class.value()),
        }
        if attack:
            rate, _ = self._parse_rate()
            values.update(attack=attack, test_protocol=self.protocol.currentData(),
                          attack_settings={"target": int(self.target.value()), **({"rate": rate} if rate else {})})
        return values

    #: ``creator(values) -> job or None``: when set (the main window's), Create runs it and the dialog stays open
    #: until the workspace exists; a failure is said here, with every field as typed. The dialog closed on Create
    #: before, and a newcomer whose folder held no images had to type the dataset, folder and anchors again.
    creator: Optional[Any] = None

    def accept(self) -> None:
        self._revalidate()
        if self.errors:
            return
        if self.creator is None:
            super().accept()
            return
        job = self.creator(self.values())
        if job is None:  # refused at once (a conflict, no dataset): the window said why
            return
        job.error_owner = self  # the window leaves the failure to this dialog while it is open
        self.ok_button.setEnabled(False)
        self.error_label.setText("Creating the workspace…")
        self.error_label.setVisible(True)
        self._job = job
        job.finished.connect(self._created)  # a bound slot: dropped by Qt if the dialog was closed meanwhile

    def _created(self, _state: Any = None) -> None:
        from naviewer.gui.jobs import JobState

        job = self._job
        if job.state is JobState.FINISHED:
            super().accept()
            return
        self._revalidate()  # the fields' own checks, and OK back
        said = "cancelled" if job.state is JobState.CANCELLED else f"failed: {job.error_message()}"
        self.error_label.setText(f"Creating the workspace {said}\nChange what it names and press Create again.")
        self.error_label.setVisible(True)
