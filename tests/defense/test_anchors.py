from __future__ import annotations

import numpy as np
import pytest

from naviewer.defense.anchors import Anchors, draw_anchors, user_anchors
from naviewer.defense.dift import min_dist
from naviewer.errors import NaviewerError


def test_draw_is_seeded_per_class_and_respects_candidates():
    labels = np.repeat(np.arange(5), 30)
    clean = np.flatnonzero(np.arange(150) % 3 != 0)
    a = draw_anchors(labels, per_class=10, seed=4, candidates=clean)
    b = draw_anchors(labels, per_class=10, seed=4, candidates=clean)
    assert np.array_equal(a.indices, b.indices) and a.indices.dtype == np.int64
    assert a.counts() == {c: 10 for c in range(5)}
    assert np.isin(a.indices, clean).all() and not a.warnings
    assert not np.array_equal(a.indices, draw_anchors(labels, 10, seed=5, candidates=clean).indices)


def test_thin_and_empty_classes_are_reported_not_hidden():
    labels = np.array([0] * 20 + [1] * 3 + [2] * 5)
    clean = np.flatnonzero(labels != 2)  # class 2 is entirely poisoned: no clean anchor
    a = draw_anchors(labels, per_class=10, seed=0, candidates=clean)
    assert a.counts() == {0: 10, 1: 3}
    assert any("class 1 has 3" in w for w in a.warnings)
    assert any("class 2 has 0" in w and "no part" in w for w in a.warnings)
    with pytest.raises(NaviewerError, match="class 1"):
        draw_anchors(labels, per_class=10, seed=0, candidates=clean, strict=True)


def test_class_without_anchors_never_wins_min_dist():
    # a class with no anchors must not contribute a 0/NaN mean: MinDist stays the true minimum
    anchors_z = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    d, cls = min_dist(np.array([[0.0, 1.0]]), anchors_z, np.array([3, 3]))
    assert np.isfinite(d).all() and d[0] == pytest.approx(np.sqrt(2.0)) and cls[0] == 3
    with pytest.raises(NaviewerError):
        min_dist(np.zeros((1, 2)), np.zeros((0, 2)), np.zeros(0))


def test_min_dist_is_mean_over_class_then_min_over_classes():
    a = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [10.0, 2.0]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1])
    d, cls = min_dist(np.array([[1.0, 0.0], [10.0, 1.0]]), a, labels)
    assert d.tolist() == pytest.approx([1.0, 1.0]) and cls.tolist() == [0, 1]


def test_user_anchors_and_bad_input():
    labels = np.array([0, 0, 1, 1, -1])
    a = user_anchors([0, 2], labels, per_class=2)
    assert a.counts() == {0: 1, 1: 1} and len(a.warnings) == 2
    with pytest.raises(NaviewerError):
        user_anchors([4], labels)
    with pytest.raises(NaviewerError):
        Anchors(np.array([1, 1]), np.array([0, 0]))
    with pytest.raises(NaviewerError):
        draw_anchors(np.full(10, -1))
    assert Anchors.from_dict(a.to_dict()).indices.tolist() == [0, 2]


def test_anchor_spread_puts_tight_and_broad_classes_on_one_scale():
    from naviewer.defense.dift import anchor_spread

    rng = np.random.default_rng(0)
    tight = rng.normal(scale=0.05, size=(10, 4))                      # class 0: a tight class
    broad = np.array([8.0, 0, 0, 0]) + rng.normal(scale=1.0, size=(10, 4))  # class 1: a broad class
    a = np.concatenate([tight, broad]).astype(np.float32)
    labels = np.repeat([0, 1], 10)
    spread = anchor_spread(a, labels)
    assert spread[0] < 0.2 < 1.0 < spread[1]
    pile = np.array([[0.6, 0.0, 0.0, 0.0]])                           # beside the tight class, outside it
    member = np.array([8.0, 1.0, 0.0, 0.0])[None]                     # a typical broad-class member
    raw_pile, raw_member = min_dist(pile, a, labels)[0][0], min_dist(member, a, labels)[0][0]
    assert raw_pile < raw_member                                        # Eq. 6 calls the pile nearer
    scaled_pile = min_dist(pile, a, labels, spread)[0][0]
    scaled_member = min_dist(member, a, labels, spread)[0][0]
    assert scaled_pile > 2.0 * scaled_member                            # in class units it is far
    # one anchor in a class: that class borrows the median spread of the others
    one = anchor_spread(np.concatenate([a, [[20.0, 0, 0, 0]]]).astype(np.float32), np.append(labels, 2))
    assert one[2] == pytest.approx(np.median([spread[0], spread[1]]))


def test_mindist_scale_setting_is_checked():
    from naviewer.defense.config import DiftConfig

    assert DiftConfig(mindist_scale="anchor_spread").validate().mindist_scale == "anchor_spread"
    with pytest.raises(NaviewerError, match="mindist_scale"):
        DiftConfig(mindist_scale="zscore").validate()
