"""The Detect dialog: the encoder checkpoint and which detectors run beside DIFT, each as its own pass.

Why a dialog: Run ▸ Detect (post-hoc) used to start DIFT as soon as a file was picked, with no word of what would
run. Now the encoder and the detectors are chosen first (nothing ticked: DIFT alone, as ``naviewer detect WS
--checkpoint C`` does); the field's other detectors (``--detector NAME``) are what the Analyst panel compares side by side, and a
person without the command line had no way to run them. The names and one-line summaries come from
:mod:`naviewer.catalogue` (torch-free), the same list ``naviewer detect --help`` prints.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Optional

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from naviewer.catalogue import DETECTOR_NAMES, DETECTOR_SUMMARIES
from naviewer.errors import NaviewerError
from naviewer.io import NPY_READ_ERRORS, npy_error_words, json_loads
from naviewer.workspace.runs import REVIEW_CHECKPOINT

#: detectors that embed images again through the encoder: minutes, not seconds, on a CPU
SLOW_DETECTORS = ("crop_density", "patchsearch")
#: ticked when the dialog first opens: the cheap density detectors
DEFAULT_DETECTORS = ("kdist", "lid")


def workspace_checkpoints(folder: Optional[Path]) -> list[tuple[Path, str]]:
    """``(checkpoints/RUN/last.pt, what it is)`` of the workspace whose ``checkpoints/`` is ``folder`` (or the
    workspace itself), from each run's state file: cheap (no checkpoint is loaded)."""
    if folder is None:
        return []
    folder = Path(folder)
    root = folder.parent if folder.name == "checkpoints" else folder
    out = []
    found = sorted((root / "checkpoints").glob("*/last.pt")) if (root / "checkpoints").is_dir() else []
    for path in found:
        run = path.parent.name
        kept = path.with_name(REVIEW_CHECKPOINT)  # the encoder DIFT flagged with, before the review's fine-tune / retrain
        if kept.is_file():
            out.append((kept, "the encoder DIFT flagged with (kept when the review's fine-tune / retrain started)"))
        try:
            state = json_loads((root / "runs" / run / "dift_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = {}
        status = str(state.get("status") or "")
        mode = ((state.get("finetune") or {}).get("restart_mode") if isinstance(state.get("finetune"), dict) else None)
        if status == "awaiting_review":
            words = "stopped for the review of its flags: the encoder DIFT flagged with"
        elif status == "finished" and mode == "retrain":
            words = "retrained WITHOUT the confirmed poisons: a clean encoder, which should flag little"
        elif status == "restarted" and state.get("finetune"):
            words = ("in its fine-tune / retrain after the review, not finished: half-trained (when stopped, Run ▸ "
                     "Resume interrupted run goes on with it)")
        elif status == "finished" and state.get("finetune"):
            words = "fine-tuned on the confirmed poisons and trained on: the encoder after the defense"
        elif status in ("detecting", "training"):
            words = "stopped while training (Run ▸ Resume interrupted run goes on with it)"
        elif status:
            words = f"run {run}, {status}"
        elif run == "floor":
            words = "the no-poison floor: the same recipe trained on the clean set"
        else:
            from naviewer.workspace.runs import being_trained, training_ended

            ended = training_ended(root / "runs" / run / "metrics.jsonl")
            if being_trained(SimpleNamespace(path=root), run):  # offered without a word at epoch 19 of 60 (a newcomer)
                words = f"run {run}, STILL TRAINING: its last.pt is half-trained"
            elif ended is False:
                words = f"run {run}, stopped before its end: half-trained (Run ▸ Resume interrupted run goes on with it)"
            else:
                words = f"run {run} (trained without DIFT, or by another tool)"
        out.append((path, words))
    return out


def detector_unfit(name: str, samples: Optional[int]) -> str:
    """Why detector ``name`` cannot run on a workspace of ``samples`` samples with its default settings ("" when
    it can, or when the count is unknown): a box ticked by default that Detect then refuses is a dead end."""
    if not samples:
        return ""
    from naviewer.defense.detectors import make_detector

    try:
        make_detector(name).check_inputs(None, int(samples))
    except NaviewerError as exc:
        text = str(exc)
        return text.split(": give --detector-set")[0].replace(f"detector {name}: ", "")
    except Exception:  # noqa: BLE001 - a detector that cannot even be made is refused by the run itself
        return ""
    return ""


class DetectDialog(QDialog):
    """Choose the checkpoint and the detectors; accepting it runs the detection (the main window's job)."""

    def __init__(self, parent: Optional[QWidget] = None, checkpoint: Optional[Path] = None,
                 start_dir: Optional[Path] = None, chosen: tuple[str, ...] = DEFAULT_DETECTORS,
                 missing: str = "", samples: Optional[int] = None) -> None:
        super().__init__(parent)
        #: the workspace's own encoder when it is gone (said with "Choose the encoder checkpoint.")
        self.missing = missing
        self.setWindowTitle("Detect (post-hoc)")
        self.start_dir = start_dir
        layout = QVBoxLayout(self)
        intro = QLabel("DIFT always runs, with the workspace's [dift] settings (workspace.toml). Each detector ticked below runs on the same embeddings and is saved as a "
                       "pass of its own; the Analyst panel shows every one side by side (inspector, gallery sort, "
                       "map colours).")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.checkpoint_edit, self.browse_button = self._file_field(
            layout, "Encoder checkpoint:", str(checkpoint) if checkpoint else "",
            "a .pt file (naviewer run, or a foreign SSL checkpoint)",
            "Detect (post-hoc): choose the encoder checkpoint", "PyTorch checkpoints (*.pt *.pth);;All files (*)")
        # the workspace's own checkpoints, each said in a few words: a newcomer detected with demo/last.pt, the
        # encoder AFTER the demo's remove-and-retrain, got "no poison detected" and nothing said why
        self.known = QComboBox()
        self.known.addItem("or one of the workspace's checkpoints…", None)
        #: what each workspace checkpoint is, read once (the state files were read again at every keystroke)
        self.checkpoint_words = {str(path): words for path, words in workspace_checkpoints(start_dir)}
        for key, words in self.checkpoint_words.items():
            path = Path(key)
            self.known.addItem(f"{path.parent.name}/{path.name}: {words}", key)
        self.known.setVisible(self.known.count() > 1)
        self.known.currentIndexChanged.connect(
            lambda _i: self.known.currentData() and self.checkpoint_edit.setText(self.known.currentData()))
        layout.addWidget(self.known)
        self.described = QLabel("")
        self.described.setObjectName("hintLabel")
        self.described.setWordWrap(True)
        layout.addWidget(self.described)
        # features computed already (naviewer embed on a GPU machine, sharded): the window could only embed here,
        # the command line's --embeddings had no counterpart (seen, session 33)
        self.embeddings_edit, self.embeddings_browse = self._file_field(
            layout, "Embeddings (optional):", "", "empty: embedded here; or its features made already (.npy)",
            "Detect (post-hoc): choose the precomputed embeddings", "NumPy arrays (*.npy);;All files (*)")
        self.embeddings_edit.setToolTip("as naviewer detect --embeddings FILE: row i = workspace sample i, made by "
                                        "this checkpoint's encoder (e.g. naviewer embed on a GPU machine); checked "
                                        "(shape, rows, finite values, a few samples embedded here against their rows) "
                                        "and taken into the workspace instead of embedding every image again")
        self.samples = samples
        grid = QGridLayout()
        self.boxes: dict[str, QCheckBox] = {}
        for i, name in enumerate(d for d in DETECTOR_NAMES if d != "dift"):
            box = QCheckBox(name + (" (slow: embeds images again)" if name in SLOW_DETECTORS else ""))
            box.setChecked(name in chosen)
            box.setToolTip(DETECTOR_SUMMARIES[name])
            line = QLabel(DETECTOR_SUMMARIES[name])
            line.setWordWrap(True)
            unfit = detector_unfit(name, samples)
            if unfit:  # lid's 64 neighbours on 58 images: ticked by default, then refused naming a terminal option
                box.setChecked(False)
                box.setEnabled(False)
                line.setEnabled(False)  # greyed with its box (the box alone read as still on offer)
                summary = DETECTOR_SUMMARIES[name].rstrip()
                line.setText(f"{summary}{'' if summary.endswith('.') else '.'} Not here: {unfit}.")
            grid.addWidget(box, i, 0)
            grid.addWidget(line, i, 1)
            self.boxes[name] = box
        grid.setColumnStretch(1, 1)
        layout.addLayout(grid)
        self.problem = QLabel("")
        self.problem.setWordWrap(True)
        self.problem.setObjectName("errorLabel")  # the theme's red: a fixed dark red was dim on the dark theme
        layout.addWidget(self.problem)
        layout.addStretch(1)  # spare height below the words, not between the field and the detectors
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Detect")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.resize(720, self.sizeHint().height())
        self._validate()

    def checkpoint(self) -> Path:
        return Path(self.checkpoint_edit.text().strip()).expanduser()

    def embeddings(self) -> Optional[Path]:
        """The precomputed features chosen, or None: embed here."""
        text = self.embeddings_edit.text().strip()
        return Path(text).expanduser() if text else None

    def detectors(self) -> tuple[str, ...]:
        return tuple(name for name, box in self.boxes.items() if box.isChecked())

    def _file_field(self, layout: QVBoxLayout, label: str, text: str, placeholder: str, title: str,
                    filters: str) -> tuple[QLineEdit, QPushButton]:
        """A labelled path field with its Browse… button (a row of ``layout``), checked as it is typed."""
        row = QHBoxLayout()
        row.addWidget(QLabel(label))
        edit = QLineEdit(text)
        edit.setPlaceholderText(placeholder)
        edit.textChanged.connect(self._validate)
        row.addWidget(edit, 1)
        button = QPushButton("Browse…")
        button.clicked.connect(lambda _checked=False: self._choose_file(edit, title, filters))
        row.addWidget(button)
        layout.addLayout(row)
        return edit, button

    def _choose_file(self, edit: QLineEdit, title: str, filters: str) -> None:
        """A file chooser starting beside the field's file (else the workspace's checkpoints); the choice fills it."""
        typed = edit.text().strip()
        start = str(Path(typed).expanduser().parent if typed else (self.start_dir or ""))
        chosen, _ = QFileDialog.getOpenFileName(self, title, start, filters)
        if chosen:
            edit.setText(chosen)

    def _validate(self) -> None:
        text = self.checkpoint_edit.text().strip()
        words = self.checkpoint_words.get(str(self.checkpoint()))
        self.described.setText(f"This checkpoint: {words}." if words else "")
        self.described.setVisible(bool(words))  # empty, it took the dialog's spare height as a gap under the field
        try:
            is_file = bool(text) and self.checkpoint().is_file()
        except OSError:  # a folder it cannot look into: is_file raises; said by _unreadable
            is_file = True
        problem = _unreadable(self.checkpoint()) if is_file else (
            ("Choose the encoder checkpoint." + (f" The reviewed pass's encoder is gone: {self.missing}."
                                                  if self.missing else "")) if not text else _not_a_checkpoint(self.checkpoint(), text))
        if not problem and self.embeddings() is not None:
            problem = embeddings_problem(self.embeddings(), self.samples)
        self.problem.setText(problem)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not problem)


def embeddings_problem(path: Path, samples: Optional[int]) -> str:
    """Why ``path`` plainly cannot be the workspace's embeddings, from its .npy header ("" when it may be): said in
    the dialog before a job embeds the anchors and then fails. The job checks the values (finite, the checkpoint's)."""
    import numpy as np

    from naviewer.io import describe_os_error, not_npy_reason

    try:
        if not path.is_file():
            return _not_a_checkpoint(path, str(path)).replace("checkpoint file", "embeddings file")
        kind = not_npy_reason(path)
    except OSError as exc:  # a folder it cannot look into: is_file raises (a review, session 34)
        return f"Cannot read {path.name}: {describe_os_error(exc)}."
    if kind is not None:
        return f"Not embeddings: {kind} ({path.name})."
    try:  # the header alone: nothing mapped or held open at each keystroke
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _fortran, _dtype = reader(handle)
    except NPY_READ_ERRORS as exc:
        return f"Not a readable .npy file: {path.name} ({npy_error_words(exc)})."
    shape = tuple(shape)
    if any(int(d) < 0 for d in shape):  # (np.load would refuse it; the header alone does not)
        return f"Not a readable .npy file: {path.name} (its header gives an impossible shape {shape})."
    if len(shape) != 2 or shape[1] < 1:
        return f"Embeddings must be a 2-D (samples, dims) array; {path.name} has shape {shape}."
    if samples is not None and shape[0] != samples:
        return f"{path.name} has {shape[0]:,} rows; the workspace has {samples:,} samples (row i = sample i)."
    return ""


def _unreadable(path: Path) -> str:
    """Why an existing file is plainly no checkpoint, from its first bytes ("" when it may be one): a text file
    typed in started a job that then failed (a newcomer, session 30)."""
    from naviewer.io import sniff_checkpoint

    problem = sniff_checkpoint(path, read_through=False)
    return f"Not a readable checkpoint: {problem}." if problem else ""


def _not_a_checkpoint(path: Path, text: str) -> str:
    """Why the typed path is no checkpoint file: "No such file" was said for a pipe and a folder that exist (a sweep,
    session 24)."""
    try:
        if path.is_dir():
            return f"A folder, not a checkpoint file: {text}"
        if path.exists():
            return f"Not a regular file (a pipe or device): {text}"
    except (OSError, ValueError):
        pass
    return f"No such file: {text}"
