from __future__ import annotations

import math

import numpy as np
import pytest

from naviewer.errors import NaviewerError
from naviewer.evaluation.detection import before_after_spreading, detection_metrics


def test_metrics_from_ids_and_masks_agree():
    truth = np.zeros(10, dtype=bool)
    truth[:4] = True
    m = detection_metrics(np.array([0, 1, 5]), truth)
    assert (m.true_positives, m.false_positives) == (2, 1)
    assert m.precision == pytest.approx(2 / 3) and m.recall == 0.5 and m.tpr == 0.5
    assert m.fpr == pytest.approx(1 / 6) and m.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    mask = np.zeros(10, dtype=bool)
    mask[[0, 1, 5]] = True
    assert detection_metrics(mask, truth) == m
    assert m["tpr"] == 0.5 and m["fp"] == 1
    assert detection_metrics(np.array([0, 1, 5]), np.arange(4), n=10) == m


def test_undefined_ratios_are_nan_and_bad_input_is_an_error():
    m = detection_metrics(np.array([], dtype=np.int64), np.zeros(5, dtype=bool))
    assert math.isnan(m.precision) and math.isnan(m.recall) and m.fpr == 0.0
    with pytest.raises(NaviewerError):
        detection_metrics(np.array([7]), np.zeros(5, dtype=bool))
    with pytest.raises(NaviewerError):
        detection_metrics(np.array([1]), np.array([1, 2]))
    out = before_after_spreading(np.array([0]), np.array([0, 1]), np.array([True, True, False]))
    assert out["before"]["recall"] == 0.5 and out["after"]["recall"] == 1.0
