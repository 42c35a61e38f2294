"""The analyst panel docked in the main window for one detection pass, with fine-tuning wired.

The panel reads and writes review decisions through a workspace opened on the GUI thread (its
SQLite connection belongs to this thread); jobs open their own. Embeddings: the pass run's
``review`` array (what DIFT ranked, saved by the demo) or else any saved array of the right length.
"Fine-tune" resumes the pass's run if it waits for a review (:func:`naviewer.workflows.demo.finetune_and_finish`:
Eq. 7 on the confirmed samples, removal, the rest of training); on a post-hoc pass (``naviewer detect``) it
fine-tunes that finished encoder (:func:`naviewer.workflows.posthoc.finetune_posthoc`, a new checkpoint).
Either way the gate shows before/after numbers.
"""

from __future__ import annotations

import getpass
import threading
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, Qt, Signal

from naviewer.errors import NaviewerError
from naviewer.gui.analyst.common import plural


def latest_pass(path: Path) -> Optional[int]:
    """The detection pass a workspace opens on (:meth:`review_pass_id`; None: none yet). Opens its own connection."""
    from naviewer.workspace import Workspace

    with Workspace.open(path) as ws:
        return ws.store.review_pass_id()


def pass_record(ws, pass_id: int) -> dict:
    """The detection pass's record (id, method, run, epoch, ...; see ``WorkspaceStore.passes``), {} if none."""
    return dict(ws.store.pass_info(pass_id) or {})


def dock_title(pass_id: int, record: dict) -> str:
    """The analyst dock's title: the pass's detector beside its number. A newcomer's first Detect (kdist, lid and
    DIFT) opened "detection pass 3" and asked where passes 1 and 2 were: the detectors' passes are saved first, so
    DIFT's is the newest; the title says which detector's pass this is."""
    method = str(record.get("method") or "detection")
    name = "DIFT" if method.lower() == "dift" else method
    run = record.get("run")
    when = f", epoch {int(record['epoch']) + 1}" if record.get("epoch") is not None else ""
    return f"Analyst — {name} pass {int(pass_id)}" + (f" of run {run}{when}" if run else when)


#: seconds a review decision in the window waits for another process holding the workspace database
REVIEW_WAIT_S = 2.0


def find_embeddings(ws, run: Optional[str], n: int, problems: Optional[list[str]] = None,
                    ) -> tuple[Optional[np.ndarray], Optional[str], Optional[str]]:
    """(array, run, tag) of the best saved embeddings for the analyst views, or (None, None, None). A saved file
    that cannot be used is passed over; with ``problems`` each is said there, file and reason (they were dropped
    without a word, and the map went to ranks only with nothing naming the file: a GUI sweep)."""
    from naviewer.workflows.demo import FINAL_TAG

    problems = [] if problems is None else problems
    try:
        found = list(ws.embeddings())
    except NaviewerError as exc:
        problems.append(str(exc))
        return None, None, None
    # the encoder after a fine-tune / retrain (tag ``final``, a post-hoc ``<run>-finetune`` run) embeds
    # the samples as the pass did NOT rank them: its array is the map's "after" choice, never the pass's own
    order = sorted(found, key=lambda rt: (rt[1] == FINAL_TAG or rt[0].endswith("-finetune"),
                                          rt[0] != run, rt[1] != "review", rt[1].endswith("tsne2d")))
    for r, tag in order:
        if tag.endswith("tsne2d"):
            continue
        try:
            array = ws.load_embeddings(r, tag, mmap=True)
        except (NaviewerError, OSError, ValueError) as exc:
            problems.append(str(exc) if isinstance(exc, NaviewerError) else f"{ws.embeddings_path(r, tag)}: {exc}")
            continue
        problem = embeddings_problem(array, n)
        if problem:
            problems.append(f"{ws.embeddings_path(r, tag)}: {problem}")
            continue
        return np.asarray(array, dtype=np.float32), r, tag
    return None, None, None


def embeddings_problem(array: np.ndarray, n: int) -> str:
    """Why an array cannot be the map's embeddings ("" when it can): its shape, or values that are not finite
    (NaN embeddings refused the whole review, and the box named no file)."""
    if array.ndim != 2 or len(array) != n or array.shape[1] < 1:
        return f"shape {tuple(array.shape)}, not ({n:,} samples, dimensions)"
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        return f"values of type {array.dtype}, not numbers"
    from naviewer.defense.sanity import require_finite

    try:
        require_finite(array)  # in blocks: no temporary the size of the array
    except NaviewerError as exc:
        return str(exc)
    return ""


def after_embeddings(ws, run: Optional[str], result: Optional[dict]) -> Optional[tuple[np.ndarray, str, str, str]]:
    """(array, run, tag, label) of every sample embedded by the encoder a fine-tune / remove-and-retrain
    made (``result``: :func:`naviewer.workflows.posthoc.latest_finetune_result` or a job's result), or None
    when none was saved: the in-training path's ``<run>/final`` (:func:`naviewer.workflows.demo.finetune_and_finish`),
    a post-hoc fine-tune's ``<run>-finetune/<its checkpoint's tag>``."""
    from naviewer.workflows.demo import FINAL_TAG
    from naviewer.workflows.posthoc import FINETUNE_RUN_KIND

    if not result:
        return None
    n = ws.store.sample_count()
    candidates: list[tuple[str, str]] = []
    kind = result.get("kind")
    if kind == "posthoc" or result.get("run", "").endswith("-finetune"):
        done = [r for r in ws.store.runs() if r.get("kind") == FINETUNE_RUN_KIND
                and (run is None or str(r.get("name", "")).startswith(f"{run}-finetune"))]
        for record in sorted(done, key=lambda r: r.get("created") or 0, reverse=True):
            tag = (record.get("config") or {}).get("tag")
            if tag and (not result.get("checkpoint") or (record.get("config") or {}).get("checkpoint") == result["checkpoint"]):
                candidates.append((record["name"], tag))
        label = "after fine-tuning"
    else:
        recorded = (result.get("embeddings") or {}) if isinstance(result.get("embeddings"), dict) else {}
        if run:
            candidates.append((recorded.get("run") or run, recorded.get("after") or FINAL_TAG))
        retrain = kind == "retrain" or ((result.get("finetune") or {}).get("restart_mode") == "retrain")
        label = "after retraining" if retrain else "after fine-tuning"
    for emb_run, tag in candidates:
        try:
            array = ws.load_embeddings(emb_run, tag, mmap=True)
        except (NaviewerError, OSError, ValueError):
            continue
        if array.ndim == 2 and len(array) == n:
            return array, emb_run, tag, label
    return None


#: workspaces of at least this many samples are read (session, scores, labels, embeddings) in a worker thread
ASYNC_FROM = 200_000


class _Done(QObject):
    done = Signal()


def in_worker(fn: Callable[[], Any]) -> Any:
    """``fn()`` run in a worker thread while the GUI thread keeps painting and running its timers (user input
    waits until it returns: nothing can be started twice meanwhile); its result, or its exception raised here.
    Called off the GUI thread (or without an application) it simply runs ``fn``."""
    app = QCoreApplication.instance()
    if app is None or threading.current_thread() is not threading.main_thread():
        return fn()
    box: dict[str, Any] = {}
    loop = QEventLoop()
    relay = _Done()
    relay.done.connect(loop.quit, Qt.ConnectionType.QueuedConnection)

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - raised again on the GUI thread
            box["error"] = exc
        relay.done.emit()

    thread = threading.Thread(target=work, name="naviewer-analyst-open", daemon=True)
    thread.start()
    loop.exec(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def open_session(ws: Any, pass_id: Optional[int], *, images: Any = None, embeddings: Optional[np.ndarray] = None,
                 reviewer: Optional[str] = None) -> Any:
    """The analysis session of a pass with every detector's score attached (what ``AnalystPanel.from_workspace``
    makes before its views) and its flagged clusters: the store's decoding of the score arrays and labels, 2-3 s
    at 10M, and the clusters, 0.3-0.6 s. Plain core
    work, safe in a worker thread (the store gives each thread its own connection)."""
    from naviewer.analysis.session import AnalysisSession
    from naviewer.gui.analyst.detector_scores import attach, dift_flags_of, load_detector_scores

    session = AnalysisSession.from_workspace(ws, pass_id, images=images, embeddings=embeddings, reviewer=reviewer)
    attach(session, load_detector_scores(ws, dift_flags_of(ws, session)))
    session.clusters()  # made here (cached by the session): the filter sidebar, the table and the header ask at once
    return session


def _reviewer() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "analyst"


def _fell_back(result: dict) -> bool:
    """Whether an in-training fine-tune's restart fell back to a retrain (its Eq. 7 took no step)."""
    finetune = result.get("finetune") if isinstance(result.get("finetune"), dict) else {}
    inner = finetune.get("finetune") if isinstance(finetune.get("finetune"), dict) else {}
    return inner.get("fallback") == "retrain"


class AnalystDock:
    """``AnalystDock(window, workspace_path, pass_id=None, run=None)``: builds and docks the panel."""

    def __init__(self, window, path: Path, pass_id: Optional[int] = None, run: Optional[str] = None) -> None:
        from naviewer.gui.analyst.panel import AnalystPanel
        from naviewer.workspace import Workspace

        self.window = window
        self.path = Path(path)
        self.ws = Workspace.open(self.path)
        # a decision on the GUI thread waits this long for another process's write lock, then is refused and said
        # (it froze the window 30 s a decision while a database browser held the lock: a GUI sweep)
        self.ws.store.review_wait_s = REVIEW_WAIT_S
        self.finetune_job = None
        self._removed = False
        try:
            if pass_id is None:
                pass_id = self.ws.store.review_pass_id()
            if pass_id is None:
                raise NaviewerError("the workspace has no detection pass yet", self.path)
            self.pass_id = int(pass_id)
            record = pass_record(self.ws, self.pass_id)
            self.run = run or record.get("run")
            self.title = dock_title(self.pass_id, {**record, "run": self.run})
            n = self.ws.store.sample_count()
            ws, pass_id, run_name, reviewer = self.ws, self.pass_id, self.run, _reviewer()

            problems: list[str] = []  # saved embeddings passed over, each with its file and reason

            def load() -> tuple[Any, Optional[np.ndarray], Optional[str], Optional[str]]:
                from naviewer.analysis.embeddings import pass_embeddings

                # the embeddings this pass ranked, refused when rewritten since; else the best saved ones
                recorded = pass_embeddings(ws, pass_id)
                problem = embeddings_problem(recorded[0], n) if recorded is not None else ""
                if problem:
                    problems.append(f"{ws.embeddings_path(recorded[1], recorded[2])}: {problem}")
                if recorded is not None and not problem:
                    embeddings, emb_run, tag = np.asarray(recorded[0], dtype=np.float32), recorded[1], recorded[2]
                else:
                    embeddings, emb_run, tag = find_embeddings(ws, run_name, n, problems)
                session = open_session(ws, pass_id, images=ws.dataset(), embeddings=embeddings, reviewer=reviewer)
                return session, embeddings, emb_run, tag

            # a large workspace is read in a worker: the window keeps painting (a 10M session takes seconds)
            if n >= ASYNC_FROM:
                window.statusBar().showMessage(f"Opening detection pass {pass_id} of {n:,} samples…")
            session, embeddings, emb_run, tag = in_worker(load) if n >= ASYNC_FROM else load()
            adopt = getattr(window, "adopt_undo_batches", None)
            if callable(adopt):  # what U may undo is the window's, across its panels (a pass switch, a job's end)
                adopt(path, session)
            self.panel = AnalystPanel(session, workspace=self.ws, job_manager=window.jobs, run=emb_run, tag=tag)
        except BaseException:
            self.ws.close()
            raise
        self.panel.setObjectName("analystPanel")
        self.panel.finetune_requested.connect(self.finetune)
        self.panel.finetune_gate.again_requested.connect(self.retrain_again)
        self.panel.finetune_gate.check_requested.connect(self.check_retrained)
        self.panel.finetune_gate.open_pass_requested.connect(lambda pid: window.show_analyst(self.path, pid, self.run))
        self._show_earlier_result()
        missing = self.missing_encoder()
        if missing:
            self.panel.finetune_gate.block(missing)
        self.show_spreading_on_monitor()
        self.panel.status_message.connect(lambda text: window.statusBar().showMessage(text, 8000))
        self.panel.bridge.review_changed.connect(lambda _ids: window.note_review_change())  # the Overview's Next follows
        self.panel.bridge.review_changed.connect(self._decided_during_a_retrain)
        self.panel.export_finished.connect(window.show_export_result)
        self.panel.anchors_requested.connect(lambda: window.show_anchors(self.path))
        docks = window.docks
        if "analystDock" in docks:
            dock = docks["analystDock"]
            old = dock.widget()
            dock.setWidget(self.panel)
            if old is not None:
                old.deleteLater()
        else:
            # added hidden and shown once it is a tab beside the monitor: shown on its own first, the
            # stacked minimum heights would grow the window past a 720 px screen
            dock = window.add_panel(self.panel, "Analyst", "analystDock", Qt.DockWidgetArea.RightDockWidgetArea, visible=False)
            window.tabifyDockWidget(docks["monitorDock"], dock)
        dock.setWindowTitle(self.title)
        self.dock = dock
        self._shortcut_groups = [group for group, _ in self.panel.shortcut_groups()]
        self._window_keys = self.panel.give_view_keys_to(window)
        for group, shortcuts in self.panel.shortcut_groups():
            window.shortcuts_panel.register(group, shortcuts)
        # laid out for the window's size (Jobs and Log as tabs below 900 px) before it is shown: shown
        # first, its minimum height (more with the trust notice) stacked over Jobs would grow a 720 px window
        window.make_room_for(dock)
        dock.show()
        dock.raise_()
        self._take_keyboard(window)
        if self.ws.read_only:  # decisions were refused only at the first key (a GUI sweep)
            said = (f"{self.path} is open read-only (its folder or database cannot be written here): the flags can be "
                    "looked at and exported elsewhere, but no decision can be recorded")
            window.state.log(f"analyst: {said}")
            window.statusBar().showMessage(said, 20000)
            self.panel.gallery.show_notice(said + ".", standing="read-only")
            self.panel.set_read_only(True)
        from naviewer.gui.analyst.common import SessionBridge

        SessionBridge.of(self.panel.session).image_failed.connect(
            lambda sid, problem: window.state.log(f"analyst: the image of #{sid} cannot be read: {problem}"))
        window.state.log(f"analyst: detection pass {self.pass_id} of {self.path.name}: "
                         f"{self.panel.session.flagged_ids().size} flags to review"
                         + ("" if embeddings is not None else " (no saved embeddings: rank map only)"))
        for problem in problems:
            window.state.log(f"analyst: saved embeddings not used: {problem}")
        if problems and not self.ws.read_only:
            self.panel.gallery.show_notice(
                f"Saved embeddings not used ({problems[0]}"
                + (f"; and {len(problems) - 1:,} more, in the Log" if len(problems) > 1 else "") + ")"
                + ("; the map shows ranks only." if embeddings is None else "."), standing="embeddings")

    def _take_keyboard(self, window) -> None:
        """The gallery gets the keyboard when the panel opens, unless the analyst is typing somewhere: a review
        can then start from the keys alone (the focus used to stay in the Jobs list or on an Overview button,
        where Space would press it)."""
        from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QComboBox, QLineEdit, QPlainTextEdit, QTextEdit

        focus = QApplication.focusWidget()
        typing = isinstance(focus, (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox)) or (
            isinstance(focus, QComboBox) and focus.isEditable())
        if focus is None or (not typing and focus.window() is window):
            self.panel.focus_view("gallery")

    def refresh_anchors(self) -> None:
        """Another connection rewrote ``[anchors]`` (the Anchors view's job): re-read ``workspace.toml``
        so the notice, and what an export records, follow it."""
        try:
            self.ws.reload_config()
        except NaviewerError as exc:
            self.window.state.log(f"cannot re-read {self.ws.config_path}: {exc}")
        self.panel.refresh_trust()

    # -- fine-tuning --------------------------------------------------------------------------------
    def finetune(self, confirmed: Any) -> None:
        """Resume the pass's run: fine-tune on the confirmed samples, remove them, finish training."""
        from naviewer.workspace.runs import read_state

        w = self.window
        try:
            state = read_state(self.ws, self.run) if self.run else None
        except NaviewerError as exc:  # the gate says it too; this is the last word if a request gets past it
            w.inform("Fine-tune", f"Cannot fine-tune: {exc}. The review and the export work without it.")
            return
        if not state or state.get("status") != "awaiting_review":
            checkpoint = self.posthoc_checkpoint()
            if checkpoint is not None:
                self.finetune_posthoc(confirmed, checkpoint)
                return
            w.inform("Fine-tune", "This detection pass comes neither from a training run that waits for a review "
                     "nor from a post-hoc detection (naviewer detect, or Run ▸ Detect (post-hoc)), so there is no "
                     "encoder to fine-tune here.\n\n"
                     f"Status of run {self.run!r}: {state.get('status') if state else 'unknown'}.")
            return
        path, run = self.path, self.run

        def job(ctx) -> dict:
            from naviewer.workflows.demo import finetune_and_finish
            from naviewer.workspace import Workspace

            with Workspace.open(path) as ws:
                return finetune_and_finish(ws, run, ctx)

        if self.panel.finetune_gate.retrains:
            title = f"Remove {plural(len(confirmed), 'confirmed poison')} and retrain"
        else:
            title = f"Fine-tune on {plural(len(confirmed), 'confirmed poison')} and finish training"
        if not self._start_finetune_job(job, title, self._done):
            return
        w.state.set_training(self.finetune_job)
        monitor = w.monitor
        if monitor is None or monitor.follower is None:
            w.follow_run(self.path / "runs" / run)
        self.show_spreading_on_monitor()
        w.state.log(title)

    def retrain_again(self, confirmed: Any) -> None:
        """The decisions changed after the remove-and-retrain: train the run's recipe again, from scratch, without
        the samples confirmed now (a new run the monitor follows); the tab's table then shows that run."""
        from naviewer.gui import tasks
        from naviewer.workflows.retrain_again import next_again_name

        w, path, run = self.window, self.path, self.run
        if not run:
            return
        name = next_again_name(self.ws, run)

        def job(ctx) -> dict:
            return tasks.retrain_again(path, run, ctx, name=name)

        title = f"Retrain again without {plural(len(confirmed), 'confirmed poison')}"
        if not self._start_finetune_job(job, title, self._again_done):
            return
        w.state.set_training(self.finetune_job)
        w.follow_run(self.ws.run_dir(name))  # made now: the monitor follows it from the first record
        w.state.log(f"{title} (run {name}, this run's recipe from scratch, no DIFT)")

    def check_retrained(self) -> None:
        """The Fine-tune tab's Look for triggers in the retrained encoder: PatchSearch on it in a job (the review
        loop's second round: the demo's miss kept 4 poisons, 3 of which it found); the tab then names what it found
        still in the training set, and the analyst decides."""
        from naviewer.gui import tasks

        w, path, run = self.window, self.path, self.run
        if not run:
            w.statusBar().showMessage("This pass belongs to no training run: Run ▸ Detect… looks at an encoder", 10000)
            return
        gate = self.panel.finetune_gate
        gate.set_checking(True)
        job = w.start_job(lambda ctx: tasks.check_retrained(path, run, ctx),
                          "Look for triggers in the retrained encoder (PatchSearch)", resources=[f"workspace:{path}"],
                          kind="detection", torch_threads=tasks.training_threads(), on_success=self._check_done)
        if job is None:
            gate.set_checking(False)
            return
        job.finished.connect(lambda state: None if state == "finished" or self._gone() else gate.set_checking(False))
        w.state.log("looking for triggers in the retrained encoder (PatchSearch over every image)")

    def _gone(self) -> bool:
        """The panel was taken off or replaced (another pass opened) while a job of it ran: its widgets are gone."""
        return bool(self._removed or getattr(self, "_closed", False))

    def _check_done(self, job) -> None:
        if self._gone():  # another pass opened meanwhile: the result is said in the log, the check's pass kept
            self.window.state.log(str((job.result or {}).get("words") or ""))
            return
        result = job.result or {}
        self.panel.finetune_gate.show_check(result)
        self.panel.tabs.setCurrentWidget(self.panel.finetune_gate)
        self.window.state.log(str(result.get("words") or ""))
        added = len(result.get("added") or [])
        self.window.statusBar().showMessage(
            f"PatchSearch found a trigger in {plural(added, 'image')} still in the training set: see the Fine-tune tab"
            if added else "PatchSearch found nothing more to take out: see the Fine-tune tab", 15000)

    def _again_done(self, job) -> None:
        result = self._take_result(job)
        if result is None:
            return
        gate = self.panel.finetune_gate
        used = int(result.get("confirmed", 0))
        gate.set_running(False)
        gate.mark_done(f"Done: retrained again (run {result.get('again')}) without {plural(used, 'confirmed poison')}; "
                       "the table compares it with the encoder DIFT flagged with.", used)
        self._say_done(f"retrained again without {plural(used, 'confirmed poison')}:", result,
                       "The retrain on the changed decisions finished; see the Fine-tune tab")

    def _take_result(self, job) -> Optional[dict]:
        """A finished step's result shown in the Fine-tune tab's table and the map's after-embeddings (None when
        the panel was taken off meanwhile)."""
        if self._removed:
            return None
        result = job.result or {}
        self.panel.set_finetune_result(result)
        self._show_after_embeddings(result)
        return result

    def _say_done(self, lead: str, result: dict, status: str) -> None:
        """The Fine-tune tab brought forward, the Log's before / after line and the status bar's word."""
        from naviewer.gui.format import before_after_text

        self.panel.tabs.setCurrentWidget(self.panel.finetune_gate)
        self.window.state.log(f"{lead} {before_after_text(result.get('before'), result.get('after'))}")
        self.window.statusBar().showMessage(status, 15000)

    def _show_earlier_result(self) -> None:
        """A workspace reopened after its fine-tune / remove-and-retrain shows that result and does not
        offer the step again (it would fail: the run is finished)."""
        from naviewer.workflows.posthoc import latest_finetune_result

        try:
            result = latest_finetune_result(self.ws, self.run, self.pass_id)
        except (NaviewerError, OSError) as exc:  # an unreadable run folder kept the whole panel shut (a GUI sweep)
            self.window.state.log(f"analyst: the earlier fine-tune / retrain result cannot be read: {exc}")
            return
        if not result:
            return
        gate = self.panel.finetune_gate
        if result.get("interrupted"):  # a cancelled retrain is not a result: say how it goes on
            from naviewer.workspace.runs import REVIEW_CHECKPOINT

            step = "retrain" if result.get("kind") == "retrain" else "fine-tune"
            gate.mark_done(f"Stopped during the {step} on the kept samples (not finished): Run ▸ Resume interrupted "
                           f"run goes on with it. The encoder DIFT flagged with is kept as checkpoints/{self.run}/"
                           f"{REVIEW_CHECKPOINT}.", int(result.get("confirmed") or 0))
            return
        if result.get("before") or result.get("after"):
            self.panel.set_finetune_result(result)
        self._show_after_embeddings(result)
        if result["kind"] == "posthoc":
            from naviewer.workflows.posthoc import RETRAIN_WITHOUT_CONFIRMED

            confirmed = int(result.get("confirmed") or 0)
            steps = (result.get("finetune") or {}).get("steps")
            if steps == 0:  # "Done earlier: fine-tuned" over a 0-step run (a newcomer, session 27)
                gate.mark_done(f"Done earlier: nothing to fine-tune on the {confirmed:,} confirmed poisons (0 steps: they "
                               f"were as spread out as clean samples); the encoder is unchanged. "
                               f"{RETRAIN_WITHOUT_CONFIRMED}", confirmed)
            else:
                gate.mark_done(f"Done earlier: fine-tuned the encoder on {confirmed:,} confirmed poisons"
                               + (f" ({int(steps):,} steps)" if isinstance(steps, int) else "")
                               + f"; checkpoint {result.get('checkpoint')}. {RETRAIN_WITHOUT_CONFIRMED}", confirmed)
        else:
            gate.show_done(int(result.get("confirmed") or 0), fell_back=_fell_back(result))
            gate.mark_done(gate.done_text.replace("Done:", "Done earlier:", 1), int(result.get("confirmed") or 0))

    def _show_after_embeddings(self, result: Optional[dict]) -> None:
        """Offer the map of the samples re-embedded by the new encoder (mmap: nothing is read here; the
        projection is a job), with the removed samples' neighbourhood density before / after."""
        try:
            found = after_embeddings(self.ws, self.run, result)
        except NaviewerError:
            found = None
        if found is None:
            return
        array, run, tag, label = found
        self.panel.set_after_embeddings(array, label, run=run, tag=tag, result=result)

    def show_spreading_on_monitor(self) -> bool:
        """The monitor following this pass's run gets the pass's final precision / recall (after label
        spreading) beside the buffer's per-epoch curves (before it); False when it follows another run
        or the pass has no such figures (no ground truth)."""
        monitor = getattr(self.window, "monitor", None)
        follower = getattr(monitor, "follower", None)
        if follower is None or not self.run:
            return False
        try:
            same = follower.path.parent.resolve() == (self.path / "runs" / self.run).resolve()
        except OSError:
            return False
        if not same:
            return False
        epoch = pass_record(self.ws, self.pass_id).get("epoch")
        return monitor.add_spreading_result((self.panel.session.settings or {}).get("summary"), epoch)

    def missing_encoder(self) -> str:
        """Why the Fine-tune tab cannot act because the encoder it would start from is gone ("" when it is there,
        or when the pass has no step to take): the run's checkpoint, or the post-hoc pass's encoder."""
        from naviewer.workspace.runs import read_state

        try:
            state = read_state(self.ws, self.run) if self.run else None
        except NaviewerError as exc:  # a garbled state file kept the whole panel closed (a sweep, session 19)
            return (f"Cannot fine-tune or retrain: {exc}. The run's state is damaged; the review and the export work "
                    "without it.")
        if state and state.get("status") == "awaiting_review":
            checkpoint = self.ws.checkpoint_dir(self.run, create=False) / "last.pt"
            what = f"the checkpoint of run {self.run!r}"
        else:
            checkpoint = self.posthoc_checkpoint()
            what = "the encoder this pass was detected with"
            if checkpoint is None:
                return ""
        if Path(checkpoint).is_file():
            return ""
        return (f"Cannot fine-tune or retrain: {what}, {checkpoint}, is missing. Put it back; or detect again with "
                "another encoder (Run ▸ Detect (post-hoc)…) and act on that pass. The review and the export work "
                "without it.")

    def posthoc_checkpoint(self) -> Optional[Path]:
        """The encoder checkpoint of this pass when a post-hoc detection made it (its run records it)."""
        from naviewer.workflows.posthoc import POSTHOC_KINDS, locate_recorded_checkpoint

        for record in self.ws.store.runs():
            if record.get("name") == self.run and record.get("kind") in POSTHOC_KINDS:
                checkpoint = (record.get("config") or {}).get("checkpoint")
                return locate_recorded_checkpoint(self.ws, checkpoint) if checkpoint else None
        return None

    def finetune_posthoc(self, confirmed: Any, checkpoint: Path) -> None:
        """Fine-tune the finished encoder of a post-hoc pass on the confirmed flags (``naviewer finetune``):
        a new checkpoint is written next to the workspace's others; the gate shows before / after."""
        from naviewer.gui import tasks

        w, path = self.window, self.path

        def job(ctx) -> dict:
            return tasks.finetune_posthoc(path, checkpoint, ctx)

        if not self._start_finetune_job(job, f"Fine-tune {checkpoint.name} on {plural(len(confirmed), 'confirmed poison')}",
                                        self._posthoc_done):
            return
        w.state.log(f"post-hoc fine-tuning of {checkpoint} on {plural(len(confirmed), 'confirmed poison')} (DIFT Eq. 7)")

    #: said when a decision changes while a fine-tune or retrain runs on the decisions it started from
    DECIDED_DURING_RETRAIN = ("{job} runs on the decisions as they were when it started: this change counts for the "
                              "next fine-tune or retrain (the Fine-tune tab says so when it ends).")

    def _decided_during_a_retrain(self, _ids: Any) -> None:
        """A decision while Remove and retrain runs was only flagged after the retrain ended (a newcomer, session 21)."""
        job = self.finetune_job
        if job is not None and getattr(job, "running", False):
            text = self.DECIDED_DURING_RETRAIN.format(job=job.name)
            # standing while the job runs: the decision's own word replaced a passing one at once, and the analyst
            # saw no warning at all (a newcomer, session 26); it goes when the job ends
            self.panel.gallery.show_notice(text, standing="decided-during-retrain")
            self.window.statusBar().showMessage(text, 15000)

    def _start_finetune_job(self, job, title: str, on_success) -> bool:
        """Run ``job`` as the workspace's training job with the gate showing it; False if refused."""
        from naviewer.gui import tasks

        gate = self.panel.finetune_gate
        gate.set_running(True)
        self.finetune_job = self.window.start_job(job, title, resources=["training", f"workspace:{self.path}"],
                                                  kind="training", torch_threads=tasks.training_threads(),
                                                  on_success=on_success)
        if self.finetune_job is None:
            gate.set_running(False)
            return False
        self.finetune_job.training_kind = "retrain"  # the Overview's Next says what runs (it promised DIFT's flags)
        self.finetune_job.finished.connect(self._finetune_ended)
        self.finetune_job.finished.connect(self._retrain_word_goes)
        return True

    def _retrain_word_goes(self, _state: str) -> None:
        if not getattr(self, "_closed", False):  # remove() closes too
            self.panel.gallery.show_notice("", standing="decided-during-retrain")

    def _finetune_ended(self, state: str) -> None:
        """A fine-tune / retrain that did not finish: the gate offers the step again only where it can still run;
        a retrain cancelled after its start says how it goes on (Run ▸ Resume interrupted run), not "Ready"."""
        if state == "finished" or self._removed:
            return
        self.panel.finetune_gate.set_running(False)
        self._show_earlier_result()

    def _posthoc_done(self, job) -> None:
        if self._removed:
            return
        result = job.result or {}
        self.panel.set_finetune_result({"before": result.get("before"), "after": result.get("after"),
                                        "confirmed": result.get("confirmed", 0), "protocol": result.get("protocol"),
                                        "floor": result.get("floor")})
        self._show_after_embeddings({**result, "kind": "posthoc"})
        gate = self.panel.finetune_gate
        from naviewer.workflows.posthoc import finetune_unchanged_reason

        outcome = result.get("outcome") or {}
        unchanged = finetune_unchanged_reason(outcome.get("finetune") or {}, result.get("before") or {})
        used = int(result.get("confirmed", 0))
        if unchanged:
            gate.mark_done(unchanged, used)
        else:
            gate.mark_done(f"Done: fine-tuned the encoder on {plural(used, 'confirmed poison')}; new "
                           f"checkpoint {result.get('checkpoint')}. The table compares before and after.", used)
        self.panel.tabs.setCurrentWidget(gate)
        w = self.window
        from naviewer.gui.format import before_after_text

        w.state.log(f"post-hoc fine-tuned: {before_after_text(result.get('before'), result.get('after'))}; "
                    f"checkpoint {result.get('checkpoint')}")
        w.statusBar().showMessage("Post-hoc fine-tuning finished; see the Fine-tune tab", 15000)

    def _done(self, job) -> None:
        result = self._take_result(job)
        if result is None:
            return
        gate = self.panel.finetune_gate
        gate.show_done(int(result.get("confirmed", 0)), fell_back=_fell_back(result))
        self._say_done(gate.reason.text(), result, "Training on the cleaned data finished; see the Fine-tune tab")

    def remove(self) -> None:
        """Close, and take the panel off the window: the dock is hidden, titled plainly and left with a
        placeholder (another workspace is open now). A fine-tune job still running reports nowhere."""
        from PySide6.QtWidgets import QLabel

        self.close()
        self._removed = True
        dock = self.dock
        if dock.widget() is self.panel:
            placeholder = QLabel("No detection pass is open.\nFile ▸ Open workspace… docks the analyst on a "
                                 "workspace's latest detection pass.")
            placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
            placeholder.setWordWrap(True)
            dock.setWidget(placeholder)
            self.panel.deleteLater()
        dock.setWindowTitle("Analyst")
        dock.hide()

    def close(self) -> None:
        self._closed = True  # a job that ends later must not reach this panel (replaced, or about to be)
        for group in getattr(self, "_shortcut_groups", []):
            self.window.shortcuts_panel.unregister(group)
        for shortcut in getattr(self, "_window_keys", []):  # the window's Ctrl+1..6 to this panel go with it
            try:
                shortcut.setEnabled(False)
                shortcut.deleteLater()
            except RuntimeError:  # gone with the window already
                pass
        self._window_keys = []
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001 - closing twice is harmless
            pass
