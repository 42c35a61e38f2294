"""The large sample view: one sample at the size of the window, walked with the arrow keys, decided with C/R/L.

Opened from the gallery (double-click or Space) on the focused tile. It always shows the session's
current sample; ←/→ (and ↑/↓) move through the gallery's tiles in the order shown, C/R/L decide the
sample shown (and move on to the next flag awaiting a decision, as in the gallery), U undoes, N goes
to the next undecided flag, Esc or Space closes.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from naviewer.gui.analyst.common import STATE_COLOURS, SessionBridge, fmt, qimage_from_array
from naviewer.gui.analyst.detector_scores import detector_table
from naviewer.gui.analyst.inspector import CROP_COLOUR, outline_crop

VIEWER_HINT = ("<b>←/→</b> previous/next · <b>C</b> confirm · <b>R</b> reject · <b>L</b> later · <b>U</b> undo · "
               "<b>N</b> next undecided · <b>Esc</b> close")


class SampleViewer(QDialog):
    """``SampleViewer(gallery, parent=None)``: follows ``gallery.session.current``; see the module doc."""

    KEYS = {
        Qt.Key.Key_Left: "previous", Qt.Key.Key_Up: "previous", Qt.Key.Key_Right: "next", Qt.Key.Key_Down: "next",
        Qt.Key.Key_C: "confirmed", Qt.Key.Key_R: "rejected", Qt.Key.Key_L: "later", Qt.Key.Key_U: "undo",
        Qt.Key.Key_N: "pending", Qt.Key.Key_Escape: "close", Qt.Key.Key_Space: "close",
        Qt.Key.Key_Home: "first", Qt.Key.Key_End: "last",
    }

    def __init__(self, gallery: Any, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent or gallery)
        self.gallery = gallery
        self.session = gallery.session
        self.bridge = SessionBridge.of(self.session)
        self.sample: Optional[int] = None
        self.crop = None  # the box the inspector outlines on this sample (a detector's DensestCrop), if any
        self.setWindowTitle("Sample")
        self.setModal(False)
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: bold; font-size: 14px;")
        self.title.setWordWrap(True)
        self.position = QLabel()
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(160, 160)
        self.image.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.scores = QLabel()
        self.scores.setWordWrap(True)
        self.scores.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hint = QLabel(VIEWER_HINT)
        self.hint.setWordWrap(True)
        self.hint.setObjectName("hintLabel")  # the theme's hint colour (#666 was faint on dark)
        self.buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        for action, text in (("previous", "← Previous"), ("confirmed", "Confirm (C)"), ("rejected", "Reject (R)"),
                             ("later", "Later (L)"), ("undo", "Undo (U)"), ("next", "Next →")):
            button = QPushButton(text)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the dialog
            button.clicked.connect(lambda _c=False, a=action: self.act(a))
            self.buttons[action] = button
            row.addWidget(button)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.position)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.image, 1)
        layout.addWidget(self.scores)
        layout.addLayout(row)
        layout.addWidget(self.hint)
        self.bridge.current_changed.connect(lambda sid, _src: self.show_sample(sid) if self.isVisible() else None)
        self.bridge.review_changed.connect(lambda ids: self._refresh_if(ids))
        self._sized = False
        self.shortcuts: list[QShortcut] = []  # listed by Help > Keyboard shortcuts
        for keys, action, text in (
            (("Left", "Up"), "previous", "Previous sample of the gallery's view"),
            (("Right", "Down"), "next", "Next sample of the gallery's view"),
            (("Home",), "first", "First sample of the view"),
            (("End",), "last", "Last sample of the view"),
            (("C",), "confirmed", "Confirm the sample shown as poison"),
            (("R",), "rejected", "Reject the sample shown (benign)"),
            (("L",), "later", "Mark the sample shown for later"),
            (("U", QKeySequence.StandardKey.Undo), "undo", "Undo the last decision"),
            (("N",), "pending", "Next flag awaiting a decision"),
            (("Esc", "Space"), "close", "Close the large view"),
        ):
            for key in keys:
                shortcut = QShortcut(QKeySequence(key), self)
                shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                shortcut.setWhatsThis(text)
                if action in ("confirmed", "rejected", "later", "undo"):
                    shortcut.setAutoRepeat(False)  # a held key decided one sample after another (a probe)
                shortcut.activated.connect(lambda a=action: self.act(a))
                self.shortcuts.append(shortcut)

    # -- showing ----------------------------------------------------------------------------------
    def open_on(self, sid: int) -> None:
        """Show ``sid`` (and make it the current sample everywhere)."""
        if not self._sized:
            self._sized = True
            window = self.gallery.window()
            size = window.size() if window is not None and window is not self.gallery else None
            if size is not None and size.width() > 400:
                self.resize(max(480, int(size.width() * 0.6)), max(420, int(size.height() * 0.8)))
            else:
                self.resize(640, 560)
        if self.session.current != sid:
            self.gallery.move_to(sid)
        self.show_sample(sid)
        self.show()
        self.raise_()
        self.activateWindow()
        if self.windowHandle() is not None:
            self.windowHandle().requestActivate()
        self.setFocus()

    def show_sample(self, sid: Optional[int]) -> None:
        self.sample = None if sid is None else int(sid)
        self.crop = None
        if sid is None:
            self.title.setText("No sample")
            self.image.clear()
            self.scores.setText("")
            self.position.setText("")
            return
        s = self.session
        info = s.sample_scores(int(sid))
        state = info["review"]
        colour = STATE_COLOURS[state].name()
        flag = " · flagged" if s.flagged_mask[sid] else ""
        self.title.setText(f"#{sid} · {info['label']} · <span style='color:{colour}'>{state}</span>{flag}")
        self.setWindowTitle(f"Sample #{sid}")
        shown = self.gallery.shown_ids()
        where = np.flatnonzero(shown == sid)
        self.position.setText(f"{int(where[0]) + 1:,} of {len(shown):,} shown" if len(where) else "not in the gallery's view")
        parts = []
        for key, text in (("rank", "density rank"), ("density", "density"), ("mindist", "MinDist"), ("posterior", "posterior")):
            if key == "rank" and info.get(key) is not None:  # counted from 1, as the inspector's (it said 0 here)
                parts.append(f"{text} <b>{int(info[key]) + 1:,}</b> of {s.n:,}")
            elif key in info:
                parts.append(f"{text} <b>{fmt(info[key])}</b>")
        parts += self._detector_parts(int(sid))
        self.crop = detector_table(s).densest_crop(int(sid))
        if self.crop is not None:
            parts.append(f"<span style='color:{CROP_COLOUR.name()}'>▭</span> {self.crop.what} ({self.crop.label})")
        cluster = int(s.cluster_of()[sid]) if s.flagged_mask[sid] else -1
        if cluster >= 0:
            parts.append(f"cluster <b>#{cluster + 1}</b>")
        if "source" in info:
            parts.append(f"source {info['source']}")
        self.scores.setText(" · ".join(parts))
        self._paint()

    def _detector_parts(self, sid: int) -> list[str]:
        """The reviewed pass's own detector's score when it is not DIFT, and how many detectors flag the sample: the
        large view of a slof pass said only its cluster and source (a newcomer, session 19)."""
        parts = []
        for item in detector_table(self.session):
            if item.voters:
                who = sum(bool(flagged[sid]) for _label, flagged in item.voters)
                parts.append(f"detectors flagging <b>{who}</b> of {len(item.voters)}")
            elif item.pass_id == self.session.pass_id and 0 <= sid < len(item.score) and np.isfinite(item.score[sid]):
                parts.append(f"{item.label} <b>{fmt(float(item.score[sid]))}</b>, rank {int(item.rank[sid]) + 1:,} "
                             f"of {len(item.score):,}")
        return parts

    def _paint(self) -> None:
        if self.sample is None:
            return
        image = self.session.image(self.sample)
        if image is None:
            self.image.setText("(no image data)")
            return
        h, w = image.shape[:2]
        room = self.image.size()
        scale = max(1.0, min(room.width() / w, room.height() / h))
        mode = Qt.TransformationMode.FastTransformation if scale >= 2 else Qt.TransformationMode.SmoothTransformation
        pix = QPixmap.fromImage(qimage_from_array(image)).scaled(
            int(w * scale), int(h * scale), Qt.AspectRatioMode.KeepAspectRatio, mode)
        if self.crop is not None:  # the box the inspector outlines (PatchSearch's window, crop_density's densest
            outline_crop(pix, self.crop, pix.width() / w)  # crop): the large view showed none (session 25)
        self.image.setPixmap(pix)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._paint()

    def hideEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        """Closed: the keys go back to the gallery, on the sample last shown."""
        super().hideEvent(event)
        window = self.gallery.window()
        if window is not None and window is not self:
            window.activateWindow()
            if window.windowHandle() is not None:
                window.windowHandle().requestActivate()
        self.gallery.view.setFocus(Qt.FocusReason.OtherFocusReason)

    def _refresh_if(self, ids: np.ndarray) -> None:
        if self.isVisible() and self.sample is not None and self.sample in set(np.asarray(ids).tolist()):
            self.show_sample(self.sample)

    # -- keys ---------------------------------------------------------------------------------------
    def keyPressEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if event.isAutoRepeat() and (event.matches(QKeySequence.StandardKey.Undo)
                                     or self.KEYS.get(Qt.Key(event.key())) in ("confirmed", "rejected", "later", "undo")):
            event.accept()  # a held key decides once
            return
        if event.matches(QKeySequence.StandardKey.Undo):
            self.act("undo")
            return
        action = self.KEYS.get(Qt.Key(event.key()))
        if action is not None and not (event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier & ~Qt.KeyboardModifier.ShiftModifier):
            self.act(action)
            return
        super().keyPressEvent(event)

    def act(self, action: str) -> None:
        g = self.gallery
        if action == "close":
            self.close()
        elif action in ("previous", "next", "first", "last"):
            self.step(action)
        elif action == "undo":
            g.undo()
        elif action == "pending":
            g.next_unreviewed(after=self.sample)
        elif self.sample is not None:
            g.review_ids(np.array([self.sample], np.int64), action)

    def step(self, where: str) -> Optional[int]:
        """Move to the previous/next/first/last tile of the gallery's view."""
        shown = self.gallery.shown_ids()
        if len(shown) == 0:
            return None
        at = np.flatnonzero(shown == self.sample) if self.sample is not None else np.zeros(0, np.int64)
        pos = int(at[0]) if len(at) else -1
        target = {"previous": max(pos - 1, 0), "next": min(pos + 1, len(shown) - 1), "first": 0, "last": len(shown) - 1}[where]
        sid = int(shown[target])
        self.gallery.move_to(sid)
        self.show_sample(sid)
        return sid
