import numpy as np
import pytest

from naviewer.evaluation.asr import attack_success_rates
from naviewer.evaluation.detection import detection_metrics


def test_both_asr_definitions():
    true = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 0, 1, 0, 0])  # target 0
    r = attack_success_rates(pred, true, target=0)
    assert r["asr_nt"] == pytest.approx(3 / 4)  # non-target images predicted 0
    assert r["asr_all"] == pytest.approx(5 / 6)  # CTRL: all triggered images
    assert r["backdoor_acc"] == pytest.approx(3 / 6)


def test_detection_metrics():
    flagged = np.array([1, 1, 0, 0, 1], bool)
    poison = np.array([1, 0, 0, 1, 1], bool)
    m = detection_metrics(flagged, poison)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["fpr"] == pytest.approx(1 / 2) and m["f1"] == pytest.approx(2 / 3)
