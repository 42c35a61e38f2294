"""Export dialog: the cleaned-dataset manifests (workspace export) plus an HTML review report.

The one export action of the window: File ▸ Export…, the toolbar's Export and the analyst panel's
Export… all open it. When it has written the files it emits ``exported(folder, message)``; the
message names every file and the folder, for the window to show.

The writing runs as a background job (the dataset check opens every image folder and the manifests
stream every sample: minutes on a large set, which froze the window): the dialog stays open with the
job's progress, Cancel stops it and leaves nothing in the folder, and a failure is said in the dialog.
"""

from __future__ import annotations

import contextlib
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QSize, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from naviewer.analysis.report import write_report
from naviewer.analysis.session import AnalysisSession
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext

if TYPE_CHECKING:
    from naviewer.gui.jobs import Job, JobManager

REPORT_NAME = "review-report.html"
MANIFEST_NAMES = ("kept.txt", "classes.txt", "samples.csv", "README.txt", "provenance.json")


#: the least size a plot is rendered at for the report: a plot of a tab never shown came out 208 px wide, its title,
#: legend and axis labels cut (a newcomer at 1280x720, session 30)
REPORT_PLOT_SIZE = (720, 320)


def widget_png(widget: QWidget, least: tuple[int, int] = REPORT_PLOT_SIZE) -> bytes:
    """A widget rendered to PNG bytes (plots for the report; works offscreen), at ``least`` its size: a smaller
    widget (a hidden tab's, a narrow panel's) is laid out at that size for the picture and put back."""
    parent = widget.parentWidget()
    while parent is not None:  # pending layouts first: one activated during the grab put the old size back
        if parent.layout() is not None:
            parent.layout().activate()
        parent = parent.parentWidget()
    size = widget.size()
    wanted = size.expandedTo(QSize(*least))
    if wanted != size:
        widget.resize(wanted)
    try:
        picture = widget.grab()
    finally:
        if wanted != size:
            widget.resize(size)
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    picture.save(buffer, "PNG")
    buffer.close()
    return bytes(data.data())


def default_exporter(ws: Any, out_dir: Path, drop_unreviewed_flags: bool, verify: bool = True,
                     ctx: Optional[JobContext] = None, pass_id: Optional[int] = None) -> Any:
    from naviewer.workspace.export import export_manifests

    return export_manifests(ws, out_dir, ctx=ctx, drop_unreviewed_flags=drop_unreviewed_flags, verify=verify,
                            pass_id=pass_id)


class ExportDialog(QDialog):
    """``ExportDialog(session, workspace=None, parent=None, out_dir=None, plots=None, exporter=None, job_manager=None)``.

    ``plots`` maps a title to a widget (rendered to PNG into the report). ``exporter(ws, out_dir,
    drop_unreviewed_flags, verify, ctx, pass_id=)`` (the session's pass) defaults to ``naviewer.workspace.export.export_manifests``.
    The Export button runs it as a job of ``job_manager`` (the window's, so the jobs list and the status
    bar follow it; a private one without); ``export()`` writes on the calling thread. After either, the
    dialog's ``result_record``, ``report_path`` and ``message`` say what was written.

    Signal ``exported(str, str)``: the folder and a message naming what went there.
    """

    exported = Signal(str, str)

    def __init__(
        self,
        session: AnalysisSession,
        workspace: Any = None,
        parent: Optional[QWidget] = None,
        out_dir: Optional[Path] = None,
        plots: Optional[Mapping[str, QWidget]] = None,
        exporter: Optional[Callable[..., Any]] = None,
        job_manager: Optional["JobManager"] = None,
        plot_look: Optional[Callable[[], Any]] = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export cleaned dataset")
        # a context the plots are rendered in: the panel's light look, so a report made under the dark theme is not
        # dark plots on the report's white page (seen, session 30)
        self.plot_look = plot_look or contextlib.nullcontext
        self.session = session
        try:  # the counts it states are the store's now, decisions of another window included
            session.sync_with_store()
        except Exception:  # noqa: BLE001 - the export itself reads the store and says what it wrote
            pass
        self.workspace = workspace
        self.plots = dict(plots or {})
        self.exporter = exporter or default_exporter
        self.job_manager = job_manager
        self.job: Optional["Job"] = None
        self.result_record: Any = None
        self.report_path: Optional[Path] = None
        self.message = ""

        if out_dir is None and workspace is not None:
            from naviewer.workspace.export import default_out_dir

            out_dir = default_out_dir(workspace)
        self.path_edit = QLineEdit(str(out_dir or Path.cwd() / "naviewer-export"))
        # wide enough for the default folder (inside the workspace) to read whole, within a 1280 px screen
        width = self.path_edit.fontMetrics().horizontalAdvance(self.path_edit.text()) + 24
        self.path_edit.setMinimumWidth(max(320, min(width, 900)))
        self.path_edit.setToolTip(self.path_edit.text())
        self.path_edit.textChanged.connect(self.path_edit.setToolTip)
        browse = QPushButton("Browse…")
        browse.setAutoDefault(False)  # Enter is Export's, wherever the focus went (it opened the folder chooser after a
        browse.clicked.connect(self._browse)  # failed export; a newcomer, session 27)
        row = QHBoxLayout()
        row.addWidget(QLabel("Folder:"))
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        # this pass's flags only: a newcomer took "flags nobody has decided on" for every pass's (session 28)
        self.drop_flags = QCheckBox("Also remove this pass's flags nobody has decided on (unreviewed or later)")
        self.drop_flags.toggled.connect(lambda _on: self._update_summary())
        if not bool(getattr(session, "flagged_mask", None) is not None and session.flagged_mask.any()):
            # offered on a workspace with no detection pass, or a pass that flagged nothing (a newcomer, session 29)
            self.drop_flags.setEnabled(False)
            self.drop_flags.setToolTip("this pass flagged nothing (or no detection pass exists): no flag to remove")
        self.write_report = QCheckBox(f"Write an HTML report of the review ({REPORT_NAME})")
        self.write_report.setChecked(True)
        # the dataset is opened and compared first (naviewer export's check); off for a workspace reviewed away
        # from its images, which the GUI could no longer export (naviewer export --unverified)
        self.verify = QCheckBox("Check that the dataset's images are still the ones reviewed")
        self.verify.setChecked(True)
        self.verify.setToolTip("opens the dataset and compares it with the workspace before the manifest lists its "
                               "images; untick it when the images are not on this machine")
        self.elsewhere = self._undecided_elsewhere()
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.progress_label = QLabel()  # the running export's step; empty otherwise
        self.progress_label.setWordWrap(True)
        self.progress_label.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setDefault(True)
        self.buttons.accepted.connect(self._on_export)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.drop_flags)
        layout.addWidget(self.write_report)
        layout.addWidget(self.verify)
        layout.addWidget(self.summary)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.buttons)
        self._update_summary()

    @classmethod
    def for_workspace(cls, path: Path, parent: Optional[QWidget] = None, reviewer: Optional[str] = None,
                      job_manager: Optional["JobManager"] = None) -> "ExportDialog":
        """The dialog over a workspace that no analyst panel has open: its latest detection pass's
        decisions (none without a pass). The workspace is opened here and closed with the dialog."""
        from naviewer.workspace import Workspace

        ws = Workspace.open(Path(path))
        try:
            session = AnalysisSession.from_workspace(ws, reviewer=reviewer)
        except BaseException:
            ws.close()
            raise
        dialog = cls(session, ws, parent, job_manager=job_manager)
        dialog.finished.connect(lambda _result: ws.close())
        return dialog

    #: a training runs on the workspace (the window says so): an export before its flags keeps every sample
    training_running = False

    def note_training_running(self) -> None:
        self.training_running = True
        self._update_summary()

    def counts(self) -> dict[str, int]:
        s = self.session
        codes = s.state_codes
        confirmed = int((codes == 1).sum())
        pending = int((s.flagged_mask & ((codes == 0) | (codes == 3))).sum())
        removed = confirmed + (pending if self.drop_flags.isChecked() else 0)
        return {"total": s.n, "removed": removed, "kept": s.n - removed, "confirmed": confirmed, "pending_flags": pending}

    def _update_summary(self) -> None:
        c = self.counts()
        text = (
            f"<b>{c['kept']:,}</b> samples kept, <b>{c['removed']:,}</b> removed "
            f"({c['confirmed']:,} confirmed poisons" + (f" + {c['pending_flags']:,} undecided flag{'s' if c['pending_flags'] != 1 else ''}"
                                                        if self.drop_flags.isChecked() else "") + ")."
        )
        if c["pending_flags"] and not self.drop_flags.isChecked():
            pending = c["pending_flags"]
            text += (f"<br><span style='color:#b06000'>{pending:,} flag{'s are' if pending != 1 else ' is'} still "
                     "undecided and will be kept.</span>")
        if self.session.pass_id is not None:
            # confirmed samples the pass never flagged (found by browsing All samples) were "from the review of
            # pass 3" too, which read as if the pass had flagged them (a newcomer, session 25)
            outside = c["confirmed"] - int(((self.session.state_codes == 1) & self.session.flagged_mask).sum())
            text += (f"<br>Flags from detection pass {self.session.pass_id}; the decisions are every decision of the "
                     f"review ({outside:,} of the confirmed {'was' if outside == 1 else 'were'} never flagged by this pass)." if outside else
                     f"<br>From the review of detection pass {self.session.pass_id}.")
        if "flagged" not in self.session.scores and self.training_running:  # Export stayed enabled while the demo trained
            text += ("<br><span style='color:#b06000'>A training is still running on this workspace and nothing is "
                     "flagged yet, so an export now keeps every sample: with DIFT in the loop its flags arrive when it "
                     "stops for your review.</span>")
        elif "flagged" not in self.session.scores:  # a newcomer exported "1,514 kept, 0 removed" from a workspace never scanned
            text += ("<br><span style='color:#b06000'>This workspace has no detection pass yet: nothing was flagged, "
                     "so every sample is kept. Run ▸ Detect (post-hoc)… (or a training with DIFT) first.</span>")
        if self.elsewhere[0]:
            from naviewer.workspace.export import elsewhere_text

            text += f"<br><span style='color:#b06000'>{html.escape(elsewhere_text(*self.elsewhere))}.</span>"
        if self.workspace is None:
            text += "<br><span style='color:gray'>No workspace is open: only the HTML report can be written.</span>"
        self.summary.setText(text)

    def _undecided_elsewhere(self) -> tuple[int, tuple]:
        """The samples other passes of the workspace flagged that nobody has decided on (the export keeps them)."""
        store = getattr(self.workspace, "store", None)
        if store is None:
            return 0, ()
        try:
            from naviewer.workspace.export import undecided_in_other_passes

            return undecided_in_other_passes(store, self.session.pass_id)
        except (NaviewerError, OSError, ValueError):
            return 0, ()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export folder", self.path_edit.text())
        if folder:
            self.path_edit.setText(folder)

    def _target(self) -> Path:
        """The chosen folder, made; a NaviewerError or OSError says why it cannot be."""
        out = Path(self.path_edit.text()).expanduser()
        if not str(self.path_edit.text()).strip():
            raise NaviewerError("choose a folder to export into")
        if out.exists() and not out.is_dir():
            raise NaviewerError("this is a file, not a folder: choose a folder to export into", out)
        missing, probe = [], out
        while not probe.exists() and probe != probe.parent:
            missing.append(probe)
            probe = probe.parent
        out.mkdir(parents=True, exist_ok=True)
        self._made = missing  # innermost first: taken away again if the export fails (_tidy_up)
        return out

    def _tidy_up(self) -> None:
        """After a failed or cancelled export: the folders this dialog made for it go again while empty (a newcomer's
        failed export, an image changed on disk, left an empty dated folder in exports/)."""
        for folder in getattr(self, "_made", []):
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._made = []

    def _writer(self, out: Path) -> Callable[[JobContext], tuple[Any, Optional[Path]]]:
        """The export's work as a function of a job context, holding values only (no widget is touched off
        the GUI thread): the plots are rendered here, the rest runs where it is called."""
        workspace, session, exporter = self.workspace, self.session, self.exporter
        drop, verify = self.drop_flags.isChecked(), self.verify.isChecked()
        plots = None
        if self.write_report.isChecked():
            with self.plot_look():
                plots = {name: widget_png(w) for name, w in self.plots.items()}

        def write(ctx: JobContext) -> tuple[Any, Optional[Path]]:
            record, summary = None, {}
            if workspace is not None:
                # the pass the analyst reviewed, not the workspace's latest (a later post-hoc pass was recorded)
                record = exporter(workspace, out, drop, verify, ctx, pass_id=session.pass_id)
                # the export's own words and numbers: "removed" stood twice, "unreviewed flags 1" beside "unreviewed 0 of
                # the 110 flags" (it counts the later ones too), and "kept 1405" had no separator (a newcomer, session 30)
                for key, said in (("kept", "kept by the export"), ("unreviewed_flags", "undecided flags (unreviewed or "
                                                                                    "later) the export keeps")):
                    value = getattr(record, key, None)
                    if isinstance(value, int):
                        summary[said] = f"{value:,}"
                if getattr(record, "removed", None) not in (None, getattr(record, "confirmed", None)):
                    summary["removed by the export"] = f"{int(record.removed):,}"
            report = None
            if plots is not None:
                ctx.check()
                ctx.progress(0, None, "writing the HTML report")
                from naviewer.workflows.posthoc import pass_finetune_result

                finetune = pass_finetune_result(workspace, session.pass_id) if workspace is not None else None
                report = write_report(session, out / REPORT_NAME, plots=plots, export_summary=summary or None,
                                      finetune=finetune)
            return record, report

        return write

    def export(self) -> Path:
        """Write the manifests (if a workspace is open) and the report on this thread; returns the folder."""
        out = self._target()
        self.result_record, self.report_path = self._writer(out)(JobContext())
        return out

    def _on_export(self) -> None:
        from naviewer.gui.analyst.common import ask_user

        try:
            out = Path(self.path_edit.text()).expanduser()
            earlier = [name for name in (*MANIFEST_NAMES, REPORT_NAME) if (out / name).is_file()] if out.is_dir() else []
        except (OSError, ValueError, RuntimeError) as exc:  # a name too long, a NUL, ~nobody: a traceback, and Export
            from naviewer.io import describe_os_error  # did nothing (a sweep)

            reason = (describe_os_error(exc) if isinstance(exc, OSError) else "it holds a NUL character"
                      if isinstance(exc, ValueError) else "the ~user in it is no user this system knows")
            QMessageBox.warning(self, "Export failed", f"{self.path_edit.text().strip()}: not a folder to export "
                                f"into ({reason}); nothing was written")
            return
        if earlier and self.workspace is not None:
            # the user's own README.txt or kept.txt was asked about as "an earlier export"; a yes then failed with
            # "not an earlier naviewer export" (a sweep, session 24): the folder's check comes before the question
            from naviewer.workspace.export import check_export_folder

            try:
                check_export_folder(out)
            except (NaviewerError, OSError) as exc:
                self._say_failure(exc, out)
                return
        if earlier and not ask_user(self, "Replace the export?", (
                f"{out} holds an earlier naviewer export ({', '.join(earlier)}). Replace its files?"
                if self.workspace is not None else
                f"{out} holds a review report from before ({', '.join(earlier)}). Replace it?")):
            return
        try:
            out = self._target()
            write = self._writer(out)
        except (NaviewerError, OSError, ValueError) as exc:  # ValueError: a NUL in the folder's name
            self._tidy_up()
            self._say_failure(exc, out)
            return
        from naviewer.gui.jobs import JobConflict, JobManager

        if self.job_manager is None:
            self.job_manager = JobManager(self)
        try:
            job = self.job_manager.start(write, f"Export to {out.name}", resources=[f"export:{out.absolute()}"],
                                         kind="export")
        except JobConflict as exc:
            self._tidy_up()
            QMessageBox.warning(self, "Export failed", f"{out}: another export is writing into this folder ({exc})")
            return
        job.error_owner = self  # the window leaves the failure to this dialog while it is open
        self.job, self._job_out = job, out
        self._set_running(True, "Exporting…")
        # bound slots of this dialog: disconnected by Qt if the window takes the dialog with it
        job.progress.connect(self._on_job_progress)
        job.finished.connect(self._on_job_finished)

    def _on_job_progress(self, _done: float, _total: object, message: str) -> None:
        self._set_running(True, f"Exporting… {message}" if message else "Exporting…")

    def _on_job_finished(self, _state: str) -> None:
        from naviewer.gui.jobs import JobState

        job, out = self.job, self._job_out
        self.job = None
        if job is None:
            return
        if job.state is JobState.FINISHED:
            self._set_running(False)
            self.result_record, self.report_path = job.result
            self.message = self.describe(out)
            self.accept()
            self.exported.emit(str(out), self.message)
        elif job.state is JobState.CANCELLED:
            self._tidy_up()
            self._set_running(False, "Export cancelled: the folder was left as it was.")
        else:
            self._tidy_up()
            self._set_running(False)
            self._say_failure(job.error, out)

    def _say_failure(self, exc: Optional[BaseException], out: Path) -> None:
        from naviewer.io import describe_os_error

        if isinstance(exc, OSError):  # a read-only or missing place: one plain sentence naming it, not "[Errno 2] ..."
            where = exc.filename if isinstance(exc.filename, str) else str(out)
            text = f"{where}: {describe_os_error(exc)}"
        elif isinstance(exc, NaviewerError):
            # the command line's way out named in the window: the box sent a newcomer to a terminal flag while the
            # dialog's own checkbox does the same (session 19)
            text = str(exc).replace("(naviewer export --unverified)", f"(untick \u201c{self.verify.text()}\u201d "
                                    "below, as naviewer export --unverified does)")
        elif isinstance(exc, ValueError) and "null" in str(exc):
            text = f"{out}: the folder's name holds a NUL character, which no file name can; nothing was written"
        else:
            text = f"{type(exc).__name__}: {exc}"
        QMessageBox.warning(self, "Export failed", text)

    def _set_running(self, running: bool, message: str = "") -> None:
        """While the job runs only Cancel can be used (it cancels the job, then the dialog stays)."""
        for widget in (self.export_button, self.path_edit, self.drop_flags, self.write_report, self.verify):
            widget.setEnabled(not running)
        if not running:  # disabled while it ran, Export lost the default and the focus: Enter retries it
            self.export_button.setDefault(True)
            self.export_button.setFocus()
        self.progress_label.setText(message)
        self.progress_label.setVisible(bool(message))

    def reject(self) -> None:
        """Cancel (or Esc, or the close button) while exporting stops the export; the dialog closes after."""
        if self.job is not None and self.job.running:
            self.job.cancel()
            self._set_running(True, "Cancelling…")
            return
        super().reject()

    def describe(self, out: Path) -> str:
        """Which files went where, and the export's own summary line."""
        names = [name for name in MANIFEST_NAMES if (out / name).is_file()] if self.result_record is not None else []
        if self.report_path is not None:
            names.append(self.report_path.name)
        listed = ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1] if names else "nothing"
        text = f"Wrote {listed} to {out.absolute()}"
        if hasattr(self.result_record, "summary"):
            r = self.result_record
            text += f"\n\n{r.kept:,} samples kept, {r.removal_text()}"
            text += "." if r.dropped_unreviewed_flags else (f"; {r.unreviewed_flags:,} undecided "
                                                             f"flag{'s' if r.unreviewed_flags != 1 else ''} kept.")
            if getattr(r, "undecided_elsewhere", 0):
                from naviewer.workspace.export import elsewhere_text

                text += "\n\n" + elsewhere_text(r.undecided_elsewhere, r.undecided_elsewhere_passes) + "."
            if not getattr(self.result_record, "entries_are_paths", True):
                text += " kept.txt lists sample keys, not file paths: see README.txt."
        return text


def removed_ids(session: AnalysisSession, drop_unreviewed_flags: bool = False) -> np.ndarray:
    """What an export removes (for previews): confirmed, plus undecided flags when asked."""
    codes = session.state_codes
    mask = codes == 1
    if drop_unreviewed_flags:
        mask |= session.flagged_mask & ((codes == 0) | (codes == 3))
    return np.flatnonzero(mask)
