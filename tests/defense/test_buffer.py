from __future__ import annotations

import numpy as np

from naviewer.defense.buffer import DetectionBuffer
from naviewer.defense.config import DiftConfig


def _ids(a, b):
    return np.arange(a, b)


def test_intersection_stability_and_history_with_ground_truth():
    truth = np.zeros(100, dtype=bool)
    truth[:30] = True
    buf = DetectionBuffer(DiftConfig(start_epoch=2, n_min=5), ground_truth=truth)
    assert not buf.should_detect(1) and buf.should_detect(2)
    r = buf.update(2, _ids(0, 40))
    assert r.action == "fill" and r.detected == 40 and r.precision == 0.75 and r.recall == 1.0
    r = buf.update(3, _ids(5, 50))
    assert r.action == "intersect" and r.detected == 35 and r.stable_count == 0
    r = buf.update(4, np.array([], dtype=np.int64))
    assert r.action == "skip" and r.detected == 35 and r.stable_count == 0
    r = buf.update(5, _ids(0, 60))
    assert r.detected == 35 and r.stable_count == 1 and not buf.finished
    r = buf.update(6, _ids(5, 40))
    assert r.stable and buf.finished and buf.stop_reason == "stable"
    assert buf.ids().tolist() == list(range(5, 40)) and not buf.empty_result
    assert [h["detected"] for h in buf.history_dicts()] == [40, 35, 35, 35, 35]
    assert not buf.should_detect(7)


def test_reset_when_intersection_is_too_small():
    buf = DetectionBuffer(DiftConfig(start_epoch=0, n_min=10))
    buf.update(0, _ids(0, 20))
    r = buf.update(1, _ids(15, 40))  # |B ∩ S| = 5 < 10
    assert r.action == "reset" and buf.ids().tolist() == list(range(15, 40)) and r.stable_count == 0


def test_cap_and_noop_when_too_few():
    buf = DetectionBuffer(DiftConfig(start_epoch=1, max_detection_epochs=3, n_min=10))
    for epoch in range(1, 5):
        assert buf.should_detect(epoch)
        buf.update(epoch, _ids(epoch * 100, epoch * 100 + 4))  # tiny, always reset
    assert buf.finished and buf.stop_reason == "cap" and buf.empty_result


def test_auto_start_for_short_schedules():
    config = DiftConfig(start_epoch=None)
    assert DetectionBuffer(config, total_epochs=100).start_epoch == 5
    assert DetectionBuffer(config, total_epochs=800).start_epoch == 10


def test_history_with_ids_keeps_the_buffer_of_every_epoch():
    from naviewer.defense.buffer import DetectionBuffer
    from naviewer.defense.config import DiftConfig

    buffer = DetectionBuffer(DiftConfig(start_epoch=0, n_min=2))
    buffer.update(0, np.arange(10))
    buffer.update(1, np.arange(2, 12))
    records = buffer.history_dicts(with_ids=True)
    assert [r["buffer_ids"] for r in records] == [list(range(10)), list(range(2, 10))]
    assert "buffer_ids" not in buffer.history_dicts()[0]
