"""The crop-layout view shows exactly the core's event probability, live as the sliders move."""

from __future__ import annotations

import numpy as np
import pytest

from naviewer.analysis.crop_event import CropLayout, estimate_event_probability
from naviewer.attacks.layout import na_layout
from naviewer.gui.analyst.crop_layout import CropLayoutWidget


def test_probability_agrees_with_core_and_updates_live(qtbot) -> None:
    widget = CropLayoutWidget(n_pairs=5000, seed=3)
    qtbot.addWidget(widget)
    core = estimate_event_probability(widget.crop_layout, n_pairs=5000, seed=3)
    assert widget.estimate.probability == pytest.approx(core.probability)
    assert abs(widget.estimate.probability - 0.036) < 0.01
    before = widget.estimate.probability
    with qtbot.waitSignal(widget.layout_changed, timeout=2000):
        widget.gap.slider.setValue(16)
    assert widget.crop_layout.gap == 16
    assert widget.estimate.probability < before
    again = estimate_event_probability(widget.crop_layout, n_pairs=5000, seed=3)
    assert widget.estimate.probability == pytest.approx(again.probability)
    assert f"{100 * again.probability:.2f}%" in widget.prob_label.text()


def test_sample_pairs_pin_and_recorded_layout(qtbot) -> None:
    widget = CropLayoutWidget(n_pairs=2000)
    qtbot.addWidget(widget)
    recorded = na_layout(32, 8, (2, 20), gap=0, orientation="ref-top")
    image = np.zeros((recorded.height, recorded.width, 3), np.uint8)
    widget.set_sample(image, recorded)
    assert widget.crop_layout == CropLayout.from_layout(recorded)
    assert widget.crop_layout.to_layout() == recorded
    pairs = widget.sample(60)
    assert len(pairs) == 60 and len(widget._pair_items) == 120
    assert f"{int(pairs.event.sum())} of 60" in widget.pairs_label.text()
    widget.pin()
    widget.set_layout(widget.crop_layout.with_(trigger=16))
    widget.pin()
    assert widget.compare.columnCount() == 2
    (l1, e1), (l2, e2) = widget.pinned()
    assert l2.trigger == 16 and e2.probability < e1.probability
