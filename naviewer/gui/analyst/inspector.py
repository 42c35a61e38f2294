"""Sample inspector: the image large, its nearest neighbours, every score, and (evaluation mode) truth.

Follows the session's current sample. The ground-truth record of a crafted sample (its recipe,
sources, trigger box) is shown only while "evaluation mode" is on; detection never reads it. When a
``crop_density`` pass scored the sample, its densest crop is outlined on the image (dashed, in
:data:`CROP_COLOUR`) and described under the detectors.
"""

from __future__ import annotations

import json
from typing import Optional

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QFrame,
    QLabel,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from naviewer.analysis.session import AnalysisSession
from naviewer.gui.analyst.common import STATE_COLOURS, SessionBridge, ThumbnailCache, decide, fmt, qimage_from_array
from naviewer.gui.analyst.detector_scores import BOX_MEANING, DensestCrop, detector_table
from naviewer.gui.flow_layout import FlowLayout

#: the outline of a sample's densest crop (crop_density): an orange none of the review colours uses
CROP_COLOUR = QColor(255, 140, 0)


def outline_crop(pixmap: QPixmap, crop: DensestCrop, scale: float) -> None:
    """Draw ``crop`` (a :class:`DensestCrop`, image pixels) dashed on ``pixmap``, the image enlarged ``scale`` times:
    the inspector and the large sample view outline the same box."""
    painter = QPainter(pixmap)
    painter.setPen(QPen(CROP_COLOUR, 2, Qt.PenStyle.DashLine))
    left, top = int(round(crop.left * scale)), int(round(crop.top * scale))
    width = min(int(round(crop.width * scale)), pixmap.width() - left) - 2
    height = min(int(round(crop.height * scale)), pixmap.height() - top) - 2
    painter.drawRect(left + 1, top + 1, max(1, width), max(1, height))
    painter.end()

SCORE_ROWS = (
    ("rank", "density rank"),
    ("density", "density"),
    ("mindist", "MinDist"),
    ("posterior", "GMM posterior (poison)"),
    ("candidate", "density candidate"),
    ("flagged", "flagged (final)"),
    ("spread", "added by label spreading"),
)

#: rows shown only when the pass has the score (the opt-in rules after label spreading, docs/dift.md)
OPTIONAL_SCORE_ROWS = (
    ("poison_probability", "spreading probability"),
    ("soft", "added: weakly reached cluster"),
    ("crop", "added: crop agreement"),
    ("crop_outliers", "added: crop outlier"),
    ("closure", "added: neighbourhood closure"),
    ("anchor_reach", "anchor reach (x median)"),
    ("guarded", "kept out: near the anchors"),
    ("reach_dropped", "taken back: a reached cluster"),
)

#: what each number means, shown as the row's tooltip (a reviewer should not need the paper)
SCORE_HELP = {
    "rank": "Where the sample ranks by kNN density among all samples (1 = the densest, as every detector's rank "
            "below counts from 1). Poisons are built to crowd together, so they rank near 1.",
    "density": "1 / distance to the k-th nearest sample in embedding space: high = in a crowd.",
    "mindist": "DIFT's MinDist (Eq. 6): the distance to the closest class's trusted anchors. A dense pile far from "
               "every class is suspicious; a dense pile of ordinary digits is not.",
    "posterior": "How sure a two-component Gaussian mixture over the dense candidates' MinDist is that this sample "
                 "belongs to the far (poison) component: 1 = certainly far, 0 = with the clean ones. Only dense "
                 "candidates have one.",
    "candidate": "One of the densest samples DIFT looked at this epoch (the top few percent by density).",
    "flagged": "DIFT's final flag: taken out as poison, directly or by label spreading.",
    "spread": "Flagged not because it was dense and far itself, but because label spreading carried the poison "
              "label to it from flagged neighbours (it sits next to them in embedding space).",
    "poison_probability": "Label spreading's poison probability for this sample (0 = the poison label never reached "
                          "it). Above 0.5 it is flagged; lower values flag it only through the rules below.",
    "soft": "Flagged because it and at least 9 in 10 of its neighbours were reached by label spreading with a low "
            "probability: a second poison cluster the first one reaches only weakly.",
    "crop": "Flagged because label spreading reached it (weakly) and its best crop sits densely among other "
            "images' crops (crop_density ranks it among the top): two weak signals that agree, for composites "
            "whose whole-image embedding sits among clean samples.",
    "crop_outliers": "Flagged because its best crop sits far more densely among other images' crops than almost "
                     "any image's does (crop_density, many robust standard deviations above the median), though "
                     "label spreading never reached it: a composite whose trigger crops cluster with the other "
                     "poisons' while its whole image sits among clean samples.",
    "anchor_reach": "How strongly the trusted anchors reach this sample through its neighbours, as a multiple of "
                    "the median sample's (label spreading of the anchors alone). Poisons sit off the clean data, so "
                    "they score near 0; clean samples near 1 or above.",
    "guarded": "A rule after label spreading would have flagged this sample, but its group is reached by the "
               "trusted anchors about as strongly as any clean sample, so it was kept out (a clean class next to "
               "a poison cluster, not a second poison cluster).",
    "reach_dropped": "Label spreading flagged this sample, but in a cluster of its own that no dense candidate "
                     "started and that the trusted anchors reach as strongly as clean samples, while the pass's "
                     "poison clusters are barely reached: spreading ran on into clean samples of the target "
                     "class, so the flag was taken back.",
    "closure": "Flagged because most of its nearest neighbours are flagged: a sample at the edge of a flagged "
               "cluster that label spreading stopped short of.",
}


class SampleInspector(QWidget):
    """``SampleInspector(session, parent=None, k=8, image_size=224)``.

    Signals: ``layout_requested(int)`` ("show crop layout" for a crafted composite),
    ``evaluation_mode_changed(bool)``.
    """

    #: the workspace is open read-only (the panel's set_read_only): the decision buttons stay grey
    read_only = False

    layout_requested = Signal(int)
    evaluation_mode_changed = Signal(bool)

    def __init__(self, session: AnalysisSession, parent: Optional[QWidget] = None, k: int = 8, image_size: int = 224) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # a click in the inspector points C / R / L at its sample
        self.session = session
        self.bridge = SessionBridge.of(session)
        self.k = k
        self.image_size = image_size
        self.cache = ThumbnailCache(session, 48, capacity=512)
        self.sample: Optional[int] = None

        self.title = QLabel("No sample selected")
        self.title.setStyleSheet("font-weight: bold; font-size: 13px;")
        self.title.setWordWrap(True)
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(min(96, image_size // 2), min(96, image_size // 2))
        self.image.setFrameShape(QFrame.Shape.StyledPanel)
        self.form = QFormLayout()
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.values: dict[str, QLabel] = {}
        # DIFT's rows where the pass has them: a kdist or lid pass showed "density rank: –  density: –  MinDist: –"
        # on every sample (a newcomer, session 32); its own score stands under "Every detector"
        dift_rows = any(key in session.scores for key, _ in SCORE_ROWS if key != "flagged")
        self._score_rows = (tuple(row for row in SCORE_ROWS if dift_rows or row[0] == "flagged")
                            + tuple(row for row in OPTIONAL_SCORE_ROWS if row[0] in session.scores))
        for key, text in self._score_rows + (("cluster", "cluster"), ("source", "source key"), ("review", "review")):
            label = QLabel("–")
            label.setWordWrap(True)  # long values (source keys) wrap in a narrow inspector
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.values[key] = label
            self.form.addRow(text + ":", label)
            if key in SCORE_HELP:
                name = self.form.labelForField(label)
                for widget in (label, name):
                    if widget is not None:
                        widget.setToolTip(SCORE_HELP[key])

        # every detector pass of the workspace, side by side (issue 13): its score and where it ranks
        self.detectors = detector_table(session)
        self.detector_title = QLabel("Every detector (rank 1 = its most suspicious sample):")
        self.detector_title.setWordWrap(True)
        self.detector_form = QFormLayout()
        self.detector_form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.detector_form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.detector_values: dict[str, QLabel] = {}
        for item in self.detectors:
            label = QLabel("–")
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setToolTip(item.describe())
            name = QLabel(item.label + ":")
            name.setToolTip(item.describe())
            self.detector_values[item.key] = label
            self.detector_form.addRow(name, label)
        self.detector_title.setVisible(bool(self.detector_values))
        self.crop_value = QLabel("–")  # the densest crop of a crop_density pass, outlined on the image
        self.crop_value.setWordWrap(True)
        self.crop_value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        boxed = [item for item in self.detectors if item.best_box is not None]
        meanings = list(dict.fromkeys(BOX_MEANING.get(item.method, "densest crop") for item in boxed))
        self.box_sources = ", ".join(dict.fromkeys(item.method for item in boxed))
        tip = ("Outlined on the image. crop_density's densest crop: the crop of this image that sits most densely "
               "among other images' crops (a poison's trigger crop sits with the other poisons' trigger crops). "
               "patchsearch's trigger window: the window Grad-CAM points at, which pasted on other images pulls "
               "them into this image's cluster. It is the encoder's view: where the encoder has not learned a "
               "trigger, it points at what the encoder looks at (often the object), not at a pasted patch.")
        self.crop_value.setToolTip(tip)
        crop_name = QLabel(f"<span style='color:{CROP_COLOUR.name()}'>▭</span> {' / '.join(meanings) or 'densest crop'}:")
        crop_name.setToolTip(tip)
        if any(item.best_box is not None for item in self.detectors):
            self.detector_form.addRow(crop_name, self.crop_value)
        self.densest_crop: Optional[DensestCrop] = None

        self.buttons: dict[str, QPushButton] = {}
        actions = FlowLayout(spacing=4)  # wraps in a narrow inspector instead of cutting the labels
        for state, text in (("confirmed", "Confirm"), ("rejected", "Reject"), ("later", "Later")):
            button = QPushButton(text)
            button.setToolTip(f"mark this sample {state}")
            button.clicked.connect(lambda _c=False, s=state: self.review_shown(s))
            self.buttons[state] = button
            actions.addWidget(button)
        self.layout_button = QPushButton("Crop layout…")
        self.layout_button.setToolTip("show the crop layout of this composite and its crop-event probability (Ctrl+7)")
        self.layout_button.clicked.connect(lambda: self.sample is not None and self.layout_requested.emit(self.sample))
        actions.addWidget(self.layout_button)

        self.neighbour_box = QWidget()
        self.neighbour_grid = FlowLayout(self.neighbour_box, spacing=2)
        self.neighbour_buttons: list[QToolButton] = []

        self.evaluation = QCheckBox("Evaluation mode")
        self.evaluation.setToolTip("show the attack's ground truth for this sample (recorded when naviewer crafted the poisons; never used by detection)")
        self.evaluation.toggled.connect(self._on_evaluation)
        self.truth = QLabel()
        self.truth.setWordWrap(True)
        self.truth.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.truth.setStyleSheet("background: #fff6e0; color: #333; padding: 4px; border: 1px solid #e0b040;")
        self.truth.hide()

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setSizeConstraint(QVBoxLayout.SizeConstraint.SetMinimumSize)
        # the card's sample and what the keys elsewhere act on, told apart: after a box selection of 151 on the map
        # the card still showed #1337, outside it, while C there would decide the 151 (a newcomer, session 21)
        self.selection_note = QLabel()
        self.selection_note.setObjectName("hintLabel")
        self.selection_note.setWordWrap(True)
        self.selection_note.hide()
        layout.addWidget(self.selection_note)
        layout.addWidget(self.title)
        layout.addWidget(self.image)
        layout.addLayout(actions)
        # right under the decisions: at the bottom of the scroll area a newcomer never found it (session 19)
        layout.addWidget(self.evaluation)
        layout.addWidget(self.truth)
        layout.addLayout(self.form)
        layout.addWidget(self.detector_title)
        layout.addLayout(self.detector_form)
        neighbours = QLabel(f"Nearest neighbours in embedding space (k={k}):")
        neighbours.setWordWrap(True)
        layout.addWidget(neighbours)
        layout.addWidget(self.neighbour_box)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # rows wrap instead
        scroll.setWidget(body)
        self.scroll = scroll
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        self.bridge.current_changed.connect(lambda sid, _src: self.show_sample(sid))
        self.bridge.selection_changed.connect(lambda _ids, _src: self._update_selection_note())
        self.bridge.review_changed.connect(self._on_review_changed)
        self.show_sample(session.current)

    @property
    def evaluation_mode(self) -> bool:
        return self.evaluation.isChecked()

    def set_evaluation_mode(self, on: bool) -> None:
        self.evaluation.setChecked(on)

    def _on_evaluation(self, on: bool) -> None:
        self._show_truth()
        self.evaluation_mode_changed.emit(on)

    def _update_selection_note(self) -> None:
        selection = self.session.selection
        n = len(selection)
        if n < 2:
            self.selection_note.hide()
            return
        among = self.sample is not None and bool(np.isin(self.sample, selection))
        shown = ("" if self.sample is None else
                 f"; this card shows #{self.sample}, {'one of them' if among else '<b>not</b> one of them'}")
        # the gallery's keys act on its own highlighted tiles: "the map and the gallery act on them" was read as a bulk
        # decision the gallery never made (it said "these keys leave them alone"; a newcomer, session 26)
        # short: five lines of it pushed the card's own buttons under the fold at 1280x720 (a newcomer, session 31)
        self.selection_note.setText(f"{n:,} samples are selected: C · R · L on the map act on them; in the gallery on "
                                    f"its highlighted tiles{shown} (its buttons act on it alone).")
        self.selection_note.setToolTip("the key 4 shows the selection in the gallery")
        self.selection_note.show()

    def show_sample(self, sid: Optional[int]) -> None:
        self.sample = sid
        self._update_selection_note()
        enabled = sid is not None and not self.read_only
        for button in self.buttons.values():
            button.setEnabled(enabled)
        if sid is None:
            self.title.setText("No sample selected")
            self.image.clear()
            self.densest_crop = None
            for label in list(self.values.values()) + list(self.detector_values.values()) + [self.crop_value]:
                label.setText("–")
            self._set_neighbours(np.zeros(0, np.int64))
            self.layout_button.setEnabled(False)
            self._show_truth()
            return
        s = self.session
        info = s.sample_scores(sid)
        self.densest_crop = self.detectors.densest_crop(sid)
        state = info["review"]
        colour = STATE_COLOURS[state].name()
        # the orange box's legend where the eye is (a newcomer asked what it was on clean digits, session 31): every
        # scored image has one, a poison's sits on its trigger
        legend = (f" · <span style='color:{CROP_COLOUR.name()}'>▭</span> <small>{self.densest_crop.what}</small>"
                  if self.densest_crop is not None else "")
        self.title.setText(f"#{sid} · {info['label']} · <span style='color:{colour}'>{state}</span>{legend}")
        self.title.setToolTip(
            f"▭ (dashed orange): {self.densest_crop.what} by {self.densest_crop.label}, drawn on every image that pass "
            "scored; on a poison it sits on the trigger, on a clean image it marks the patch most like one"
            if self.densest_crop is not None else "")
        image = s.image(sid)
        if image is not None:
            h, w = image.shape[:2]
            self.image.setWordWrap(False)  # (on for a read error's text only: it makes the label height-for-width)
            self.image.setPixmap(self._pixmap(image))
            self.image.setToolTip(f"{w}x{h} px")
            self.layout_button.setEnabled(w != h)  # composites are 2:1 / 1:2
        else:
            problem = s.image_problems.get(int(sid))
            self.image.setText(f"cannot read the image:\n{problem}" if problem else "(no image data)")
            self.image.setWordWrap(True)
            self.layout_button.setEnabled(False)
        for key, _text in self._score_rows:
            value = info.get(key)
            if key == "rank" and value is not None:
                # counted from 1, as the detectors' ranks below ("0 of 1,514" beside "rank 1 = ..." read as two scales)
                self.values[key].setText(f"{int(value) + 1:,} of {s.n:,} (1 = densest)")
            elif key == "anchor_reach" and isinstance(value, (float, np.floating)) and np.isfinite(value):
                # two decimals, as the cluster table and naviewer review say it ("5.699e-06" beside "0.00"; session 30)
                self.values[key].setText(f"{float(value):.2f}")
            else:
                self.values[key].setText(fmt(value))
        cluster = int(s.cluster_of()[sid]) if s.flagged_mask[sid] else -1
        self.values["cluster"].setText(f"#{cluster + 1} of {len(s.clusters())}" if cluster >= 0 else "–")
        self.values["source"].setText(str(info.get("source", "–")))
        self.values["review"].setText(state)
        for item in self.detectors:
            self.detector_values[item.key].setText(self.detector_text(item.key, sid))
        self.crop_value.setText(self.densest_crop.describe() if self.densest_crop is not None else f"– (no box from {self.box_sources or 'crop_density'})")
        self._set_neighbours(s.neighbours(sid, self.k))
        self._show_truth()

    def scroll_to_detectors(self) -> None:
        """Bring the detectors' rows into view (a short inspector scrolls)."""
        if self.detector_values:
            self.scroll.ensureWidgetVisible(self.detector_title, 0, 0)
            last = list(self.detector_values.values())[-1]
            self.scroll.ensureWidgetVisible(last, 0, 4)

    def detector_text(self, key: str, sid: int) -> str:
        """``0.8123 · rank 12 of 2,000 · flagged`` for detector ``key`` and sample ``sid``."""
        item = self.detectors.get(key)
        if item is None:
            return "–"
        if item.voters:  # the agreement row names who flags the sample
            who = [label for label, flagged in item.voters if bool(flagged[sid])]
            return f"<b>{len(who)}</b> of {len(item.voters)}" + (f": {', '.join(who)}" if who else "")
        value = float(item.score[sid])
        if not np.isfinite(value):
            return "– (no score)"
        if item.refused:  # a rank of a score that ranks nothing read as a verdict (a newcomer, session 32)
            return f"{fmt(value)} · no verdict: the pass found no trigger"
        text = f"{fmt(value)} · rank {int(item.rank[sid]) + 1:,} of {len(item.score):,}"
        if item.flagged is not None and bool(item.flagged[sid]):
            text += " · <b>flagged</b>"
        return text

    def _pixmap(self, image: np.ndarray) -> QPixmap:
        """The image enlarged by a whole factor, as large as ``image_size`` allows (wide composites up to
        1.6 times wider) but never wider than the inspector: nothing of it is cut off."""
        h, w = image.shape[:2]
        room = max(64, self.width() - 36)
        scale = max(1, min(int(1.6 * self.image_size) // w, self.image_size // h, room // w))
        pixmap = QPixmap.fromImage(qimage_from_array(image)).scaled(
            w * scale, h * scale, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
        )
        if self.densest_crop is not None:
            outline_crop(pixmap, self.densest_crop, scale)
        return pixmap

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self.sample is not None:
            image = self.session.image(self.sample)
            if image is not None:
                self.image.setPixmap(self._pixmap(image))

    def _set_neighbours(self, ids: np.ndarray) -> None:
        # a clicked neighbour's button is replaced here; its focus went on to the next widget in the window (the
        # panel's Anchors button), so C / R / L no longer reached the inspector: the focus stays in the inspector
        had_focus = any(button.hasFocus() for button in self.neighbour_buttons)
        for button in self.neighbour_buttons:
            self.neighbour_grid.removeWidget(button)
            button.hide()
            button.deleteLater()
        self.neighbour_buttons = []
        for nid in ids.tolist():
            button = QToolButton()
            pix = self.cache.get(nid)
            if pix is not None:
                button.setIcon(QIcon(pix))
                button.setIconSize(QSize(48, 48))
            state = self.session.state_of(nid)
            button.setText(f"#{nid}")
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            if state != "unreviewed":
                button.setStyleSheet(f"border: 2px solid {STATE_COLOURS[state].name()};")
            button.setToolTip(f"#{nid} {self.session.class_name(int(self.session.labels[nid]))}, {state}: click to inspect")
            button.clicked.connect(lambda _c=False, i=nid: self._go(i))
            self.neighbour_grid.addWidget(button)
            self.neighbour_buttons.append(button)
        if had_focus:
            self.setFocus(Qt.FocusReason.OtherFocusReason)

    def _on_review_changed(self, ids: np.ndarray) -> None:
        """The shown sample or one of its neighbours decided (a bulk decision elsewhere included): the title and the
        neighbours' state borders follow (a neighbour confirmed in the cluster table kept its unreviewed look)."""
        if self.sample is None:
            return
        changed = set(np.asarray(ids).ravel().tolist())
        shown = {self.sample, *(int(b.text().lstrip("#")) for b in self.neighbour_buttons)}
        if changed & shown:
            self.show_sample(self.sample)

    def _go(self, sid: int) -> None:
        """A neighbour clicked: inspect it, with the keyboard focus here, so C / R / L decide what is shown."""
        self.session.set_selection([sid], source=self)
        self.session.set_current(sid, source=self)
        # the new sample's title, image and buttons come into view: they stayed scrolled away, and the thumbnail
        # under the mouse was now the sample before, so a second click went back (a newcomer, session 26)
        self.scroll.verticalScrollBar().setValue(0)
        self.setFocus(Qt.FocusReason.MouseFocusReason)

    def review_shown(self, state: str) -> Optional[int]:
        """Decide the sample shown (its buttons, and C / R / L with the focus here); returns it, or None."""
        if self.sample is None:
            return None
        done = decide(self, self.session, [self.sample], state)  # (a read-only workspace is said there)
        return int(self.sample) if len(done) else None

    def _show_truth(self) -> None:
        if not self.evaluation_mode:
            self.truth.hide()
            return
        self.truth.show()
        if self.sample is None:
            self.truth.setText("")
            return
        record = self.session.truth_for(self.sample)
        if record is None:
            self.truth.setText("<b>Ground truth:</b> none recorded for this workspace.")
            return
        kind = record.get("kind", "?")
        extra = {k: v for k, v in record.items() if k != "kind"}
        text = json.dumps(extra, indent=1, default=str) if extra else ""
        style = "color:#c00;font-weight:bold" if kind == "poison" else "color:#060"
        self.truth.setText(f"<b>Ground truth:</b> <span style='{style}'>{kind}</span><pre style='font-size:10px'>{text}</pre>")
