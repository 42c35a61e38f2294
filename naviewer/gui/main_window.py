"""The main window: menus, toolbar, dockable panels, status bar with the current job's progress.

The window is built from Qt widgets only, so it is on screen before torch (or pyqtgraph) is
imported. The training monitor (pyqtgraph) is built just after the first paint; everything that
needs torch runs inside jobs (:mod:`naviewer.gui.jobs`) started from here.

Workspaces and datasets are opened inside jobs too, and the window keeps only their paths and a
summary: the SQLite store of a workspace belongs to the thread that opened it.

What is open (workspace, dataset, encoder, run, training job) and the log live in a Qt-free
:class:`~naviewer.analysis.app_state.AppState` (``window.state``). The window, the Overview and the
Log are views of it: controllers (menus, the demo, the analyst dock, scripts) change the state, and
the views follow its events (title, actions, the Overview's labels, the recent menu, the analyst
docked on the workspace's latest pass, the monitor following its latest run).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Optional

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTabBar,
    QVBoxLayout,
    QWidget,
)

from naviewer.analysis.app_state import AppState
from naviewer.errors import NaviewerError
from naviewer.gui import tasks
from naviewer.gui.environment import EnvironmentProbe, cached_environment
from naviewer.gui.detect_dialog import DEFAULT_DETECTORS, DetectDialog
from naviewer.gui.format import remaining
from naviewer.gui.jobs import Job, JobConflict, JobFunction, JobManager, JobState
from naviewer.gui.jobs_panel import JobsPanel
from naviewer.gui.resources import THEMES, app_icon
from naviewer.gui.settings import (
    add_recent_workspace,
    app_settings,
    recent_workspaces,
    reopens_last_workspace,
    remember_folder,
    remove_recent_workspace,
    start_folder,
)
from naviewer.gui.shortcuts_panel import ShortcutsPanel
from naviewer.gui.theme import ThemeManager

STATE_VERSION = 1  # bump when the dock layout changes incompatibly: old saved layouts are ignored

# (settings, window) -> (job function, run directory or None). Replaced by the demo/tests as needed.
TrainingJobFactory = Callable[[dict, "MainWindow"], "tuple[JobFunction, Optional[Path]]"]


def default_training_factory(settings: dict, window: "MainWindow") -> "tuple[JobFunction, Optional[Path]]":
    """The window's training job: the SSL engine on the open workspace or dataset (``tasks`` gets
    the two paths, not the window, so that ``naviewer.gui.tasks`` never imports this module)."""
    return tasks.default_training_job(settings, workspace=window.workspace_path, dataset_path=window.dataset_path)


class OverviewPanel(QWidget):
    """What is open (workspace, dataset, encoder, run) and the next useful actions: a view of the
    window's :class:`AppState`."""

    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self._main, self.state = window, window.state
        self._fitted_texts: Optional[tuple[str, ...]] = None  # the rows' texts when their heights were last fitted
        self.setObjectName("overviewPanel")
        self.workspace = QLabel("none")
        self.dataset = QLabel("none")
        self.encoder = QLabel("none")
        self.run = QLabel("none")
        for label in (self.workspace, self.dataset, self.encoder, self.run):
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout()
        form.addRow("<b>Workspace</b>", self.workspace)
        form.addRow("<b>Dataset</b>", self.dataset)
        form.addRow("<b>Encoder</b>", self.encoder)
        form.addRow("<b>Run</b> (monitored)", self.run)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        # what to do next, in plain words (a newcomer who had just made a workspace saw nothing say it)
        self.next_step = QLabel("")
        self.next_step.setObjectName("nextStepLabel")
        self.next_step.setWordWrap(True)
        layout.addWidget(self.next_step)
        for action in (window.act_new_workspace, window.act_open_workspace, window.act_open_dataset, window.act_train):
            button = QPushButton(action.text().replace("&", ""))
            button.clicked.connect(action.trigger)
            # greyed with its action: Train… stayed enabled while a job ran and a click did nothing (a newcomer, session 30)
            button.setEnabled(action.isEnabled())
            action.changed.connect(lambda b=button, a=action: b.setEnabled(a.isEnabled()))
            layout.addWidget(button)
        hint = QLabel("Every action here is also a naviewer command (naviewer --help); the keys are under Help ▸ Keyboard "
                      "shortcuts.")
        hint.setObjectName("hintLabel")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        layout.addStretch(1)
        for event in (self.state.events.workspace, self.state.events.dataset, self.state.events.encoder,
                      self.state.events.run, self.state.events.training):
            event.connect(self.refresh)

    def refresh(self, *_args: Any) -> None:
        from html import escape

        from naviewer.gui.format import short_path

        state = self.state
        base = str(state.workspace) if state.workspace is not None else None

        def shown(label: QLabel, text: Optional[str], extra: str = "", inside: bool = True) -> None:
            """``text`` (a path, maybe with a note) short in the label, whole in its tooltip."""
            if not text:
                label.setText("none" + extra)
                label.setToolTip("")
                return
            # a break may fall after - and _ too: "simclr-20261204-231340" could not wrap, and the dock widened by
            # 20 px each time a run started, moving every view right of it (a newcomer, session 22)
            soft = escape(short_path(str(text), base if inside else None), quote=False)
            label.setText(soft.replace("-", "-\u200b").replace("_", "_\u200b") + extra)
            label.setToolTip(str(text))

        count = state.workspace_summary.get("samples")
        shown(self.workspace, None if state.workspace is None else str(state.workspace),
              f"<br>{count:,} samples" if count and state.workspace is not None else "", inside=False)
        n = state.dataset_summary.get("samples")
        kind = state.dataset_summary.get("kind", "")
        workspace_open = state.workspace is not None
        # with only a workspace open, its own dataset and the reviewed pass's encoder (not "none")
        own_dataset = state.workspace_summary.get("dataset") if workspace_open else None
        own_encoder = state.workspace_summary.get("encoder") if workspace_open else None
        if state.dataset is not None:
            extra = f"<br>{n:,} image{'' if n == 1 else 's'} {kind}" if n else ""
            own_path = state.workspace_summary.get("dataset_path")
            other = own_path is not None and Path(str(own_path)).resolve() != Path(state.dataset).resolve()
            if workspace_open and other:  # both open: which one Train and Detect use was not said (newcomer session 16)
                extra += ("<br><i>not the workspace's: Train and Detect use the workspace; File ▸ New workspace… "
                          "makes one of this dataset</i>")
            shown(self.dataset, str(state.dataset), extra)
        else:
            shown(self.dataset, own_dataset, "<br>(the workspace's)" if own_dataset else "")
        encoder = str(state.encoder) if state.encoder is not None else own_encoder
        if encoder:
            shown(self.encoder, encoder)
        elif self._training():
            shown(self.encoder, "being trained (the run below)")
        else:
            # a training of the workspace ended: its encoder is there (it read "none" right after a Train finished,
            # and a newcomer thought the encoder lost); the file Detect… starts from, asked of the same function
            trained = self._main._workspace_encoder() if workspace_open else None
            shown(self.encoder, str(trained) if trained else None,
                  "<br>(the newest finished training's; Run ▸ Detect… starts from it)" if trained else "")
        shown(self.run, None if state.run is None else str(state.run))
        self.next_step.setText("<b>Next:</b> " + self._next_step())
        texts = tuple(label.text() for label in self._rows())
        if texts != self._fitted_texts:
            self._fitted_texts = texts
            self._fit_rows()

    def refresh_next_step(self) -> None:
        """The Next line alone (after a decision), re-fitted when its text changed."""
        text = "<b>Next:</b> " + self._next_step()
        if text != self.next_step.text():
            self.next_step.setText(text)
            self._fitted_texts = tuple(label.text() for label in self._rows())
            self._fit_rows()

    def _rows(self) -> tuple[QLabel, ...]:
        return self.workspace, self.dataset, self.encoder, self.run, self.next_step

    def _fit_rows(self) -> None:
        """Each row as tall as its wrapped text at the width it has now. The form kept a height from before (the
        demo's workspace path wrapped to two lines and "1,514 samples" under it was cut in half; a newcomer at
        1280x720, session 21): the labels' heights are asked again once the layout has settled."""
        for label in self._rows():
            label.updateGeometry()
        layout = self.layout()
        if layout is not None:
            layout.invalidate()
            QTimer.singleShot(0, layout.activate)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            self._fit_rows()

    def _training(self) -> bool:
        """A training job runs now (the state keeps its handle until it is cleared)."""
        return bool(getattr(self.state.training, "running", False))

    def _next_step(self) -> str:
        """The one useful next action for what is open (short: the Overview shares a column with the analyst)."""
        state = self.state
        if state.workspace is None:
            return "File ▸ New workspace…, or Run ▸ Run the demo"
        # the tab by its own title ("the Fine-tune tab" beside a tab called "Fine-tune / retrain"; a newcomer, session 31)
        tab = "the Fine-tune / retrain tab" if self._main.review_retrains() else "the Fine-tune tab"
        if self._training():
            # the demo said "Run ▸ Detect… with an encoder" while it trained one itself (a newcomer); a plain Train
            # has no DIFT in it, and "DIFT's flags open here" promised flags that never came (a newcomer, session 19)
            # -- and Remove and retrain, Retrain again, a resumed plain training, the floor promised DIFT's flags too
            # (a newcomer, session 30): each training job says what it is (``training_kind``)
            kind = getattr(self.state.training, "training_kind", None)
            if getattr(self.state.training, "plain_training", False) or kind == "plain":
                return "the training runs (Training monitor); when it ends, Run ▸ Detect… ranks the samples with it"
            if kind == "dift":
                return "the training runs (Training monitor); DIFT's flags open here for review"
            if kind == "retrain":
                return "the retrain runs (Training monitor); when it ends, the Fine-tune / retrain tab compares before and after"
            if kind == "floor":
                return "the no-poison floor trains (Training monitor); every ASR is read against it once it ends"
            return "the training runs (Training monitor); what it finds opens here when it ends"
        interrupted = state.workspace_summary.get("interrupted") or []
        if interrupted and state.workspace_summary.get("pass_id") is None:
            return f"Run ▸ Resume interrupted run (run {interrupted[0]} stopped while training)"
        if interrupted:  # beside a pass under review it said "review the flags" and nothing of the training waiting
            return (f"run {interrupted[0]} stopped while training: Run ▸ Resume interrupted run goes on with it; or "
                    "review the flags, then Export…")  # (a newcomer, session 28)
        if state.workspace_summary.get("pass_id") is None:
            return "Run ▸ Detect… with an encoder, or Train…"
        # it said "review the flags, then Export…" after every flag was decided and an export written (a newcomer,
        # session 21): the analyst's own counts, and the export made from them
        progress = self._main.review_progress()
        if progress is not None and progress[1] and progress[0] >= progress[1]:
            exported, current = self._main.export_state()
            # after Remove and retrain it still pointed at Remove and retrain (newcomers, sessions 26 and 30)
            retrained = self._main.review_acted_on()
            if exported and current and retrained:
                return (f"every flag is decided, exported ({Path(exported).name}) and acted on: {tab} "
                        "compares the encoder before and after")
            if retrained:
                return (f"every flag is decided and acted on ({tab} compares before and after): Export… "
                        "writes the cleaned dataset")
            if exported and current:
                if self._main.review_retrains():
                    return (f"every flag is decided and exported ({Path(exported).name}); {tab}'s Remove "
                            "and retrain measures the cleaned set")
                # a post-hoc pass has no Remove and retrain (the Overview named a button that was not there; a
                # newcomer, session 27): Train's Leave out is the window's way
                return (f"every flag is decided and exported ({Path(exported).name}); Run ▸ Train… with \"Leave out "
                        "the samples confirmed\" measures the cleaned set")
            if exported:
                return f"decisions changed since the export ({Path(exported).name}): Export… again"
            if self._main.review_retrains():  # the demo's step is the retrain (it named only Export; session 28)
                return (f"every flag is decided: {tab}'s Remove and retrain measures the cleaned set; "
                        "Export… writes it")
            return "every flag is decided: Export… writes the cleaned dataset"
        return "review the flags, then Export…"


class LogView(QPlainTextEdit):
    """The Log panel: the state's log lines as they come, the newest in view unless the reader scrolled up (it stayed
    at the first lines when shown: a newcomer, session 22)."""

    def __init__(self, state: AppState, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("eventLog")
        self.setReadOnly(True)
        self.setMaximumBlockCount(2000)
        for line in state.messages:
            self.appendPlainText(line)
        state.events.message.connect(self.append_line)

    def append_line(self, line: str) -> None:
        bar = self.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 2
        self.appendPlainText(line)
        if at_end:
            bar.setValue(bar.maximum())

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())


def checkpoint_name(path: str) -> str:
    """"simclr-150947/last.pt" for ``…/checkpoints/simclr-150947/last.pt`` (the run tells two last.pt apart), else the
    file's name."""
    parts = Path(path).parts
    if len(parts) >= 3 and parts[-3] == "checkpoints":
        return f"{parts[-2]}/{parts[-1]}"
    return Path(path).name or path


def detection_outcome(result: dict) -> str:
    """What a finished post-hoc Detect found, pass by pass ("DIFT pass 7: 0 flagged; patchsearch pass 6: 163"): a
    newcomer ran patchsearch as "What to try next" advised, was shown DIFT's empty pass and found patchsearch's 163
    flags only under Workspace > Detection passes. (DIFT's pass still opens: kdist, lid and slof flag a fixed share
    of any set, so "the detector with flags" would be one of them after nearly every Detect.)"""
    metrics = result.get("detector_metrics") or {}
    said = "; ".join(f"{name} pass {int(pid)}: {int((metrics.get(name) or {}).get('flagged') or 0):,}"
                     for name, pid in (result.get("detector_passes") or {}).items())
    dift = int((result.get("summary") or {}).get("flagged") or 0)
    return f"DIFT pass {int(result['pass_id'])}: {dift:,} flagged" + (f"; {said}" if said else "")



def _fixed_share(metrics: Optional[dict]) -> bool:
    """Whether a detector pass flagged a fixed share of the set (``top_fraction``: 1 % of any set, poisoned or not)."""
    return ((metrics or {}).get("threshold") or {}).get("rule") == "top_fraction"


def _pass_to_open(flagged: dict[str, int], metrics: dict) -> Optional[str]:
    """The detector pass to open when DIFT flagged nothing: one whose flags its scores decided (a robust or a
    two-population cut, a classifier) before one that flags a fixed share of any set; then the most flags. The
    most flags alone opened kdist's 8 (1 % of 800, all clean) over patchsearch's 6 that held the poisons (a
    newcomer, session 34)."""
    if not flagged:
        return None
    return max(flagged, key=lambda name: (flagged[name] > 0 and not _fixed_share(metrics.get(name)), flagged[name]))

class MainWindow(QMainWindow):
    """The application window. Public methods are what menus call, and what scripts/tests call."""

    first_shown = Signal()  # the first time the window is exposed (startup benchmark, monitor build)
    monitor_ready = Signal(object)  # TrainingMonitor

    def __init__(self, theme_manager: Optional[ThemeManager] = None, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle("naviewer")
        self.setWindowIcon(app_icon())
        self.settings = app_settings()
        app = QApplication.instance()
        self.theme_manager = theme_manager or ThemeManager(app, str(self.settings.value("view/theme", "light")))
        from naviewer.gui.refocus import RefocusAfterDialogs

        self.refocus = RefocusAfterDialogs(self)  # the keys come back after a dialog closes, with no window manager too
        self.jobs = JobManager(self)
        self.probe = EnvironmentProbe(self)
        self.training_job_factory: TrainingJobFactory = default_training_factory
        self._focus_before_shortcuts: Optional[QWidget] = None  # where F1 took the keyboard from (hide_shortcuts)
        self._shortcuts_placed = False  # F1's panel floated once on a small window (see show_shortcuts)
        self.state = AppState()  # what is open, and the log: the window is a view of it
        self.monitor = None  # TrainingMonitor, built after the first paint
        self.last_message_box: Optional[QMessageBox] = None
        self.train_settings: dict[str, Any] = {}
        self.detectors_chosen: tuple[str, ...] = DEFAULT_DETECTORS  # what the Detect dialog ticks next time
        self._shown_once = False
        self._closing = False
        self._pending_follow: Optional[Path] = None
        self._pending_job_for_monitor: Optional[Job] = None
        self._last_event_line: Optional[str] = None  # the Log says a job's event line once, not twice in a row
        self._warnings_said: set[str] = set()  # the warnings a box showed in this window (unsaid_warnings)
        self.analyst_dock = None  # AnalystDock: the analyst panel on a detection pass
        self.review_serial = 0  # decisions made in the analyst panel so far (the export's currency follows it)
        self._serial_at_open = 0  # ... when the analyst opened on the workspace
        self.last_export: Optional[tuple[Optional[Path], str, int]] = None  # (workspace, folder, review_serial) made here

        self._create_actions()
        self._create_menus()
        self._create_toolbar()
        self._create_docks()
        self._create_status_bar()
        self.jobs.job_started.connect(self._on_job_started)
        self.jobs.job_finished.connect(self._on_job_finished)
        self.jobs.jobs_changed.connect(self._update_actions)
        self.theme_manager.theme_changed.connect(self._on_theme_changed)
        self.state.events.workspace.connect(self._on_workspace)
        self.state.events.dataset.connect(self._update_actions)
        self.state.events.training.connect(self._update_actions)
        self.resize(1280, 800)
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        if screen is not None and screen.width() >= 640 and (screen.width() < 1280 or screen.height() < 800):
            self.resize(min(1280, screen.width()), min(800, screen.height()))  # a 1280x720 screen holds it
        elif screen is not None and screen.width() >= 1800 and screen.height() >= 1000:
            # a first window of 1280 x 800 was a third of a 2560 x 1440 screen (newcomer session 17): most of it
            self.resize(int(screen.width() * 0.8), int(screen.height() * 0.85))
            self.move(screen.center() - self.rect().center())
        self._restore_layout()
        self._rebuild_recent_menu()
        self._update_actions()
        self.overview.refresh()

    # ------------------------------------------------------------------------ state ----
    # Read-through properties: what is open lives in ``self.state``; assigning one changes the state
    # (and so every view of it), as File ▸ Open … does.
    @property
    def workspace_path(self) -> Optional[Path]:
        return self.state.workspace

    @workspace_path.setter
    def workspace_path(self, path: Optional[Path]) -> None:
        self.state.set_workspace(path, self.state.workspace_summary if path == self.state.workspace else None)

    @property
    def workspace_summary(self) -> dict[str, Any]:
        return self.state.workspace_summary

    @property
    def dataset_path(self) -> Optional[Path]:
        return self.state.dataset

    @dataset_path.setter
    def dataset_path(self, path: Optional[Path]) -> None:
        self.state.set_dataset(path, self.state.dataset_summary if path == self.state.dataset else None)

    @property
    def dataset_summary(self) -> dict[str, Any]:
        return self.state.dataset_summary

    @property
    def encoder_path(self) -> Optional[Path]:
        return self.state.encoder

    @encoder_path.setter
    def encoder_path(self, path: Optional[Path]) -> None:
        self.state.set_encoder(path)

    @property
    def training_job(self) -> Optional[Job]:
        return self.state.training

    @training_job.setter
    def training_job(self, job: Optional[Job]) -> None:
        self.state.set_training(job)

    # ------------------------------------------------------------------ construction ----
    def _action(self, text: str, slot: Callable, shortcut: Any = None, tip: str = "", checkable: bool = False) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcuts(shortcut if isinstance(shortcut, list) else [QKeySequence(shortcut)])
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.setCheckable(checkable)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def _create_actions(self) -> None:
        K = QKeySequence.StandardKey
        self.act_new_workspace = self._action("&New workspace…", self.new_workspace_dialog, QKeySequence(K.New), "Create a workspace folder for a dataset")
        self.act_open_workspace = self._action("&Open workspace…", self.open_workspace_dialog, QKeySequence(K.Open), "Open a workspace folder")
        self.act_open_dataset = self._action("Open &dataset…", self.open_dataset_dialog, "Ctrl+Shift+O", "Open a folder: CIFAR batches or class folders of images")
        self.act_open_dataset_file = self._action("Open dataset &file list…", self.open_dataset_file_dialog, None, "Open a 'path label' file list or a CSV manifest")
        self.act_open_encoder = self._action("Open &encoder checkpoint…", self.open_encoder_dialog, "Ctrl+Shift+E", "Load a trained encoder (.pt)")
        self.act_reopen_last = self._action("Reopen the last workspace at start", self._toggle_reopen_last, None,
                                            "At start with no folder named, open the workspace used last", checkable=True)
        self.act_reopen_last.setChecked(reopens_last_workspace(self.settings))
        self.act_follow_run = self._action("Fo&llow run folder…", self.follow_run_dialog, "Ctrl+Shift+F", "Monitor a run written by another process (CLI, torchrun)")
        self.act_export = self._action("E&xport cleaned dataset…", self.export_dialog, "Ctrl+E",
                                       "Write the cleaned dataset's manifests (kept.txt, classes.txt, samples.csv, README.txt, "
                                       "provenance.json) and the HTML review report, into a folder you choose")
        self.act_quit = self._action("&Quit", self.close, QKeySequence(K.Quit), "Quit naviewer")
        self.act_train = self._action("&Train…", self.train_dialog, "Ctrl+T", "Train an encoder in the background")
        self.act_pause = self._action("&Pause", self.pause_training, "Ctrl+P", "Pause training at the next batch")
        self.act_resume = self._action("&Resume", self.resume_training, "Ctrl+R", "Resume paused training")
        self.act_cancel = self._action("&Cancel", self.cancel_training, "Ctrl+.", "Cancel training (it checkpoints first)")
        self.act_resume_run = self._action("Resume &interrupted run", self.resume_interrupted_run, None,
                                           "Go on with a DIFT run of the open workspace that stopped while training "
                                           "(a closed window, Ctrl-C), from its checkpoint (naviewer run --resume)")
        self.act_demo = self._action("Run the de&mo (built-in digits)…", self.demo_dialog, None,
                                     "Craft poisons into built-in digits, train with DIFT and review its flags here "
                                     "(naviewer demo)")
        self.act_floor = self._action("Measure the no-poison &floor", self.measure_floor, None,
                                      "Train the workspace's recipe on its clean set and measure the ASR there: the "
                                      "floor every ASR after removal is read against (naviewer run WS --floor)")
        self.act_trigger_asr = self._action("Measure a trigger's &ASR…", self.trigger_asr_dialog, None,
                                            "How often an encoder sends test images carrying a trigger image of your "
                                            "own to a target class (naviewer eval --attack patch --attack-setting "
                                            "trigger=IMAGE)")
        # one action, one dialog: the encoder and the detectors are chosen before anything runs (the file picker
        # alone started a detection at once, with no word of what it would run)
        self.act_detect = self._action("&Detect (post-hoc)…", self.detect_dialog, None,
                                       "Rank the open workspace's samples with a trained encoder: DIFT and the detectors "
                                       "you tick (k-distance, LID, PatchSearch, ...), each a pass of its own, side by side "
                                       "in the Analyst (naviewer detect --detector)")
        self.act_anchors = self._action("&Anchors…", self.show_anchors, "Ctrl+Shift+A",
                                        "DIFT's anchors of the open workspace: where they come from, whether they are "
                                        "trusted, per class; replace them with a trusted clean set (naviewer anchors)")
        self.act_shortcuts = self._action("Keyboard &shortcuts", self.show_shortcuts, QKeySequence(K.HelpContents), "List keyboard shortcuts (F1 again hides them)")
        self.act_guide = self._action("User &guide", self.show_guide, None,
                                      "The workflow guides (docs/index.md): getting started, review and export")
        self.act_about = self._action("&About naviewer", self.show_about, None, "Versions and compute device")
        self.act_reset_layout = self._action("&Reset layout", self.reset_layout, None, "Put every panel back where it started")
        self.act_overview = self._action("&Overview", self.toggle_overview, "F9", "Show or fold away the Overview panel", checkable=True)
        self.act_overview.setChecked(True)
        self.theme_group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for name in THEMES:
            action = self._action(f"&{name.title()} theme", lambda name=name: self.set_theme(name), checkable=True)
            self.theme_group.addAction(action)
            self.theme_actions[name] = action
        self.theme_actions[self.theme_manager.theme.name].setChecked(True)
        self.act_toggle_theme = self._action("To&ggle light/dark", self.toggle_theme, "Ctrl+Shift+L", "Switch between light and dark themes")
        for action in (self.act_train, self.act_pause, self.act_resume, self.act_cancel):
            action.setIconText(action.text().replace("&", "").rstrip("…"))

    def _create_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for action in (self.act_new_workspace, self.act_open_workspace, self.act_open_dataset, self.act_open_dataset_file,
                       self.act_open_encoder):
            file_menu.addAction(action)
        self.recent_menu = file_menu.addMenu("Recent &workspaces")
        file_menu.addAction(self.act_reopen_last)
        file_menu.addAction(self.act_follow_run)
        file_menu.addSeparator()
        file_menu.addAction(self.act_export)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        workspace_menu = bar.addMenu("&Workspace")
        workspace_menu.addAction(self.act_anchors)
        workspace_menu.addAction(self.act_detect)
        workspace_menu.addSeparator()
        # the analyst always opened the latest pass, so a Detect run replaced the pass under review with no way
        # back (newcomer session 13): every pass of the workspace, the shown one checked
        self.passes_menu = workspace_menu.addMenu("Detection &passes")
        self.passes_menu.aboutToShow.connect(self._fill_passes_menu)
        self.workspace_menu = workspace_menu
        self.view_menu = bar.addMenu("&View")
        self.panels_menu = self.view_menu.addMenu("&Panels")
        self.view_menu.addSeparator()
        for action in self.theme_actions.values():
            self.view_menu.addAction(action)
        self.view_menu.addAction(self.act_toggle_theme)
        self.view_menu.addSeparator()
        self.view_menu.addAction(self.act_overview)
        self.view_menu.addAction(self.act_reset_layout)
        run_menu = bar.addMenu("&Run")
        for action in (self.act_train, self.act_pause, self.act_resume, self.act_cancel, self.act_resume_run):
            run_menu.addAction(action)
        run_menu.addAction(self.act_floor)
        run_menu.addAction(self.act_trigger_asr)
        run_menu.addSeparator()
        run_menu.addAction(self.act_detect)
        run_menu.addSeparator()
        run_menu.addAction(self.act_demo)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.act_shortcuts)
        help_menu.addAction(self.act_guide)
        help_menu.addAction(self.act_about)

    def _create_toolbar(self) -> None:
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(True)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        toolbar.addAction(self.act_overview)  # the Overview folds away to leave the analyst room
        toolbar.addSeparator()
        for action in (self.act_open_workspace, self.act_open_dataset, self.act_open_encoder):
            toolbar.addAction(action)
            action.setIconText(action.text().replace("&", "").replace("Open ", "").rstrip("…").capitalize())
        toolbar.addSeparator()
        for action in (self.act_train, self.act_pause, self.act_resume, self.act_cancel):
            toolbar.addAction(action)
        toolbar.addSeparator()
        toolbar.addAction(self.act_export)
        self.act_export.setIconText("Export")
        self.toolbar = toolbar

    def add_panel(
        self,
        widget: QWidget,
        title: str,
        object_name: str,
        area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea,
        visible: bool = True,
    ) -> QDockWidget:
        """Add a dockable panel; its position is remembered (``object_name`` must be stable)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(object_name)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        dock.setVisible(visible)
        self.panels_menu.addAction(dock.toggleViewAction())
        # shown from View ▸ Panels it comes to the front: the Analyst came back as a tab behind the monitor, unseen
        # (a newcomer, session 30)
        dock.toggleViewAction().triggered.connect(lambda checked, d=dock: checked and QTimer.singleShot(0, d.raise_))
        self.docks[object_name] = dock
        return dock

    def _create_docks(self) -> None:
        self.setDockNestingEnabled(True)
        self.docks: dict[str, QDockWidget] = {}
        # No central widget: every panel is a dock, so the whole arrangement can be rearranged
        # and is restored between runs. Later views (map, gallery) join with add_panel().
        self.setCentralWidget(None)
        self.overview = OverviewPanel(self)
        placeholder = QLabel("Loading plots…")
        placeholder.setObjectName("placeholderLabel")
        placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.jobs_panel = JobsPanel(self.jobs)
        self.jobs_panel.show_error.connect(self.show_job_error)
        self.shortcuts_panel = ShortcutsPanel()
        self.shortcuts_panel.setMinimumWidth(340)  # wide enough to read an action beside its keys
        self.log = LogView(self.state)
        overview = self.add_panel(self.overview, "Overview", "overviewDock", Qt.DockWidgetArea.LeftDockWidgetArea)
        overview.visibilityChanged.connect(lambda _v: self.act_overview.setChecked(not overview.isHidden()))
        self.add_panel(placeholder, "Training monitor", "monitorDock", Qt.DockWidgetArea.RightDockWidgetArea)
        self.add_panel(self.jobs_panel, "Jobs", "jobsDock", Qt.DockWidgetArea.RightDockWidgetArea)
        self.add_panel(self.log, "Log", "logDock", Qt.DockWidgetArea.RightDockWidgetArea)
        self.splitDockWidget(self.docks["monitorDock"], self.docks["jobsDock"], Qt.Orientation.Vertical)
        self.add_panel(self.shortcuts_panel, "Keyboard shortcuts", "shortcutsDock", Qt.DockWidgetArea.LeftDockWidgetArea, visible=False)
        # Esc closes F1's panel from inside it (floating over the inspector it stayed up; newcomer session 17)
        self.shortcuts_panel.escape_pressed.connect(self.hide_shortcuts)
        self.tabifyDockWidget(self.docks["jobsDock"], self.docks["logDock"])
        self.docks["jobsDock"].raise_()
        self._default_state = self.saveState(STATE_VERSION)
        self.shortcuts_panel.set_actions(self.shortcut_groups())

    def shortcut_groups(self) -> list[tuple[str, list[QAction]]]:
        return [
            ("File", [self.act_new_workspace, self.act_open_workspace, self.act_open_dataset, self.act_open_encoder,
                      self.act_follow_run, self.act_export, self.act_quit]),
            ("Workspace", [self.act_anchors]),
            ("View", [self.act_overview, self.act_toggle_theme]),
            ("Run", [self.act_train, self.act_pause, self.act_resume, self.act_cancel, self.act_resume_run,
                     self.act_floor, self.act_trigger_asr, self.act_detect]),
            ("Help", [self.act_shortcuts]),
        ]

    def _create_status_bar(self) -> None:
        from naviewer.gui.status_bar import ElidingStatusBar

        status = ElidingStatusBar(self)
        self.setStatusBar(status)
        self.job_label = QLabel("")
        self.job_label.setObjectName("jobLabel")
        self.progress = QProgressBar()
        self.progress.setObjectName("jobProgress")
        self.progress.setFixedWidth(220)
        self.progress.setTextVisible(True)
        self.remaining_label = QLabel("")
        self.remaining_label.setObjectName("remainingLabel")
        status.addPermanentWidget(self.job_label)
        status.addPermanentWidget(self.progress)
        status.addPermanentWidget(self.remaining_label)
        self.progress.hide()
        # the bar's height kept while no job runs: the bar appearing made the status line a pixel taller, which
        # shrank the docks above and moved the analyst panel's columns as a fine-tune started (a newcomer, session 25)
        status.setMinimumHeight(max(status.sizeHint().height(), self.progress.sizeHint().height() + 4))
        self._status_job: Optional[Job] = None
        self._status_timer = QTimer(self)
        self._status_timer.setInterval(500)
        self._status_timer.timeout.connect(self._update_status)
        status.showMessage("Ready", 3000)

    # --------------------------------------------------------------------- layout ----
    def _screen_text(self) -> str:
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        return "" if screen is None else f"{screen.width()}x{screen.height()}"

    def _saved_on_another_screen(self) -> bool:
        """Whether the saved layout was laid out on a screen a quarter or more wider or taller (or narrower)
        than this one: reopened at 1920x1080, a layout saved at 1280x720 kept its folded Overview and its tabbed
        Jobs and Log (a newcomer, session 19); the window is then laid out afresh for this screen."""
        saved, now = str(self.settings.value("window/screen") or ""), self._screen_text()
        try:
            (sw, sh), (nw, nh) = (tuple(int(v) for v in text.split("x")) for text in (saved, now))
        except ValueError:  # not recorded (an older naviewer) or no screen: restore as before
            return False
        return max(abs(nw - sw) / sw, abs(nh - sh) / sh) >= 0.25

    def _restore_layout(self) -> None:
        if self._saved_on_another_screen():
            self._layout_restored = False
            return
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        state = self.settings.value("window/state")
        self._layout_restored = isinstance(state, QByteArray) and not state.isEmpty() and self.restoreState(state, STATE_VERSION)

    def _default_sizes(self) -> None:
        """First run only: give the monitor most of the room (docks share space evenly otherwise)."""
        width, height = self.width(), self.height()
        overview = max(260, width // 6)  # 260 px was a narrow strip of wrapped lines on a 2048 px window
        self.resizeDocks([self.docks["overviewDock"], self.docks["monitorDock"]], [overview, max(400, width - overview)],
                         Qt.Orientation.Horizontal)
        # the Jobs list shows one row at 170 px; on a tall window it gets three (at 1920x1080 a finished job scrolled
        # out of its one row looked gone; a newcomer, session 30)
        jobs = 170 if height < 900 else 240
        self.resizeDocks([self.docks["monitorDock"], self.docks["jobsDock"]], [max(300, height - jobs - 160), jobs],
                         Qt.Orientation.Vertical)

    def save_layout(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(STATE_VERSION))
        self.settings.setValue("window/screen", self._screen_text())
        self.settings.setValue("view/theme", self.theme_manager.theme.name)
        self.settings.sync()

    def reset_layout(self) -> None:
        """View > Reset layout: the panels as first laid out, the analyst (when open) a tab beside the monitor
        again and laid out for the window's size, which stays what it was. (The saved default state predates
        the analyst's dock, so restoring it alone stacked that dock under the others: the window grew past a
        720 px screen and the gallery shrank to one row.)"""
        size = self.size()
        before = self._dock_tab_bars()
        self.restoreState(self._default_state, STATE_VERSION)
        self._default_sizes()
        dock = self.docks.get("analystDock")
        if dock is not None and getattr(self, "analyst_dock", None) is not None:
            self.tabifyDockWidget(self.docks["monitorDock"], dock)
            self.resize(size)
            self.make_room_for(dock)
            dock.show()
            dock.raise_()
            panel = self.analyst_dock.panel
            # the Analyst's own splitters too: a narrowed gallery stayed narrow after Reset layout (a newcomer)
            QTimer.singleShot(0, panel, panel.reset_sizes)  # (the panel's own: dropped if it goes first)
        self.resize(size)
        QTimer.singleShot(0, lambda: self.hide_stale_tab_bars(before))

    def _dock_tab_bars(self) -> list[QTabBar]:
        return [bar for bar in self.findChildren(QTabBar, options=Qt.FindChildOption.FindDirectChildrenOnly)
                if bar.isVisible()]

    def hide_stale_tab_bars(self, before: list[QTabBar]) -> None:
        """Hide the dock tab bars that restoreState left behind (``before``: the bars shown before it): Qt
        makes new bars for the restored layout but keeps the old ones shown at their old place, so after
        Reset layout a second "Training monitor | Analyst" row sat in the middle of the analyst. An old bar
        goes when a new one shows the same tabs, or when it no longer lies along the dock its current tab
        names; Qt shows a bar again whenever it reuses it."""
        shown = self._dock_tab_bars()
        tabs = lambda bar: tuple(bar.tabText(i) for i in range(bar.count()))  # noqa: E731
        renewed = {tabs(bar) for bar in shown if bar not in before}
        docks = {dock.windowTitle(): dock for dock in self.findChildren(QDockWidget)
                 if dock.isVisible() and not dock.isFloating()}
        for bar in shown:
            if bar not in before:
                continue
            dock = docks.get(bar.tabText(bar.currentIndex()))
            misplaced = dock is None or abs(dock.x() - bar.x()) > 2 or abs(dock.width() - bar.width()) > 2
            if tabs(bar) in renewed or misplaced:
                bar.hide()

    def toggle_overview(self) -> None:
        """F9: show the Overview, or fold it away (its room goes to the other panels)."""
        dock = self.docks["overviewDock"]
        dock.setVisible(dock.isHidden())
        self.act_overview.setChecked(not dock.isHidden())

    def make_room_for(self, dock: QDockWidget) -> None:
        """A large view (the analyst) was docked: lay the window out for its size. Narrower than
        1600 px the Overview folds away (F9 or the toolbar's Overview brings it back); lower than 900
        px the Jobs and Log panels join the view's tabs instead of a strip under it (the status bar
        still shows a running job's progress)."""
        overview = self.docks["overviewDock"]
        if self.width() < 1600 and not overview.isHidden():
            overview.hide()
            self.statusBar().showMessage("The Overview is folded away to give the analyst room: F9 shows it.", 10000)
        elif not overview.isHidden() and overview.width() > self.width() // 3:
            # first open at 1920x1080 left the Overview 897 px wide and mostly empty beside a squeezed analyst
            self.resizeDocks([overview, dock], [260, max(400, self.width() - 260)], Qt.Orientation.Horizontal)
        jobs, log = self.docks["jobsDock"], self.docks["logDock"]
        if self.height() < 900:
            for other in (jobs, log):
                if dock not in self.tabifiedDockWidgets(other):
                    self.tabifyDockWidget(dock, other)
        elif not jobs.isHidden():
            # three rows of jobs on a window of 1000 px and more: one row's strip scrolled a finished job out of sight
            # and it looked gone (a newcomer at 1920x1080, session 30)
            strip = 230 if self.height() >= 1000 else 130  # 1000 px: three rows; below, one (the analyst needs the
            # room more; the list keeps its newest job in view)
            self.resizeDocks([dock, jobs], [max(400, self.height() - 130 - strip), strip], Qt.Orientation.Vertical)
        dock.raise_()

    # ---------------------------------------------------------------------- theme ----
    def set_theme(self, name: str) -> None:
        self.theme_manager.apply(name)
        self.settings.setValue("view/theme", name)

    def toggle_theme(self) -> None:
        self.set_theme("dark" if self.theme_manager.theme.name == "light" else "light")

    def _on_theme_changed(self, theme) -> None:
        action = self.theme_actions.get(theme.name)
        if action is not None:
            action.setChecked(True)
        if self.monitor is not None:
            self.monitor.set_theme(theme)
        dock = getattr(self, "analyst_dock", None)
        if dock is not None and getattr(dock, "panel", None) is not None and not getattr(dock, "_removed", False):
            dock.panel.set_theme(theme)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        """Shrunk below the analyst's large-screen layout (a maximised window made 1280x700): laid out again for the
        new size, as the analyst's first open does; the map stood 100 px tall and the inspector's buttons were cut
        until View ▸ Reset layout (a newcomer, session 30)."""
        super().resizeEvent(event)
        old, new = event.oldSize(), event.size()
        dock = self.docks.get("analystDock") if hasattr(self, "docks") else None
        if (dock is None or getattr(self, "analyst_dock", None) is None or dock.isHidden() or old.height() <= 0
                or not self._shown_once):
            return
        if (old.height() >= 900 > new.height()) or (old.width() >= 1600 > new.width()):
            QTimer.singleShot(0, lambda d=dock: d is self.docks.get("analystDock") and self.make_room_for(d))

    # ------------------------------------------------------------------ first show ----
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            if not self._layout_restored:
                self._default_sizes()
            QTimer.singleShot(0, self.first_shown.emit)
            # the window manager's frame is known only once the window is mapped: on a loaded machine it came after
            # 400 ms and the status bar stayed off a 720 px screen (a newcomer, session 30)
            for delay in (0, 400, 1500, 4000):
                QTimer.singleShot(delay, self._fit_frame_to_screen)
            # pyqtgraph takes ~0.5 s to import: only after the window is on screen.
            QTimer.singleShot(30, self.ensure_monitor)

    def _fit_frame_to_screen(self) -> None:
        """Keep the whole frame, title bar included, on the screen: resize() sizes the inside, so on a
        1280x720 screen the window was 745 px tall and its status bar (job progress, every notice) off-screen."""
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        if screen is None or self.isMaximized() or self.isFullScreen():
            return
        if QApplication.platformName() in ("offscreen", "minimal"):  # no window manager, no real screen to fit
            return
        frame, inner = self.frameGeometry(), self.geometry()
        extra_w, extra_h = frame.width() - inner.width(), frame.height() - inner.height()
        if frame.height() <= screen.height() and frame.width() <= screen.width():
            return
        self.resize(min(inner.width(), screen.width() - extra_w), min(inner.height(), screen.height() - extra_h))
        frame = self.frameGeometry()
        self.move(min(max(frame.left(), screen.left()), screen.right() + 1 - frame.width()),
                  min(max(frame.top(), screen.top()), screen.bottom() + 1 - frame.height()))

    def ensure_monitor(self):
        """Build the training monitor (imports pyqtgraph) if not built yet, and return it."""
        if self.monitor is None:
            from naviewer.gui.monitor import TrainingMonitor
            from naviewer.gui.theme import configure_pyqtgraph

            configure_pyqtgraph(self.theme_manager.theme)
            self.monitor = TrainingMonitor(self.theme_manager.theme)
            old = self.docks["monitorDock"].widget()
            self.docks["monitorDock"].setWidget(self.monitor)
            if old is not None:
                old.deleteLater()
            if self._pending_job_for_monitor is not None and self._pending_job_for_monitor.running:
                self.monitor.attach_job(self._pending_job_for_monitor)
                self._show_floor(self.state.workspace)
            elif self._pending_follow is not None:
                self.monitor.follow(self._pending_follow)
                self._show_floor(self._pending_follow)
            self._pending_job_for_monitor = self._pending_follow = None
            self.monitor_ready.emit(self.monitor)
            # Everything built so far lives as long as the window: move it out of the cyclic
            # collector's view so full collections later stay short (no GUI pauses while training).
            import gc

            gc.freeze()
        return self.monitor

    # ------------------------------------------------------------------------ jobs ----
    def start_job(
        self,
        function: JobFunction,
        name: str,
        resources=(),
        kind: str = "job",
        torch_threads: Optional[int] = None,
        on_success: Optional[Callable[[Job], None]] = None,
    ) -> Optional[Job]:
        """Start a background job; a conflict is shown to the user and gives None."""
        try:
            job = self.jobs.start(function, name, resources=resources, kind=kind, torch_threads=torch_threads)
        except JobConflict as exc:
            self.inform("Cannot start this job", str(exc), QMessageBox.Icon.Information)
            return None
        if on_success is not None:
            job.finished.connect(lambda state, job=job: on_success(job) if state == JobState.FINISHED.value else None)
        return job

    def _on_job_started(self, job: Job) -> None:
        current = self._status_job
        # a training keeps the status line against a short job beside it: a t-SNE hid the floor's progress there (a
        # newcomer, session 26); the Jobs list shows both
        if not (current is not None and current.running and current.kind == "training" and job.kind != "training"):
            self._status_job = job
        self._update_actions()  # Cancel follows a fine-tune or detection too
        job.progress.connect(lambda *_a, job=job: self._update_status() if job is self._status_job else None)
        job.event.connect(lambda kind, data, job=job: self._log_event(job, kind, data))
        self.state.log(f"started: {job.name}")
        self._status_timer.start()
        self._update_status()

    def _on_job_finished(self, job: Job) -> None:
        self._update_actions()
        text = {JobState.FINISHED: "finished", JobState.CANCELLED: "cancelled", JobState.FAILED: "failed"}[job.state]
        self.state.log(f"{text}: {job.name}" + (f" — {job.error_message()}" if job.state is JobState.FAILED else ""))
        if not (job.kind == "estimate" and job.state is JobState.CANCELLED):  # superseded by the next edit's
            self.statusBar().showMessage(f"{job.name}: {text}", 5000)
        if job is self._status_job:
            running = self.jobs.running_jobs()
            self._status_job = running[-1] if running else None
        if job is self.training_job and not job.running:
            self.state.set_training(None)
        self._update_status()
        # its "Next:" line follows: it still said "the training runs" after the floor's training had ended (a
        # newcomer, session 26)
        self.overview.refresh()
        if (job.kind == "training" and job.state in (JobState.CANCELLED, JobState.FAILED) and not self._closing
                and self.workspace_path is not None):  # a run it stopped is resumable now: Resume says so
            path = self.workspace_path
            QTimer.singleShot(0, lambda: self.open_workspace(path) if self.workspace_path == path else None)
        owner = getattr(job, "error_owner", None)  # a dialog still open that says the failure itself
        try:
            owner = owner if owner is not None and owner.isVisible() else None
        except RuntimeError:  # closed and deleted meanwhile
            owner = None
        if job.state is JobState.FAILED and not self._closing and job.kind != "estimate" and owner is None:
            self.show_job_error(job)  # (the Train dialog says itself why its speed estimate failed)
        elif job.state is JobState.FINISHED and job.warnings and not self._closing:
            # opening a dataset says its problems every time (what was asked for); any other job (Detect, Fine-tune,
            # Train) says a dataset's warning once in a box, then in the Log only
            fresh = self.unsaid_warnings(job.warnings, again=job.kind == "dataset")
            if fresh:
                self.show_job_warnings(job, fresh)
            else:  # said before in a box: the Log has them, the status bar says so
                self.statusBar().showMessage(f"{job.name}: the same warnings as before (see the Log tab)", 8000)

    def _update_status(self) -> None:
        job = self._status_job
        if job is None or not job.running:
            self.progress.hide()
            self.job_label.setText("")
            self.remaining_label.setText("")
            self._status_timer.stop()
            QTimer.singleShot(0, self.statusBar().refit)
            return
        self.set_job_label(f"{job.name}: {job.message}" if job.message else job.name)
        fraction = job.run_fraction if job.run_fraction is not None else job.fraction
        if fraction is None:
            self.progress.setRange(0, 0)  # busy indicator
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))
            self.progress.setFormat(f"{fraction * 100:.0f} %")
        self.progress.show()
        state = "" if job.state is JobState.RUNNING else job.state.value
        self.remaining_label.setText(state or remaining(job.remaining_s))

    def set_job_label(self, text: str) -> None:
        """The running job's line at the right of the status bar, cut with "…" to half the bar's width (the whole of
        it in the tooltip): at full length it ran left over the bar's messages, two texts drawn on top of each other
        during a retrain (a newcomer at 1280x720, session 26)."""
        room = max(160, self.statusBar().width() // 2)
        shown = self.job_label.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, room)
        self.job_label.setText(shown)
        self.job_label.setToolTip(text if shown != text else "")
        QTimer.singleShot(0, self.statusBar().refit)  # a passing message ends where the line now begins

    #: warnings a box lists (the rest: "and N more", all of them in the Log)
    WARNINGS_SHOWN = 6

    def unsaid_warnings(self, warnings: list[str], again: bool = False) -> list[str]:
        """``warnings`` without repeats and (unless ``again``) without those a box already showed in this window (then
        remembered): "cat/notes.txt was skipped" came back as a box on every Detect and Fine-tune, twice in one box at
        the creation (a newcomer, session 19). The Log keeps every one."""
        said = self._warnings_said
        fresh = [w for w in dict.fromkeys(warnings) if again or w not in said]
        said.update(fresh)
        return fresh

    def show_job_warnings(self, job: Job, warnings: Optional[list[str]] = None) -> QMessageBox:
        """What a finished job warned of (unreadable images, empty classes, repeated list entries): in a box, since
        the Log tab is where nobody looks and the terminal where nobody is (newcomer session 16)."""
        warnings = list(job.warnings if warnings is None else warnings)
        shown = warnings[:self.WARNINGS_SHOWN]
        more = len(warnings) - len(shown)
        text = "\n\n".join(shown) + (f"\n\n... and {more} more (see the Log tab)" if more else "")
        return self.inform(f"{job.name}: {'a warning' if len(warnings) == 1 else f'{len(warnings)} warnings'}",
                           text, QMessageBox.Icon.Warning)

    def show_job_error(self, job: Job) -> QMessageBox:
        """A readable message; the traceback only on demand, and never for a NaviewerError."""
        details = "" if isinstance(job.error, NaviewerError) else job.error_details
        return self.inform(f"{job.name} failed", job.error_message(), QMessageBox.Icon.Warning, details)

    def inform(self, title: str, text: str, icon=QMessageBox.Icon.Information, details: str = "") -> QMessageBox:
        """A window-modal message box that does not block the event loop (jobs keep reporting)."""
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self)
        if details:
            box.setDetailedText(details)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.last_message_box = box
        box.open()
        return box

    # ------------------------------------------------------------------------- log ----
    def _log_event(self, job: Job, kind: str, data: dict) -> None:
        from naviewer.gui.format import event_text

        if kind == "checkpoint" and not (isinstance(data, dict) and data.get("tag")):
            return  # the save every epoch: one Log line an epoch buried the rest (a newcomer, session 19); a cancel
            # and the end say where the last checkpoint is
        text = event_text(kind, data)
        line = f"{job.name}: {text}"
        # a cancel at an epoch's end saved the same checkpoint twice: the Log said it twice (newcomer session 18)
        if text and line != self._last_event_line:
            self.state.log(line)
        self._last_event_line = line

    # ---------------------------------------------------------------- file actions ----
    def _ask_directory(self, title: str, start: str = "", kind: str = "workspace", remember: bool = True) -> Optional[Path]:
        path = QFileDialog.getExistingDirectory(self, title, start or start_folder(self.settings, kind))
        if path and remember:
            remember_folder(self.settings, kind, path)
        return Path(path) if path else None

    def open_workspace_dialog(self) -> None:
        # said before the folder chooser, not after a folder was picked (a newcomer, session 33)
        if self._training_holds_the_window(None, "open another workspace"):
            return
        # remembered once it opened: a folder refused as a workspace became the next demo's home (a newcomer, session 29)
        path = self._ask_directory("Open workspace", remember=False)
        if path:
            self.open_workspace(path, remember=True)

    def new_workspace_dialog(self):
        """File ▸ New workspace…: the dataset (the open one by default), the folder, DIFT's anchors (from the
        labels, NOT trusted, unless a trusted set is named) and optionally an attack to craft with its
        test-time protocol; accepting it runs :meth:`new_workspace`. Not modal; returns the dialog."""
        from naviewer.gui.new_workspace_dialog import NewWorkspaceDialog

        if self._training_holds_the_window(None, "create a new workspace"):  # before its form is filled
            return None
        dialog = NewWorkspaceDialog(self, dataset=self.dataset_path)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.creator = lambda values: self.new_workspace(**values)
        self.new_workspace_dialog_widget = dialog
        dialog.open()
        return dialog

    def open_dataset_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open dataset folder (CIFAR batches or image folders)",
                                                start_folder(self.settings, "dataset"))
        if path:
            remember_folder(self.settings, "dataset", path)
            self.open_dataset(path)

    def open_dataset_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open dataset file list", start_folder(self.settings, "dataset"),
                                              "File lists and manifests (*.txt *.csv);;All files (*)")
        if path:
            remember_folder(self.settings, "dataset", path)
            self.open_dataset(path)

    def open_encoder_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open encoder checkpoint", start_folder(self.settings, "encoder"),
                                              "PyTorch checkpoints (*.pt *.pth);;All files (*)")
        if path:
            remember_folder(self.settings, "encoder", path)
            self.open_encoder(path)

    def open_path(self, path: os.PathLike | str) -> None:
        """``naviewer PATH``: a workspace opens, a run folder is followed; anything else is said in a dialog (a
        mistyped name waited for ever for a run's metrics; newcomer session 17)."""
        target = Path(path).expanduser()
        if target.exists() and not target.is_dir() and not target.is_file():  # a pipe was followed as a run folder
            self.inform("Open", f"{target} is not a regular file or folder (a pipe, socket or device): naviewer PATH "
                        "opens a workspace folder or follows a run folder.", QMessageBox.Icon.Warning)
        elif target.is_dir() and ((target / "workspace.toml").exists() or (target / "workspace.toml").is_symlink()):
            self.open_workspace(target)  # (a damaged workspace.toml is said there, not "no workspace.toml")
        elif target.is_dir() and ((target / "metrics.jsonl").is_file() or (target / "dift_state.json").is_file()):
            self.follow_run(target)
        elif not target.exists():
            self.inform("Open", f"{target}: no such file or folder. naviewer PATH opens a workspace folder (holding "
                        "workspace.toml) or follows a run folder (holding metrics.jsonl); to follow a run that has "
                        "not started yet, use --follow PATH.", QMessageBox.Icon.Warning)
        elif target.is_dir():
            self.inform("Open", f"{target} is neither a workspace (no workspace.toml) nor a run folder (no "
                        "metrics.jsonl). To inspect a dataset, make a workspace from it: File ▸ New workspace…",
                        QMessageBox.Icon.Warning)
        else:
            self.follow_run(target)  # metrics.jsonl itself, or said there

    def follow_run_dialog(self) -> None:
        start = str(self.workspace_path / "runs") if self.workspace_path else ""
        path = self._ask_directory("Follow a run folder (holding metrics.jsonl)", start, kind="run")
        if path:
            self.follow_run(path)

    def export_dialog(self):
        """File ▸ Export…: the export dialog (manifests and the HTML review report); returns it. With the
        analyst docked on the open workspace it is the panel's (its session, map and plots)."""
        if self.workspace_path is None:
            self.inform("Export", "Open a workspace first: exports are written from a workspace's review decisions.")
            return None
        dock = self.analyst_dock
        if dock is not None and Path(dock.path) == Path(self.workspace_path):
            self.export_dialog_widget = dock.panel.open_export_dialog()
            return self.export_dialog_widget
        from naviewer.gui.analyst.export_dialog import ExportDialog

        try:
            dialog = ExportDialog.for_workspace(self.workspace_path, self, job_manager=self.jobs)
        except NaviewerError as exc:
            self.inform("Cannot export", str(exc), QMessageBox.Icon.Warning)
            return None
        if self.training_job is not None and self.training_job.running:
            dialog.note_training_running()
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.exported.connect(self.show_export_result)
        self.export_dialog_widget = dialog
        dialog.open()
        return dialog

    def note_review_change(self) -> None:
        """A decision in the analyst panel: the Overview's Next and the export's currency follow it (only the Next
        line is redone: a decision is a key press, and the rest of the Overview looks on disk)."""
        self.review_serial += 1
        self.overview.refresh_next_step()

    def export_state(self) -> tuple[Optional[str], bool]:
        """(the open workspace's latest export folder, whether no decision changed since): the one made in this window,
        else the newest in its exports/ as the workspace opened (newer than its last decision then)."""
        made = self.last_export
        if made and made[0] == self.workspace_path:
            return made[1], made[2] == self.review_serial
        found = self.state.workspace_summary.get("last_export") if self.workspace_path is not None else None
        if isinstance(found, dict) and found.get("folder"):
            return str(found["folder"]), bool(found.get("current")) and self.review_serial == self._serial_at_open
        return None, False

    def review_progress(self) -> Optional[tuple[int, int]]:
        """(flags decided, flags) of the analyst panel on the open workspace; None without one."""
        dock = self.analyst_dock
        panel = getattr(dock, "panel", None)
        if panel is None or self.workspace_path is None or Path(dock.path) != Path(self.workspace_path):
            return None
        counts = panel.session.review_counts()
        return counts["confirmed"] + counts["rejected"], sum(counts.values())

    def _finetune_gate(self) -> Any:
        """The open analyst panel's Fine-tune tab, or None."""
        return getattr(getattr(self.analyst_dock, "panel", None), "finetune_gate", None)

    def review_acted_on(self) -> bool:
        """The open pass's fine-tune / retrain is done, on the decisions as they are now."""
        gate = self._finetune_gate()
        return bool(gate is not None and gate.acted_on_these_decisions())

    def review_retrains(self) -> bool:
        """The open pass's Fine-tune tab offers Remove and retrain (a DIFT run whose recipe retrains); a post-hoc pass
        fine-tunes, and the window's retrain without the confirmed samples is Run ▸ Train's Leave out."""
        return bool(getattr(self._finetune_gate(), "retrains", False))

    def show_export_result(self, folder: str, message: str) -> QMessageBox:
        """Say where an export went: a message box, the log and the status bar."""
        self.last_export = (self.workspace_path, folder, self.review_serial)
        self.overview.refresh()
        self.state.log(message.replace("\n\n", " "))
        self.statusBar().showMessage(f"Exported to {folder}", 15000)
        return self.inform("Export finished", message)

    def open_workspace(self, path: os.PathLike | str, *, announce: str = "", remember: bool = False) -> Optional[Job]:
        """Open ``path`` in a job; ``announce``: said in the status bar once it is open; ``remember``: the folder
        becomes the workspace dialogs' start once it has opened (never one refused)."""
        path = Path(path).expanduser().absolute()
        if self._training_holds_the_window(path, f"open {path.name}"):
            return None

        def done(job: Job) -> None:
            if self._training_holds_the_window(path, f"open {path.name}"):  # a training started while it opened
                return
            if remember:
                remember_folder(self.settings, "workspace", str(path))
            self.state.set_workspace(path, job.result)
            if announce:  # after the jobs' own "finished" line, which would replace it
                QTimer.singleShot(0, lambda: self.statusBar().showMessage(announce, 15000))

        return self.start_job(lambda ctx: tasks.workspace_summary(path, ctx), f"Open workspace {path.name}",
                              resources=[f"workspace:{path}"], kind="workspace", on_success=done)

    def _training_holds_the_window(self, path: Optional[Path], verb: str) -> bool:
        """Whether a running training keeps ``path`` (another workspace or dataset; None: any other, before a chooser)
        from being opened, said in a box ("... then ``verb`` NAME"): opened anyway, the Overview showed the first
        workspace's run as the new one's and Pause / Cancel acted on it (a GUI probe, session 33). The training's
        own workspace opens again as before (a job's end reopens it)."""
        job = self.training_job
        current = self.workspace_path
        if job is None or not job.running or (path is not None and current is not None
                                              and os.path.realpath(current) == os.path.realpath(path)):
            return False
        where = f"on {Path(current).name}" if current is not None else "on the open dataset"
        # (a paused training still holds the window: "pause it first" could not work; a review)
        self.inform("A training is running",
                    f"'{job.name}' is running {where}: cancel it first (Run ▸ Cancel checkpoints it; Run ▸ Resume "
                    f"interrupted run goes on from there later), or let it end, then {verb}. The "
                    "window follows one workspace at a time.", QMessageBox.Icon.Warning)
        return True

    def new_workspace(self, path: os.PathLike | str, dataset: Optional[os.PathLike | str] = None, *,
                      anchors_per_class: int = 10, seed: int = 0,
                      test_dataset: Optional[os.PathLike | str] = None, anchors: Optional[str] = None,
                      attack: Optional[str] = None, attack_settings: Optional[dict] = None,
                      test_protocol: Optional[str] = None) -> Optional[Job]:
        """Create a workspace over ``dataset`` (default: the open one) in a job, as ``naviewer new`` does.

        The same workflow as the CLI records the DIFT anchors (``anchors``: an ``--anchors`` SPEC; None:
        from the labels, NOT trusted, or with ``attack`` from the clean set before poisoning) and the
        evaluation sets (the source's test split where it has one), so nothing is computed later that
        the CLI would have recorded. ``attack`` crafts that attack into the (clean) dataset, its ASR
        measured with ``test_protocol``."""
        path = Path(path).expanduser().absolute()
        if self._training_holds_the_window(path, f"create {path.name}"):
            return None
        from naviewer.data.sources import is_builtin

        if dataset is not None and is_builtin(str(dataset)):
            source: "Optional[Path | str]" = str(dataset).strip().lower()
        else:
            source = Path(dataset).expanduser().absolute() if dataset is not None else self.dataset_path
        if source is None:
            self.inform("New workspace", "Open a dataset first: a workspace is created over a dataset "
                        "(as `naviewer new WORKSPACE --dataset DATASET`).", QMessageBox.Icon.Information)
            return None
        test = Path(test_dataset).expanduser().absolute() if test_dataset is not None else None

        def done(job: Job) -> None:
            result = job.result or {}
            trust = "trusted" if result.get("anchors_trusted") else "NOT trusted"
            crafted = (f"; {result['attack']} crafted, ASR test-time protocol {result.get('test_protocol')}"
                       if result.get("attack") else "")
            self.state.log(f"created workspace {path}: {result.get('samples', 0):,} samples; "
                      f"{result.get('anchors', 0)} anchors ({result.get('anchors_kind', 'labels')}, {trust}); "
                      f"test set for evaluation: {'yes' if result.get('test_set') else 'none'}{crafted}")
            if self._training_holds_the_window(path, f"open {path.name}"):  # a training started while it was made
                return
            self.state.set_workspace(path, result)
            if result.get("poisons_text"):  # "10 %" asked, 8.98 % recorded, unexplained (a newcomer)
                self.state.log(f"crafted {result['poisons_text']}")
            if not result.get("anchors_trusted", True):
                self.statusBar().showMessage("DIFT's anchors were drawn from the dataset's labels: NOT trusted "
                                             "(Workspace ▸ Anchors… names a trusted set).", 15000)
            if result.get("attack") and not result.get("test_set"):
                # only the Log said "test set for evaluation: none", and the monitor never showed an ASR (a newcomer)
                self.inform("No attack success rate for this workspace",
                            f"{result['attack']} was crafted into the dataset, but the dataset has no test split, so "
                            "the attack success rate (ASR) cannot be measured: the monitor shows no ASR and the "
                            "Fine-tune tab compares without it. Detection works as before.\n\nTo measure it, use a "
                            "dataset with train/ and test/ folders (or CIFAR batches), or give a test set on the "
                            "command line: naviewer new WORKSPACE --dataset D --test-dataset T --attack "
                            f"{result['attack']}.")

        def job(ctx) -> dict:
            return tasks.create_workspace(path, source, ctx, anchors_per_class=anchors_per_class, seed=seed,
                                          test_dataset=test, anchors=anchors, attack=attack,
                                          attack_settings=attack_settings, test_protocol=test_protocol)

        return self.start_job(job, f"Create workspace {path.name}",
                              resources=[f"workspace:{path}"], kind="workspace", on_success=done)

    def _on_workspace(self, previous: Optional[Path]) -> None:
        """The state's workspace was set (opened, created, or opened again): the views follow."""
        path = self.state.workspace
        if self.state.workspace_switched(previous):
            self._close_workspace_views()
        self._hold_workspace(path)
        self.setWindowTitle(self.state.title())
        self._update_actions()
        if path is None:
            return
        add_recent_workspace(self.settings, str(path))
        self._rebuild_recent_menu()
        runs = self.workspace_summary.get("runs") or []
        if runs and self.training_job is None:  # the reviewed pass's run, else the newest
            self.follow_run(self.workspace_summary.get("pass_run") or runs[-1])
        if self.workspace_summary.get("pass_id") is not None and self.training_job is None:
            from naviewer.gui.settings import pass_to_reopen

            latest = int(self.workspace_summary["pass_id"])
            chosen = pass_to_reopen(self.settings, str(path), latest)
            reviewing = getattr(self.analyst_dock, "pass_id", None) if not self.state.workspace_switched(previous) else None
            kept = reviewing is not None and int(reviewing) != latest and self.workspace_summary.get("pass_flagged") == 0
            seen = getattr(self, "_latest_seen", {})
            new_pass = seen.get(str(path)) != latest  # said only of a pass this open brought: a training that saved
            seen[str(path)] = latest                   # none named the older empty pass 4 (a newcomer, session 32)
            self._latest_seen = seen
            if kept:
                # a job's end opened its new pass over the one under review, filters and all, though it flagged
                # nothing (a resumed training's empty DIFT pass; a newcomer, session 30): the review stays
                chosen = int(reviewing)
                if new_pass:
                    self.statusBar().showMessage(f"The newest detection pass, {latest}, flagged nothing; pass {chosen}, "
                                                 "under review, stays open (Workspace ▸ Detection passes).", 20000)
                    self.state.log(f"detection pass {latest} flagged nothing; pass {chosen}, under review, stays open")
            if self.show_analyst(path, chosen) is None and chosen != latest:  # that pass is gone: the newest
                self.show_analyst(path, latest)
            elif chosen != latest and not kept:
                self.statusBar().showMessage(f"Opened detection pass {chosen}, the one you had open last; the newest "
                                             f"is pass {latest} (Workspace ▸ Detection passes).", 15000)

    #: the file a window holds locked while it has a workspace open (beside workspace.toml)
    WINDOW_LOCK = ".window.lock"

    def adopt_undo_batches(self, path: os.PathLike | str, session: Any) -> None:
        """The batches U may undo belong to this window, not to one panel: the first panel on a workspace takes its
        reviewer's earlier batches (none when another window has the workspace open: they are that one's), later
        panels (a pass switch, a job's end) go on with the same set. A new panel had taken every batch written
        before it, a second window's included, and forgotten its own window's (a review, session 29)."""
        held = getattr(self, "_undo_batches", None)
        if held is not None and held[0] == Path(path):
            session.use_own_batches(held[1])
            return
        if getattr(self, "workspace_shared", False):  # (a panel docked before any workspace lock was taken)
            session.undo_own_batches_only()
        self._undo_batches = (Path(path), session.own_batches)

    def _hold_workspace(self, path: Optional[Path]) -> None:
        """Hold ``path``'s window lock while it is open here; when another window (this process or another) holds
        it, say so: the same workspace was open in two windows without a word, both deciding and starting jobs
        (newcomer session 16). Not a refusal: the decisions of both are kept, and a run cannot be trained twice."""
        held = getattr(self, "_workspace_lock", None)
        if held is not None and path is not None and held[0] == path:
            return
        if held is not None:
            held[1].release()
            self._workspace_lock = None
        self.workspace_shared = False  # another window holds the lock: U undoes only this window's own decisions
        kept = getattr(self, "_undo_batches", None)
        if kept is None or path is None or kept[0] != Path(path):  # another workspace: its panels start afresh
            self._undo_batches = None
        if path is None:
            return
        from filelock import FileLock, Timeout

        lock = FileLock(path / self.WINDOW_LOCK, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            self.workspace_shared = True
            self.inform("Open in another window",
                        f"{path} is open in another naviewer window too. Decisions made in either are kept (the later "
                        "one wins for a sample), and a run is never trained by both at once; to be safe, review and "
                        "start jobs in one window and close the other.", QMessageBox.Icon.Warning)
            return
        except (OSError, NotImplementedError):  # a read-only folder, a file system without locks: nothing to hold
            return
        self._workspace_lock = (path, lock)

    def _close_workspace_views(self) -> None:
        """Another workspace becomes the open one: nothing of the previous one stays on screen under
        the new title. The analyst panel goes (and with it its keys in Help > Keyboard shortcuts); a
        run of the old workspace that the monitor follows is let go (a running job stays attached)."""
        if self.analyst_dock is not None:
            self._keep_analyst_view()
            self.analyst_dock.remove()
            self.analyst_dock = None
        if getattr(self, "anchors_dialog", None) is not None:
            self.anchors_dialog.close()
            self.anchors_dialog = None
        # a training that ended is let go too: its handle stays on the state, and the monitor kept the old
        # workspace's finished run under the new one's title (a newcomer, session 19)
        if self.training_job is None or not self.training_job.running:
            if self.monitor is not None and self.monitor.follower is not None:
                self.monitor.detach()
                self.monitor.reset()
            if self.monitor is not None:
                self.monitor.set_floor(None)
            self._pending_follow = None
            self.state.set_run(None)

    def open_dataset(self, path: os.PathLike | str) -> Optional[Job]:
        path = Path(path).expanduser().absolute()
        if self._training_holds_the_window(path, f"open {path.name}"):
            return None

        def done(job: Job) -> None:  # (its warnings are the job's: logged as they come, shown in a box at the end)
            if self._training_holds_the_window(path, f"open {path.name}"):  # a training started while it opened
                return
            self.state.set_dataset(path, job.result)

        return self.start_job(lambda ctx: tasks.dataset_summary(path, ctx), f"Open dataset {path.name}",
                              resources=[f"dataset:{path}"], kind="dataset", on_success=done)

    def open_encoder(self, path: os.PathLike | str) -> Optional[Job]:
        path = Path(path).expanduser().absolute()

        def done(job: Job) -> None:
            self.state.set_encoder(path)
            encoder = (job.result or {}).get("encoder")
            if encoder:
                self.state.log(f"encoder {path.name}: {encoder}")

        return self.start_job(lambda ctx: tasks.check_checkpoint(path, ctx), f"Open encoder {path.name}",
                              resources=[f"encoder:{path}"], kind="encoder", on_success=done)

    def export(self, out_dir: Optional[os.PathLike | str]) -> Optional[Job]:
        if self.workspace_path is None:
            return None
        path = self.workspace_path
        out = Path(out_dir) if out_dir else None

        def done(job: Job) -> None:
            from naviewer.gui.analyst.export_dialog import MANIFEST_NAMES

            self.show_export_result(str(job.result), f"Wrote {', '.join(MANIFEST_NAMES[:-1])} and {MANIFEST_NAMES[-1]} to {job.result}")

        return self.start_job(lambda ctx: tasks.export_workspace(path, out, ctx), f"Export {path.name}",
                              resources=[f"workspace:{path}"], kind="export", on_success=done)

    def follow_run(self, path: os.PathLike | str):
        """Monitor a run directory (or metrics.jsonl) written by another process. A path that does not exist is
        said in a dialog (it used to wait for ever for "metrics.jsonl ... yet" and was listed as the monitored run)."""
        path = Path(path).expanduser()
        if not path.exists() and not path.parent.is_dir():
            self.inform("Follow a run", f"{path}: no such folder. Choose a run folder (it holds metrics.jsonl), or "
                        "a workspace.", QMessageBox.Icon.Warning)
            return None
        if path.is_file() and path.suffix.lower() != ".jsonl":  # a checkpoint, an image: it waited for ever
            self.inform("Follow a run", f"{path} is a file, not a run folder (one holding metrics.jsonl) nor a "
                        "workspace folder (one holding workspace.toml)." + (
                            " To detect with this checkpoint, open its workspace and use Detect…"
                            if path.suffix.lower() in (".pt", ".pth", ".ckpt") else ""), QMessageBox.Icon.Warning)
            return None
        if path.is_dir() and not (path / "metrics.jsonl").exists() and not (path / "workspace.toml").exists():
            try:
                entries = [entry.name for entry in path.iterdir()][:200]
            except OSError:
                entries = []
            # an empty folder may be a run about to start; one holding other things is not a run (it waited for
            # ever, with nothing in the Log; a newcomer, session 29)
            if entries and not {"checkpoints", "config.json", "state.json"} & set(entries):
                self.inform("Follow a run", f"{path} holds no metrics.jsonl, nothing a naviewer training writes: it "
                            "is not a run folder. Choose a run's folder (WORKSPACE/runs/NAME, or the --out of naviewer "
                            "train) or a workspace folder.", QMessageBox.Icon.Warning)
                return None
        self.state.set_run(path)
        if self.monitor is None:
            self._pending_follow, self._pending_job_for_monitor = path, None
            return None
        follower = self.monitor.follow(path)
        self._show_floor(path)
        return follower

    def _show_floor(self, path: Optional[Path]) -> None:
        """The monitor's ASR plot shows the no-poison floor of the workspace that holds ``path`` (a run
        folder, or the workspace a training job trains in), if it has one."""
        from naviewer.gui.monitor import workspace_floor

        if self.monitor is not None:
            self.monitor.set_floor(workspace_floor(path))

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        items = recent_workspaces(self.settings)
        for path in items:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _c=False, p=path: self._open_recent(p))
        if not items:
            empty = self.recent_menu.addAction("(none yet)")
            empty.setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            clear = self.recent_menu.addAction("Clear list")
            clear.triggered.connect(self._clear_recent)

    def _open_recent(self, path: str) -> None:
        if not Path(path).is_dir():
            remove_recent_workspace(self.settings, path)
            self._rebuild_recent_menu()
            self.inform("Recent workspaces", f"{path}: the workspace no longer exists; removed from the list.")
            return
        self.open_workspace(path)

    def _toggle_reopen_last(self) -> None:
        self.settings.setValue("startup/reopen_last", self.act_reopen_last.isChecked())

    def reopen_last_workspace(self) -> Optional[Job]:
        """At start with no folder named: the workspace used last opens (with the pass reviewed last), unless File ▸
        Reopen the last workspace at start is off. A newcomer closed the window mid-review and came back to an empty
        one. A last workspace that is gone is only said in the status bar (no dialog before anything was asked)."""
        if not reopens_last_workspace(self.settings):
            return None
        items = recent_workspaces(self.settings)
        if not items:
            return None
        last = Path(items[0])
        if not (last / "workspace.toml").is_file():
            self.statusBar().showMessage(f"The last workspace, {last}, is gone; File ▸ Open workspace… opens another",
                                         15000)
            return None
        self.state.log(f"reopening the last workspace {last}")
        return self.open_workspace(last, announce=f"Reopened the last workspace, {last.name} (File ▸ Reopen the last "
                                                  "workspace at start turns this off)")

    def _clear_recent(self) -> None:
        self.settings.setValue("recent/workspaces", [])
        self._rebuild_recent_menu()

    # ---------------------------------------------------------------------- analyst ----
    def pass_choices(self) -> list[tuple[int, Optional[str], str]]:
        """(pass id, run, label) of every detection pass of the open workspace, newest first."""
        if self.workspace_path is None:
            return []
        from naviewer.workspace import Workspace

        try:
            with Workspace.open(self.workspace_path, read_only=True) as ws:
                rows = ws.store.passes()
                n = ws.store.sample_count()
        except NaviewerError as exc:
            self.state.log(f"cannot list the detection passes: {exc}")
            return []
        from naviewer.defense.sanity import flag_rate_warning
        choices = []
        for row in reversed(rows):
            where = f"run {row['run']}" if row.get("run") else "no run"
            when = f", epoch {int(row['epoch']) + 1}" if row.get("epoch") is not None else ", post-hoc"
            encoder = (row.get("settings") or {}).get("encoder") if isinstance(row.get("settings"), dict) else None
            if row.get("epoch") is None and isinstance(encoder, dict) and encoder.get("checkpoint"):
                # every Detect's passes read "run posthoc, post-hoc": which encoder each embedded with (session 28)
                where, when = f"post-hoc on {checkpoint_name(str(encoder['checkpoint']))}", ""
            # what each pass found, so the one to review can be chosen (with DIFT at 0 a newcomer had to guess)
            summary = (row.get("settings") or {}).get("summary") if isinstance(row.get("settings"), dict) else None
            found = ""
            if isinstance(summary, dict):
                if summary.get("noop"):
                    found = " · flagged nothing"  # not "no poison detected": the panel says it is no clean bill
                elif isinstance(summary.get("flagged"), (int, float)):
                    found = f" · {int(summary['flagged']):,} flagged"
                    if flag_rate_warning(row["method"], int(summary["flagged"]), n):  # the pass's warning, in the menu too
                        found += f" ({summary['flagged'] / n:.0%} of the samples: not plausible)"
                    from naviewer.analysis.reach import refused_reason

                    refused = refused_reason(row.get("settings"))
                    if refused:  # "0 flagged" hid that PatchSearch called a third of the samples poisoned
                        found += f" ({refused.split(':')[0]})"
            choices.append((int(row["id"]), row.get("run"),
                            f"Pass {row['id']}: {row['method']} ({where}{when}){found}"))
        return choices

    def _fill_passes_menu(self) -> None:
        menu = self.passes_menu
        menu.clear()
        choices = self.pass_choices()
        if not choices:
            menu.addAction("No detection pass in this workspace").setEnabled(False)
            return
        dock = getattr(self, "analyst_dock", None)
        shown = getattr(dock, "pass_id", None) if dock is not None else None
        for pass_id, run, label in choices:
            action = menu.addAction(label)
            action.setCheckable(True)
            action.setChecked(pass_id == shown)
            action.triggered.connect(lambda _checked=False, p=pass_id, r=run: self.show_analyst(self.workspace_path, p, r))

    def analyst_in_review(self, workspace: os.PathLike | str) -> bool:
        """The analyst panel shows a pass of ``workspace`` and is in use: the keyboard is in it, or a decision was made
        in it since it opened. A job that ends then offers its pass instead of replacing the one under review."""
        dock = self.analyst_dock
        panel = getattr(dock, "panel", None)
        if dock is None or panel is None:
            return False
        try:
            if Path(dock.path).resolve() != Path(workspace).resolve():
                return False
        except OSError:
            return False
        focus = QApplication.focusWidget()
        if focus is not None and (focus is panel or panel.isAncestorOf(focus)):
            return True
        return bool(getattr(panel, "reviewed_here", False))

    def show_analyst(self, workspace: os.PathLike | str, pass_id: Optional[int] = None, run: Optional[str] = None):
        """Dock the analyst panel on a detection pass of ``workspace`` (default: its latest); returns it.

        Fine-tuning from the panel resumes the pass's run (``naviewer finetune``) as a training job."""
        from naviewer.gui.analyst_dock import AnalystDock

        place, old = None, getattr(self, "analyst_dock", None)
        if old is not None:
            try:  # the same pass opened again (a job's end re-reads the workspace): the analyst's place is kept
                same = Path(old.path).resolve() == Path(workspace).resolve() and pass_id in (None, old.pass_id)
                place = (old.pass_id, old.panel.place()) if same else None
            except (OSError, RuntimeError, AttributeError):
                place = None
            self._keep_analyst_view()
            old.close()
        try:
            self.analyst_dock = AnalystDock(self, Path(workspace), pass_id, run)
        except (NaviewerError, OSError, ValueError) as exc:
            # a damaged side file raised a bare OSError / UnicodeDecodeError here: the workspace read as open with
            # no panel and no word (a GUI sweep); those are named where they are read now, and anything else that
            # slips through still says what it is
            self.analyst_dock = None
            from naviewer.io import describe_os_error

            text = (str(exc) if isinstance(exc, NaviewerError) else
                    f"{getattr(exc, 'filename', None) or workspace}: {describe_os_error(exc)}"
                    if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}")
            self.inform("Cannot open the analyst views", text, QMessageBox.Icon.Warning)
            return None
        from naviewer.gui.settings import analyst_view_to_reopen, remember_analyst_view, remember_reviewed_pass

        panel = self.analyst_dock.panel
        if place is not None and place[0] == self.analyst_dock.pass_id:
            panel.restore_place(place[1])
        else:
            panel.gallery.focus_first_pending()
            panel.restore_view(place[1] if place is not None else analyst_view_to_reopen(self.settings, str(workspace)))

        def keep_view(*_args, panel=panel, key=str(workspace)) -> None:
            remember_analyst_view(self.settings, key, panel.view())

        panel.inspector.evaluation_mode_changed.connect(keep_view)
        panel.map.colour_box.currentIndexChanged.connect(keep_view)

        latest = self.analyst_dock.ws.store.review_pass_id()  # what a reopen compares with (the default pass)
        if latest is not None:
            remember_reviewed_pass(self.settings, str(workspace), self.analyst_dock.pass_id, int(latest))
        try:  # the Overview's "Encoder … (the reviewed pass's)" follows the pass open now, not the one the workspace
            from naviewer.gui.tasks import _sources  # opened on (a newcomer, session 28); Detect… starts from it too

            sources = _sources(self.analyst_dock.ws, self.analyst_dock.pass_id)
            self.state.workspace_summary["encoder"] = sources.get("encoder")
            self.state.workspace_summary["encoder_path"] = sources.get("encoder_path")
        except (NaviewerError, OSError, KeyError, TypeError):
            pass
        self._serial_at_open = self.review_serial  # decisions after this are "since the export"
        self.overview.refresh()  # its "Next:" reads this pass's review
        return self.analyst_dock.panel

    def _keep_analyst_view(self) -> None:
        """The open analyst panel's view (:meth:`AnalystPanel.view`), kept for when its workspace opens again."""
        dock = getattr(self, "analyst_dock", None)
        if dock is None:
            return
        try:
            from naviewer.gui.settings import remember_analyst_view

            remember_analyst_view(self.settings, str(dock.path), dock.panel.view())
        except (RuntimeError, AttributeError, TypeError, ValueError):  # a panel already torn down: nothing to keep
            pass

    # ---------------------------------------------------------------------- anchors ----
    def show_anchors(self, workspace: Optional[os.PathLike | str] = None):
        """Workspace ▸ Anchors…: the Anchors view of ``workspace`` (default: the open one) in its own
        window, not modal; returns it. Replacing the anchors there updates the analyst's notice."""
        from naviewer.gui.anchors_view import AnchorsDialog

        path = Path(workspace) if workspace is not None else self.workspace_path
        if path is None:
            self.inform("Anchors", "Open a workspace first: DIFT's anchors belong to a workspace "
                        "(as `naviewer anchors WORKSPACE`).")
            return None
        dialog = getattr(self, "anchors_dialog", None)
        if dialog is not None and Path(dialog.workspace) == Path(path):
            if not dialog.view.busy:
                dialog.view.load()
        else:
            if dialog is not None:
                dialog.close()
            dialog = AnchorsDialog(path, self.start_job, self)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.destroyed.connect(lambda _o=None, d=dialog: self._forget_anchors_dialog(d))
            dialog.view.changed.connect(self._anchors_changed)
            self.anchors_dialog = dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def _forget_anchors_dialog(self, dialog) -> None:
        if getattr(self, "anchors_dialog", None) is dialog:
            self.anchors_dialog = None

    def _anchors_changed(self, overview: dict) -> None:
        """The anchors were replaced: say so, and let the analyst's notice follow."""
        from naviewer.workflows.anchor_sources import anchors_summary

        self.state.log(f"{Path(overview.get('workspace', '')).name}: {anchors_summary(overview)}")
        trusted = "trusted" if overview.get("trusted") else "NOT trusted"
        self.statusBar().showMessage(f"Anchors replaced: {overview.get('count', 0):,} {trusted} from "
                                     f"{overview.get('source')}; the next detection uses them.", 15000)
        dock = self.analyst_dock
        if dock is not None and Path(dock.path) == Path(overview.get("workspace", "")):
            dock.refresh_anchors()

    # -------------------------------------------------------------------- detection ----
    def _workspace_encoder(self) -> Optional[Path]:
        """The newest training of the workspace that ended (never one still running: its last.pt is half-trained) when
        it is newer than the reviewed pass's encoder: a newcomer trained a better encoder and Detect… offered the old
        one, the paths differing only in a time stamp (session 28); else the reviewed pass's encoder while its
        checkpoint is there (the Overview names it)."""
        found = self.state.workspace_summary.get("encoder_path")
        reviewed = Path(found) if found and Path(found).is_file() else None
        if self.workspace_path is None:
            return reviewed
        from naviewer.workspace.runs import finished_checkpoints

        finished = [c for c in finished_checkpoints(self.workspace_path)
                    if c.parent.name not in self._floor_runs()]  # the floor trains the clean set: no encoder to detect
        if not finished:                                            # with (a review, session 28)
            return reviewed
        try:
            newer = reviewed is None or finished[0].stat().st_mtime > reviewed.stat().st_mtime
        except OSError:
            newer = reviewed is None
        return finished[0] if newer else reviewed

    def _floor_runs(self) -> set[str]:
        """The open workspace's no-poison floor trainings (their encoders never saw the poisons)."""
        try:
            from naviewer.workspace import Workspace

            with Workspace.open(self.workspace_path, read_only=True) as ws:
                return {r["name"] for r in ws.store.runs() if r.get("kind") == "floor"}
        except (NaviewerError, OSError, TypeError):
            return set()

    def detect_dialog(self):
        """Run ▸ Detect (post-hoc): a dialog (non-blocking) for the encoder (the open one, else :meth:`_workspace_encoder`) and
        the detectors; accepting it runs :meth:`detect` with them. Returns the dialog (None without a workspace)."""
        if self.workspace_path is None:
            self.inform("Detect", "Open a workspace first: post-hoc detection ranks a workspace's samples "
                        "(as `naviewer detect WORKSPACE --checkpoint CKPT`).")
            return None
        start = self.workspace_path / "checkpoints"
        summary = self.state.workspace_summary
        own = self._workspace_encoder()  # (a glob of the workspace's checkpoints: read once)
        missing = str(summary.get("encoder") or "") if own is None else ""
        samples = summary.get("samples")
        dialog = DetectDialog(self, self.encoder_path or own,
                              start if start.is_dir() else self.workspace_path, self.detectors_chosen,
                              missing=missing, samples=samples if isinstance(samples, int) else None)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.detect_dialog_widget = dialog

        def run(d=dialog) -> None:
            self.detectors_chosen = d.detectors()
            self.detect(d.checkpoint(), detectors=d.detectors(), embeddings=d.embeddings())

        dialog.accepted.connect(run)
        dialog.open()
        return dialog

    def detect(self, checkpoint: os.PathLike | str, workspace: Optional[os.PathLike | str] = None, *,
               run: str = "posthoc", detectors: tuple[str, ...] = (),
               embeddings: Optional[os.PathLike | str] = None) -> Optional[Job]:
        """``naviewer detect WORKSPACE --checkpoint CHECKPOINT [--embeddings FILE]`` in a job; then the analyst docks
        on the pass.

        A bad checkpoint fails the job with a NaviewerError: a readable message, no traceback."""
        path = Path(workspace).expanduser().absolute() if workspace is not None else self.workspace_path
        if path is None:
            self.inform("Detect", "Open a workspace first.")
            return None
        checkpoint = Path(checkpoint).expanduser().absolute()

        def done(job: Job) -> None:
            result = job.result or {}
            s = result.get("summary") or {}
            self.state.log(f"post-hoc detection with {checkpoint.name}: pass {result.get('pass_id')}, "
                      f"{s.get('flagged', 0)} flagged" + (" (DIFT flagged nothing: no crowded group, not a clean bill)" if s.get("noop") else ""))
            if result.get("pass_id") is None:
                return
            new, flags = int(result["pass_id"]), detection_outcome(result)
            old = self.analyst_dock
            if old is not None and self.analyst_in_review(path):
                # the analyst is reviewing here: the new pass is offered, not switched to under their keys (a
                # Detect that ended mid-review moved the keys to another pass's tile and R rejected a sample never
                # looked at; a newcomer, session 19)
                text = (f"Detection ready ({flags}): Workspace ▸ Detection passes opens it. Pass {old.pass_id}, "
                        "under review, stays open.")
                self.state.log(text)
                # one click away, when the analyst chooses (the same Detect switched when no review was open, and
                # a newcomer read the two as inconsistent; session 27)
                import html

                gallery = old.panel.gallery
                # a link for each pass, the counts beside them (DIFT's alone opened an empty pass while patchsearch's
                # held the flags; a newcomer, session 27), first: the notice keeps to two lines
                metrics = result.get("detector_metrics") or {}
                passes = [("DIFT", new, int((result.get("summary") or {}).get("flagged") or 0))] + [
                    (name, int(pid), int((metrics.get(name) or {}).get("flagged") or 0))
                    for name, pid in (result.get("detector_passes") or {}).items()]
                # most flags first: at 1280x720 the line was cut before the pass that held them (a newcomer, s. 28)
                passes.sort(key=lambda item: -item[2])
                links = ", ".join(f'<a href="pass:{pid}">{html.escape(name)} {pid}</a> ({count:,})'
                                  for name, pid, count in passes)
                gallery.show_notice(f"Detection ready, open: {links}"
                                    + html.escape(f". Pass {old.pass_id}, under review, stays open."), sticky=True)
                # the latest Detect's: what the links open
                gallery.offered_pass = (path, {pid for _n, pid, _c in passes}, result.get("run"))
                # the pass under review is the one to reopen after a restart: the newer pass was offered, not chosen
                # (the window reopened on the offered empty pass; a newcomer, session 34)
                from naviewer.gui.settings import remember_reviewed_pass

                remember_reviewed_pass(self.settings, str(path), int(old.pass_id),
                                       max([new, *(pid for _n, pid, _c in passes)]))
                if not getattr(gallery, "offers_passes", False):
                    gallery.notice_link.connect(lambda href, g=gallery: self._open_offered_pass(g, href))
                    gallery.offers_passes = True
                return
            if result.get("detector_passes"):  # the others are a menu away: say where, and what they found
                metrics = result.get("detector_metrics") or {}
                flagged = {name: int((metrics.get(name) or {}).get("flagged") or 0)
                           for name in (result.get("detector_passes") or {})}
                best = _pass_to_open(flagged, metrics)
                if not int((result.get("summary") or {}).get("flagged") or 0) and best and flagged[best]:
                    # DIFT flagged nothing: the pass that holds flags opens (the empty DIFT pass opened while
                    # patchsearch's held 11; a newcomer, session 28)
                    new = int(result["detector_passes"][best])
                    fixed = sorted(n for n in flagged if _fixed_share(metrics.get(n)) and n != best)
                    text = (f"DIFT flagged nothing; opened {best}'s pass {new} ({flagged[best]:,} flagged)"
                            + (f"; {', '.join(fixed)} flag a fixed share of every set, found or not" if fixed and
                               not _fixed_share(metrics.get(best)) else "")
                            + ". Workspace ▸ Detection passes opens the others.")
                else:
                    text = f"Detection ready ({flags}). Workspace ▸ Detection passes opens the others."
                self.state.log(text)
                self.statusBar().showMessage(text, 30000)
            self.show_analyst(path, new, result.get("run"))

        what = f" and {', '.join(detectors)}" if detectors else ""
        features = Path(embeddings).expanduser().absolute() if embeddings is not None else None
        return self.start_job(lambda ctx: tasks.posthoc_detect(path, checkpoint, ctx, run=run, detectors=detectors,
                                                               embeddings=features),
                              f"Detect (post-hoc) with {checkpoint.name}{what}", resources=[f"workspace:{path}"],
                              kind="detection", torch_threads=tasks.training_threads(), on_success=done)

    def _open_offered_pass(self, gallery: Any, href: str) -> None:
        """The gallery notice's "open pass N" link, after a Detect that ended mid-review."""
        target = getattr(gallery, "offered_pass", None)
        if target is None or not href.startswith("pass:") or not href[5:].isdigit():
            return
        path, offered, run = target
        if int(href[5:]) in offered:
            self.show_analyst(path, int(href[5:]), run)

    # ------------------------------------------------------------------------- demo ----
    def demo_dialog(self, base: Optional[Path] = None) -> Optional[QMessageBox]:
        """Run ▸ Run the demo: what it does and where its workspace goes, then :meth:`start_demo`. A newcomer who
        started the window found four empty charts and no way to the demo but a terminal command (session 21).
        ``base``: the folder the workspace goes in (Another folder… asks for it; default: the last workspace
        folder chosen, else the folder naviewer started in)."""
        from naviewer.workflows.demo import default_workspace_path

        if self.training_job is not None and self.training_job.running:
            self.inform("Demo", f"'{self.training_job.name}' is running; pause or cancel it first.")
            return None
        path = default_workspace_path(Path(base) if base is not None else Path(start_folder(self.settings, "workspace")))
        box = QMessageBox(QMessageBox.Icon.Question, "Run the demo",
                          "The demo crafts Noisy Alignment poisons into the built-in digits, trains SimCLR with DIFT in "
                          "the loop (a few minutes on a CPU; the Training monitor shows it) and stops for your review "
                          f"in the Analyst panel.\n\nIts workspace: {path}",
                          QMessageBox.StandardButton.Ok | QMessageBox.StandardButton.Cancel, self)
        box.button(QMessageBox.StandardButton.Ok).setText("Run the demo")
        elsewhere = box.addButton("Another folder…", QMessageBox.ButtonRole.ActionRole)
        elsewhere.setToolTip("Choose the folder the demo's workspace goes in (a new folder is made inside it)")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.accepted.connect(lambda: self.start_demo(path))
        box.buttonClicked.connect(lambda button: self._demo_elsewhere(path.parent) if button is elsewhere else None)
        self.last_message_box = box
        box.open()
        return box

    def _demo_elsewhere(self, current: Path) -> None:
        """Another folder… in the demo's box (the demo could only go where the last workspace went; session 21)."""
        chosen = self._ask_directory("Run the demo: the folder its workspace goes in", str(current))
        self.demo_dialog(chosen if chosen is not None else current)

    def start_demo(self, path: os.PathLike | str, config: Any = None) -> Optional[Job]:
        """The demo into ``path`` in this window (``naviewer demo``'s controller): returns its job."""
        from naviewer.gui.demo_controller import DemoController
        from naviewer.workflows.demo import DemoConfig

        controller = DemoController(self, Path(path), config if config is not None else DemoConfig())
        self.demo_controller = controller
        return controller.start()

    # --------------------------------------------------------------------- training ----
    def training_source(self) -> str:
        return self.state.training_source()

    def train_dialog(self):
        """Open the Train dialog (non-blocking); accepting it starts training. Returns the dialog."""
        from naviewer.gui.train_dialog import TrainDialog

        if self.training_job is not None and self.training_job.running:
            self.inform("Train", f"'{self.training_job.name}' is already running; pause or cancel it first.")
            return
        if (self.training_job_factory is default_training_factory and self.workspace_path is None
                and self.dataset_path is None):
            # said before the form: a newcomer filled in every field and was refused at Train (session 21)
            self.inform("Train", "Open a workspace or a dataset first: a training runs on the open workspace's images "
                        "(File ▸ Open workspace…, File ▸ New workspace…, File ▸ Open dataset…; or Run ▸ Run the demo).")
            return
        env = cached_environment()
        n = self.state.samples
        last = self._last_train_settings()
        initial = (self.train_settings or self.state.workspace_summary.get("train_settings") or last or None)
        if initial is not None:
            # the Leave out box: the user's own last choice where it was offered, not the default: after a restart
            # it came back ticked on a user who had unticked it (a newcomer, session 28), and a training where it was
            # not offered left it unticked (a review)
            initial = {k: v for k, v in initial.items() if k != "leave_out_confirmed"}
            if "leave_out_confirmed" in last:
                initial["leave_out_confirmed"] = last["leave_out_confirmed"]
        dialog = TrainDialog(self, initial, n_samples=n, dift_available=self.workspace_path is not None
                             and self.training_job_factory is default_training_factory,
                             confirmed=self._confirmed_count() if self.training_job_factory is default_training_factory
                             else 0,
                             native_size=self.state.workspace_summary.get("native_size")
                             if self.workspace_path is not None else None,
                             available_devices=env.get("devices") if env else None,
                             source_description=self.training_source() or
                             "No workspace or dataset is open: the configured training job decides what it trains on.",
                             estimator=self._training_estimator(), job_manager=self.jobs,
                             measure_after_probe=env is None)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.probe.ready.connect(dialog.on_environment)  # a bound slot: dropped when the dialog goes
        self.probe.request()
        self.train_dialog_widget = dialog
        dialog.accepted.connect(lambda d=dialog: self.start_training(d.settings()))
        dialog.open()
        return dialog

    def _confirmed_count(self) -> int:
        """How many samples the open workspace's review confirmed as poisons (0 without one, or when unreadable)."""
        if self.workspace_path is None:
            return 0
        try:
            from naviewer.workspace import Workspace
            from naviewer.workspace.runs import confirmed_ids

            with Workspace.open(self.workspace_path, read_only=True) as ws:
                return int(len(confirmed_ids(ws)))
        except (NaviewerError, OSError):
            return 0

    def _training_estimator(self):
        """The Train dialog's speed measurement on the images the training job would take (the open
        workspace's, else the dataset's); None when nothing is open or another training job is configured."""
        if self.training_job_factory is not default_training_factory or not (self.workspace_path or self.dataset_path):
            return None
        from functools import partial

        from naviewer.gui.training import estimate_training_time

        workspace, dataset = self.workspace_path, None if self.workspace_path else self.dataset_path
        return lambda settings: partial(estimate_training_time, settings, workspace=workspace, dataset_path=dataset)

    def _last_train_settings(self) -> dict[str, Any]:
        """The form's fields as the last training started with them, in any session (a newcomer's next workspace
        offered ResNet-18 at width 64 again and spent 45 s measuring it before they could change it; session 22).
        Only the form's own fields with plain values: the settings file is the user's to edit."""
        from naviewer.gui.train_dialog import DEFAULTS

        from naviewer.io import json_loads

        raw = self.settings.value("train/last")
        try:
            saved = json_loads(raw) if isinstance(raw, str) else {}
        except ValueError:  # (json_loads says a document nested too deep as one)
            return {}
        if not isinstance(saved, dict):
            return {}
        out = {k: v for k, v in saved.items()
               if k in DEFAULTS and (v is None or isinstance(v, (str, int, float)) and not isinstance(v, bool))}
        if isinstance(saved.get("leave_out_confirmed"), bool):
            out["leave_out_confirmed"] = saved["leave_out_confirmed"]
        return out

    def start_training(self, settings: dict[str, Any]) -> Optional[Job]:
        """Start training with validated dialog settings through ``training_job_factory``."""
        self.train_settings = dict(settings)
        try:
            from naviewer.gui.train_dialog import DEFAULTS

            flat = {**settings, **{k: v for k, v in (settings.get("backbone") or {}).items() if k in ("arch", "width")}}
            kept = {k: flat.get(k) for k in DEFAULTS if k in flat}
            # offered whenever samples are confirmed: DIFT chosen over it is a "no" too, kept (else the form ticked
            # Leave out again over the user's DIFT the next time; a review, session 32)
            if settings.get("leave_out_confirmed") or self._confirmed_count() > 0:
                kept["leave_out_confirmed"] = bool(settings.get("leave_out_confirmed"))  # only where it was offered
            elif "leave_out_confirmed" in self._last_train_settings():  # else the choice made where it was stays
                kept["leave_out_confirmed"] = self._last_train_settings()["leave_out_confirmed"]
            self.settings.setValue("train/last", json.dumps(kept, default=str))
        except (TypeError, ValueError):
            pass
        try:
            function, run_dir = self.training_job_factory(dict(settings), self)
        except NaviewerError as exc:
            self.inform("Cannot train", str(exc), QMessageBox.Icon.Warning)
            return None
        resources = ["training"] + ([f"workspace:{self.workspace_path}"] if self.workspace_path else [])
        dift, path = bool(settings.get("dift")) and self.workspace_path is not None, self.workspace_path

        def done(job: Job) -> None:  # DIFT stopped for the review: the workspace opens on its flags (the Analyst)
            result = job.result if isinstance(job.result, dict) else {}
            self.open_workspace(path)
            if result.get("status") != "awaiting_review":  # it ended with nothing to review: said, not only in
                note = str(result.get("note") or "").strip()  # the run's record (a newcomer, session 22)
                # the job's warnings (the anchors do not separate their classes...) in the same box: they qualify this
                # verdict, and came as a second box stacked on it (a newcomer, session 27)
                fresh = self.unsaid_warnings(job.warnings) if job.warnings else []
                shown = fresh[:self.WARNINGS_SHOWN]
                warned = ("\n\nRead it with " + ("this warning" if len(fresh) == 1 else "these warnings") + ":\n\n"
                          + "\n\n".join(f"• {w}" for w in shown)
                          + (f"\n\n... and {len(fresh) - len(shown)} more (see the Log tab)" if len(fresh) > len(shown)
                             else "")) if fresh else ""
                self.inform("Training with DIFT finished",
                            "DIFT did not stop the training for a review: "
                            + (note.rstrip(".") + "." if note else "it flagged nothing.")
                            + ("" if "clean bill" in note else
                               " That is not a clean bill: DIFT finds poisons that crowd together away from the "
                               "anchors. Run ▸ Detect… runs other detectors on this encoder (patchsearch for pasted "
                               "patches); a longer training crowds more.") + warned,
                            QMessageBox.Icon.Warning if fresh else QMessageBox.Icon.Information)

        def left_out(job: Job) -> None:  # a retrain without the confirmed poisons: read beside the reviewed encoder
            self._say_leave_out_result(path, job.result if isinstance(job.result, dict) else {})

        leaving_out = bool(settings.get("leave_out_confirmed")) and not dift
        job = self.start_job(function, f"Train {settings.get('method', '')}".strip() + (" with DIFT" if dift else "")
                             + (" without the confirmed poisons" if leaving_out else ""),
                             resources=resources, kind="training",
                             torch_threads=settings.get("threads") or tasks.training_threads(),
                             on_success=done if dift else left_out if leaving_out else None)
        if job is None:
            return None
        job.plain_training = not dift  # without DIFT the Overview's next step is Detect on its encoder, not "flags"
        job.training_kind = "dift" if dift else "plain"
        self.state.set_training(job)
        if run_dir is not None:
            self.state.set_run(run_dir)
        if self.monitor is None:
            self._pending_job_for_monitor, self._pending_follow = job, None
        else:
            self.monitor.attach_job(job)
            self._show_floor(self.workspace_path)
        self.docks["monitorDock"].show()
        self.docks["monitorDock"].raise_()
        return job

    def _say_leave_out_result(self, path: Optional[Path], result: dict) -> None:
        """A training without the confirmed poisons ended (fresh or resumed): its figures beside the encoder of the
        newest post-hoc detection, in a box (:func:`naviewer.workflows.leave_out.leave_out_lines`)."""
        if path is None or not result.get("run"):
            return
        try:
            from naviewer.workflows.leave_out import leave_out_comparison, leave_out_lines
            from naviewer.workspace import Workspace

            with Workspace.open(path, read_only=True) as ws:
                lines = leave_out_lines(leave_out_comparison(ws, str(result["run"]), int(result.get("left_out") or 0)))
        except (NaviewerError, OSError) as exc:
            lines = [f"The training finished; its figures could not be read: {exc}"]
        self.inform("Training without the confirmed poisons finished", "\n\n".join(lines))

    def resume_interrupted_run(self, run: Optional[str] = None) -> Optional[Job]:
        """Run ▸ Resume interrupted run: the open workspace's run that stopped while training goes on from its
        checkpoint (the first of them, or ``run``); its flags, when DIFT stops, open in the Analyst."""
        path = self.workspace_path
        runs = (self.state.workspace_summary.get("interrupted") or []) if path is not None else []
        if path is None or not runs:
            self.inform("Resume interrupted run", "No run of the open workspace stopped while training.")
            return None
        name = run or runs[0]

        def done(job: Job) -> None:
            self.open_workspace(path)  # the new pass (or the finished run) comes with the summary
            result = job.result if isinstance(job.result, dict) else {}
            if result.get("left_out") and result.get("status") == "finished":  # a resumed leave-out training got no
                self._say_leave_out_result(path, result)                      # box (a newcomer, session 28)

        job = self.start_job(lambda ctx: tasks.resume_run(path, name, ctx), f"Resume run {name}",
                             resources=["training", f"workspace:{path}"], kind="training",
                             torch_threads=tasks.training_threads(), on_success=done)
        if job is None:
            return None
        self.state.set_training(job)
        self.follow_run(path / "runs" / name)
        if self.analyst_dock is not None:  # the pass's final precision / recall stay beside the buffer's curves
            self.analyst_dock.show_spreading_on_monitor()
        self.docks["monitorDock"].show()
        self.docks["monitorDock"].raise_()
        return job

    def measure_floor(self) -> Optional[Job]:
        """Run ▸ Measure the no-poison floor: a training of the workspace's recipe on its clean set (as long as the
        training was), then the ASR with the same trigger; the Fine-tune tab and the monitor show it after. The
        README reads every "after" number against it, and only the command line could measure it (a newcomer)."""
        path = self.workspace_path
        if path is None:
            self.inform("No-poison floor", "Open a workspace made with an attack first.")
            return None

        def done(job: Job) -> None:
            floor = job.result or {}
            self.inform("No-poison floor measured",
                        f"ASR {100 * float(floor.get('asr', 0)):.1f} % with the test-time protocol "
                        f"{floor.get('protocol', 'uniform')}, kNN accuracy {100 * float(floor.get('knn_acc', 0)):.1f} % "
                        f"(run {floor.get('run')}). Recorded in workspace.toml [floor]; every ASR shows it beside.")
            self.open_workspace(path)

        cut_short = self.state.workspace_summary.get("floor_cut_short") or []
        # "Resume the no-poison floor floor" when the run is named floor (a newcomer, session 29)
        named = f" (run {cut_short[-1]})" if cut_short and str(cut_short[-1]) != "floor" else ""
        title = f"Resume the no-poison floor{named}" if cut_short else "Measure the no-poison floor"
        job = self.start_job(lambda ctx: tasks.measure_floor(path, ctx), title,
                             resources=["training", f"workspace:{path}"], kind="training",
                             torch_threads=tasks.training_threads(), on_success=done)
        if job is not None:
            job.training_kind = "floor"
            self.state.set_training(job)
        return job

    def trigger_asr_dialog(self) -> Any:
        """Run ▸ Measure a trigger's ASR…: the dialog (non-blocking); Measure runs it as a job and says the result.
        A newcomer with their own patch poisons had no way to tell a backdoor that formed from one that did not
        (session 32)."""
        from naviewer.gui.trigger_asr_dialog import TriggerAsrDialog

        path = self.workspace_path
        if path is None:
            self.inform("Measure a trigger's ASR", "Open a workspace first: its labelled images are the kNN bank.")
            return None
        from naviewer.gui.detect_dialog import workspace_checkpoints

        choices = workspace_checkpoints(path)
        # the encoder the suspect images trained: the reviewed pass's, else the newest that is no retrain without them
        reviewed = self.state.workspace_summary.get("encoder_path")
        suspect = (Path(reviewed) if reviewed and Path(reviewed).is_file() else
                   next((c for c, what in choices if "WITHOUT the confirmed" not in what and "floor" not in what), None))
        dialog = TriggerAsrDialog(self, checkpoint=suspect or self._workspace_encoder(),
                                  class_names=self._class_names(path),
                                  image_size=self.state.workspace_summary.get("native_size"), choices=choices)
        last = getattr(self, "_last_trigger_asr", None)
        if last is not None and last[0] == path:  # this workspace's last measurement: its form again
            dialog.set_values(last[1])
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.start_trigger_asr(path, dialog.values()))
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.open()
        return dialog

    def start_trigger_asr(self, path: Path, values: dict[str, Any]) -> Optional[Job]:
        from naviewer.workflows.trigger_asr import asr_words, measure_trigger_asr

        self._last_trigger_asr = (path, dict(values))  # the dialog opens on them again (a failure lost the form)

        def done(job: Job) -> None:
            words = asr_words(job.result or {})
            self.state.log(f"trigger ASR ({Path(values['trigger']).name} on {Path(values['checkpoint']).parent.name}): "
                           + words)
            self.inform("Trigger ASR", words)

        return self.start_job(lambda ctx: measure_trigger_asr(path, ctx=ctx, **values), "Measure a trigger's ASR",
                              resources=[f"measure:{path}"], kind="evaluation", torch_threads=tasks.training_threads(),
                              on_success=done)

    def _class_names(self, path: Path) -> list[str]:
        """The workspace's class names from its workspace.toml (cheap; [] where it cannot be read): not every summary
        the window holds carries them (a new workspace's is the creation's result)."""
        from naviewer.workspace.config import read_config

        try:
            names = (read_config(Path(path) / "workspace.toml").get("classes") or {}).get("names") or []
        except (NaviewerError, OSError):
            return []
        return [str(n) for n in names]

    def pause_training(self) -> None:
        if self.training_job is not None:
            self.training_job.pause()
        self._update_actions()

    def resume_training(self) -> None:
        """The toolbar's Resume: a paused training goes on; with none, a run of the workspace that stopped while
        training does (Run ▸ Resume interrupted run). The Overview said "Resume interrupted run" beside a greyed
        Resume button (newcomer session 16)."""
        if self.training_job is not None and self.training_job.running:
            self.training_job.resume()
        elif self._interrupted():
            self.resume_interrupted_run()
        self._update_actions()

    def _interrupted(self) -> list[str]:
        return list(self.state.workspace_summary.get("interrupted") or []) if self.workspace_path else []

    def _long_job(self) -> Optional[Job]:
        """What the toolbar's Cancel stops: the training, else the latest running fine-tune or detection (those
        ran with Cancel greyed, and the way to stop them was the Jobs tab; newcomer session 13)."""
        if self.training_job is not None and self.training_job.running:
            return self.training_job
        others = [job for job in self.jobs.running_jobs() if job.kind in ("training", "detection")]
        return others[-1] if others else None

    #: a training this long is asked about before Cancel stops it (one click stopped a retrain minutes in)
    CANCEL_ASK_AFTER_S = 60.0

    def cancel_training(self) -> None:
        job = self._long_job()
        if job is not None and job.kind == "training" and job.elapsed_s >= self.CANCEL_ASK_AFTER_S:
            from naviewer.gui.analyst import common

            if not common.ask_user(self, "Cancel the training?",
                                   f"Stop {job.name}? It stops at the next step and keeps its checkpoint; Run ▸ "
                                   "Resume interrupted run goes on from there later.", default_yes=False):
                return
        if job is not None:
            job.cancel()
            if job is not self.training_job:
                self.statusBar().showMessage(f"Cancelling: {job.name}", 5000)
        self._update_actions()

    def _update_actions(self, *_args: Any) -> None:
        job = self.training_job if self.training_job is not None and self.training_job.running else None
        self.act_train.setEnabled(job is None)
        self.act_pause.setEnabled(job is not None and job.state is JobState.RUNNING)
        interrupted = self._interrupted()
        self.act_resume.setEnabled((job is not None and job.state is JobState.PAUSED) or (job is None and bool(interrupted)))
        long_job = self._long_job()
        self.act_cancel.setEnabled(long_job is not None and long_job.state in (JobState.RUNNING, JobState.PAUSED))
        # a greyed button says why (its tooltip used to describe the action it could not do)
        idle = "no training is running (Run ▸ Train… starts one)"
        for action, tip in ((self.act_pause, "Pause training at the next batch"),
                            (self.act_resume, "Resume paused training"),
                            (self.act_cancel, "Cancel training (it checkpoints first)")):
            why = idle if job is None else ("the training is not paused" if action is self.act_resume
                                            else "the training is paused: Resume or Cancel it")
            text = tip if action.isEnabled() else f"{tip}: unavailable, {why}"
            if action is self.act_cancel and long_job is not None and long_job is not job:
                text = f"Cancel {long_job.name}"
            if action is self.act_resume and job is None and interrupted:
                text = f"Resume run {interrupted[0]}, which stopped while training, from its checkpoint"
            action.setToolTip(text)
            action.setStatusTip(text)
        self.act_export.setEnabled(self.workspace_path is not None)
        self.act_detect.setEnabled(self.workspace_path is not None)
        # the floor trains on the clean set and measures with the attack's trigger: a workspace made without an attack
        # has neither, and the action ran only to say "train first" (a newcomer, session 19)
        crafted = bool(self.state.workspace_summary.get("attack", True)) if self.workspace_path else False
        self.act_floor.setEnabled(self.workspace_path is not None and job is None and crafted)
        self.act_trigger_asr.setEnabled(self.workspace_path is not None)
        self.act_floor.setToolTip(self.act_floor.statusTip() if crafted or self.workspace_path is None else
                                  "The no-poison floor needs a workspace naviewer crafted an attack into (a clean "
                                  "set and a trigger to measure with): File ▸ New workspace… with an attack")
        cut_short = (self.state.workspace_summary.get("floor_cut_short") or []) if self.workspace_path else []
        # a floor cut short is trained on, not begun again: the menu said "Measure" and the run went on in silence
        self.act_floor.setText(f"Resume the no-poison &floor ({cut_short[-1]}, cut short)" if cut_short
                               else "Measure the no-poison &floor")
        self.act_resume_run.setEnabled(bool(interrupted) and job is None)
        self.act_anchors.setEnabled(self.workspace_path is not None)

    # ------------------------------------------------------------------------ help ----
    def show_shortcuts(self, toggle: bool = True) -> None:
        """F1: the keys (the panel is at least 340 px wide and wraps long action names); F1 again hides them,
        since at 1280x720 the panel squeezes the gallery (``toggle=False`` only shows)."""
        dock = self.docks["shortcutsDock"]
        if toggle and dock.isVisible() and not dock.visibleRegion().isEmpty():
            self.hide_shortcuts()
            return
        if not dock.isVisible() and not dock.isFloating() and self.width() < 1600 and not self._shortcuts_placed:
            # docked at 1280 x 720 it took a third of the width and left the gallery one row of tiles (a newcomer):
            # on a small window it floats beside the gallery the first time (drag it back to dock it)
            self._shortcuts_placed = True
            dock.setFloating(True)
            frame = self.frameGeometry()
            width, height = 380, max(300, min(640, frame.height() - 120))
            dock.setGeometry(frame.right() - width - 24, frame.top() + 90, width, height)
        from PySide6.QtWidgets import QApplication

        focus = QApplication.focusWidget() or self.focusWidget()  # (the window's own where none is active)
        if focus is not None and not dock.isAncestorOf(focus):
            self._focus_before_shortcuts = focus
        dock.show()
        dock.raise_()
        # the panel takes the keyboard, so Esc closes it wherever the focus was (it stayed up over the gallery,
        # whose Esc only cleared the highlight; newcomer session 26); closing gives the focus back
        if dock.isFloating():
            dock.activateWindow()
        self.shortcuts_panel.tree.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def hide_shortcuts(self) -> None:
        """Esc inside F1's panel, or F1 again: hide it and give the keyboard back to the view that had it."""
        self.docks["shortcutsDock"].hide()
        before, self._focus_before_shortcuts = self._focus_before_shortcuts, None
        import shiboken6

        if before is not None and shiboken6.isValid(before) and before.isVisible():
            before.window().activateWindow()
            before.setFocus(Qt.FocusReason.OtherFocusReason)

    def guide_path(self) -> Optional[Path]:
        """docs/index.md of the source tree naviewer runs from (an editable install, a checkout), else None."""
        import naviewer

        index = Path(naviewer.__file__).resolve().parents[1] / "docs" / "index.md"
        return index if index.is_file() else None

    def show_guide(self, opener: Optional[Callable[[Any], bool]] = None) -> Optional[Path]:
        """Help ▸ User guide: docs/index.md in the application's own viewer, its links followed in place (the
        desktop's browser opened nothing where no launcher is set up; newcomer session 26). ``opener`` stands in
        for the system browser of the viewer's "Open in browser" (tests)."""
        from naviewer.gui.guide import GuideViewer

        index = self.guide_path()
        if index is None:
            self.inform("User guide", "The guides are the project's docs/ folder (start with docs/index.md and "
                        "docs/getting-started.md) and its README.md; this installation does not carry them. Every "
                        "action of this window is also a command: naviewer --help.")
            return None
        viewer = self.guide_viewer if getattr(self, "guide_viewer", None) is not None else None
        if viewer is None:
            viewer = GuideViewer(index, self, opener)
            viewer.destroyed.connect(lambda *_a: setattr(self, "guide_viewer", None))
            self.guide_viewer = viewer
        viewer.show()
        viewer.raise_()
        viewer.activateWindow()
        self.statusBar().showMessage(f"User guide: {index}", 8000)
        return index

    def show_about(self):
        from naviewer.gui.about import AboutDialog

        dialog = AboutDialog(self.probe, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.about_dialog = dialog
        dialog.open()
        return dialog

    # ----------------------------------------------------------------------- close ----
    def closeEvent(self, event: QCloseEvent) -> None:
        running = self.jobs.running_jobs()
        if running:
            names = ", ".join(job.name for job in running)
            training = self.training_job is not None and any(job is self.training_job for job in running)
            answer = QMessageBox.question(
                self,
                "Jobs are still running",
                f"{names} {'is' if len(running) == 1 else 'are'} still running.\n\n"
                # only a training saves a checkpoint (a speed measurement was called training here)
                + ("Cancel and quit? Training saves a checkpoint before it stops." if training else
                   "Cancel and quit? Nothing of it is kept."),
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            self._closing = True
            self.statusBar().showMessage("Cancelling running jobs…")
            self.jobs.cancel_all()
            if not self.jobs.wait_all(timeout_s=120.0):
                self.inform("Still stopping", "A job did not stop within two minutes; naviewer will quit anyway.")
        self._closing = True
        self._hold_workspace(None)  # the window lock goes with the window
        if self.monitor is not None:
            self.monitor.detach()
        if getattr(self, "analyst_dock", None) is not None:
            self._keep_analyst_view()
            self.analyst_dock.close()
        self.save_layout()
        event.accept()
