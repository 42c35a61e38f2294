"""AnalystPanel: every analyst view wired to one session, with linked selection in both directions.

The map, the gallery, the cluster list, the evidence plots and the inspector all read and write the
same :class:`AnalysisSession`; selecting anywhere selects everywhere. The panel is a plain QWidget
for the main window to dock (or the views can be docked one by one: see :meth:`views`).
"""

from __future__ import annotations

import contextlib
import html
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QApplication, QDockWidget, QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSplitter, QTabWidget,
                               QVBoxLayout, QWidget)

from naviewer.analysis.crop_event import layout_of_record
from naviewer.analysis.reach import refused_reason
from naviewer.analysis.session import AnalysisSession
from naviewer.errors import NaviewerError
from naviewer.gui.analyst.clusters import ClusterListWidget, cluster_count_words
from naviewer.gui.analyst.common import SessionBridge, decide, keyed_shortcuts, plural
from naviewer.gui.analyst.crop_layout import CropLayoutWidget
from naviewer.gui.analyst.detector_scores import detector_table
from naviewer.gui.analyst.density_map import DensityMapWidget
from naviewer.gui.analyst.export_dialog import ExportDialog
from naviewer.gui.analyst.finetune_gate import FineTuneGate
from naviewer.gui.analyst.gallery import GalleryWidget
from naviewer.gui.analyst.history import ReviewHistory
from naviewer.gui.analyst.inspector import SampleInspector
from naviewer.gui.analyst.trust import TrustNotice, read_trust
from naviewer.gui.analyst.why import WhyFlaggedWidget
from naviewer.gui.format import encoder_text


INSPECTOR_MIN_WIDTH = 200
#: projections of the embeddings after the fine-tune / retrain (``after:pca``, ``after:tsne``)
AFTER_PREFIX = "after:"
#: map colourings that mean the same on every pass, so they carry over to another pass (a score's colouring does not)
CARRIED_COLOURS = ("class", "review", "truth")


def density_change(result: Optional[dict], short: bool = False) -> str:
    """"The removed samples' neighbourhood density: 6.37 before, 3.29 after (-48 %)" from a fine-tune
    record's ``confirmed_density`` (mean kNN density of the confirmed samples among all samples); ""
    when neither side recorded it."""
    before = ((result or {}).get("before") or {}).get("confirmed_density")
    after = ((result or {}).get("after") or {}).get("confirmed_density")
    numbers = [v if isinstance(v, (int, float)) and np.isfinite(v) else None for v in (before, after)]
    if numbers == [None, None]:
        return ""
    text = ("Removed samples' neighbourhood density: " if short else
            "The removed samples' neighbourhood density (mean kNN density): ") + ", ".join(
        f"{v:.3g} {side}" if v is not None else f"not recorded {side}" for v, side in zip(numbers, ("before", "after")))
    if None not in numbers and numbers[0] > 0:
        change = 100 * (numbers[1] - numbers[0]) / numbers[0]
        text += f" ({change:+.0f} %: {'the pile thinned out' if change < -10 else 'still as dense' if change < 10 else 'denser'})"
    return text + "."


def verdict_line(settings: Any, method: Optional[str] = None) -> str:
    """The pass's verdict where the analyst works (it was only in the Log), with the encoder it ran on; ``method``
    names the pass's detector (a slof pass read "DIFT flagged 16"; a newcomer, session 19)."""
    if not isinstance(settings, dict):
        return ""
    summary = settings.get("summary") or {}
    encoder = settings.get("encoder") or {}
    if "flagged" not in summary and not encoder:
        return ""
    if summary.get("noop"):
        # "no poison detected" over a dataset 7.4 % poisoned with a plain patch read as a clean bill (a newcomer,
        # session 22): DIFT found no crowded group away from the anchors, which is all it can say
        from naviewer.defense.dift import nothing_words

        verdict = (f"<b>DIFT flagged nothing</b>: {html.escape(nothing_words(summary))}"
                   + (" (and the anchors are not trusted)" if summary.get("anchors_trusted") is False else
                      "; a trigger that does not crowd goes unseen (see What to try next)"))
    else:
        who = "DIFT" if method in (None, "dift") else str(method)
        verdict = f"{who} flagged <b>{int(summary.get('flagged') or 0):,}</b>"
        refused = refused_reason(settings)
        if refused:  # "patchsearch flagged 0" hid that its classifier had called a third of the samples poisoned
            verdict += f": {html.escape(refused)}"  # (a newcomer, session 22)
    if encoder:
        how = "inferred from its weights" if encoder.get("inferred") else "as given"
        name = Path(str(encoder.get("checkpoint") or "")).name
        verdict += f" · encoder {name}: {encoder_text(encoder)} ({how})"
    return "<br>Verdict: " + verdict


SHORT_PANEL_PX, TALL_PANEL_PX = 640, 800  # the panel's height at a 1280x720 window is about 590
LOWER_MIN_PX = 200  # the tabs below never get less by default (about their height at 1280x720)
WHY_WANTED_PX = 300  # Why flagged's plots readable: a title, a legend, ~120 px of bars, an axis and a line of words


def upper_share(height: int) -> float:
    """The map/gallery/inspector row's share of the panel's height: the tabs below (cluster table) need
    about the same pixels at any height, so on a short panel the row above takes more of it: 66% up to
    640 px, 62% from 800 px, linear between (a step let a taller panel get a shorter row)."""
    short = min(max((TALL_PANEL_PX - height) / (TALL_PANEL_PX - SHORT_PANEL_PX), 0.0), 1.0)
    return 0.62 + 0.04 * short


#: how often the panel looks for decisions made elsewhere (one read of the audit log's newest row)
SYNC_INTERVAL_MS = 2000


class AnalystPanel(QWidget):
    """``AnalystPanel(session, parent=None, workspace=None, job_manager=None, run=None, tag=None)``.

    ``workspace`` enables manifest export and the t-SNE cache (``<ws>/embeddings/<run>/<tag>-tsne2d.npy``);
    ``job_manager`` (``naviewer.gui.jobs.JobManager``) runs t-SNE in the background (a private one
    is made when None).

    Signals: ``finetune_requested(object)`` (confirmed ids; run the job, then call
    ``set_finetune_result`` / ``finetune_gate.set_running``), ``export_finished(str, str)`` (folder, and a
    message naming the files written there), ``status_message(str)`` (for the status bar),
    ``anchors_requested()`` (the Anchors view: the main window opens it).

    Above the views a persistent notice (:class:`~naviewer.gui.analyst.trust.TrustNotice`) says when
    the pass ran on untrusted anchors or the workspace's anchors are untrusted, lists the pass's
    warnings and the anchors its screen dropped; :meth:`refresh_trust` re-reads it.
    """

    finetune_requested = Signal(object)
    anchors_requested = Signal()
    export_finished = Signal(str, str)
    status_message = Signal(str)

    def __init__(
        self,
        session: AnalysisSession,
        parent: Optional[QWidget] = None,
        workspace: Any = None,
        job_manager: Any = None,
        run: Optional[str] = None,
        tag: Optional[str] = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.bridge = SessionBridge.of(session)
        self.workspace = workspace
        self.run, self.tag = run, tag
        self._job_manager = job_manager
        self._projection_job: Any = None
        self.export_dialog: Optional[ExportDialog] = None

        self.map = DensityMapWidget(session)
        self.gallery = GalleryWidget(session)
        self.clusters = ClusterListWidget(session)
        self.why = WhyFlaggedWidget(session)
        self.inspector = SampleInspector(session, image_size=160)
        self.crop_layout = CropLayoutWidget()
        self.finetune_gate = FineTuneGate(session)
        self.history = ReviewHistory(session)

        self.header = QLabel()
        self.header.setWordWrap(True)  # wraps on a narrow screen instead of widening the window
        export = QPushButton("Export…")
        export.setToolTip("write the cleaned-dataset manifests and an HTML report of the review")
        export.clicked.connect(lambda _checked=False: self.open_export_dialog())
        self.export_button = export
        anchors = QPushButton("Anchors…")
        anchors.setToolTip("DIFT's anchors: where they come from, whether they are trusted, per class; replace them")
        anchors.clicked.connect(lambda _checked=False: self.anchors_requested.emit())
        anchors.setVisible(workspace is not None)
        self.anchors_button = anchors
        top = QHBoxLayout()
        top.addWidget(self.header, 1)
        top.addWidget(anchors)
        top.addWidget(export)
        self.trust = TrustNotice(self)
        self.trust.anchors_requested.connect(self.anchors_requested.emit)
        self.trust.show_samples.connect(self._show_samples)
        self._reached: Optional[np.ndarray] = None  # the flags the trusted anchors reach as clean samples (lazily)
        self._reached_more = ""  # what the workspace's PatchSearch pass found in them
        self.trust.reached_requested.connect(self.show_reached_flags)
        self.trust.untriggered_requested.connect(self.select_untriggered_flags)
        self._patchsearch: Optional[tuple] = None  # the workspace's PatchSearch pass (id, flags), when it has one
        self._cleared: Optional[np.ndarray] = None  # the flags the pass's own trigger check clears, when it has one
        self._reach_limit = 0.7  # the reach the box counts at (the check's own where the pass has one)

        # Every view lays its controls out in rows that wrap (FlowLayout) and shrinks to a small minimum,
        # so the three fit side by side from 1280 px up without scrolling sideways or truncating a label.
        upper = QSplitter(Qt.Orientation.Horizontal)
        upper.setChildrenCollapsible(False)
        upper.addWidget(self.map)
        upper.addWidget(self.gallery)
        upper.addWidget(self.inspector)
        self.inspector.setMinimumWidth(INSPECTOR_MIN_WIDTH)
        upper.setStretchFactor(0, 4)
        upper.setStretchFactor(1, 4)
        upper.setStretchFactor(2, 2)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.clusters, "Ranked clusters")
        self.tabs.addTab(self.why, "Why flagged")
        self.tabs.addTab(self.history, "History")
        # the tab says what its button runs: with restart_mode=retrain it retrains from scratch (a newcomer read
        # "Fine-tune" and expected seconds, not a whole training)
        self.tabs.addTab(self.finetune_gate, "Fine-tune / retrain" if self.finetune_gate.retrains else "Fine-tune")
        self.tabs.addTab(self.crop_layout, "Crop layout")  # its controls scroll inside it; the image always fits
        # Why flagged's three histograms stood 45 px tall at 1280x720: chosen, the tab takes what the row above
        # spares (as the fine-tune table does), once; the splitter stays the analyst's to drag
        self.tabs.currentChanged.connect(
            lambda _i: self.tabs.currentWidget() is self.why and self._room_for_tabs(WHY_WANTED_PX))
        self._crop_tab = self.crop_layout
        self.tabs.setUsesScrollButtons(True)
        outer = QSplitter(Qt.Orientation.Vertical)
        outer.setChildrenCollapsible(False)
        outer.addWidget(upper)
        outer.addWidget(self.tabs)
        outer.setStretchFactor(0, 3)
        outer.setStretchFactor(1, 2)
        self._outer, self._upper = outer, upper
        self._sized = False
        self._laid_out_at: Optional[tuple[int, int]] = None  # the size the default proportions were laid out for
        for splitter in (outer, upper):
            splitter.splitterMoved.connect(lambda _pos, _index: setattr(self, "_sized", True))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(top)
        layout.addWidget(self.trust)
        # the views scroll inside the panel when the window is shorter than they need at the least (the map's notes,
        # the filters open, a fine-tune table, a narrowed gallery): their minimum made the window 743 px tall on a
        # 720 px screen, its title bar and menus off the top (a newcomer, session 29)
        holder = QScrollArea()
        holder.setObjectName("analystViews")
        holder.setWidgetResizable(True)
        holder.setFrameShape(QFrame.Shape.NoFrame)
        holder.setWidget(outer)
        self._holder = holder
        layout.addWidget(holder, 1)
        # the keys' view brought into sight when the views scroll: a narrow gallery's rows pushed the cluster table
        # below the fold while Ctrl+3 put the keyboard in it (a newcomer, session 29)
        QApplication.instance().focusChanged.connect(self._show_focused)

        self._make_shortcuts()
        self.finetune_gate.finetune_requested.connect(self.finetune_requested.emit)
        self.history.status_message.connect(self.status_message.emit)
        self.clusters.notice.connect(self.status_message.emit)
        self.clusters.notice.connect(self.gallery.show_notice)
        self.inspector.layout_requested.connect(self.show_crop_layout)
        # the tab follows the highlighted sample while it is in front, and says whose layout it shows: it kept the
        # first sample's with no id anywhere while the analyst moved on (a newcomer, session 30)
        self.bridge.current_changed.connect(lambda sid, _source: self._crop_layout_follows_current(sid))
        self.map.projection_requested.connect(self.request_projection)
        self.inspector.evaluation_mode_changed.connect(self.map.set_evaluation)
        self.inspector.evaluation_mode_changed.connect(self._crop_layout_follows_evaluation)
        self.map.sample_activated.connect(lambda sid: session.set_current(sid, source=self.map))
        self.gallery.sample_activated.connect(lambda sid: session.set_current(sid, source=self.gallery))
        self.gallery.undone.connect(self.history._name_undo_target)  # History's "Undo batch N" follows every undo
        self.bridge.review_changed.connect(lambda _ids: self._update_header())
        self.bridge.review_changed.connect(self._update_reached)
        #: a decision was made (or undone) while this panel was open: the analyst is reviewing here, and a job that
        #: ends offers its pass instead of replacing this one (MainWindow.analyst_in_review)
        self.reviewed_here = False
        self.bridge.review_changed.connect(lambda _ids: setattr(self, "reviewed_here", True))
        self.bridge.selection_changed.connect(lambda _ids, _src: self._update_header())
        self._update_header()
        self.refresh_trust()
        # decisions another window or process writes to this workspace reach this one within a couple of seconds
        # (a window beside a second one stayed at its own counts, and exported other numbers than it showed)
        self.sync_timer = QTimer(self)
        self.sync_timer.setInterval(SYNC_INTERVAL_MS)
        self.sync_timer.timeout.connect(self.sync_with_store)
        self.sync_timer.start()

    def sync_with_store(self) -> None:
        """Take in decisions written elsewhere (:meth:`AnalysisSession.sync_with_store`) while the panel is shown;
        a store that cannot be read now (locked, gone) is tried again at the next tick."""
        if not self.isVisible():
            return
        try:
            changed = self.session.sync_with_store()
        except Exception:  # noqa: BLE001 - a poll must never raise into the event loop; the next tick retries
            return
        if len(changed):
            self.status_message.emit(f"{len(changed):,} decision(s) made in another window or process were taken "
                                     "in")

    def set_theme(self, theme: Any) -> None:
        """Dark or light: the map and the why-flagged plots follow the application's theme."""
        self.theme = theme
        self.map.set_theme(theme)
        self.why.set_theme(theme)
        self.crop_layout.set_theme(theme)

    @contextlib.contextmanager
    def light_plots(self) -> Iterator[None]:
        """The map and the plots in the light theme while the report renders them (a white page), then as they were."""
        from naviewer.gui import theme as themes
        from naviewer.gui.resources import load_theme

        current = getattr(self, "theme", None) or themes._current_theme
        if current is None or not getattr(current, "dark", False):
            yield
            return
        light = load_theme("light")
        self.map.set_theme(light)
        self.why.set_theme(light)
        try:
            yield
        finally:
            self.map.set_theme(current)
            self.why.set_theme(current)

    def refresh_trust(self) -> None:
        """Re-read the notice: the pass's settings and the workspace's ``[anchors]`` (after replacing them)."""
        ws = self.workspace
        config = getattr(ws, "config", None) if ws is not None else None
        section = config.get("anchors") if isinstance(config, dict) else None
        trust = read_trust(self.session.settings, section, has_workspace=isinstance(config, dict), n_samples=self.session.n)
        # a pass saved before the share warning existed is judged here as it opens (a newcomer's re-check, session 27)
        from naviewer.defense.sanity import flag_rate_warning

        mask = getattr(self.session, "flagged_mask", None)
        flagged = int(np.asarray(mask, dtype=bool).sum()) if mask is not None and len(mask) else 0
        name = "DIFT" if str(getattr(self.session, "method", "dift") or "dift").lower() == "dift" else self.session.method
        share = flag_rate_warning(str(name), flagged, int(self.session.n))
        if share is not None and share not in trust.warnings:  # (a pass saved since records these very words)
            trust.warnings.append(share)
        others = self._other_passes_line()
        if others:
            trust.advice.append(others)
        self.trust.set_trust(trust)
        self._update_reached()

    def _other_passes_line(self) -> str:
        """For a pass that flagged nothing: the workspace's other passes that flagged samples. "Try patchsearch" stood
        under a DIFT pass whose own Detect job had run patchsearch, which flagged 134 (a newcomer, session 22)."""
        from naviewer.gui.analyst.trust import OTHER_PASSES

        summary = self.session.settings.get("summary") if isinstance(self.session.settings, dict) else None
        if not (isinstance(summary, dict) and summary.get("noop")) or self.workspace is None:
            return ""
        from naviewer.analysis.reach import other_passes_with_flags

        try:
            found = [f"{method} pass {pid}: {flags:,} flagged"
                     for pid, method, flags in other_passes_with_flags(self.workspace.store, self.session.pass_id)]
        except Exception:  # noqa: BLE001 - a pointer only: a store that cannot list passes says nothing here
            return ""
        if not found:
            return ""
        return (f"{OTHER_PASSES}: " + "; ".join(found[:6]) + ("; …" if len(found) > 6 else "")
                + ". Workspace ▸ Detection passes opens one.")

    def _update_reached(self, *_args: Any) -> None:
        """The trust notice's count of flags the trusted anchors reach as clean samples (and how many await a
        decision): a pointer for the review, from the pass's trusted anchors only (naviewer.analysis.reach)."""
        from naviewer.analysis.reach import REACHED_LIMIT, pass_anchors_trusted, reached_flags

        if not pass_anchors_trusted(self.session.settings):
            self.trust.set_reached(0, 0)
            return
        if self._reached is None:
            from naviewer.analysis.reach import latest_patchsearch, patchsearch_text

            check = self._trigger_check()
            # with the pass's own check, one reach in the box: the check's (two counts at 0.7 and 0.5 stood side by
            # side, 46 and 56; a newcomer, session 31)
            self._reach_limit = check.reach_limit if check is not None else REACHED_LIMIT
            self._reached = reached_flags(self.session.scores, self._reach_limit)
            found = None
            if len(self._reached) and self.workspace is not None:
                try:
                    found = latest_patchsearch(self.workspace.store, self.session.n)
                except Exception:  # noqa: BLE001 - a pointer only
                    found = None
            self._reached_more = patchsearch_text(self._reached, found)
            self._patchsearch = found
            if check is not None:  # the pass's own check: the button selects what accept-all would leave, not
                # another reading of PatchSearch (the newest pass's per-image word at 0.7; a review, session 31)
                self._cleared = check.cleared
                self._reached_more = (f" The trigger check (PatchSearch pass {check.patchsearch_pass} on the same "
                                      f"encoder) finds no trigger in {check.cleared.size:,} of them (naviewer finetune "
                                      "--accept-all would leave those unconfirmed; here you decide them)."
                                      if check.share >= check.coverage else " " + check.words() + ".")
        counts = self.session.review_counts(self._reached)
        self.trust.set_reached(len(self._reached), counts["unreviewed"] + counts["later"], self._reached_more,
                               len(self._pending_untriggered()), limit=self._reach_limit)

    def _pending_untriggered(self) -> np.ndarray:
        """The reached flags PatchSearch finds no trigger in that await a decision (unreviewed or later): a flag the
        analyst decided is never put back under one key (session 23's review found the button re-deciding them)."""
        from naviewer.analysis.reach import untriggered
        from naviewer.analysis.review import STATE_CODE

        awaiting = np.isin(self.session.state_codes, (STATE_CODE["unreviewed"], STATE_CODE["later"]))
        if self._cleared is not None:  # the pass's trigger check decided which: those
            return self._cleared[awaiting[self._cleared]]
        if self._reached is None or self._patchsearch is None:
            return np.zeros(0, np.int64)
        return untriggered(self._reached, self._patchsearch, awaiting)

    def cleared_by_check(self) -> np.ndarray:
        """The flags this pass's trigger check clears (what accept-all leaves unconfirmed); empty without one."""
        check = self._trigger_check()
        return check.cleared if check is not None else np.zeros(0, np.int64)

    def _trigger_check(self) -> Any:
        """The trigger check recorded with this pass (naviewer.workflows.trigger_check), or None."""
        pass_id = getattr(self.session, "pass_id", None)
        if self.workspace is None or pass_id is None:
            return None
        from naviewer.workflows.trigger_check import trigger_check_of

        try:
            return trigger_check_of(self.workspace, int(pass_id))
        except Exception:  # noqa: BLE001 - a pointer only: an unreadable record is passed over
            return None

    def show_reached_flags(self) -> None:
        """The notice's button: the flags sorted by anchor reach, the keyboard on the first awaiting a decision."""
        if self.gallery.show_flags_sorted_by("anchor_reach"):
            self.focus_view("gallery")
            self.gallery.show_notice("Sorted by anchor reach: the clean-looking flags first (R: clean, C: poison).")

    def select_untriggered_flags(self) -> None:
        """The notice's second button: the reached flags PatchSearch finds no trigger in, shown and highlighted
        together, so one look (and one R, if they are clean) decides them; nothing is decided here. Over 30 stored
        passes that pair of signals held 688 clean samples and 8 poisons (results.md, session 22)."""
        ids = self._pending_untriggered()
        if not len(ids):
            return
        self.session.set_selection(ids, source=None)
        self.session.set_current(int(ids[0]), source=None)
        self.gallery.set_filter("selection", then=self.gallery.select_all)  # every one of them highlighted: the keys'
        self.focus_view("gallery")                                          # target is what the box counted
        # two lines at 1280x720 (three were cut at "R keeps them in the data, C"; a newcomer, session 31)
        self.gallery.show_notice(f"The {len(ids):,} undecided flags with no trigger, highlighted: look, then R keeps "
                                 "them, C removes them.")

    def _show_samples(self, ids: Any) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size:
            self.session.set_selection(ids, source=None)
            self.session.set_current(int(ids[0]), source=None)
            self.status_message.emit(f"Selected the {ids.size:,} anchors the screen dropped.")

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._sized:
            self._initial_sizes()

    #: pixels the panel must grow or shrink by before the default proportions are laid out again: a change of a
    #: pixel or two (a status line a pixel taller as a job started) moved the columns under the mouse (session 25)
    RESIZE_SLACK = 12

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if not self._sized:  # until the user drags a splitter, keep the default proportions
            last = self._laid_out_at
            size = (self.width(), self.height())
            if last is None or max(abs(size[0] - last[0]), abs(size[1] - last[1])) > self.RESIZE_SLACK:
                self._initial_sizes()

    def _show_focused(self, _old: Optional[QWidget], now: Optional[QWidget]) -> None:
        try:
            holder = self._holder
            if now is None or not holder.isAncestorOf(now):
                return
        except RuntimeError:  # the panel went first (a reopened workspace)
            return
        if holder.verticalScrollBar().maximum() > 0 or holder.horizontalScrollBar().maximum() > 0:
            holder.ensureWidgetVisible(now, 8, 8)

    def set_read_only(self, on: bool = True) -> None:
        """The workspace is open read-only: the decision buttons of the gallery, the inspector and the cluster table
        grey, saying why (they stayed live and each press was refused: a GUI probe, session 33); the keys still
        answer with the refusal."""
        from naviewer.gui.analyst.common import READ_ONLY_TIP

        self.gallery.read_only = self.inspector.read_only = self.clusters.read_only = bool(on)
        own = getattr(self, "_own_tips", None)
        buttons = (*(self.gallery.buttons[s] for s in ("confirmed", "rejected", "later")),
                   *self.inspector.buttons.values())
        if on and own is None:  # their own tooltips, put back when the workspace can be written again
            self._own_tips = own = [b.toolTip() for b in buttons]
        for button, tip in zip(buttons, own or [b.toolTip() for b in buttons]):
            button.setToolTip(READ_ONLY_TIP if on else tip)
        if not on:
            self._own_tips = None
        self.gallery._update_target()
        self.gallery._update_undo()
        self.inspector.show_sample(self.inspector.sample)
        self.clusters._update_buttons()

    def reset_sizes(self) -> None:
        """The map / gallery / inspector row and the tabs below at their first proportions again (View ▸ Reset
        layout), whatever the analyst dragged."""
        self._sized = False
        self._initial_sizes()

    def _initial_sizes(self) -> None:
        """Map/gallery/inspector row gets 62% of the height (66% on a short window, where 62% left the gallery
        under two rows of tiles at 1280x720); the width goes 4:4:2 beyond each view's own minimum (so no view
        scrolls while there is room), shrinking proportionally when there is not."""
        self._laid_out_at = (self.width(), self.height())
        h, w = max(self.height() - 40, 200), max(self.width() - 8, 300)
        share = upper_share(h)
        lower = min(h - int(h * share), self._lower_fit())
        self._outer.setSizes([h - lower, lower])
        extra = 2
        mins = [self.map.minimumSizeHint().width() + extra, self.gallery.minimumSizeHint().width() + extra,
                max(self.inspector.minimumWidth(), self.inspector.minimumSizeHint().width())]
        total = sum(mins)
        if w <= total:
            sizes = [int(w * m / total) for m in mins]
        else:
            spare = w - total
            sizes = [mins[0] + int(spare * 0.4), mins[1] + int(spare * 0.4)]
            sizes.append(w - sum(sizes))
        self._upper.setSizes(sizes)

    def _lower_fit(self) -> int:
        """The tabs' height that shows every ranked cluster (at least :data:`LOWER_MIN_PX`, what they get at
        1280x720): on a tall screen with a few clusters the table stood mostly empty while the inspector above
        was cut at the fold (a newcomer at 1920x1080), so the row above takes what the table does not need."""
        table = self.clusters.table
        rows = table.rowCount()
        row_h = table.verticalHeader().defaultSectionSize()
        chrome = (self.tabs.tabBar().sizeHint().height() + table.horizontalHeader().sizeHint().height()
                  + self.clusters.buttons["confirmed"].sizeHint().height() + 28)  # the button row, frames and margins
        return max(LOWER_MIN_PX, chrome + rows * row_h)

    @classmethod
    def from_workspace(cls, ws: Any, pass_id: Optional[int] = None, *, images: Any = None, embeddings: Optional[np.ndarray] = None,
                       reviewer: Optional[str] = None, parent: Optional[QWidget] = None, job_manager: Any = None,
                       run: Optional[str] = None, tag: Optional[str] = None) -> "AnalystPanel":
        from naviewer.gui.analyst.detector_scores import attach, dift_flags_of, load_detector_scores

        session = AnalysisSession.from_workspace(ws, pass_id, images=images, embeddings=embeddings, reviewer=reviewer)
        attach(session, load_detector_scores(ws, dift_flags_of(ws, session)))  # every detector's score, side by side (inspector, sort, map)
        return cls(session, parent=parent, workspace=ws, job_manager=job_manager, run=run, tag=tag)

    def views(self) -> dict[str, QWidget]:
        """The individual views by title (for docking them separately)."""
        return {
            "Density map": self.map, "Gallery": self.gallery, "Inspector": self.inspector, "Ranked clusters": self.clusters,
            "Why flagged": self.why, "History": self.history, "Fine-tune": self.finetune_gate, "Crop layout": self.crop_layout,
        }

    def shortcut_groups(self) -> list[tuple[str, list[Any]]]:
        """The panel's and the views' keys (``QShortcut`` objects) by view, for Help > Keyboard shortcuts."""
        groups = [("Analyst: Panel", list(self.shortcuts))]
        groups += [(f"Analyst: {title}", list(getattr(view, "shortcuts", [])))
                   for title, view in self.views().items() if getattr(view, "shortcuts", None)]
        groups.append(("Analyst: Large sample view", list(self.gallery.viewer.shortcuts)))
        return groups

    def _make_shortcuts(self) -> None:
        """Ctrl+1..6 put the keyboard focus on a view (and show its tab), so no step needs the mouse."""
        self.shortcuts: list[QShortcut] = keyed_shortcuts(self, (
            ("Ctrl+1", lambda: self.focus_view("map"), "Focus the density map (G B S Esc)"),
            ("Ctrl+2", lambda: self.focus_view("gallery"), "Focus the gallery (C R L U N Space)"),
            ("Ctrl+3", lambda: self.focus_view("clusters"), "Focus the ranked clusters (↑↓, C R L per cluster)"),
            ("Ctrl+4", lambda: self.focus_view("inspector"), "Focus the inspector"),
            ("Ctrl+5", lambda: self.focus_view("history"), "Focus the review history (Enter shows, Delete reverts)"),
            ("Ctrl+6", lambda: self.focus_view("finetune"), "Show the fine-tune tab"),
            ("Ctrl+7", self.show_crop_layout_of_current, "Crop layout of the highlighted sample"),
        ), Qt.ShortcutContext.WindowShortcut, on_screen_only=False)  # from anywhere in the window (the Jobs list, the monitor), not only
        # from inside the panel: a keyboard-only review must be able to reach it
        # C R L U with the map focused (after a box or lasso selection) do what the gallery's line above the tiles
        # says they do: a newcomer pressed R on the map, nothing happened, and that line still promised a decision
        # -- but only on what is selected on the map: after a click on empty map ("selected 0") C confirmed the
        # gallery's focused tile, a sample the analyst never pointed at on the map (newcomer session 13)
        g = self.gallery
        self.map.shortcuts += keyed_shortcuts(self.map, (
            ("C", lambda: self._review_map_selection("confirmed"), "Confirm as poison the samples selected on the map"),
            ("R", lambda: self._review_map_selection("rejected"), "Reject as benign the samples selected on the map"),
            ("L", lambda: self._review_map_selection("later"), "Mark for later the samples selected on the map"),
            ("U", g.undo, "Undo the last decision"),
            (QKeySequence.StandardKey.Undo, g.undo, "Undo the last decision"),
        ))
        # and in the cluster table, whose C / R / L decide a whole cluster: U and Ctrl+Z did nothing there, so a
        # cluster rejected by mistake could only be undone after moving to the gallery (newcomer session 16)
        # -- anywhere in the cluster view, its Confirm / Reject buttons too: after "Confirm cluster" the focus was on
        # the button and U, which the notice promised, did nothing (a newcomer, session 29)
        self.clusters.shortcuts += keyed_shortcuts(self.clusters, (
            ("U", g.undo, "Undo the last decision (a whole cluster's batch is one step)"),
            (QKeySequence.StandardKey.Undo, g.undo, "Undo the last decision"),
        ), Qt.ShortcutContext.WidgetWithChildrenShortcut)

        # and in the inspector (a neighbour clicked there has the focus): the sample it shows. A newcomer clicked a
        # neighbour, read "C · R · L act on the highlighted sample #1404" and pressed C: nothing, and no word
        self.inspector.shortcuts = keyed_shortcuts(self.inspector, (
            ("C", lambda: self._review_inspected("confirmed"), "Confirm as poison the sample the inspector shows"),
            ("R", lambda: self._review_inspected("rejected"), "Reject as benign the sample the inspector shows"),
            ("L", lambda: self._review_inspected("later"), "Mark for later the sample the inspector shows"),
            ("U", g.undo, "Undo the last decision"),
            (QKeySequence.StandardKey.Undo, g.undo, "Undo the last decision"),
        ))

    def give_view_keys_to(self, window: QWidget) -> list[QShortcut]:
        """Ctrl+1..6 answer from anywhere in ``window``, the Analyst closed with its × too: Qt fires no shortcut whose
        widget is hidden, and a newcomer's Ctrl+2 after closing the panel did nothing (session 26). Returns them:
        whoever docks the panel deletes them with it."""
        for shortcut in self.shortcuts:
            shortcut.setParent(window)
        return list(self.shortcuts)

    def _review_inspected(self, state: str) -> None:
        """C / R / L with the inspector focused: the sample it shows (large, with its number), nothing else. Not while
        its image is scrolled out of sight: a newcomer, reading the neighbours below it, pressed C and confirmed an
        airplane the filters hid from the gallery (session 22); the key then brings the image back into view."""
        from naviewer.gui.analyst.common import on_screen

        shown = self.inspector.sample
        if shown is not None and not on_screen(self.inspector.image):
            self.inspector.scroll.ensureWidgetVisible(self.inspector.image, 0, 0)
            self.gallery.show_notice(f"Nothing decided: the inspector's image of #{shown} was scrolled out of sight. "
                                     f"It is in view now: press {state[0].upper()} again to mark it {state}.")
            return
        sid = self.inspector.review_shown(state)
        self.gallery.show_notice("The inspector shows no sample, so nothing was decided: click a tile first."
                                 if sid is None else f"#{sid} {state} (the sample the inspector shows).")

    def _review_map_selection(self, state: str) -> None:
        """C / R / L with the map focused: the map's selection, never a sample picked elsewhere."""
        selection = self.session.selection
        if selection is None or len(selection) == 0:
            message = ("Nothing is selected on the map, so nothing was decided: select samples with a box (B) or a "
                       "lasso (S), or press Ctrl+2 to decide in the gallery.")
            self.gallery.show_notice(message)
            self.status_message.emit(message)
            return
        # the map's own selection, decided here: through the gallery's keys it was refused whenever the pick was not
        # among the tiles shown ("... or Esc to act on the tile under focus"), three refusals before C worked
        done = decide(self, self.session, np.asarray(selection, np.int64), state)
        if len(done):
            self.gallery.show_notice(f"{plural(len(done))} selected on the map: {state}.")

    def focus_view(self, name: str) -> QWidget:
        """Give ``name``'s view the keyboard focus (bringing its tab forward)."""
        targets = {"map": (self.map, self.map.plot), "gallery": (self.gallery, self.gallery.view),
                   "clusters": (self.clusters, self.clusters.table), "inspector": (self.inspector, self.inspector),
                   "history": (self.history, self.history.table), "finetune": (self.finetune_gate, self.finetune_gate.button)}
        view, focus = targets[name]
        dock = self.parentWidget()
        while dock is not None and not isinstance(dock, QDockWidget):
            dock = dock.parentWidget()
        if dock is not None:  # a tab behind the monitor, or hidden: brought forward first
            dock.show()
            dock.raise_()
        if self.tabs.indexOf(view) >= 0:
            self.tabs.setCurrentWidget(view)
        # the clusters: no row is chosen for the analyst (setting row 0 current selected cluster 1 everywhere,
        # replacing the selection; newcomer session 17): ↓ then chooses the first
        if name == "history" and self.history.table.currentRow() < 0 and self.history.table.rowCount():
            self.history.table.setCurrentCell(0, 0)
        if name == "gallery" and not self.gallery.view.currentIndex().isValid() and self.gallery.model.rowCount():
            self.gallery.view.setCurrentIndex(self.gallery.model.index(0))
        if name == "gallery" and not self.gallery.notice_sticky:
            # another view's word ("No cluster is chosen…") stayed under the tiles, contradicting the line above them
            self.gallery.show_notice("")
        focus.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self._show_focused(None, focus)  # (also when the window is not active and no focus change is reported)
        return focus

    def _update_header(self) -> None:
        s = self.session
        c = s.review_counts()
        flags = sum(c.values())
        self.header.setText(
            f"<b>{s.n:,}</b> samples · <b>{flags:,}</b> flagged in {cluster_count_words(getattr(s, 'method', ''), len(s.clusters()))} · "
            f"decided {c['confirmed'] + c['rejected']:,} / {flags:,}" + (f" ({c['later']:,} later)" if c["later"] else "")
            + f" · selected {len(s.selection):,} · reviewer <i>{s.reviewer}</i>"
            + verdict_line(s.settings, getattr(s, "method", None))
        )

    # -- wiring -----------------------------------------------------------------------------------
    def show_crop_layout(self, sid: int, bring_forward: bool = True) -> None:
        """Open the crop-layout view on sample ``sid`` (its recorded layout only in evaluation mode)."""
        image = self.session.image(sid)
        if image is None:
            return
        self._crop_sid = int(sid)
        layout = None
        if self.inspector.evaluation_mode:
            layout = layout_of_record(self.session.truth_for(sid), image.shape[0], image.shape[1])
        self.crop_layout.set_sample(image, layout)
        self.crop_layout.set_densest_crop(detector_table(self.session).densest_crop(sid))
        index = self.tabs.indexOf(self._crop_tab)
        if index >= 0:
            self.tabs.setTabText(index, f"Crop layout · #{int(sid)}")
        if bring_forward:
            self.tabs.setCurrentWidget(self._crop_tab)

    def show_crop_layout_of_current(self) -> None:
        """Ctrl+7: the crop layout of the highlighted sample in front (the inspector's Crop layout… had no key, so a
        keyboard-only review could not reach it; a newcomer, session 30). A square image has none: said."""
        sid = self.session.current
        image = self.session.image(int(sid)) if sid is not None else None
        if image is not None and image.shape[0] != image.shape[1]:
            self.show_crop_layout(int(sid))
            self.status_message.emit(f"Crop layout of #{int(sid)}")  # (an earlier "highlight a composite first" stood)
            return
        self.tabs.setCurrentWidget(self._crop_tab)
        self.status_message.emit("Crop layout: highlight a composite first (an image twice as wide as tall, or "
                                 "twice as tall): a square image has no crop layout" if sid is not None else
                                 "Crop layout: highlight a sample first (the gallery's arrows, or a click)")

    def _crop_layout_follows_current(self, sid: Any) -> None:
        """The highlighted sample changed: the crop layout in front shows it, when it is a composite's shape."""
        if sid is None or self.tabs.currentWidget() is not self._crop_tab or int(sid) == getattr(self, "_crop_sid", None):
            return
        image = self.session.image(int(sid))
        if image is not None and image.shape[0] != image.shape[1]:  # as the inspector's Crop layout… button
            self.show_crop_layout(int(sid), bring_forward=False)

    def _crop_layout_follows_evaluation(self, _on: bool) -> None:
        """Evaluation mode turned on or off: the crop layout shown switches between the template and the recorded
        layout at once (it kept the template until Crop layout… was pressed again; a newcomer, session 26)."""
        sid = getattr(self, "_crop_sid", None)
        if sid is not None:
            self.show_crop_layout(sid, bring_forward=False)

    def set_after_embeddings(self, embeddings: np.ndarray, label: str, *, run: Optional[str] = None,
                             tag: Optional[str] = None, result: Optional[dict] = None) -> None:
        """The samples re-embedded by the encoder after the fine-tune / remove-and-retrain (``label``, e.g.
        "after retraining"): the map offers them as "PCA, <label>" and "t-SNE, <label>" beside the
        detection's, and the line above it gives the removed samples' neighbourhood density before and
        after (``result``: the recorded ``before`` / ``after`` ``confirmed_density``), so the analyst
        sees whether the pile dissolved."""
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2 or len(embeddings) != self.session.n:
            raise NaviewerError(f"the embeddings {label} have shape {embeddings.shape}, not one row for each of "
                                f"the {self.session.n:,} samples")
        self.after_embeddings, self.after_label, self.after_run, self.after_tag = embeddings, label, run, tag
        where = f" (embeddings {run}/{tag})" if run and tag else ""
        tip = f"every sample embedded by the encoder {label}{where}; the removed samples keep their review colours and flag rings"
        self.map.add_projection(AFTER_PREFIX + "pca", f"PCA, {label}", tip)
        self.map.add_projection(AFTER_PREFIX + "tsne", f"t-SNE, {label}", tip)
        density = density_change(result, short=True)
        self.map.set_projection_notes(
            f"Map: the detection encoder's space; <i>PCA, {label}</i> shows the new encoder's." + (f" {density}" if density else ""),
            f"Map: every sample embedded by the encoder <b>{label}</b>{where}; the removed samples keep their flag "
            "rings. " + (density or "Their neighbourhood density was not recorded."))
        self.map.embedding_note.setToolTip(
            f"{density_change(result) or 'No neighbourhood density was recorded.'} Colour the map by review state to "
            "pick out the removed (confirmed) samples; a pile that dissolved is spread among its classes.")

    def request_projection(self, method: str) -> None:
        """Compute a projection the session lacks (t-SNE, or a map of the embeddings after the fine-tune /
        retrain: ``after:pca``, ``after:tsne``) as a background job; t-SNE is cached in the workspace."""
        s = self.session
        after = method.startswith(AFTER_PREFIX)
        emb = getattr(self, "after_embeddings", None) if after else s.embeddings
        if emb is None:
            self.status_message.emit("No embeddings loaded: only the density-rank map is available.")
            return
        if self._projection_job is not None and self._projection_job.running:
            return
        from naviewer.analysis.projection import cached_projection, project
        from naviewer.gui.jobs import JobManager

        if self._job_manager is None:
            self._job_manager = JobManager(self)
        base = method[len(AFTER_PREFIX):] if after else method
        ws = self.workspace
        run, tag = (self.after_run, self.after_tag) if after else (self.run, self.tag)

        def job(ctx: Any) -> np.ndarray:
            if base == "pca":  # quick, and never saved: a cached (N, 2) array would pass for embeddings
                return project(np.asarray(emb, dtype=np.float32), base, ctx=ctx)
            return cached_projection(emb, base, workspace=ws, run=run, tag=tag, ctx=ctx)

        what = f"{base} projection of {s.n:,} samples" + (f" {self.after_label}" if after else "")
        resources = [f"projection:{method}"] + ([str(Path(ws.path))] if ws is not None and hasattr(ws, "path") else [])
        self._projection_job = self._job_manager.start(job, what, resources=resources, kind="projection")
        self.status_message.emit(f"Computing the {base} map{(' ' + self.after_label) if after else ''} in the background…")

        def done(state: str, job_ref: Any = self._projection_job) -> None:
            if state == "finished" and job_ref.result is not None:
                s.set_projection(job_ref.result, method)
                self.status_message.emit(f"{what} ready.")
            else:
                self.status_message.emit(f"{what}: {state} {job_ref.error_message() if state == 'failed' else ''}")

        self._projection_job.finished.connect(done)

    def place(self) -> dict:
        """Where the analyst is (the tab below, the gallery's view, the selection, the inspected sample, whether the
        Fine-tune tab shows a result): what :meth:`restore_place` puts back on a panel rebuilt on the same pass."""
        s = self.session
        # only the detection embeddings' t-SNE: an "after" map belongs to the retrain it was made of (a rebuilt panel
        # showed the first retrain's map under a later one's name; a review)
        projections = {k: v for k, v in getattr(s, "_projections", {}).items() if k == "tsne"}
        return {"tab": self.tabs.currentIndex(), "filter": getattr(self.gallery, "_filter", None),
                "selection": np.asarray(s.selection).copy(), "current": s.current,
                "result": not self.finetune_gate.result.isHidden(),
                # the filters and sort, the map's projection and colours, the splitters the analyst dragged: a job's
                # end re-opened the panel on PCA, the suspicion order and the default proportions (a newcomer with a
                # t-SNE map and a sorted gallery while the floor was measured, session 26)
                "filters": self.gallery.filters.spec(), "filters_open": not self.gallery.filters.isHidden(),
                "projection": self.map.projection_box.currentData(), "projections": projections,
                "colour": self.map.colour_mode, "evaluation": self.inspector.evaluation_mode,
                "splitters": (self._outer.sizes(), self._upper.sizes()) if self._sized else None,
                "tile": int(self.gallery.view.tile) if self.gallery.view.user_tile else None}

    def restore_place(self, place: dict) -> None:
        """Put the analyst back where :meth:`place` found them: every job's end re-opened the workspace and the
        panel came back on Ranked clusters with nothing selected (newcomer session 18). A Fine-tune result that
        was not there before is shown instead of the old tab."""
        s = self.session
        selection = np.asarray(place.get("selection", []), dtype=np.int64)
        selection = selection[(selection >= 0) & (selection < s.n)]
        if place.get("filters") is not None and place["filters"] != self.gallery.filters.spec():
            self.gallery.filters.set_spec(place["filters"])
        if place.get("filters_open"):
            self.gallery.show_filters(True)
        if place.get("filter") and place["filter"] != getattr(self.gallery, "_filter", None):
            self.gallery.set_filter(place["filter"])
        self._restore_map(place)
        if place.get("tile"):  # the tile size the analyst chose
            self.gallery.view.set_tile(int(place["tile"]))
        if place.get("splitters"):
            outer, upper = place["splitters"]
            self._outer.setSizes(list(outer))
            self._upper.setSizes(list(upper))
            self._sized = True
        if len(selection):
            s.set_selection(selection, source=None)
        current = place.get("current")
        if current is not None and 0 <= int(current) < s.n:
            s.set_current(int(current), source=None)
        if not place.get("result") and not self.finetune_gate.result.isHidden():
            self.tabs.setCurrentWidget(self.finetune_gate)
        elif 0 <= int(place.get("tab", -1)) < self.tabs.count():
            self.tabs.setCurrentIndex(int(place["tab"]))

    def view(self) -> dict:
        """What of :meth:`place` outlives the window (kept per workspace in the settings, put back by
        :meth:`restore_view` when the workspace is opened again), as plain values: evaluation mode, the map's
        colouring, the gallery's Show and filters and sort, the tab below and the highlighted sample, with the pass
        they belong to."""
        spec = self.gallery.filters.spec()
        return {"evaluation": self.inspector.evaluation_mode, "colour": self.map.colour_mode,
                "pass": None if self.session.pass_id is None else int(self.session.pass_id),
                "show": getattr(self.gallery, "_filter", None), "tab": int(self.tabs.currentIndex()),
                "current": None if self.session.current is None else int(self.session.current),
                "filters_open": not self.gallery.filters.isHidden(),
                "filters": {"states": sorted(spec.states), "sort": spec.sort,
                            "descending": bool(spec.descending),
                            "cluster": None if spec.cluster is None else int(spec.cluster),
                            "label": None if spec.label is None else int(spec.label),
                            "ranges": {k: [float(a), float(b)] for k, (a, b) in spec.ranges.items()}}}

    def restore_view(self, view: dict) -> None:
        """The view as it was when the workspace was last open (a newcomer reopened a workspace and found evaluation
        mode off, the map on density rank, the gallery back on Flagged sorted by suspicion, sessions 26-28). What
        belongs to one pass (its filters, the tab, the highlighted sample) comes back only on that pass; what this pass
        cannot show (a detector's colouring it lacks) is left as it is."""
        from naviewer.gui.analyst.filters import FilterSpec

        if bool(view.get("evaluation")) != self.inspector.evaluation_mode:
            self.inspector.set_evaluation_mode(bool(view.get("evaluation")))
        same = view.get("pass") is not None and view.get("pass") == self.session.pass_id
        colour = view.get("colour")
        # on another pass, a colouring by one pass's scores gives way to the new pass's own: the map of a patchsearch
        # pass stayed coloured by "kdist #1 score" (a newcomer, session 30); class, review state and truth carry over
        if same or colour in CARRIED_COLOURS:
            self._restore_map({"colour": colour})
        saved = view.get("filters")
        try:
            # on another pass only the sort carries over: a class or state filter of the pass before left a new pass's
            # gallery empty ("0 of 2 (filtered)"; a newcomer, session 28)
            if isinstance(saved, FilterSpec):
                spec = saved if same else FilterSpec(sort=saved.sort, descending=saved.descending)
            elif isinstance(saved, dict):
                ranges = {str(k): (float(v[0]), float(v[1])) for k, v in (saved.get("ranges") or {}).items()} if same else {}
                states = frozenset(str(s) for s in saved.get("states") or ()) or FilterSpec().states
                spec = FilterSpec(cluster=saved.get("cluster") if same else None,
                                  states=states if same else FilterSpec().states,
                                  label=saved.get("label") if same else None, ranges=ranges,
                                  sort=str(saved.get("sort") or "suspicion"), descending=bool(saved.get("descending")))
            else:
                spec = None
        except (TypeError, ValueError, IndexError):  # the settings file is the user's to edit
            spec = None
        if spec is not None and spec != self.gallery.filters.spec():
            self.gallery.filters.set_spec(spec)
        if view.get("filters_open"):
            self.gallery.show_filters(True)
        show = view.get("show")  # (not Selection: the selection itself is not kept, and it would show nothing)
        if (isinstance(show, str) and show != "selection" and self.gallery.filter_box.findData(show) >= 0
                and show != getattr(self.gallery, "_filter", None)):
            self.gallery.set_filter(show)
        if not same:
            return
        current = view.get("current")
        if isinstance(current, int) and 0 <= current < self.session.n:
            # the selection with it: the map kept the pass's first flag selected, which its keys would have decided
            # (a newcomer, session 28)
            self.session.set_selection(np.array([current], dtype=np.int64), source=None)
            self.session.set_current(current, source=None)
        tab = view.get("tab")
        if isinstance(tab, int) and 0 <= tab < self.tabs.count():
            self.tabs.setCurrentIndex(tab)

    def _restore_map(self, place: dict) -> None:
        """The map's colours and projection as they were; a t-SNE is taken over from the panel before (never
        computed again here), and a projection this panel cannot show is left as it is."""
        if place.get("evaluation") and not self.inspector.evaluation_mode:  # before the colour: truth needs it
            self.inspector.set_evaluation_mode(True)
        colour = place.get("colour")
        if colour and colour != self.map.colour_mode and colour in self.map.colour_modes:
            self.map.set_colour_mode(colour)
        method = place.get("projection")
        points = (place.get("projections") or {}).get(method)
        if method and method != "pca" and points is not None and np.shape(points) == (self.session.n, 2):
            self.session.set_projection(points, method)
            index = self.map.projection_box.findData(method)
            if index >= 0:
                self.map.projection_box.setCurrentIndex(index)

    def set_finetune_result(self, result: dict) -> None:
        self.finetune_gate.set_running(False)
        self.finetune_gate.set_result(result)
        self._room_for_tabs(self.finetune_gate.body.sizeHint().height() + self.tabs.tabBar().sizeHint().height() + 8)

    def _room_for_tabs(self, wanted: int) -> None:
        """Give the tabs below ``wanted`` px (the fine-tune table whole) when the map row can spare it: what the
        gallery has beyond two rows of tiles (at 1280x720 the result took the row down to a strip of map and one
        row of tiles; a newcomer, session 26). The tab scrolls for the rest."""
        upper, lower = self._outer.sizes()
        view = self.gallery.view
        spare = max(0, view.height() - 2 * int(view.tile) - 8)
        floor = max(self._upper.minimumSizeHint().height(), 220, upper - spare)
        if lower >= wanted or upper <= floor:
            return
        move = min(wanted - lower, upper - floor)
        self._outer.setSizes([upper - move, lower + move])

    def open_export_dialog(self, modal: bool = False) -> ExportDialog:
        """The export dialog (manifests and the HTML report with the map and plots), shown window-modal
        without blocking (``modal``: run it with ``exec()``); ``export_finished`` says where it wrote."""
        dialog = ExportDialog(self.session, self.workspace, self, plots={"Density map": self.map.plot, **self.why.plots()},
                              job_manager=self._job_manager, plot_look=self.light_plots)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.exported.connect(self._on_exported)
        self.export_dialog = dialog
        if modal:
            dialog.exec()
        else:
            dialog.setWindowModality(Qt.WindowModality.WindowModal)
            dialog.open()
        return dialog

    def _on_exported(self, folder: str, message: str) -> None:
        self.status_message.emit(message.splitlines()[0])
        self.export_finished.emit(folder, message)
