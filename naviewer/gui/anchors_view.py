"""The Anchors view: where DIFT's anchors come from, whether they are trusted, and replacing them.

DIFT measures every dense pocket against a few labelled samples per class that it takes as clean
(its anchors). Drawn from the suspect set's own labels they are exactly what an attack controls,
so this view says where they came from (kind, source, trusted or not), how many each class has,
shows a few of them a class (in-set anchors from the workspace's dataset, trusted images outside
the training set from their own set) and lets a person replace them with a trusted set: a
labelled image folder, a file list or CSV of images known to be clean, or a file of known-clean
sample ids / source keys. It is ``naviewer anchors WS [SPEC]`` with pictures.

Reading and replacing run as jobs (:func:`naviewer.gui.tasks.anchor_overview`,
:func:`naviewer.gui.tasks.replace_anchors`); a bad choice (a class without an anchor, an id out of
range, a file that is not a dataset) fails its job with a message naming the file, shown in a
dialog and on the view, and the anchors stay as they were.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from naviewer.catalogue import SCREEN_DROP_WORDS
from naviewer.gui.flow_layout import FlowLayout

#: what each ``[anchors] kind`` means, for a person
KIND_TEXT = {
    "external": "a trusted labelled dataset outside the training set",
    "ids": "training samples named by id as known clean",
    "keys": "training samples named by source key as known clean",
    "clean-before-poisoning": "drawn from the clean set before naviewer crafted the attack",
    "labels": "drawn from the dataset's own labels",
}
#: the Replace menu: (key, text); ``choose(key)`` asks for the file and replaces
REPLACE_CHOICES = (
    ("folder", "Trusted image folder (one folder a class)…"),
    ("list", "Trusted file list or CSV manifest…"),
    ("ids", "Known-clean sample ids (a text file, one id a line)…"),
    ("keys", "Known-clean source keys (a text file, one key a line)…"),
    ("spec", "Type an anchor spec…"),
    ("labels", "Draw from the dataset's labels (NOT trusted)"),
)
THUMB_PX = 48

# both themes: the boxes carry their own text colour
NOTICE_STYLE = "background: #fdecea; color: #5f1212; border: 2px solid #d32f2f; border-radius: 3px; padding: 6px;"
WARNING_STYLE = "background: #fff8e1; color: #4a3b00; border: 1px solid #f9a825; border-radius: 3px; padding: 6px;"
TRUSTED_STYLE = "background: #e8f5e9; color: #123d16; border: 1px solid #388e3c; border-radius: 3px; padding: 6px;"


def spec_for(choice: str, path: "str | Path") -> str:
    """The ``--anchors`` SPEC for a file chosen under ``choice`` (a key of :data:`REPLACE_CHOICES`)."""
    text = str(path)
    if choice == "ids":
        return f"ids:@{text}"
    if choice == "keys":
        return f"keys:@{text}"
    head = text.split(":", 1)[0]
    return f"dataset:{text}" if head in ("ids", "keys", "dataset") or text.lower() == "labels" else text


def pixmap_of(image: np.ndarray, px: int = THUMB_PX) -> QPixmap:
    """A thumbnail pixmap: small images enlarged by a whole factor (pixels stay sharp), large ones fitted."""
    from naviewer.gui.analyst.common import qimage_from_array

    h, w = image.shape[:2]
    pixmap = QPixmap.fromImage(qimage_from_array(image))
    scale = max(1, px // max(h, w, 1))
    if max(h, w) > px:
        return pixmap.scaled(px, px, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    return pixmap.scaled(w * scale, h * scale, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)



def training_folder(workspace: Path) -> Optional[Path]:
    """The folder the workspace's training data lies in, from its workspace.toml ([dataset] root, else the list's
    folder), or None when it cannot be told. Read without opening the workspace (no lock, no torch)."""
    from naviewer.errors import NaviewerError
    from naviewer.workspace.config import read_config
    from naviewer.workspace.workspace import absolute_dataset_record, dataset_folders

    try:
        config = read_config(Path(workspace) / "workspace.toml")  # the project's reader (tomli on 3.10, a BOM)
    except (NaviewerError, OSError, ValueError):
        return None
    folders = dataset_folders(absolute_dataset_record(config.get("dataset"), Path(workspace)))
    return folders[0] if folders else None

class AnchorsView(QWidget):
    """``AnchorsView(workspace, start_job=None, parent=None)``.

    ``start_job(function, name, resources=..., kind=..., on_success=...)`` runs a job and returns it
    (``MainWindow.start_job``, which also shows a failed job's message); without one the view keeps
    its own job manager and shows failures itself. Signals: ``loaded(dict)`` (every overview read),
    ``changed(dict)`` (the anchors were replaced; the new overview).
    """

    loaded = Signal(dict)
    changed = Signal(dict)

    def __init__(self, workspace: "str | Path", start_job: Optional[Callable[..., Any]] = None,
                 parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("anchorsView")
        self.workspace = Path(workspace)
        self._start_job = start_job
        self._own_jobs = None
        self.overview: dict[str, Any] = {}
        self.job = None
        self.last_error = ""

        self.headline = QLabel("Reading the anchors…")
        self.headline.setWordWrap(True)
        self.headline.setTextFormat(Qt.TextFormat.RichText)
        self.kind = QLabel("–")
        self.source = QLabel("–")
        self.spec = QLabel("–")
        for label in (self.kind, self.source, self.spec):
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("Kind:", self.kind)
        form.addRow("Source:", self.source)
        form.addRow("Given as:", self.spec)

        self.notice = QLabel()
        self.notice.setObjectName("anchorsNotice")
        self.notice.setWordWrap(True)
        self.notice.setTextFormat(Qt.TextFormat.RichText)
        self.notice.setStyleSheet(NOTICE_STYLE)
        self.notice.hide()
        self.warnings = QLabel()
        self.warnings.setObjectName("anchorsWarnings")
        self.warnings.setWordWrap(True)
        self.warnings.setTextFormat(Qt.TextFormat.RichText)
        self.warnings.setStyleSheet(WARNING_STYLE)
        self.warnings.hide()
        self.error = QLabel()
        self.error.setObjectName("errorLabel")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.hide()

        self.classes_box = QWidget()
        self.classes_layout = QVBoxLayout(self.classes_box)
        self.classes_layout.setContentsMargins(0, 0, 0, 0)
        self.classes_layout.setSpacing(6)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # thumbnails wrap
        self.scroll.setWidget(self.classes_box)
        self.thumb_note = QLabel()
        self.thumb_note.setObjectName("hintLabel")
        self.thumb_note.setWordWrap(True)
        self.thumb_note.hide()

        self.replace_button = QPushButton("&Replace…")  # Alt+R (a keyboard-only newcomer found no way to it; session 30)
        self.replace_button.setToolTip("choose a trusted clean set for DIFT's anchors (checked at once: every class "
                                       "needs an anchor)")
        self.replace_menu = QMenu(self.replace_button)
        self.replace_actions = {}
        for key, text in REPLACE_CHOICES:
            if key == "labels":
                self.replace_menu.addSeparator()
            action = self.replace_menu.addAction(text)
            action.triggered.connect(lambda _c=False, k=key: self.choose(k))
            self.replace_actions[key] = action
        self.replace_button.setMenu(self.replace_menu)
        self.per_class = QSpinBox()
        self.per_class.setRange(1, 10000)
        self.per_class.setValue(10)
        self.per_class.setToolTip("anchors a class drawn from a trusted dataset or from the labels (ids and keys "
                                  "files are taken whole)")
        self.reload_button = QPushButton("Reload")
        self.reload_button.clicked.connect(lambda _c=False: self.load())
        per_class_label = QLabel("Anchors a class:")
        controls = FlowLayout(spacing=6)
        for widget in (self.replace_button, per_class_label, self.per_class, self.reload_button):
            controls.addWidget(widget)

        layout = QVBoxLayout(self)
        layout.addWidget(self.headline)
        layout.addLayout(form)
        layout.addWidget(self.notice)
        layout.addWidget(self.warnings)
        layout.addWidget(self.error)
        layout.addLayout(controls)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(self.thumb_note)
        self.load()

    # -- jobs -------------------------------------------------------------------------------------
    def _run(self, function: Callable, name: str, resources: list[str], on_success: Callable) -> Any:
        if self._start_job is not None:
            job = self._start_job(function, name, resources=resources, kind="anchors", on_success=on_success)
        else:
            from naviewer.gui.jobs import JobConflict, JobManager

            if self._own_jobs is None:
                self._own_jobs = JobManager(self)
            try:
                job = self._own_jobs.start(function, name, resources=resources, kind="anchors")
            except JobConflict as exc:
                self._show_error(str(exc), dialog=True)
                return None
            job.finished.connect(lambda state, j=job: on_success(j) if state == "finished" else None)
        if job is None:
            return None
        self.job = job
        self._set_busy(True)
        job.finished.connect(lambda state, j=job: self._job_finished(j, state))
        return job

    def _job_finished(self, job: Any, state: str) -> None:
        if job is not self.job:
            return
        self.job = None
        self._set_busy(False)
        if state == "failed":
            # MainWindow.start_job shows the message in a dialog; the view keeps it in sight too
            self._show_error(job.error_message(), dialog=self._start_job is None)
        elif state == "cancelled":
            self._show_error("cancelled; the anchors were not changed")

    def _set_busy(self, busy: bool) -> None:
        self.replace_button.setEnabled(not busy)
        self.reload_button.setEnabled(not busy)
        if busy:
            self.error.hide()

    def _show_error(self, message: str, dialog: bool = False) -> None:
        self.last_error = message
        self.error.setText(f"Anchors not changed: {message}")
        self.error.show()
        if dialog:
            box = QMessageBox(QMessageBox.Icon.Warning, "Anchors", message, QMessageBox.StandardButton.Ok, self)
            box.setWindowModality(Qt.WindowModality.WindowModal)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            self.error_box = box
            box.open()

    @property
    def busy(self) -> bool:
        return self.job is not None

    def load(self) -> Any:
        """Read the workspace's anchors in a job (``naviewer anchors WS``); the view fills in when done."""
        from naviewer.gui import tasks

        path = self.workspace
        return self._run(lambda ctx: tasks.anchor_overview(path, ctx), f"Read the anchors of {path.name}",
                         [f"anchors:{path}"], lambda job: self.set_overview(job.result or {}))

    def replace(self, spec: str) -> Any:
        """Check ``spec`` (an ``--anchors`` SPEC) against the workspace and record it, in a job."""
        from naviewer.gui import tasks

        path, per_class = self.workspace, int(self.per_class.value())
        seed = int(self.overview.get("seed") or 0)

        def done(job: Any) -> None:
            self.set_overview(job.result or {})
            self.changed.emit(dict(self.overview))

        return self._run(lambda ctx: tasks.replace_anchors(path, spec, ctx, per_class=per_class, seed=seed),
                         f"Replace the anchors of {path.name}", [f"workspace:{path}", f"anchors:{path}"], done)

    def choose(self, choice: str) -> Any:
        """Ask for what ``choice`` (a key of :data:`REPLACE_CHOICES`) needs, then :meth:`replace`."""
        start = str(self.workspace.parent)
        if choice == "folder":
            # a short title: the long one was cut in the dialog's title bar (a newcomer, session 30)
            chosen = QFileDialog.getExistingDirectory(self, "Trusted anchors: known-clean images, a folder a class",
                                                      start)
        elif choice in ("list", "ids", "keys"):
            titles = {"list": "Trusted anchors: a 'path label' file list or a CSV manifest of known-clean images",
                      "ids": "Trusted anchors: a text file of known-clean sample ids, one a line",
                      "keys": "Trusted anchors: a text file of known-clean source keys, one a line"}
            filters = {"list": "File lists and CSV manifests (*.txt *.csv *.lst);;All files (*)",
                       "ids": "Text files (*.txt);;All files (*)", "keys": "Text files (*.txt);;All files (*)"}
            chosen, _ = QFileDialog.getOpenFileName(self, titles[choice], start, filters[choice])
        elif choice == "spec":
            from naviewer.workflows.anchor_sources import ANCHOR_SPEC_HELP

            dialog = QInputDialog(self)
            dialog.setWindowTitle("Anchor spec")
            dialog.setLabelText("Anchors (as naviewer anchors WS SPEC): " + ANCHOR_SPEC_HELP.split(": ", 1)[1])
            for label in dialog.findChildren(QLabel):  # the help is one long line: 1,940 px wide unwrapped
                label.setWordWrap(True)
            dialog.setMaximumWidth(720)
            dialog.resize(640, dialog.sizeHint().height())
            ok = dialog.exec() == QInputDialog.DialogCode.Accepted
            text = dialog.textValue()
            return self.replace(text.strip()) if ok and text.strip() else None
        elif choice == "labels":
            box = QMessageBox(QMessageBox.Icon.Warning, "Anchors from the labels",
                              "Draw the anchors from this dataset's own labels?\n\nThey are NOT trusted: an attack "
                              "labels its poisons as the target class, and a poisoned anchor can hide every poison.",
                              QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
            box.setDefaultButton(QMessageBox.StandardButton.Cancel)  # Enter does not make untrusted anchors (session 30)
            self.last_question = box
            if box.exec() != QMessageBox.StandardButton.Yes:
                return None
            return self.replace("labels")
        else:
            raise ValueError(f"unknown anchor choice {choice!r}")
        if not chosen:
            return None
        if choice == "folder" and not self._confirm_outside_training(Path(chosen)):
            return None
        return self.replace(spec_for(choice, chosen))

    def _confirm_outside_training(self, folder: Path) -> bool:
        """A "trusted" folder that is the training data (or holds it, or lies in it) gives anchors drawn from the
        suspect labels, poisons among them: the newcomer who chose the training folder got 2 poisons among 5 "cat"
        anchors, a green "trusted" and no question (session 30). Asked as Draw from labels is, Cancel the default."""
        root = training_folder(self.workspace)
        if root is None:
            return True
        try:
            a, b = folder.resolve(), root.resolve()
        except OSError:
            return True
        if not (a == b or a in b.parents or b in a.parents):
            return True
        box = QMessageBox(QMessageBox.Icon.Warning, "Trusted anchors from the training data?",
                          f"{folder} {'is' if a == b else 'holds' if a in b.parents else 'lies in'} this workspace's "
                          f"training data ({root}).\n\nAnchors drawn from it are as untrusted as the labels: an attack "
                          "labels its poisons as the target class, and a poisoned anchor can hide every poison. Trusted "
                          "anchors are images you know are clean, from outside the training set.\n\nUse it anyway?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        self.last_question = box
        return box.exec() == QMessageBox.StandardButton.Yes

    # -- showing -----------------------------------------------------------------------------------
    def set_overview(self, overview: dict) -> None:
        """Show an :func:`naviewer.gui.tasks.anchor_overview` result."""
        from naviewer.workspace.anchor_record import UNTRUSTED_NOTICE

        self.overview = dict(overview)
        o = self.overview
        trusted = bool(o.get("trusted"))
        names = list(o.get("class_names") or [])
        per_class = {int(k): int(v) for k, v in (o.get("per_class") or {}).items()}
        classes = sorted(set(range(len(names))) | set(per_class))
        badge = ("<span style='color:#2e7d32;font-weight:bold'>trusted</span>" if trusted
                 else "<span style='color:#d32f2f;font-weight:bold'>NOT trusted</span>")
        counts = list(per_class.values())
        spread = (f"{min(counts)}–{max(counts)} a class" if counts and min(counts) != max(counts)
                  else f"{counts[0]} a class" if counts else "none")
        missing = [c for c in classes if per_class.get(c, 0) == 0]
        self.headline.setText(f"<b>{int(o.get('count') or 0):,} anchors</b> for {len(classes)} classes ({spread}) · "
                              f"{badge}" + (f" · <span style='color:#d32f2f'>{len(missing)} classes without an anchor"
                                            "</span>" if missing else ""))
        kind = str(o.get("kind") or "")
        self.kind.setText(f"{kind} — {KIND_TEXT.get(kind, '')}" if kind else "–")
        self.source.setText(str(o.get("source") or "–"))
        self.spec.setText(str(o.get("spec") or "–"))
        self.per_class.setValue(int(o.get("per_class_setting") or 10))
        if trusted:
            self.notice.hide()
        else:
            self.notice.setText("<b>Anchors NOT trusted.</b> " + html.escape(UNTRUSTED_NOTICE)
                                + " Replace… chooses a trusted set here.")
            self.notice.show()
        warnings = [str(w) for w in o.get("warnings") or []]
        self.warnings.setText("<b>Notes on these anchors:</b><br>" + "<br>".join("• " + html.escape(w) for w in warnings))
        self.warnings.setVisible(bool(warnings))
        self.error.hide()
        self._fill_classes(classes, names, per_class, o.get("thumbs") or {}, set(o.get("dropped") or []),
                           o.get("dropped_pass"))
        note = str(o.get("thumb_note") or "")
        if self.dropped_count():
            note = (f"Red: the {self.dropped_count()} anchor(s) the untrusted-anchor screen of detection pass "
                    f"{o.get('dropped_pass')} dropped on suspicion (the densest samples' label spreading reached them: "
                    f"{SCREEN_DROP_WORDS}). " + note).strip()
        self.thumb_note.setText(note)
        self.thumb_note.setVisible(bool(note))
        self.loaded.emit(dict(self.overview))

    def _fill_classes(self, classes: list[int], names: list[str], per_class: dict[int, int], thumbs: dict,
                      dropped: "set[int]" = frozenset(), dropped_pass: Optional[int] = None) -> None:
        while self.classes_layout.count():
            item = self.classes_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.class_rows: dict[int, QWidget] = {}
        for c in classes:
            row = QFrame()
            row.setFrameShape(QFrame.Shape.StyledPanel)
            line = QHBoxLayout(row)
            line.setContentsMargins(4, 4, 4, 4)
            name = names[c] if 0 <= c < len(names) else str(c)
            count = per_class.get(c, 0)
            caption = QLabel(f"<b>{html.escape(str(c))}</b> {html.escape(name) if name != str(c) else ''}<br>"
                             + (f"{count:,} anchor{'s' if count != 1 else ''}" if count
                                else "<span style='color:#d32f2f'>no anchor</span>"))
            caption.setTextFormat(Qt.TextFormat.RichText)
            caption.setFixedWidth(110)
            caption.setWordWrap(True)
            line.addWidget(caption, 0, Qt.AlignmentFlag.AlignTop)
            pictures = QWidget()
            flow = FlowLayout(pictures, spacing=3)
            items = thumbs.get(c) or thumbs.get(str(c)) or []
            for entry in items:
                text, image = entry[0], entry[1]
                sid = int(entry[2]) if len(entry) > 2 else -1
                picture = QLabel()
                picture.setPixmap(pixmap_of(np.asarray(image)))
                picture.setFrameShape(QFrame.Shape.Box)
                if sid >= 0 and sid in dropped:  # the screen of the latest DIFT pass found it contaminated
                    picture.setStyleSheet("border: 3px solid #d32f2f;")
                    picture.setProperty("dropped", True)
                    text = (f"{text}: dropped on suspicion by the untrusted-anchor screen of detection pass "
                            f"{dropped_pass} ({SCREEN_DROP_WORDS})")
                picture.setToolTip(str(text))
                flow.addWidget(picture)
            if count > len(items):
                more = QLabel(f"+{count - len(items):,} more")
                more.setObjectName("hintLabel")
                flow.addWidget(more)
            line.addWidget(pictures, 1)
            self.classes_layout.addWidget(row)
            self.class_rows[c] = row
        self.classes_layout.addStretch(1)

    def dropped_count(self) -> int:
        """Thumbnails marked as dropped by the latest DIFT pass's untrusted-anchor screen."""
        return sum(1 for row in getattr(self, "class_rows", {}).values() for label in row.findChildren(QLabel)
                   if label.property("dropped"))

    def thumbnail_count(self) -> int:
        """How many anchor thumbnails are on show."""
        return sum(1 for row in getattr(self, "class_rows", {}).values() for label in row.findChildren(QLabel)
                   if label.pixmap() is not None and not label.pixmap().isNull())


class AnchorsDialog(QDialog):
    """The Anchors view in its own window (Workspace ▸ Anchors…, the analyst's Anchors… button); not modal."""

    def __init__(self, workspace: "str | Path", start_job: Optional[Callable[..., Any]] = None,
                 parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("anchorsDialog")
        self.setWindowTitle(f"DIFT anchors — {Path(workspace).name}")
        self.view = AnchorsView(workspace, start_job, self)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view, 1)
        layout.addWidget(buttons)
        self.resize(860, 620)

    @property
    def workspace(self) -> Path:
        return self.view.workspace
