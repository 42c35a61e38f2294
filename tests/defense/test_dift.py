from __future__ import annotations

import numpy as np
import pytest

from naviewer.defense.anchors import draw_anchors
from naviewer.defense.config import DiftConfig
from naviewer.defense.dift import detect_epoch, gmm_split, select_candidates
from naviewer.defense.synthetic import make_embeddings
from naviewer.errors import NaviewerError
from naviewer.evaluation.detection import detection_metrics


def test_candidates_are_densest_and_exclude_anchors():
    d = np.array([0.5, 0.1, 0.2, 0.05, 0.9])
    assert select_candidates(d, 2).tolist() == [3, 1]
    assert select_candidates(d, 2, exclude=np.array([3])).tolist() == [1, 2]


def test_guard_fires_when_every_candidate_is_a_poison(poisoned, poisoned_anchors, small_config):
    # 1% poisons and q = 1%: the candidates are all poisons, a plain 2-GMM would split them in half
    det = detect_epoch(poisoned.features, poisoned_anchors, small_config)
    assert poisoned.poison[det.candidates].all()
    assert det.split.guard_fired and det.split.guard_decision == "all"
    m = detection_metrics(det.selected, poisoned.poison)
    assert m.recall == 1.0 and m.precision == 1.0


def test_gmm_split_separates_poisons_from_benign_intruders(poisoned, poisoned_anchors, small_config):
    config = DiftConfig(**{**small_config.to_dict(), "candidate_fraction": 0.02})  # 60 candidates, 30 poisons
    det = detect_epoch(poisoned.features, poisoned_anchors, config)
    assert not det.split.guard_fired and det.split.separation >= 2
    m = detection_metrics(det.selected, poisoned.poison)
    assert m.precision == 1.0 and m.recall == 1.0
    assert det.posterior.shape == det.candidates.shape
    scores = det.scores()
    assert np.isnan(scores["mindist"][~scores["candidate"]]).all()
    assert scores["candidate"].sum() == det.candidates.size


def test_clean_data_selects_nothing(small_config):
    clean = make_embeddings(3000, 64, n_classes=10, intrinsic_dim=12, poison_fraction=0.0, seed=4)
    anchors = draw_anchors(clean.clean_labels, 10, seed=0)
    det = detect_epoch(clean.features, anchors, small_config)
    assert det.selected.size == 0


def test_guard_rules_on_plain_values():
    config = DiftConfig()
    same = np.full(20, 0.9)
    split = gmm_split(same, config, lambda: np.linspace(0.1, 0.5, 100))
    assert split.guard_fired and split.guard_decision == "all" and split.selected.all()
    split = gmm_split(same * 0.2, config, lambda: np.linspace(0.1, 0.5, 100))
    assert split.guard_decision == "none" and not split.selected.any()
    two = np.concatenate([np.full(10, 0.2), np.full(10, 1.0)]) + np.linspace(0, 0.01, 20)
    split = gmm_split(two, config, lambda: np.linspace(0.1, 0.5, 100))
    assert not split.guard_fired and split.selected.tolist() == [False] * 10 + [True] * 10
    # separated modes both inside the benign range: rejected (clean data with classes of different spread)
    split = gmm_split(two * 0.3, config, lambda: np.linspace(0.0, 1.0, 100))
    assert split.guard_decision == "rejected" and not split.selected.any()


def test_detect_epoch_user_errors(poisoned, poisoned_anchors, small_config):
    from naviewer.defense.anchors import Anchors

    with pytest.raises(NaviewerError):
        detect_epoch(poisoned.features[:20], poisoned_anchors, small_config)
    with pytest.raises(NaviewerError):
        detect_epoch(poisoned.features, Anchors(np.array([10**6]), np.array([0])), small_config)
    with pytest.raises(NaviewerError):
        DiftConfig(knn_backend="faiss").validate()
    with pytest.raises(NaviewerError):
        DiftConfig.from_dict({"k": 20, "bogus": 1})
    assert DiftConfig.from_dict(DiftConfig(k=7).to_dict()).k == 7


def test_two_poison_modes_above_the_benign_range_are_both_taken():
    # a separated split (sep >= 2) where even the low mode is far above benign MinDist
    values = np.concatenate([np.full(40, 0.9), np.full(10, 1.2)]) + np.linspace(0, 0.01, 50)
    split = gmm_split(values, DiftConfig(), lambda: np.linspace(0.1, 0.5, 100))
    assert split.guard_decision == "all" and split.selected.all()


def test_class_scaled_mindist_takes_a_poison_pile_beside_a_tight_class():
    # the digits demo's case: every candidate is a poison, the pile sits just outside a TIGHT class, so its
    # raw MinDist (Eq. 6) is below that of typical members of the broad classes and the guard says "none"
    from naviewer.defense.anchors import draw_anchors

    rng = np.random.default_rng(0)
    dim = 8
    centers = np.zeros((4, dim))
    centers[1:, :3] = 6.0 * np.eye(3)
    spreads = [0.05, 0.5, 0.5, 0.5]
    labels = np.repeat(np.arange(4), [60, 150, 150, 150])
    clean = np.concatenate([centers[c] + rng.normal(scale=spreads[c], size=(int((labels == c).sum()), dim))
                            for c in range(4)])
    pile = centers[0] + np.r_[0.6, np.zeros(dim - 1)] + rng.normal(scale=0.005, size=(30, dim))
    z = np.concatenate([clean, pile]).astype(np.float32)
    truth = np.r_[np.zeros(len(clean), bool), np.ones(30, bool)]
    anchors = draw_anchors(np.r_[labels, np.zeros(30, np.int64)], 10, seed=0, candidates=np.flatnonzero(~truth))
    base = dict(knn_backend="exact", normalize=False, k=5, candidate_fraction=30 / len(z), gmm_n_init=2)
    plain = detect_epoch(z, anchors, DiftConfig(**base))
    assert truth[plain.candidates].all() and plain.selected.size == 0
    scaled = detect_epoch(z, anchors, DiftConfig(mindist_scale="anchor_spread", **base))
    assert np.array_equal(scaled.selected, np.flatnonzero(truth))
