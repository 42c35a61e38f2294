"""The gallery's filter sidebar: cluster, review state, class and score ranges, and the sort order.

:class:`FilterSpec` is the plain (Qt-free) description of what is chosen and applies it to an id array;
:class:`FilterSidebar` edits one. The gallery re-applies the spec after every decision when it depends
on the review state, so a "show unreviewed only" view never keeps a decided tile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from naviewer.analysis.review import REVIEW_STATES, STATE_CODE
from naviewer.analysis.session import AnalysisSession
from naviewer.gui.analyst.common import wheel_only_when_focused
from naviewer.gui.analyst.detector_scores import PREFIX as DETECTOR_PREFIX
from naviewer.gui.analyst.detector_scores import detector_table

RANGE_SCORES = (("rank", "density rank"), ("density", "density"), ("mindist", "MinDist"), ("posterior", "GMM posterior"))
SORT_KEYS = (("suspicion", "suspicion"), ("rank", "density rank"), ("density", "density"),
             ("mindist", "MinDist"), ("posterior", "GMM posterior"),
             # descending: the flags the trusted anchors reach as clean samples first (within DIFT's flags it
             # ranked the clean ones above the poisons at AUROC 0.95-1.00 on 30 stored passes; results.md)
             ("anchor_reach", "anchor reach"), ("cluster", "cluster"), ("label", "class"),
             ("review", "review state"), ("id", "sample id"))


#: what a sort key means where it is picked (a newcomer sorted by anchor reach and could not tell which end was which)
SORT_TIPS = {
    # its words were "suspicion (flags, densest first)", cut in the sidebar even at 1920x1080 (a newcomer, session 26)
    "suspicion": "The flags first, the densest first among them, then every other sample by density: the order the "
                 "review goes in.",
    "anchor_reach": "How strongly the trusted anchors reach a sample through its neighbours (x the median sample): "
                    "high reads as a clean sample, ~0 as unreachable. Descending shows first the flags the anchors "
                    "reach as clean: the ones to doubt. Flags all near 0 are all unreached.",
}


@dataclass(frozen=True)
class FilterSpec:
    """What the sidebar selects. ``cluster`` is an index into ``session.clusters()`` (None: any);
    ``ranges`` maps a score key to an inclusive (low, high) range; ``sort`` a key of :data:`SORT_KEYS`."""

    cluster: Optional[int] = None
    states: frozenset = frozenset(REVIEW_STATES)
    label: Optional[int] = None
    ranges: dict = field(default_factory=dict)
    sort: str = "suspicion"
    descending: bool = False

    @property
    def depends_on_review(self) -> bool:
        return self.states != frozenset(REVIEW_STATES) or self.sort == "review"

    @property
    def active(self) -> bool:
        return (self.cluster is not None or self.label is not None or bool(self.ranges) or self.depends_on_review
                or self.sort != "suspicion" or self.descending)

    def apply(self, session: AnalysisSession, ids: np.ndarray, check: Optional[Callable[[], None]] = None) -> np.ndarray:
        """``ids`` (in suspicion order) narrowed by the filters and put in the chosen order.

        Plain numpy, no Qt: the gallery runs it in a worker thread for a large session, and ``check``
        (a :meth:`naviewer.jobs.JobContext.check`) is called between steps, so a request the analyst has
        already replaced stops early (it raises :class:`~naviewer.errors.JobCancelled`)."""
        check = check or _no_check
        ids = np.asarray(ids, dtype=np.int64)
        mask = np.ones(len(ids), bool)
        if self.cluster is not None:
            mask &= session.cluster_of()[ids] == self.cluster
            check()
        if self.states != frozenset(REVIEW_STATES):
            mask &= np.isin(session.state_codes[ids], [STATE_CODE[s] for s in self.states])
            check()
        if self.label is not None:
            mask &= session.labels[ids] == self.label
            check()
        for key, (low, high) in self.ranges.items():
            values = session.scores.get(key)
            if values is not None:
                v = np.asarray(values, np.float64)[ids]
                mask &= (v >= low) & (v <= high)  # NaN fails both: a narrowed range drops samples without the score
                del v
                check()
        if not mask.all():
            ids = ids[mask]
        del mask
        check()
        return self._sorted(session, ids, check)

    def _sorted(self, session: AnalysisSession, ids: np.ndarray, check: Optional[Callable[[], None]] = None) -> np.ndarray:
        if self.sort == "suspicion":
            return ids[::-1].copy() if self.descending else ids
        if self.sort == "id":
            key = ids
        elif self.sort == "label":
            key = session.labels[ids]
        elif self.sort == "review":
            key = session.state_codes[ids]
        elif self.sort == "cluster":
            key = session.cluster_of()[ids].astype(np.float64)
            key[key < 0] = np.nan
        elif self.sort == "rank":
            key = session.density_rank()[ids]
        elif self.sort in session.scores:
            key = np.asarray(session.scores[self.sort])[ids]
        else:
            return ids
        if check is not None:
            check()
        return ids[stable_order(key, self.descending, check)]


def _no_check() -> None:
    pass


#: float32 holds every integer up to this exactly
_F32_EXACT = 1 << 24


def stable_order(key: np.ndarray, descending: bool = False, check: Optional[Callable[[], None]] = None) -> np.ndarray:
    """Positions that sort ``key`` ascending (or descending), ties in their given order, missing values
    (NaN, +-inf) last in their given order: what ``np.lexsort((signed_key, ~finite))`` gives, cheaper.

    The missing values are set aside first (a MinDist or a posterior exists only for DIFT's candidates: a
    few % of N). The rest become order-preserving unsigned codes; when those are already in order (sorting
    by the score the gallery's suspicion order follows) that is seen in one pass. Otherwise, when the key
    is exact in float32 (float32 scores, integers below 2^24, float64 values that are float32 values), each
    code goes in the high half of a uint64 whose low half is its position, and one ``np.sort`` of those
    (unstable, vectorised) is the stable order: 10M random keys in ~2 s here against ~10 s for the lexsort
    over float64. Other keys take a stable argsort of 64-bit codes. ``check`` is called between the
    passes (a cancel flag: see :meth:`FilterSpec.apply`)."""
    check = check or _no_check
    key = np.asarray(key)
    n = len(key)
    if n == 0:
        return np.zeros(0, np.int64)
    if key.dtype == np.bool_:
        key = key.astype(np.uint8)
    exact32 = key.dtype == np.float32 or (key.dtype.kind in "iu" and key.dtype.itemsize <= 2)
    if not exact32 and key.dtype.kind in "iu":
        exact32 = bool(int(key.min()) > -_F32_EXACT and int(key.max()) < _F32_EXACT)
    if not exact32 and key.dtype.kind == "f":
        with np.errstate(invalid="ignore", over="ignore"):
            narrow = key.astype(np.float32)
        exact32 = bool(np.array_equal(narrow, key, equal_nan=True))
        del narrow
    exact32 = exact32 and n < (1 << 32)
    check()
    value = key.astype(np.float32 if exact32 else np.float64)
    finite = np.isfinite(value)
    if finite.all():
        present, missing = None, np.zeros(0, np.int64)
    else:
        present, missing = np.flatnonzero(finite), np.flatnonzero(~finite)
        value = value[present]
    del finite
    value += value.dtype.type(0.0)  # -0.0 ties with 0.0, as a comparison says
    unsigned, width = (np.uint32, 32) if exact32 else (np.uint64, 64)
    bits = value.view(unsigned)
    sign = unsigned(1 << (width - 1))
    code = np.where(bits & sign, ~bits, bits | sign)
    del bits, value
    if descending:
        code = ~code
    check()
    if len(code) < 2 or bool((code[1:] >= code[:-1]).all()):  # already in order
        order = np.arange(len(code), dtype=np.int64)
    elif exact32:
        packed = (code.astype(np.uint64) << np.uint64(32)) | np.arange(len(code), dtype=np.uint64)
        del code
        check()
        packed.sort()
        order = (packed & np.uint64(0xFFFFFFFF)).astype(np.int64)
    else:
        order = np.argsort(code, kind="stable").astype(np.int64)
    if present is None:
        return order
    return np.concatenate([present[order], missing])


def finite_range(values: np.ndarray) -> Optional[tuple[float, float]]:
    """(min, max) of the finite values, None when there are none or all are equal. Two reductions over the
    array as it is (NaN skipped by ``fmin``/``fmax``), not a float64 copy and a finite-only copy of it: at
    10M samples and four score columns that was most of the filter sidebar's build."""
    v = np.asarray(values)
    if v.size == 0 or v.dtype.kind not in "biuf":
        return None
    if v.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            low, high = float(np.fmin.reduce(v)), float(np.fmax.reduce(v))
        if not (np.isfinite(low) and np.isfinite(high)):  # an infinity (or only NaN): the slow, exact way
            finite = v[np.isfinite(v)]
            if finite.size == 0:
                return None
            low, high = float(finite.min()), float(finite.max())
    else:
        low, high = float(v.min()), float(v.max())
    return (low, high) if high > low else None


def _shown_from(key: str) -> int:
    """What the sidebar adds to a score to show it: the density rank counts from 1 there, as the inspector and the
    large view say it ("1 of 2,000, 1 = densest"); the filters read 0 to 1,513 (a newcomer, session 26)."""
    return 1 if key == "rank" else 0


class FilterSidebar(QWidget):
    """Edits a :class:`FilterSpec` for ``session``; ``changed`` after every edit, ``spec()`` reads it."""

    changed = Signal()

    def __init__(self, session: AnalysisSession, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.session = session
        self._quiet = False
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(2, 2, 2, 2)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.cluster = QComboBox()
        self.cluster.addItem("any", None)
        for cl in session.clusters()[:500]:
            self.cluster.addItem(f"#{cl.cluster_id + 1} ({cl.size:,})", cl.cluster_id)
        self.cluster.setToolTip("only the members of one ranked cluster")
        self.label = QComboBox()
        self.label.addItem("any", None)
        labels = session.labels
        if len(labels) and labels.min() >= 0 and labels.max() < 1_000_000:  # one counting pass (np.unique sorts 10M)
            present = np.flatnonzero(np.bincount(labels))
        else:
            present = np.unique(labels)
        for label in present.tolist():
            self.label.addItem(session.class_name(int(label)), int(label))
        self.sort = QComboBox()
        wheel_only_when_focused(self.cluster, self.label, self.sort)
        for key, text in SORT_KEYS:
            if key in ("suspicion", "id", "label", "review", "cluster") or key in session.scores:
                self.sort.addItem(text, key)
                if key in SORT_TIPS:
                    self.sort.setItemData(self.sort.count() - 1, SORT_TIPS[key], Qt.ItemDataRole.ToolTipRole)
        detectors = [item for item in detector_table(session) if item.key in session.scores]
        for item in detectors:  # every detector pass of the workspace (issue 13): most suspicious first
            self.sort.addItem(item.value_name(), item.key)
            self.sort.setItemData(self.sort.count() - 1, item.describe(), Qt.ItemDataRole.ToolTipRole)
        self.sort.setToolTip("the gallery's order; samples without the score come last (a detector's score sorts "
                             "descending, its most suspicious first)")
        self.descending = QCheckBox("descending")
        for combo in (self.cluster, self.label, self.sort):  # narrow: the grid beside keeps its columns
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(9)
        form.addRow("Cluster", self.cluster)
        form.addRow("Class", self.label)
        form.addRow("Sort by", self.sort)
        form.addRow("", self.descending)
        layout.addLayout(form)
        self._form = form

        states = QGroupBox("Review state")
        grid = QGridLayout(states)
        grid.setContentsMargins(4, 2, 4, 2)
        self.states: dict[str, QCheckBox] = {}
        for k, state in enumerate(REVIEW_STATES):
            box = QCheckBox(state)
            box.setChecked(True)
            self.states[state] = box
            grid.addWidget(box, k // 2, k % 2)
        layout.addWidget(states)

        ranges = QGroupBox("Score ranges")
        range_form = QGridLayout(ranges)
        range_form.setContentsMargins(4, 2, 4, 2)
        self.ranges: dict[str, tuple[QDoubleSpinBox, QDoubleSpinBox, float, float]] = {}
        row = 0
        for key, text in list(RANGE_SCORES) + [(item.key, item.value_name()) for item in detectors]:
            if key == "rank" and "rank" not in session.scores:  # derived: a permutation of 0..N-1
                span = (0.0, float(session.n - 1)) if session.n > 1 else None
            else:
                values = session.scores.get(key)
                span = finite_range(values) if values is not None else None
            if span is None:
                continue
            low, high = span[0] + _shown_from(key), span[1] + _shown_from(key)  # as the inspector counts them
            decimals = 0 if key == "rank" else 4
            boxes = []
            for value in (low, high):
                box = QDoubleSpinBox()
                box.setDecimals(decimals)
                box.setRange(low, high)
                box.setSingleStep(1.0 if key == "rank" else (high - low) / 100)
                box.setValue(value)
                box.setKeyboardTracking(False)
                box.setToolTip(f"{text}: from {low:.4g} to {high:.4g}")
                wheel_only_when_focused(box)  # the sidebar scrolls: its wheel must not narrow a range unseen
                boxes.append(box)
            range_form.addWidget(QLabel(text), row, 0, 1, 2)
            range_form.addWidget(boxes[0], row + 1, 0)
            range_form.addWidget(boxes[1], row + 1, 1)
            row += 2
            self.ranges[key] = (boxes[0], boxes[1], low, high)
        if self.ranges:
            layout.addWidget(ranges)
        self.reset_button = QPushButton("Reset filters")
        self.reset_button.clicked.connect(self.reset)
        layout.addWidget(self.reset_button)
        layout.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        #: its width beside the tiles (above them, in a narrow gallery, it takes the gallery's width: place_above)
        self.side_width = max(body.sizeHint().width(), 180) + scroll.verticalScrollBar().sizeHint().width() + 4
        self.setFixedWidth(self.side_width)
        # Letters and digits typed in the sidebar stay in it: the gallery's one-key shortcuts (C, R, L,
        # 1-4, ...) also cover its children, and a letter typed in a combo must never decide a sample.
        for child in self.findChildren(QWidget):
            child.installEventFilter(self)

        self.sort.currentIndexChanged.connect(self._sort_changed)
        for combo in (self.cluster, self.label, self.sort):
            combo.currentIndexChanged.connect(self._emit)
        self.descending.toggled.connect(self._emit)
        for box in self.states.values():
            box.toggled.connect(self._emit)
        for low, high, _a, _b in self.ranges.values():
            low.valueChanged.connect(self._emit)
            high.valueChanged.connect(self._emit)

    def essential_height(self) -> int:
        """The height its first controls need (cluster, class, sort by, descending): above the tiles it never gets
        less, or Sort by is cut (session 21)."""
        return self._form.sizeHint().height() + 8

    def place_above(self, above: bool, height: int = 0) -> None:
        """Beside the tiles at its own width, or above them at the gallery's width and at most ``height`` tall (it
        scrolls): beside a narrow gallery (1280x720) it left one tile a row and cut its controls (newcomer 17)."""
        if above:
            essential = self.essential_height()
            self.setMinimumWidth(0)
            self.setMaximumWidth(16_777_215)
            self.setMinimumHeight(essential)
            self.setMaximumHeight(max(120, essential, int(height)))
        else:
            self.setMinimumHeight(0)
            self.setMaximumHeight(16_777_215)
            self.setFixedWidth(self.side_width)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.ShortcutOverride:
            mods = event.modifiers() & ~Qt.KeyboardModifier.ShiftModifier & ~Qt.KeyboardModifier.KeypadModifier
            if not mods and event.text().strip() and not self._closes(event):
                event.accept()  # the key goes to the widget, not to a shortcut
        return False

    @staticmethod
    def _closes(event: QEvent) -> bool:
        """F is the key that shows and hides this panel: it reaches the gallery's shortcut from anywhere in it (a
        newcomer pressed F after using a combo and the panel stayed; the combo had taken the F as a search)."""
        return event.key() == Qt.Key.Key_F and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier

    def _sort_changed(self, _index: int) -> None:
        """A detector's score (higher = more suspicious) sorts descending unless the analyst says otherwise."""
        key = str(self.sort.currentData() or "")
        if key.startswith(DETECTOR_PREFIX) and not self.descending.isChecked() and not self._quiet:
            self._quiet = True
            try:
                self.descending.setChecked(True)
            finally:
                self._quiet = False

    def set_sort(self, key: str) -> None:
        """Sort by ``key`` (a key of :data:`SORT_KEYS` or a detector's ``detector:...``)."""
        index = self.sort.findData(key)
        if index < 0:
            raise ValueError(f"no sort key {key!r} here")
        self.sort.setCurrentIndex(index)

    def set_sort_quietly(self, key: str, descending: bool) -> None:
        """Sort by ``key`` in this direction without a refresh (the caller asks for one)."""
        self._quiet = True
        try:
            self.set_sort(key)
            self.descending.setChecked(descending)
        finally:
            self._quiet = False

    def _emit(self, *_args: object) -> None:
        if not self._quiet:
            self.changed.emit()

    def spec(self) -> FilterSpec:
        ranges = {}
        for key, (low, high, lo0, hi0) in self.ranges.items():
            a, b = low.value(), high.value()
            tol = 0.5 * 10 ** -low.decimals()
            if a > lo0 + tol or b < hi0 - tol:
                shift = _shown_from(key)
                ranges[key] = (a - tol - shift, b + tol - shift)
        return FilterSpec(
            cluster=self.cluster.currentData(),
            states=frozenset(s for s, box in self.states.items() if box.isChecked()),
            label=self.label.currentData(),
            ranges=ranges,
            sort=self.sort.currentData() or "suspicion",
            descending=self.descending.isChecked(),
        )

    def set_spec(self, spec: FilterSpec) -> None:
        """Show ``spec`` (one refresh): a panel rebuilt on the same pass comes back with the analyst's filters and
        sort. A cluster, class or score this panel does not have is left at "any"."""
        self._quiet = True
        try:
            for combo, value in ((self.cluster, spec.cluster), (self.label, spec.label), (self.sort, spec.sort)):
                index = combo.findData(value)
                combo.setCurrentIndex(max(0, index))
            self.descending.setChecked(bool(spec.descending))
            for state, box in self.states.items():
                box.setChecked(state in spec.states)
            for key, (low, high, lo0, hi0) in self.ranges.items():
                shift = _shown_from(key)
                if key in spec.ranges:  # spec() widened them by half a step: taken off again (else a rebuilt
                    tol = 0.5 * 10 ** -low.decimals()  # panel's 1-10 came back as 1-11, then 1-12; a review)
                    a, b = spec.ranges[key]
                    low.setValue(max(lo0, a + tol + shift))
                    high.setValue(min(hi0, b - tol + shift))
                else:
                    low.setValue(lo0)
                    high.setValue(hi0)
        finally:
            self._quiet = False
        self.changed.emit()

    def set_states(self, states) -> None:
        """Tick exactly ``states`` (one refresh)."""
        self._quiet = True
        try:
            for state, box in self.states.items():
                box.setChecked(state in set(states))
        finally:
            self._quiet = False
        self.changed.emit()

    def set_range(self, key: str, low: float, high: float) -> None:
        """Narrow ``key`` to [low, high], in the score's own values (a rank from 0, as the session keeps it)."""
        lo_box, hi_box, _a, _b = self.ranges[key]
        self._quiet = True
        try:
            lo_box.setValue(low + _shown_from(key))
            hi_box.setValue(high + _shown_from(key))
        finally:
            self._quiet = False
        self.changed.emit()

    def reset(self) -> None:
        """Everything back to "any", the suspicion order."""
        self._quiet = True
        try:
            self.cluster.setCurrentIndex(0)
            self.label.setCurrentIndex(0)
            self.sort.setCurrentIndex(0)
            self.descending.setChecked(False)
            for box in self.states.values():
                box.setChecked(True)
            for low, high, lo0, hi0 in self.ranges.values():
                low.setValue(lo0)
                high.setValue(hi0)
        finally:
            self._quiet = False
        self.changed.emit()
