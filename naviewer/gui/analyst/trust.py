"""What makes a verdict less trustworthy, said where the analyst sees it: a persistent notice above the views.

Three things, from the detection pass's settings and the workspace's ``[anchors]``:

* **untrusted anchors**: the pass ran on anchors drawn from the dataset's own labels
  (``settings["summary"]["anchors_trusted"] is False``), or the workspace's anchors are not trusted
  (the next DIFT pass will use them). A red box with the core's notice and *Choose trusted
  anchors…* (the Anchors view). It is not a popup: it stays while the reason stays.
* **warnings before any verdict** (``settings["warnings"]``: collapsed or one-dimensional
  embeddings, anchors that do not separate classes): a yellow box listing them.
* **anchors the untrusted-anchor screen dropped** (``settings["anchor_notes"]``): listed, with
  *Show dropped anchors* to select them in every view.
* **advice** (``settings["advice"]``: fewer trusted anchors a class than the recipe was measured with): a
  yellow box; the verdict stands, but its flags may hold more clean samples.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from naviewer.catalogue import SCREEN_DROP_WORDS
from naviewer.gui.anchors_view import NOTICE_STYLE, WARNING_STYLE

#: how the panel's line naming other passes that flagged samples starts (shown as a next step)
OTHER_PASSES = "Other detection passes of this workspace flagged samples"

#: dropped anchors listed by name before "and N more" (the tooltip has them all)
NOTES_SHOWN = 4


@dataclass
class AnchorTrust:
    """Plain (Qt-free) reading of a pass's settings and the workspace's ``[anchors]``."""

    pass_trusted: Optional[bool]          # what the pass recorded (None: unknown, e.g. another detector)
    workspace_trusted: Optional[bool]     # the workspace's anchors now (None: no workspace)
    workspace_kind: str = ""
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dropped_ids: list[int] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)   # e.g. fewer trusted anchors than advised: read the flags wider
    crop_flags_note: str = ""  # which flags do not rest on the anchors the warnings doubt (crop_flags_note)

    @property
    def untrusted(self) -> bool:
        return self.pass_trusted is False or self.workspace_trusted is False

    @property
    def headline(self) -> str:
        if self.pass_trusted is False and self.workspace_trusted is True:
            return ("This pass ran on anchors that were NOT trusted. The workspace has trusted anchors now "
                    f"({self.workspace_kind}): detect again for a verdict that rests on them.")
        if self.pass_trusted is False:
            return "This pass ran on anchors that are NOT trusted."
        if self.pass_trusted is True:
            return ("This pass ran on trusted anchors, but the workspace's anchors are NOT trusted now: the next "
                    "DIFT detection will use them.")
        return "The workspace's anchors are NOT trusted: DIFT detections use them."

    @property
    def any(self) -> bool:
        return self.untrusted or bool(self.warnings) or bool(self.notes) or bool(self.advice)


def read_trust(settings: Optional[Mapping[str, Any]], section: Optional[Mapping[str, Any]], *,
               has_workspace: bool, n_samples: Optional[int] = None) -> AnchorTrust:
    """Read a pass's ``settings`` and the workspace's ``[anchors]`` ``section`` (None or {} when not
    recorded: DIFT then draws them from the labels, untrusted)."""
    from naviewer.workspace.anchor_record import section_kind, section_trusted

    settings = dict(settings or {})
    summary = settings.get("summary") or {}
    recorded = summary.get("anchors_trusted") if isinstance(summary, Mapping) else None
    pass_trusted = None if recorded is None else bool(recorded)
    workspace_trusted: Optional[bool] = None
    kind = ""
    if has_workspace:
        section = dict(section or {})
        if section and (section.get("indices") or section.get("external")):
            workspace_trusted, kind = section_trusted(section), section_kind(section)
        else:
            workspace_trusted, kind = False, "labels"
    warnings = [str(w) for w in (settings.get("warnings") or (summary.get("warnings") if isinstance(summary, Mapping)
                                                              else None) or [])]
    if has_workspace:
        from naviewer.workspace.anchor_record import REPLACED_WARNING, anchors_replaced

        if anchors_replaced(settings, section) and REPLACED_WARNING not in warnings:
            warnings.insert(0, REPLACED_WARNING)
    notes = [str(n) for n in settings.get("anchor_notes") or []]
    dropped = []
    for note in notes:
        match = re.match(r"\s*anchor (\d+)", note)
        if match and (n_samples is None or int(match.group(1)) < n_samples):
            dropped.append(int(match.group(1)))
    advice = [str(a) for a in settings.get("advice") or []]
    from naviewer.analysis.reach import crop_flags_note

    summary_with_warnings = {**summary, "warnings": warnings} if isinstance(summary, Mapping) else None
    return AnchorTrust(pass_trusted, workspace_trusted, kind, warnings, notes, dropped, advice,
                       crop_flags_note(summary_with_warnings))


#: the least the notice shrinks to on a short window (it scrolls then); its full height otherwise, up to a sixth of
#: the window (NOTICE_CAP_MIN px at least)
NOTICE_MIN_HEIGHT = 32
NOTICE_CAP_MIN = 96


class _FitScroll(QScrollArea):
    """A scroll area as tall as its (word-wrapped) content when there is room, and only
    :data:`NOTICE_MIN_HEIGHT` at the least: the notice never raises the window's minimum height (a
    720 px screen holds the analyst with it) and shows whole whenever the window is not at its minimum."""

    def __init__(self) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._hint_height = -1

    def _content_height(self) -> int:
        widget = self.widget()
        if widget is None:
            return 0
        width = max(self.viewport().width(), 200)
        height = widget.heightForWidth(width) if widget.hasHeightForWidth() else -1
        return max(height, widget.minimumSizeHint().height())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(super().sizeHint().width(), min(self._content_height() + 2 * self.frameWidth(), self.cap()))

    def cap(self) -> int:
        """The most the notice asks for: a sixth of the window (at least :data:`NOTICE_CAP_MIN` px); it scrolls
        beyond. Three boxes at full height took ~180 of a 720 px window, the map shrank to ~100 px and the gallery
        to one row (a newcomer's own data, anchors from its labels, session 19)."""
        window = self.window()
        height = window.height() if window is not None and window is not self else 720
        return max(NOTICE_CAP_MIN, height // 6)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(0, min(NOTICE_MIN_HEIGHT, self.sizeHint().height()))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        height = self._content_height()
        if height != self._hint_height:  # the text rewrapped: ask the layout for the new height
            self._hint_height = height
            self.updateGeometry()

    def refit(self) -> None:
        self._hint_height = -1
        self.updateGeometry()


def _yellow_box(name: str) -> QLabel:
    """A selectable rich-text label in the warning style (a box of the notice)."""
    label = QLabel()
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setStyleSheet(WARNING_STYLE)
    return label


def _boxed_frame(name: str, style: str, ink: str) -> QFrame:
    """A frame in a notice style whose labels keep the box's own ``ink`` whatever the theme: a dark theme's pale
    text on the light pink or yellow could hardly be read (newcomers, sessions 19 and 22)."""
    frame = QFrame()
    frame.setObjectName(name)
    frame.setStyleSheet(f"QFrame#{name} {{ {style} }} "
                        f"QFrame#{name} QLabel {{ border: none; padding: 0; background: transparent; color: {ink}; }}")
    return frame


def _rich_label(selectable: bool = False) -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class TrustNotice(QWidget):
    """``TrustNotice(parent=None)``; :meth:`set_trust` fills it (hidden when there is nothing to say).

    Signals: ``anchors_requested()`` (*Choose trusted anchors…*), ``show_samples(object)`` (the
    dropped anchors' sample ids, to select)."""

    anchors_requested = Signal()
    show_samples = Signal(object)
    #: "Sort the flags by anchor reach": the flags the trusted anchors reach as clean samples, first
    reached_requested = Signal()
    #: "Select the N with no trigger": those flags the workspace's PatchSearch pass finds no trigger in, highlighted
    untriggered_requested = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("trustNotice")
        self.trust: Optional[AnchorTrust] = None
        self.anchors = _boxed_frame("untrustedAnchorsNotice", NOTICE_STYLE, "#5f1212")
        self.text = _rich_label(selectable=True)
        self.choose = QPushButton("Choose trusted anchors…")
        self.choose.setToolTip("the Anchors view: where DIFT's anchors come from, and a trusted set to replace them")
        self.choose.clicked.connect(lambda _c=False: self.anchors_requested.emit())
        self.show_dropped = QPushButton("Show dropped anchors")
        self.show_dropped.setToolTip("select the anchors the untrusted-anchor screen dropped, in every view")
        self.show_dropped.clicked.connect(lambda _c=False: self.trust is not None and
                                          self.show_samples.emit(np.asarray(self.trust.dropped_ids, np.int64)))
        # the buttons in a column beside the words, as the reached-flags notice has them: a row of its own under
        # them left the gallery one and a half rows of tiles at 1280x720 (a newcomer, session 34)
        box = QHBoxLayout(self.anchors)
        box.setContentsMargins(8, 6, 8, 6)
        box.setSpacing(8)
        box.addWidget(self.text, 1)
        buttons = QVBoxLayout()
        buttons.setSpacing(3)
        buttons.addWidget(self.choose)
        buttons.addWidget(self.show_dropped)
        buttons.addStretch(1)
        box.addLayout(buttons, 0)

        self.warnings = _yellow_box("verdictWarnings")   # the flags may mean nothing
        self.advice = _yellow_box("verdictAdvice")       # the verdict stands, read it wider
        # flags the trusted anchors reach as clean samples: look at them first (results.md, session 21)
        self.reached = _boxed_frame("reachedFlagsNotice", WARNING_STYLE, "#4a3b00")
        self.reached_text = _rich_label()
        self.reached_button = QPushButton("Sort the flags by anchor reach")
        self.reached_button.setToolTip("the gallery shows the flags, the ones the trusted anchors reach as clean samples "
                                       "first, the keyboard on the first awaiting a decision")
        self.reached_button.clicked.connect(lambda _c=False: self.reached_requested.emit())
        self.untriggered_button = QPushButton("Select the ones with no trigger")
        self.untriggered_button.setToolTip("highlight these flags in which the workspace's PatchSearch pass finds no "
                                           "trigger, to look at them together: R then keeps them all in the data")
        self.untriggered_button.clicked.connect(lambda _c=False: self.untriggered_requested.emit())
        self.untriggered_button.hide()
        row = QHBoxLayout(self.reached)
        row.setContentsMargins(8, 4, 8, 4)
        row.addWidget(self.reached_text, 1)
        buttons_column = QVBoxLayout()
        buttons_column.setSpacing(3)
        buttons_column.addWidget(self.reached_button)
        buttons_column.addWidget(self.untriggered_button)
        row.addLayout(buttons_column, 0)
        self.reached.hide()
        self._reached_count = 0
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(3)
        for widget in (self.anchors, self.warnings, self.advice, self.reached):
            layout.addWidget(widget)
        self.scroll = _FitScroll()
        self.scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)
        self.set_trust(AnchorTrust(None, None))

    def set_trust(self, trust: AnchorTrust) -> None:
        from naviewer.workspace.anchor_record import UNTRUSTED_NOTICE

        self.trust = trust
        notes = trust.notes
        dropped = ""
        if notes:
            shown = "; ".join(html.escape(n) for n in notes[:NOTES_SHOWN])
            more = f"; and {len(notes) - NOTES_SHOWN:,} more" if len(notes) > NOTES_SHOWN else ""
            dropped = (f"<br><b>The untrusted-anchor screen dropped {len(notes):,} anchor"
                       f"{'s' if len(notes) != 1 else ''}</b> on suspicion ({html.escape(SCREEN_DROP_WORDS)}): "
                       f"{shown}{more}.")
        if trust.untrusted:
            body = "" if trust.pass_trusted is False and trust.workspace_trusted is True else " " + html.escape(UNTRUSTED_NOTICE)
            self.text.setText(f"<b>{html.escape(trust.headline)}</b>{body}{dropped}")
            self.choose.setText("Choose trusted anchors…" if trust.workspace_trusted is not True else "Anchors…")
            self.anchors.show()
        elif notes:
            self.text.setText(dropped[4:])
            self.anchors.show()
        else:
            self.anchors.hide()
        self.text.setToolTip("\n".join(notes) if len(notes) > NOTES_SHOWN else "")
        self.choose.setVisible(trust.workspace_trusted is not None)
        self.show_dropped.setText(f"Show dropped anchors ({len(trust.dropped_ids):,})")
        self.show_dropped.setVisible(bool(trust.dropped_ids))
        if trust.warnings:
            crop_note = trust.crop_flags_note
            self.warnings.setText("<b>Warnings before any verdict</b> (the flags may mean nothing):<br>"
                                  + "<br>".join("• " + html.escape(w) for w in trust.warnings)
                                  + (f"<br><i>{html.escape(crop_note)}</i>" if crop_note else ""))
        self.warnings.setVisible(bool(trust.warnings))
        if trust.advice:
            from naviewer.defense.anchors import NOTHING_FLAGGED_ADVICE

            nothing = NOTHING_FLAGGED_ADVICE.split(".")[0]
            wider = [a for a in trust.advice if not a.startswith((nothing, OTHER_PASSES))]
            next_steps = [a for a in trust.advice if a.startswith((nothing, OTHER_PASSES))]
            parts = []
            if wider:  # over a pass of nothing "may hold more clean samples" read as about flags there are none of
                head = ("<b>Read the verdict with care</b> (nothing flagged does not mean nothing there):<br>"
                        if next_steps and any(a.startswith(nothing) for a in next_steps) else
                        "<b>Read the flags wider</b> (the verdict stands, but may hold more clean samples):<br>")
                parts.append(head + "<br>".join("• " + html.escape(a) for a in wider))
            if next_steps:  # a pass that flagged nothing: what to try (session 19's newcomer had no next step)
                parts.append("<b>What to try next</b>:<br>" + "<br>".join("• " + html.escape(a) for a in next_steps))
            self.advice.setText("<br>".join(parts))
        self.advice.setVisible(bool(trust.advice))
        self.setVisible(trust.any or self._reached_count > 0)
        self.scroll.refit()

    def set_reached(self, count: int, undecided: int, more: str = "", untriggered: int = 0,
                    limit: Optional[float] = None) -> None:
        """``count`` flags the trusted anchors reach as clean samples, ``undecided`` of them awaiting a decision
        (0 hides the box); ``more``: a sentence after (what PatchSearch found in them); ``untriggered``: how many of
        them PatchSearch finds no trigger in that await a decision (the button that selects them shows when there
        are any)."""
        from naviewer.analysis.reach import reached_text

        self._reached_count = int(count)
        self.untriggered_button.setText(f"Select the {untriggered:,} with no trigger")  # awaiting a decision
        self.untriggered_button.setVisible(untriggered > 0)
        if count:
            words = reached_text(count, undecided) if limit is None else reached_text(count, undecided, limit)
            # "Look at these first" over flags all decided read as a task still open (a newcomer, session 31)
            lead = "<b>Look at these first.</b> " if undecided else "<b>Looked at: every one is decided.</b> "
            more = more if undecided else more.replace("; here you decide them", "")
            self.reached_text.setText(lead + html.escape(words + more))
        self.reached.setVisible(count > 0)
        self.setVisible((self.trust is not None and self.trust.any) or count > 0)
        self.scroll.refit()
