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
