"""Crop-layout view: why a Noisy Alignment composite works, and how its layout changes the odds.

Shows the crafted image with its reference, shadow and trigger regions; samples pairs of random
crops with the *training* sampler (``sample_crop_boxes``) and draws them, green when the pair is a
noisy-alignment pair (one view inside the shadow covering the trigger, the other inside the
reference); shows the event probability and its parts, recomputed live as the layout sliders move
(``naviewer.analysis.crop_event.estimate_event_probability``, the attacks module's Monte-Carlo
estimate); and pins layouts side by side for comparison. When a ``crop_density`` pass scored the
sample, its densest crop (the crop that sits most densely among other images' crops) is outlined
on the image, dashed in orange (:meth:`CropLayoutWidget.set_densest_crop`).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGraphicsRectItem,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from naviewer.analysis.crop_event import (
    CropLayout,
    CropPairs,
    NAEstimate,
    estimate_event_probability,
    guess_orientation,
    guess_trigger,
    sample_pairs,
)
from naviewer.attacks.layout import ORIENTATIONS, Layout
from naviewer.gui.theme import sync_pyqtgraph

REGION_STYLE = {
    "reference": (QColor(0, 114, 178), "reference (target class)"),
    "shadow": (QColor(120, 120, 120), "shadow (+ trigger)"),
    "trigger": (QColor(213, 0, 0), "trigger"),
    "gap": (QColor(0, 0, 0), "gap"),
}
EVENT_COLOUR = QColor(0, 170, 60)
CROP_COLOUR = QColor(255, 140, 0)  # the densest crop of a crop_density pass (as the inspector draws it)
MISS_COLOUR = QColor(90, 90, 90, 45)


class _Slider(QWidget):
    """An integer slider with its value shown next to it (value/scale displayed)."""

    def __init__(self, lo: int, hi: int, value: int, fmt: str = "{}", scale: float = 1.0) -> None:
        super().__init__()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(lo, hi)
        self.slider.setValue(value)
        self.label = QLabel()
        self.label.setMinimumWidth(48)
        self.fmt, self.scale = fmt, scale
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)
        self.slider.valueChanged.connect(self._show)
        self._show(value)

    def _show(self, v: int) -> None:
        self.label.setText(self.fmt.format(v / self.scale if self.scale != 1 else v))

    def value(self) -> float:
        return self.slider.value() / self.scale

    def set_value(self, v: float) -> None:
        self.slider.setValue(int(round(v * self.scale)))


class CropLayoutWidget(QWidget):
    """``CropLayoutWidget(parent=None, layout=None, image=None, n_pairs=20_000, seed=0)``.

    ``set_sample(image, layout)`` shows a crafted composite (``layout`` from its ground truth, or
    ``None`` to guess the paper layout from the shape). Signal ``layout_changed(object)`` carries
    the :class:`CropLayout` after every slider move; ``estimate`` holds the probability shown.
    """

    layout_changed = Signal(object)

    def __init__(
        self,
        parent: Optional[QWidget] = None,
        layout: Optional[CropLayout] = None,
        image: Optional[np.ndarray] = None,
        n_pairs: int = 20_000,
        seed: int = 0,
    ) -> None:
        super().__init__(parent)
        self.n_pairs = n_pairs
        self.seed = seed
        self.image: Optional[np.ndarray] = image
        self.image_layout: Optional[Layout] = None
        self.crop_layout = layout or CropLayout()
        self.estimate: Optional[NAEstimate] = None
        self.pairs: Optional[CropPairs] = None
        self._region_items: list[Any] = []
        self._pair_items: list[Any] = []
        self.densest_crop: Any = None  # a DensestCrop (naviewer.gui.analyst.detector_scores) or None
        self.densest_item: Optional[QGraphicsRectItem] = None
        self._updating = False

        self.viewbox = pg.ViewBox(lockAspect=True, invertY=True)
        self.viewbox.setMenuEnabled(False)
        self.canvas = pg.GraphicsLayoutWidget()
        sync_pyqtgraph()  # the theme applied before pyqtgraph was imported
        self.canvas.setBackground(pg.getConfigOption("background"))  # the theme's plot colour (it stayed white on dark)
        self.canvas.addItem(self.viewbox)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.viewbox.addItem(self.image_item)

        r = self.crop_layout.size
        self.size_box = QSpinBox()
        self.size_box.setRange(8, 512)
        self.size_box.setValue(r)
        self.orientation = QComboBox()
        for o in ORIENTATIONS:
            self.orientation.addItem(o, o)
        self.gap = _Slider(0, 2 * r, self.crop_layout.gap, "{} px")
        self.trigger = _Slider(1, r, self.crop_layout.trigger, "{} px")
        self.trigger_x = _Slider(0, 100, int(self.crop_layout.trigger_x * 100), "{:.2f}", 100)
        self.trigger_y = _Slider(0, 100, int(self.crop_layout.trigger_y * 100), "{:.2f}", 100)
        self.scale_lo = _Slider(1, 100, int(self.crop_layout.scale[0] * 100), "{:.2f}", 100)
        self.scale_hi = _Slider(1, 100, int(self.crop_layout.scale[1] * 100), "{:.2f}", 100)
        from naviewer.gui.analyst.common import wheel_only_when_focused

        wheel_only_when_focused(self.size_box, self.orientation, *(s.slider for s in (
            self.gap, self.trigger, self.trigger_x, self.trigger_y, self.scale_lo, self.scale_hi)))
        # two settings a row: one a row, the eight stood 230 px tall and scrolled in the tab at 1280x720 (session 31)
        form = QGridLayout()
        form.setHorizontalSpacing(8)
        form.setVerticalSpacing(4)
        rows = (("half size r:", self.size_box, "half size r of the composite, in px"),
                ("orientation:", self.orientation, "which side the reference half sits on"),
                ("gap:", self.gap, "pixels between the two halves"),
                ("trigger size:", self.trigger, "the trigger's side, in px"),
                ("trigger x:", self.trigger_x, "the trigger's centre across the shadow half (0 left, 1 right)"),
                ("trigger y:", self.trigger_y, "the trigger's centre down the shadow half (0 top, 1 bottom)"),
                ("crop scale min:", self.scale_lo, "the training sampler's smallest crop, as a share of the area"),
                ("crop scale max:", self.scale_hi, "the training sampler's largest crop, as a share of the area"))
        for i, (text, field, tip) in enumerate(rows):
            label = QLabel(text)
            label.setToolTip(tip)
            field.setToolTip(tip)
            label.setBuddy(field)
            form.addWidget(label, i // 2, 2 * (i % 2))
            form.addWidget(field, i // 2, 2 * (i % 2) + 1)
        form.setColumnStretch(1, 1)
        form.setColumnStretch(3, 1)

        self.prob_label = QLabel()
        self.prob_label.setWordWrap(True)
        self.prob_label.setTextFormat(Qt.TextFormat.RichText)
        self.pairs_box = QSpinBox()
        self.pairs_box.setRange(1, 5000)
        self.pairs_box.setValue(200)
        wheel_only_when_focused(self.pairs_box)
        self.sample_button = QPushButton("Sample crop pairs")
        self.sample_button.setToolTip("draw pairs of random crops with the training sampler; green = noisy-alignment pair")
        self.sample_button.clicked.connect(lambda: self.sample(self.pairs_box.value()))
        self.pairs_label = QLabel()
        self.pin_button = QPushButton("Pin for comparison")
        self.pin_button.clicked.connect(self.pin)
        self.reset_button = QPushButton("Paper layout")
        self.reset_button.setToolTip("Theorems 1-2: halves touching, trigger centred")
        self.reset_button.clicked.connect(lambda: self.set_layout(CropLayout(size=self.crop_layout.size, trigger=self.crop_layout.trigger)))
        sample_row = QHBoxLayout()
        sample_row.addWidget(self.pairs_box)
        sample_row.addWidget(self.sample_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.pin_button)
        buttons.addWidget(self.reset_button)

        self.compare = QTableWidget(0, 0)
        self.compare.setMinimumHeight(80)
        self.compare.setMaximumHeight(240)
        self._pinned: list[tuple[CropLayout, NAEstimate]] = []

        controls_box = QWidget()
        controls = QVBoxLayout(controls_box)
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addLayout(form)
        controls.addWidget(self.prob_label)
        controls.addLayout(sample_row)
        controls.addWidget(self.pairs_label)
        controls.addLayout(buttons)
        controls.addStretch(1)
        legend = QLabel(
            " &nbsp; ".join(f"<span style='color:{c.name()}'>■</span> {t}" for c, t in REGION_STYLE.values() if t != "gap")
            + f" &nbsp; <span style='color:{EVENT_COLOUR.name()}'>□</span> noisy-alignment pair &nbsp; <span style='color:#999'>□</span> other pair"
        )
        legend.setWordWrap(True)
        self.crop_label = QLabel()
        self.crop_label.setWordWrap(True)
        self.crop_label.hide()
        # The controls scroll on their own, so the tab can be short (a 720 px screen) and the image
        # keeps the whole height: the canvas is never pushed below the visible part of the tab.
        self.controls_scroll = QScrollArea()
        self.controls_scroll.setWidgetResizable(True)
        self.controls_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.controls_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.controls_scroll.setWidget(controls_box)
        self.controls_scroll.setMinimumWidth(controls_box.minimumSizeHint().width() + 18)
        self.canvas.setMinimumSize(120, 80)
        # what the view is for: a newcomer reviewing a patch attack found this Noisy Alignment layout with no word
        # on whether it applied to their poisons (session 19)
        self.scope_label = QLabel("Noisy Alignment's composites: a reference beside a shadow that holds the trigger, "
                                  "and which random crop pairs see both. Poisons that are whole images (a patch, "
                                  "CTRL's frequency trigger) have no such layout.")
        self.scope_label.setWordWrap(True)
        self.scope_label.setStyleSheet("color: gray")
        left = QVBoxLayout()
        left.addWidget(self.scope_label)
        left.addWidget(self.canvas, 1)
        left.addWidget(legend)
        left.addWidget(self.crop_label)
        top = QHBoxLayout()
        top.addLayout(left, 3)
        top.addWidget(self.controls_scroll, 2)
        self.compare_label = QLabel("Layouts side by side:")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(2, 2, 2, 2)
        outer.addLayout(top, 1)
        outer.addWidget(self.compare_label)
        outer.addWidget(self.compare)
        self.compare_label.hide()  # until a layout is pinned
        self.compare.hide()

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(60)
        self._timer.timeout.connect(self._from_controls)
        for w in (self.gap, self.trigger, self.trigger_x, self.trigger_y, self.scale_lo, self.scale_hi):
            w.slider.valueChanged.connect(lambda _v: self._timer.start())
        self.size_box.valueChanged.connect(lambda _v: self._timer.start())
        self.orientation.currentIndexChanged.connect(lambda _i: self._timer.start())
        self.set_layout(self.crop_layout)

    # -- layout -------------------------------------------------------------------------------
    def set_theme(self, theme: Any) -> None:
        """Dark or light: the canvas around the image follows the application's plots."""
        self.canvas.setBackground(theme.plot_background)

    def set_sample(self, image: Optional[np.ndarray], layout: Optional[Layout] = None) -> None:
        """Show a crafted composite with its recorded layout (or the paper layout guessed from its shape)."""
        self.image = None if image is None else np.ascontiguousarray(image, dtype=np.uint8)
        self.layout_note = ""
        if layout is None and self.image is not None:
            # no ground truth: a template of the paper's layout, oriented by the half with the sharper edges
            h, w = self.image.shape[:2]
            r = min(h, w)
            orientation, confidence = guess_orientation(self.image)
            gap = max(h, w) - 2 * r if max(h, w) >= 2 * r else 0
            # the trigger's square where the half's edges stand out (the paper's quarter-size square, centred, boxed
            # the middle 4 px of the demo's 8 px triggers; a newcomer, session 26): on 60 crafted composites each its
            # box overlaps the recorded one by IoU 0.78-1.00 (median; the centred quarter: 0.25-1.00)
            side, fx, fy, sure = guess_trigger(self.image, orientation, r, gap)
            layout = CropLayout(size=r, gap=gap, trigger=side, trigger_x=fx, trigger_y=fy,
                                orientation=orientation).to_layout()
            where = orientation.replace("ref-", "reference ")
            guess = (f"the trigger is guessed in the half with the sharper edges ({where})" if confidence > 0.1 else
                     f"the halves look alike, so which one holds the trigger is a guess ({where}): flip it with "
                     "the orientation control if the image says otherwise")
            # ("guessed in the either (no clear difference) half" read as garbled to a newcomer)
            square = ("its square where that half's edges stand out" if sure > 0.3 else
                      "no patch stands out in that half, so its square is a guess")
            self.layout_note = f"A template, not this image's recorded layout: {guess}; {square}."
        self.image_layout = layout
        self.set_layout(CropLayout.from_layout(layout) if layout is not None else self.crop_layout)

    def set_densest_crop(self, crop: Any) -> None:
        """Outline ``crop`` (a :class:`~naviewer.gui.analyst.detector_scores.DensestCrop`: the sample's densest
        crop by a crop_density pass) on the image; None: no outline. Call after :meth:`set_sample`."""
        self.densest_crop = crop
        if crop is None:
            self.crop_label.hide()
        else:
            self.crop_label.setText(f"<span style='color:{CROP_COLOUR.name()}'>▭</span> {crop.what}: {crop.describe()}")
            self.crop_label.show()
        self._draw_regions()

    def set_layout(self, layout: CropLayout) -> None:
        self._updating = True
        try:
            self.size_box.setValue(layout.size)
            for s in (self.gap, self.trigger):
                s.slider.setMaximum(2 * layout.size if s is self.gap else layout.size)
            self.orientation.setCurrentIndex(ORIENTATIONS.index(layout.orientation))
            self.gap.set_value(layout.gap)
            self.trigger.set_value(layout.trigger)
            self.trigger_x.set_value(layout.trigger_x)
            self.trigger_y.set_value(layout.trigger_y)
            self.scale_lo.set_value(layout.scale[0])
            self.scale_hi.set_value(layout.scale[1])
        finally:
            self._updating = False
        self._apply(layout)

    def _from_controls(self) -> None:
        if self._updating:
            return
        lo, hi = self.scale_lo.value(), self.scale_hi.value()
        size = self.size_box.value()
        self.trigger.slider.setMaximum(size)
        self.gap.slider.setMaximum(2 * size)
        layout = self.crop_layout.with_(
            size=size, gap=int(self.gap.value()), trigger=int(min(self.trigger.value(), size)),
            trigger_x=self.trigger_x.value(), trigger_y=self.trigger_y.value(),
            orientation=self.orientation.currentData(), scale=(min(lo, hi), max(lo, hi)),
        )
        self._apply(layout)

    def _apply(self, layout: CropLayout) -> None:
        self.crop_layout = layout
        self.estimate = estimate_event_probability(layout, n_pairs=self.n_pairs, seed=self.seed)
        e = self.estimate
        self.prob_label.setText(
            f"<p style='font-size:15px'><b>P(reference + trigger pair) = {100 * e.probability:.2f}%</b> ± {100 * e.stderr:.2f}%</p>"
            f"per pair of views, {e.n_pairs:,} simulated pairs<br>"
            f"P(view inside reference) = {100 * e.p_reference:.1f}%<br>"
            f"P(view inside shadow and covering trigger) = {100 * e.p_shadow_trigger:.1f}%<br>"
            f"<span style='color:gray'>≈ 2 × the product when views are independent: {200 * e.p_reference * e.p_shadow_trigger:.2f}%</span>"
            + (f"<br><i>{getattr(self, 'layout_note', '')}</i>" if getattr(self, "layout_note", "") else "")
        )
        self._draw_regions()
        if self.pairs is not None:
            self.sample(len(self.pairs))
        self.layout_changed.emit(layout)

    # -- drawing ------------------------------------------------------------------------------
    def _rect(self, box: Any, colour: QColor, width: float = 2.0, fill: Optional[QColor] = None, z: float = 5) -> QGraphicsRectItem:
        top, left, h, w = box.as_list() if hasattr(box, "as_list") else box
        item = QGraphicsRectItem(QRectF(left, top, w, h))
        pen = QPen(colour, width)
        pen.setCosmetic(True)
        item.setPen(pen)
        item.setBrush(QBrush(fill) if fill is not None else QBrush(Qt.BrushStyle.NoBrush))
        item.setZValue(z)
        self.viewbox.addItem(item)
        return item

    def _draw_regions(self) -> None:
        for item in self._region_items:
            self.viewbox.removeItem(item)
        self._region_items = []
        layout = self.crop_layout.to_layout()
        matches = self.image is not None and self.image.shape[:2] == (layout.height, layout.width) and (
            self.image_layout is None or self.image_layout == layout
        )
        if matches:
            self.image_item.setImage(self.image, autoLevels=False, levels=(0, 255))
        else:  # the sliders moved away from the crafted image: draw the geometry on a plain canvas
            canvas = np.full((layout.height, layout.width, 3), 235, np.uint8)
            for name, shade in (("reference", (200, 220, 240)), ("shadow", (215, 215, 215)), ("trigger", (250, 170, 170))):
                b = layout.regions[name]
                canvas[b.top : b.bottom, b.left : b.right] = shade
            self.image_item.setImage(canvas, autoLevels=False, levels=(0, 255))
        self.image_item.setRect(QRectF(0, 0, layout.width, layout.height))
        for name in ("reference", "shadow", "gap", "trigger"):
            box = layout.regions.get(name)
            if box is None:
                continue
            colour, _ = REGION_STYLE[name]
            fill = QColor(0, 0, 0, 60) if name == "gap" else None
            self._region_items.append(self._rect(box, colour, 2.5 if name == "trigger" else 2.0, fill, z=6))
        self.densest_item = None
        if self.densest_crop is not None and matches:  # only over the image itself, not the geometry canvas
            item = self._rect(self.densest_crop.box, CROP_COLOUR, 3.0, z=9)
            pen = item.pen()
            pen.setStyle(Qt.PenStyle.DashLine)
            item.setPen(pen)
            item.setToolTip(f"{self.densest_crop.what}: {self.densest_crop.describe()}")
            self._region_items.append(item)
            self.densest_item = item
        self.viewbox.setRange(QRectF(-1, -1, layout.width + 2, layout.height + 2), padding=0.02)

    def sample(self, n: int) -> CropPairs:
        """Draw ``n`` pairs of random crops (training sampler) over the image, events in green."""
        for item in self._pair_items:
            self.viewbox.removeItem(item)
        self._pair_items = []
        rng = np.random.default_rng(None if self.seed is None else self.seed + 1)
        self.pairs = sample_pairs(self.crop_layout, n, rng)
        p = self.pairs
        for i in range(len(p)):
            event = bool(p.event[i])
            colour = EVENT_COLOUR if event else MISS_COLOUR
            for v in (p.view1, p.view2):
                box = (int(v.top[i]), int(v.left[i]), int(v.height[i]), int(v.width[i]))
                self._pair_items.append(self._rect(box, colour, 2.0 if event else 0.7, z=8 if event else 7))
        hits = int(p.event.sum())
        self.pairs_label.setText(f"{hits} of {len(p)} sampled pairs are noisy-alignment pairs ({100 * hits / max(len(p), 1):.1f}%)")
        return p

    # -- comparison ---------------------------------------------------------------------------
    def pin(self) -> None:
        """Add the current layout and its probability as a column of the comparison table."""
        if self.estimate is None:
            return
        self._pinned.append((self.crop_layout, self.estimate))
        rows = ["P(event)", "P(view in reference)", "P(view in shadow ⊇ trigger)", "half size r", "gap", "trigger", "trigger centre", "orientation", "crop scale"]
        self.compare.setRowCount(len(rows))
        self.compare.setColumnCount(len(self._pinned))
        self.compare.setVerticalHeaderLabels(rows)
        self.compare.setHorizontalHeaderLabels([f"layout {i + 1}" for i in range(len(self._pinned))])
        for col, (lay, est) in enumerate(self._pinned):
            values = [
                f"{100 * est.probability:.2f}% ± {100 * est.stderr:.2f}", f"{100 * est.p_reference:.1f}%", f"{100 * est.p_shadow_trigger:.1f}%",
                str(lay.size), f"{lay.gap} px", f"{lay.trigger} px", f"({lay.trigger_x:.2f}, {lay.trigger_y:.2f})", lay.orientation,
                f"{lay.scale[0]:.2f}–{lay.scale[1]:.2f}",
            ]
            for row, text in enumerate(values):
                self.compare.setItem(row, col, QTableWidgetItem(text))
        self.compare.resizeColumnsToContents()
        self.compare_label.show()
        self.compare.show()

    def pinned(self) -> list[tuple[CropLayout, NAEstimate]]:
        return list(self._pinned)
