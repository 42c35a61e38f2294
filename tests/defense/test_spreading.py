from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from naviewer.defense.config import DiftConfig
from naviewer.defense.dift import detect_epoch
from naviewer.defense.knn import KnnIndex, as_float32
from naviewer.defense.spreading import (_fit_label_spreading, anchor_reach, build_pool, crop_agreement, crop_outliers,
                                         far_from_anchors,
                                        groups_of, label_spread,
                                        neighbourhood_closure, sparse_affinity, spreading_labels,
                                        weakly_reached_cluster)
from naviewer.evaluation.detection import detection_metrics


def test_label_mapping_poison_1_anchor_0_unknown_minus_1():
    y = spreading_labels(6, np.array([0, 1, 5]), np.array([2, 5]))
    assert y.tolist() == [1, 1, 0, -1, -1, 0]  # an anchor never becomes a poison seed


def test_unconnected_points_default_to_benign():
    # 0-1-2 chain holds the poison seed, 3-4 the anchor, 5 and 6 are isolated
    nb = np.array([[1], [2], [1], [4], [3], [5], [6]])
    w = sparse_affinity(nb, np.full((7, 1), 0.1), 7)
    assert (w != w.T).nnz == 0 and w.diagonal().sum() == 0
    y = spreading_labels(7, np.array([0]), np.array([3]))
    labels, prob, _ = _fit_label_spreading(w, y, DiftConfig(), dense=False)
    assert labels.tolist() == [1, 1, 1, 0, 0, 0, 0]
    assert prob[5] == 0 and prob[6] == 0


def test_dense_rbf_far_points_stay_benign():
    x = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels, _, _ = _fit_label_spreading(x, np.array([1, -1, 0, -1]), DiftConfig(), dense=True)
    assert labels.tolist() == [1, 1, 0, 0]


def test_pool_holds_buffer_anchors_neighbours_and_respects_cap(poisoned, poisoned_anchors):
    z = as_float32(poisoned.features, True)
    index = KnnIndex(z, DiftConfig(knn_backend="exact"))
    buffer_ids = np.flatnonzero(poisoned.poison)[:10]
    config = DiftConfig(pool_neighbors=50, pool_random=200, pool_cap=600)
    pool = build_pool(index, buffer_ids, poisoned_anchors.indices, config)
    assert np.isin(buffer_ids, pool).all() and np.isin(poisoned_anchors.indices, pool).all()
    assert pool.size <= 600 and np.all(np.diff(pool) > 0)
    small = build_pool(index, buffer_ids, poisoned_anchors.indices, DiftConfig(pool_neighbors=50, pool_random=0,
                                                                               pool_cap=130))
    first = index.neighbors_of(buffer_ids, 1)[0].ravel()
    assert np.isin(first, small).all()  # nearest neighbours are kept first under the cap


def test_both_modes_recover_the_cluster_from_a_partial_buffer(poisoned, poisoned_anchors):
    config = DiftConfig(knn_backend="exact", gmm_n_init=2, candidate_fraction=0.004)  # 12 of 30 poisons
    det = detect_epoch(poisoned.features, poisoned_anchors, config)
    assert detection_metrics(det.selected, poisoned.poison).recall < 0.5
    for mode, expect in (("pool", "pool-dense"), ("graph", "graph")):
        cfg = DiftConfig(**{**config.to_dict(), "spread_mode": mode})
        res = label_spread(det.features, det.selected, poisoned_anchors.indices, cfg, det.index, det.knn)
        assert res.mode == expect
        m = detection_metrics(res.flagged, poisoned.poison)
        assert m.recall == 1.0 and m.precision >= 0.9
        assert not np.isin(poisoned_anchors.indices, res.flagged).any()
    cfg = DiftConfig(**{**config.to_dict(), "dense_max": 100})  # large pools switch to a sparse graph
    res = label_spread(det.features, det.selected, poisoned_anchors.indices, cfg, det.index, det.knn)
    assert res.mode == "pool-graph" and detection_metrics(res.flagged, poisoned.poison).recall == 1.0


def test_graph_mode_never_builds_a_dense_matrix(poisoned, poisoned_anchors, monkeypatch):
    import sklearn.semi_supervised._label_propagation as lp

    def forbidden(*args, **kwargs):
        raise AssertionError("dense RBF kernel built")

    monkeypatch.setattr(lp, "rbf_kernel", forbidden)
    config = DiftConfig(knn_backend="exact", spread_mode="graph", gmm_n_init=2)
    det = detect_epoch(poisoned.features, poisoned_anchors, config)
    res = label_spread(det.features, det.selected, poisoned_anchors.indices, config, det.index, det.knn)
    assert res.flagged.size >= 25
    assert sp.issparse(sparse_affinity(det.knn.neighbors, det.knn.distances, det.n))


# -- neighbourhood closure ------------------------------------------------------------------------

def test_closure_adds_a_poison_whose_neighbourhood_is_flagged():
    # sample 4 is missed, but 3 of its 4 neighbours are flagged; sample 5 sits among benign samples
    neighbors = np.array([[1, 2, 3, 4], [0, 2, 3, 4], [0, 1, 3, 4], [0, 1, 2, 4],
                          [0, 1, 2, 5], [6, 7, 8, 4], [5, 7, 8, 0], [5, 6, 8, 1], [5, 6, 7, 2]])
    added = neighbourhood_closure(np.array([0, 1, 2, 3]), neighbors, 0.7, exclude=np.empty(0, dtype=np.int64))
    assert added.tolist() == [4]


def test_closure_cannot_creep_along_a_chain_of_benign_samples():
    # a path 0-1-2-...-19, each sample's neighbours its two sides: flagging the first three never
    # gives any later sample a majority
    n = 20
    neighbors = np.array([[max(i - 1, 0) if i else 1, min(i + 1, n - 1)] for i in range(n)])
    neighbors[0] = [1, 2]
    added = neighbourhood_closure(np.array([0, 1, 2]), neighbors, 0.6, exclude=np.empty(0, dtype=np.int64))
    assert added.size == 0


def test_closure_reaches_a_fixed_point_and_never_adds_anchors():
    # a clique of 6 with two members unflagged; one of them is an anchor
    neighbors = np.array([[j for j in range(6) if j != i] for i in range(6)])
    added = neighbourhood_closure(np.array([0, 1, 2, 3]), neighbors, 0.6, exclude=np.array([5]))
    assert added.tolist() == [4]
    assert neighbourhood_closure(np.array([0, 1, 2, 3]), neighbors, 0.0, exclude=np.array([5])).size == 0


def test_closure_counts_missing_neighbours_as_not_flagged():
    neighbors = np.array([[1, -1], [0, -1], [0, 1]])
    assert neighbourhood_closure(np.array([0, 1]), neighbors, 1.0, exclude=np.empty(0, dtype=np.int64)).tolist() == [2]
    assert neighbourhood_closure(np.array([0]), neighbors, 1.0, exclude=np.empty(0, dtype=np.int64)).size == 0


def test_closure_in_a_detection_pass_only_adds_and_is_recorded(poisoned, poisoned_anchors):
    from naviewer.defense.pipeline import PosthocDetector

    base = DiftConfig(knn_backend="exact", num_threads=2, gmm_n_init=2)
    plain = PosthocDetector(base).run(poisoned.features, poisoned_anchors, poisoned.poison)
    closed = PosthocDetector(DiftConfig(**{**base.to_dict(), "closure_votes": 0.7})).run(
        poisoned.features, poisoned_anchors, poisoned.poison)
    assert set(plain.final_ids.tolist()) <= set(closed.final_ids.tolist())
    assert closed.summary()["spread"]["closure_added"] == closed.final_ids.size - plain.final_ids.size
    assert not np.isin(closed.final_ids, poisoned_anchors.indices).any()
    assert closed.metrics["final_recall"] == 1.0 and closed.metrics["final_precision"] >= 0.9


def test_weakly_reached_cluster_keeps_a_shared_low_probability_and_drops_lone_ones():
    # 0-4: a cluster reached weakly (p 0.2-0.3, neighbours each other); 5: a lone sample at p 0.3 among
    # unreached neighbours 6-9; 10: an anchor inside the cluster's reach is never flagged
    probability = np.array([0.3, 0.25, 0.2, 0.3, 0.22, 0.3, 0.0, 0.0, 0.01, 0.0, 0.4])
    neighbors = np.array([[1, 2, 3, 4], [0, 2, 3, 4], [0, 1, 3, 4], [0, 1, 2, 4], [0, 1, 2, 3],
                          [6, 7, 8, 9], [5, 7, 8, 9], [5, 6, 8, 9], [5, 6, 7, 9], [5, 6, 7, 8], [0, 1, 2, 3]])
    ids = weakly_reached_cluster(probability, neighbors, 0.1, 0.9, exclude=np.array([10]))
    assert ids.tolist() == [0, 1, 2, 3, 4]
    assert weakly_reached_cluster(probability, neighbors, 0.0, 0.9, exclude=np.array([10])).size == 0


def test_weak_reach_and_closure_only_add_to_a_pass(poisoned, poisoned_anchors):
    from naviewer.defense.pipeline import PosthocDetector

    base = DiftConfig(knn_backend="exact", num_threads=2, gmm_n_init=2)
    plain = PosthocDetector(base).run(poisoned.features, poisoned_anchors, poisoned.poison)
    both = PosthocDetector(DiftConfig(**{**base.to_dict(), "ls_soft_threshold": 0.1, "closure_votes": 0.7})).run(
        poisoned.features, poisoned_anchors, poisoned.poison)
    info = both.summary()["spread"]
    assert set(plain.final_ids.tolist()) <= set(both.final_ids.tolist())
    assert info["soft_added"] + info["closure_added"] == both.final_ids.size - plain.final_ids.size
    assert both.metrics["final_precision"] >= 0.9
    extra = both.extra_scores()
    assert extra["poison_probability"].shape == (3000,) and extra["poison_probability"][both.final_ids].max() > 0.5


def test_crop_agreement_needs_both_signals_in_a_window_that_scales_with_the_flags():
    # 0-3 flagged already; 4-5: reached AND crop-dense -> added; 6: crop-dense, unreached; 7: reached, crop-sparse;
    # 8: an anchor, reached and crop-dense -> never; 9: reached, crop score NaN -> never
    probability = np.array([0.9, 0.9, 0.9, 0.9, 0.1, 0.06, 0.01, 0.3, 0.5, 0.4])
    crop = np.array([5.0, 4.0, 3.0, 2.0, 9.0, 8.0, 7.0, -1.0, 6.0, np.nan])
    flagged = np.arange(4)
    ids = crop_agreement(probability, crop, flagged, 0.05, 2.0, exclude=np.array([8]))
    assert ids.tolist() == [4, 5]
    # window 0.5 x 4 flags = the two best crop scores only (4 and 5)
    assert crop_agreement(probability, crop, flagged, 0.05, 0.5, exclude=np.array([8])).tolist() == [4, 5]
    # window 0.25 x 4 = one: sample 4 only; a higher threshold drops 5 (0.06) too
    assert crop_agreement(probability, crop, flagged, 0.05, 0.25, exclude=np.array([8])).tolist() == [4]
    assert crop_agreement(probability, crop, flagged, 0.08, 2.0, exclude=np.array([8])).tolist() == [4]
    # off, or nothing flagged: nothing added
    assert crop_agreement(probability, crop, flagged, 0.05, 0.0, exclude=np.array([8])).size == 0
    assert crop_agreement(probability, crop, np.empty(0, np.int64), 0.05, 2.0, exclude=np.array([8])).size == 0


def test_crop_agreement_in_a_detection_pass_only_adds_and_records_its_scores(poisoned, poisoned_anchors):
    from naviewer.defense.pipeline import PosthocDetector
    from naviewer.jobs import JobContext, RecordingReporter

    base = DiftConfig(knn_backend="exact", num_threads=2, gmm_n_init=2, ls_soft_threshold=0.1)
    plain = PosthocDetector(base).run(poisoned.features, poisoned_anchors, poisoned.poison)
    n = len(poisoned.poison)
    probability = plain.spread.probability_of_all(n)
    reached = np.flatnonzero(probability > 0.0)
    chosen = np.setdiff1d(np.setdiff1d(reached, plain.final_ids), poisoned_anchors.indices)[:5]
    unreached = np.flatnonzero(probability == 0.0)[:5]
    crop = np.full(n, np.nan)  # NaN: never in the window
    crop[poisoned.poison] = 5.0
    crop[chosen] = 10.0
    crop[unreached] = 10.0   # crop-dense but not reached: not added
    on = DiftConfig(**{**base.to_dict(), "crop_agreement": 2.0, "crop_agreement_threshold": 0.0})
    calls = []
    with_crops = PosthocDetector(on).run(poisoned.features, poisoned_anchors, poisoned.poison,
                                         crop_scores=lambda: calls.append(1) or crop)
    assert calls == [1]
    assert set(plain.final_ids.tolist()) <= set(with_crops.final_ids.tolist())
    added = with_crops.spread.crop
    assert with_crops.summary()["spread"]["crop_added"] == added.size
    assert added.size == with_crops.final_ids.size - plain.final_ids.size
    assert chosen.size and set(chosen.tolist()) <= set(added.tolist())  # both signals point at them
    assert not np.isin(unreached, with_crops.final_ids).any()
    extra = with_crops.extra_scores()
    assert extra["crop_score"].shape == (n,)
    # no encoder and images (no crop_scores): the rule is skipped, said, and the flags are the plain ones
    reporter = RecordingReporter()
    skipped = PosthocDetector(on).run(poisoned.features, poisoned_anchors, poisoned.poison, ctx=JobContext(reporter))
    assert skipped.final_ids.tolist() == plain.final_ids.tolist()
    assert any(kind == "warning" and "crop agreement" in data.get("message", "") for kind, data in reporter.events)
    # above crop_agreement_max_n samples the rule is skipped, said, and the crop scores never computed
    capped = DiftConfig(**{**on.to_dict(), "crop_agreement_max_n": n - 1})
    reporter, calls = RecordingReporter(), []
    big = PosthocDetector(capped).run(poisoned.features, poisoned_anchors, poisoned.poison, ctx=JobContext(reporter),
                                      crop_scores=lambda: calls.append(1) or crop)
    assert calls == [] and big.final_ids.tolist() == plain.final_ids.tolist()
    assert any(kind == "warning" and "crop agreement skipped" in data.get("message", "")
               and "crop_agreement_max_n" in data.get("message", "") for kind, data in reporter.events)


def test_crop_outliers_take_what_stands_far_out_within_the_window_reached_or_not():
    # 100 samples with crop scores about 1 (robust sd about 0.14); 0-9 flagged; 10-12 stand out by 14 sd; 13 by 1.8;
    # 14 an anchor standing out; 15 NaN
    rng = np.random.default_rng(0)
    crop = 1.0 + 0.1 * rng.standard_normal(100)
    crop[:10] = 3.0
    crop[10:13] = 3.0
    crop[13] = 1.3
    crop[14] = 3.0
    crop[15] = np.nan
    flagged = np.arange(10)
    assert crop_outliers(crop, flagged, 2.0, 6.0, exclude=np.array([14])).tolist() == [10, 11, 12]
    assert crop_outliers(crop, flagged, 2.0, 1.5, exclude=np.array([14])).tolist() == [10, 11, 12, 13]
    # the window: 1.2 x 10 flags = 12 best scores, which are the 10 flags, then 10 and 11 (stable order)
    assert crop_outliers(crop, flagged, 1.2, 6.0, exclude=np.array([14])).tolist() == [10, 11]
    # off, nothing flagged, or a score without spread: nothing
    assert crop_outliers(crop, flagged, 2.0, 0.0, exclude=np.array([14])).size == 0
    assert crop_outliers(crop, np.empty(0, np.int64), 2.0, 6.0, exclude=np.array([14])).size == 0
    assert crop_outliers(np.ones(100), flagged, 2.0, 6.0, exclude=np.array([14])).size == 0


def test_crop_outliers_in_a_detection_pass_add_unreached_samples_and_say_so(poisoned, poisoned_anchors):
    """Crop agreement needs spreading to have reached a sample; on the CIFAR cell 107 poisons had probability 0 and
    crop scores far above every clean image's. With crop_outlier_z those are flagged, in their own array."""
    from naviewer.defense.pipeline import PosthocDetector

    base = DiftConfig(knn_backend="exact", num_threads=2, gmm_n_init=2, crop_agreement=2.0,
                      crop_agreement_threshold=0.05)
    n = len(poisoned.poison)
    crop = 1.0 + 0.05 * np.random.default_rng(1).standard_normal(n)
    crop[poisoned.poison] = 2.0
    plain = PosthocDetector(base).run(poisoned.features, poisoned_anchors, poisoned.poison, crop_scores=lambda: crop)
    unreached = np.setdiff1d(np.flatnonzero(plain.spread.probability_of_all(n) == 0.0), poisoned_anchors.indices)[:3]
    crop[unreached] = 3.0  # stand far out, never reached
    plain = PosthocDetector(base).run(poisoned.features, poisoned_anchors, poisoned.poison, crop_scores=lambda: crop)
    assert not np.isin(unreached, plain.final_ids).any()
    on = DiftConfig(**{**base.to_dict(), "crop_outlier_z": 6.0})
    out = PosthocDetector(on).run(poisoned.features, poisoned_anchors, poisoned.poison, crop_scores=lambda: crop)
    assert set(unreached.tolist()) <= set(out.spread.crop_outliers.tolist())
    assert set(plain.final_ids.tolist()) <= set(out.final_ids.tolist())
    assert np.isin(unreached, out.final_ids).all()
    assert out.summary()["spread"]["crop_outliers_added"] == out.spread.crop_outliers.size
    assert out.extra_scores()["crop_outliers"][unreached].all()
    # and not "added by label spreading" (it never reached them; the inspector said yes beside probability 0)
    scores = out.scores()
    assert not scores["spread"][unreached].any() and scores["flagged"][unreached].all()
    from naviewer.defense.config import DIFT_PRESETS

    assert DIFT_PRESETS["naviewer"]["crop_outlier_z"] == 6.0 and DiftConfig().crop_outlier_z == 0.0  # paper: off
    # on without crop agreement, whose scores and window it reads: skipped, and said
    from naviewer.jobs import JobContext, RecordingReporter

    reporter = RecordingReporter()
    alone = DiftConfig(**{**on.to_dict(), "crop_agreement": 0.0})
    out = PosthocDetector(alone).run(poisoned.features, poisoned_anchors, poisoned.poison, ctx=JobContext(reporter),
                                     crop_scores=lambda: crop)
    assert out.spread.crop_outliers.size == 0
    assert any(kind == "warning" and "crop outliers are on" in data.get("message", "")
               for kind, data in reporter.events)


def test_anchor_reach_falls_with_graph_distance_and_is_zero_without_a_path():
    # a chain 0-1-2-3-4 with the anchor at 0, and a separate pair 5-6 no anchor reaches
    neighbors = np.array([[1], [2], [3], [4], [3], [6], [5]])
    distances = np.full((7, 1), 0.1, dtype=np.float32)
    reach = anchor_reach(neighbors, distances, np.array([0]), alpha=0.7)
    assert np.all(np.diff(reach[:5]) < 0)
    assert reach[5] == 0.0 and reach[6] == 0.0


def test_reach_by_class_reads_a_large_clean_class_like_a_small_one_and_poisons_low():
    """The guard's class-size caveat: with every anchor one label, a clean class five times the others' size (same
    anchors) reads below the guard's limit; measured per class in its own median units it reads about 1, while a
    cluster no class's anchors reach stays at 0. Column blocks give the same reach as all columns at once."""
    from naviewer.defense.knn import KnnIndex
    from naviewer.defense.spreading import anchor_reach_by_class

    rng = np.random.default_rng(0)
    sizes = [100, 100, 500, 60]                  # two classes, a class five times larger, a poison cluster
    centres = rng.normal(size=(4, 16)) * 3
    x = np.concatenate([centres[i] + rng.normal(size=(m, 16)) for i, m in enumerate(sizes)]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    label = np.repeat(np.arange(4), sizes)
    anchors = np.concatenate([np.flatnonzero(label == c)[:10] for c in range(3)])
    nb, dist = KnnIndex(x, DiftConfig(knn_backend="exact")).neighbors_of(np.arange(len(x)), 10)

    def relative(reach):
        return reach / np.median(np.delete(reach, anchors))

    joint = relative(anchor_reach(nb, dist, anchors, alpha=0.7))
    by_class = relative(anchor_reach_by_class(nb, dist, anchors, label[anchors], 0.7, exclude=np.flatnonzero(label == 3)))
    blocks = relative(anchor_reach_by_class(nb, dist, anchors, label[anchors], 0.7, exclude=np.flatnonzero(label == 3),
                                            block=2))
    assert np.median(joint[label == 2]) < 0.75 * np.median(joint[label == 0])   # the caveat, as measured
    for c in range(3):
        assert 0.8 < np.median(by_class[label == c]) < 1.3
    assert np.median(by_class[label == 3]) < 0.1
    np.testing.assert_allclose(blocks, by_class, rtol=1e-2, atol=1e-2)  # float32 columns, converged to 1e-6


def test_groups_of_splits_by_knn_edges_among_the_ids_only():
    neighbors = np.array([[1, 9], [0, 9], [9, 3], [2, 9], [9, 9], [4, 9], [9, 9], [9, 9], [9, 9], [0, 1]])
    groups = groups_of(np.array([3, 0, 1, 2, 5]), neighbors)
    assert sorted(g.tolist() for g in groups) == [[0, 1], [2, 3], [5]]   # 9 links 0 and 2 but is not an id
    assert groups_of(np.empty(0, np.int64), neighbors) == []


def test_far_from_anchors_judges_a_group_by_its_median():
    neighbors = np.array([[1], [2], [0], [4], [5], [3]])
    reach = np.array([0.1, 0.2, 3.0, 2.0, 0.1, 2.5])   # group 0-2: median 0.2; group 3-5: median 2.0
    assert far_from_anchors(np.arange(6), reach, neighbors, 0.75).tolist() == [0, 1, 2]
    assert far_from_anchors(np.arange(6), reach, neighbors, 5.0).tolist() == list(range(6))


@pytest.mark.parametrize("units", ["joint", "class"])
def test_anchor_reach_guard_keeps_out_clean_samples_only_and_records_them(poisoned, poisoned_anchors, units):
    from naviewer.defense.pipeline import PosthocDetector

    base = DiftConfig(knn_backend="exact", num_threads=2, gmm_n_init=2, ls_soft_threshold=0.1,
                      crop_agreement=2.0, crop_agreement_threshold=0.0)
    n = len(poisoned.poison)
    plain = PosthocDetector(base).run(poisoned.features, poisoned_anchors, poisoned.poison)
    probability = plain.spread.probability_of_all(n)
    reached = np.setdiff1d(np.setdiff1d(np.flatnonzero(probability > 0.0), plain.final_ids), poisoned_anchors.indices)
    crop = np.full(n, np.nan)
    crop[poisoned.poison] = 5.0
    crop[reached] = 10.0      # every clean sample spreading reached at all looks crop-dense: the rule adds them
    rules = PosthocDetector(base).run(poisoned.features, poisoned_anchors, poisoned.poison, crop_scores=lambda: crop)
    guarded = PosthocDetector(DiftConfig(**{**base.to_dict(), "anchor_reach_limit": 0.75, "anchor_reach_units": units})).run(
        poisoned.features, poisoned_anchors, poisoned.poison, crop_scores=lambda: crop)
    kept_out = guarded.spread.guarded
    assert kept_out.size and not poisoned.poison[kept_out].any()          # clean samples only
    assert set(guarded.spread.flagged.tolist()) == set(rules.spread.flagged.tolist())  # spreading untouched
    assert guarded.metrics["final_recall"] == rules.metrics["final_recall"] == 1.0
    assert guarded.metrics["final_precision"] > rules.metrics["final_precision"]
    assert np.median(guarded.spread.reach[poisoned.poison]) < 0.75 <= np.median(guarded.spread.reach[kept_out])
    extra = guarded.extra_scores()
    assert extra["anchor_reach"].shape == (n,) and extra["guarded"].sum() == kept_out.size
    assert guarded.summary()["spread"]["reach_guarded"] == kept_out.size
    assert "anchor_reach" not in rules.extra_scores()   # off: nothing computed, nothing stored


def test_few_anchors_a_class_are_said_with_the_pass_and_ten_are_not(poisoned, poisoned_anchors):
    from naviewer.defense.anchors import Anchors, few_anchors_notice
    from naviewer.defense.pipeline import PosthocDetector, save_detection

    assert few_anchors_notice(poisoned_anchors) is None  # the fixture draws 10 a class
    labels = poisoned_anchors.labels
    keep = np.concatenate([np.flatnonzero(labels == c)[:(3 if c < 4 else 10)] for c in np.unique(labels)])
    few = Anchors(poisoned_anchors.indices[keep], labels[keep])
    notice = few_anchors_notice(few)
    assert notice.startswith("4 of 10 classes have fewer than 10 trusted anchors (the fewest: 3)")
    untrusted = Anchors(poisoned_anchors.indices[keep], labels[keep], trusted=False)  # not called "trusted" (a newcomer)
    assert few_anchors_notice(untrusted).startswith("4 of 10 classes have fewer than 10 anchors (the fewest: 3)")
    one = np.concatenate([np.flatnonzero(labels == c)[:1] for c in np.unique(labels)])
    said = few_anchors_notice(Anchors(poisoned_anchors.indices[one], labels[one]))
    assert "(the fewest: 1)" in said and "a verdict of no poison means nothing" in said and "crop_density" in said
    config = DiftConfig(knn_backend="exact", num_threads=2, gmm_n_init=2)
    result = PosthocDetector(config).run(poisoned.features, few, poisoned.poison)
    assert result.advice == [notice] and not result.warnings   # advice, not a warning: the verdict stands

    class Store:
        def add_detection_pass(self, method, scores, settings, run=None, epoch=None):
            self.settings = settings
            return 1

    store = Store()
    save_detection(store, result)
    assert store.settings["advice"] == [notice]
    save_detection(store, PosthocDetector(config).run(poisoned.features, poisoned_anchors, poisoned.poison))
    assert "advice" not in store.settings


def test_benign_mass_is_held_at_the_advised_anchors_a_class():
    """With fewer anchors a class than ``anchor_mass_per_class`` the benign label weighs as that many: the flags can
    only shrink, clean samples first; with that many or more nothing changes (docs/dift.md, Few anchors)."""
    from naviewer.defense.spreading import benign_weight, reweighted_probability

    assert benign_weight(None, 10) == 1.0 and benign_weight(np.arange(10), 0) == 1.0
    assert benign_weight(np.repeat(np.arange(10), 10), 10) == 1.0          # 10 a class: unchanged
    assert benign_weight(np.arange(10), 10) == 10.0                          # 1 a class: x10
    assert abs(benign_weight(np.repeat(np.arange(4), 3), 10, anchors=12) - 40 / 12) < 1e-12
    p = np.array([0.0, 0.2, 0.5, 0.9, 1.0])
    q = reweighted_probability(p, 4.0)
    assert q[0] == 0 and q[-1] == 1 and np.all(np.diff(q) > 0) and np.all(q[1:-1] < p[1:-1])

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(10, 16)) * 3
    labels = np.repeat(np.arange(10), 60)
    clean = centres[labels] + rng.normal(size=(600, 16))
    poison = centres[0] * 0.5 + centres[1] * 0.5 + 0.3 * rng.normal(size=(40, 16))  # between two classes
    z = np.vstack([clean, poison]).astype(np.float32)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    truth = np.r_[np.zeros(600, bool), np.ones(40, bool)]
    buffer = np.arange(600, 620)
    one_each = np.array([int(np.flatnonzero(labels == c)[0]) for c in range(10)])
    off = label_spread(z, buffer, one_each, DiftConfig(ls_alpha=0.7, anchor_mass_per_class=0))
    held = label_spread(z, buffer, one_each, DiftConfig(ls_alpha=0.7), anchor_labels=labels[one_each])
    assert held.benign_weight == 10.0 and off.benign_weight == 1.0
    assert set(held.flagged) <= set(off.flagged)
    assert truth[held.flagged].sum() >= 0.9 * truth[off.flagged].sum()
    assert (~truth[held.flagged]).sum() < (~truth[off.flagged]).sum()  # here 0 clean flags against 29
    ten_each = np.concatenate([np.flatnonzero(labels == c)[:10] for c in range(10)])
    a = label_spread(z, buffer, ten_each, DiftConfig(ls_alpha=0.7), anchor_labels=labels[ten_each])
    b = label_spread(z, buffer, ten_each, DiftConfig(ls_alpha=0.7, anchor_mass_per_class=0))
    assert a.benign_weight == 1.0 and np.array_equal(a.flagged, b.flagged)


def test_reach_per_class_above_the_class_cap_falls_back_to_the_joint_reach_and_says_so(poisoned, poisoned_anchors,
                                                                                       monkeypatch):
    """One label spreading a class: above REACH_MAX_CLASSES the cost (130x the joint reach at 100 classes) is not
    taken; the guard reads the joint reach and a warning says what that gives up."""
    import naviewer.defense.pipeline as pipeline
    from naviewer.defense.pipeline import PosthocDetector
    from naviewer.jobs import JobContext, RecordingReporter

    base = DiftConfig(knn_backend="exact", num_threads=2, gmm_n_init=2, ls_soft_threshold=0.1,
                      crop_agreement=2.0, crop_agreement_threshold=0.0, anchor_reach_limit=0.75)
    n = len(poisoned.poison)
    crop = np.full(n, np.nan)
    crop[poisoned.poison] = 5.0
    crop[~poisoned.poison] = 10.0
    joint = PosthocDetector(base).run(poisoned.features, poisoned_anchors, poisoned.poison, crop_scores=lambda: crop)
    monkeypatch.setattr(pipeline, "REACH_MAX_CLASSES", 2)
    reporter = RecordingReporter()
    capped = PosthocDetector(DiftConfig(**{**base.to_dict(), "anchor_reach_units": "class"})).run(
        poisoned.features, poisoned_anchors, poisoned.poison, crop_scores=lambda: crop, ctx=JobContext(reporter))
    assert any(kind == "warning" and "joint reach" in data.get("message", "") for kind, data in reporter.events)
    assert joint.spread.reach is not None
    np.testing.assert_array_equal(capped.spread.reach, joint.spread.reach)
    assert capped.final_ids.tolist() == joint.final_ids.tolist()


def test_reach_per_class_keeps_a_class_the_encoder_gives_no_region():
    """A class whose column is nowhere the strongest (its one anchor inside another class's blob) was dropped,
    and the samples only it reached read 0; it is now measured on its strongest N / classes samples."""
    from naviewer.defense.spreading import anchor_reach_by_class

    # a chain 0..9 and a separate pair 10-11; class 0's anchors at 0 and 2 hem in class 1's only anchor at 1,
    # so class 1's column is the strongest on no sample but its anchor
    neighbors = np.array([[1], [2], [3], [4], [5], [6], [7], [8], [9], [8], [11], [10]])
    distances = np.full((12, 1), 0.1, dtype=np.float32)
    anchors, labels = np.array([0, 2, 1]), np.array([0, 0, 1])
    both = anchor_reach_by_class(neighbors, distances, anchors, labels, alpha=0.7)
    alone = anchor_reach_by_class(neighbors, distances, anchors[:2], labels[:2], alpha=0.7, exclude=np.array([1]))
    assert np.isfinite(both).all() and (both[:10] > 0).all() and both[10] == both[11] == 0.0
    assert (both[3:10] > alone[3:10]).all()   # class 1's column counts


def _three_groups():
    """Three kNN groups of three: 0-2, 3-5, 6-8 (each sample's neighbours are its group's other two)."""
    neighbors = np.array([[1, 2], [0, 2], [0, 1], [4, 5], [3, 5], [3, 4], [7, 8], [6, 8], [6, 7]])
    return neighbors


def test_reached_clusters_takes_back_a_spread_only_cluster_the_anchors_reach_as_clean():
    from naviewer.defense.spreading import reached_clusters

    neighbors = _three_groups()
    reach = np.array([0.0, 0.01, 0.0, 0.9, 0.7, 1.1, 0.05, 0.0, 0.08])  # poisons, a clean group, poisons
    flagged, buffer = np.arange(9), np.array([0, 1])
    assert reached_clusters(flagged, buffer, reach, neighbors, 0.5).tolist() == [3, 4, 5]
    # the poisons' second cluster (6-8, never in B either) stays: the anchors barely reach it
    assert reached_clusters(flagged, buffer, reach, neighbors, 2.0).tolist() == []  # under the limit: kept


def test_reached_clusters_never_drops_what_density_put_in_the_buffer_and_needs_a_contrast():
    from naviewer.defense.spreading import reached_clusters

    neighbors = _three_groups()
    reach = np.array([0.0, 0.01, 0.0, 0.9, 0.7, 1.1, 0.05, 0.0, 0.08])
    assert reached_clusters(np.arange(9), np.array([0, 4]), reach, neighbors, 0.5).tolist() == []  # 4 is in B
    lifted = reach.copy()
    lifted[:3] = 0.3                     # the buffer's own cluster is reached too: no evidence which are poisons
    assert reached_clusters(np.arange(9), np.array([0, 1]), lifted, neighbors, 0.5).tolist() == []
    assert reached_clusters(np.arange(3, 6), np.array([3]), reach, neighbors, 0.5).tolist() == []  # one cluster


def test_the_cluster_reach_rule_is_skipped_with_untrusted_anchors_and_recorded_with_trusted():
    from types import SimpleNamespace

    from naviewer.defense.anchors import Anchors
    from naviewer.defense.pipeline import _take_back_reached_clusters
    from naviewer.defense.spreading import SpreadResult
    from naviewer.jobs import JobContext, RecordingReporter

    neighbors = _three_groups()
    reach = np.array([0.0, 0.01, 0.0, 0.9, 0.7, 1.1, 0.05, 0.0, 0.08])
    detection = SimpleNamespace(knn=SimpleNamespace(neighbors=neighbors))
    guard = SimpleNamespace(relative_reach=lambda: reach)
    config = DiftConfig(cluster_reach_limit=0.5)
    reporter = RecordingReporter()
    ctx = JobContext(reporter)

    def run(trusted: bool):
        spread = SpreadResult(np.arange(9), np.arange(9), np.zeros(9), "graph", 1, 0.0)
        anchors = Anchors(np.array([20, 21]), np.array([0, 1]), [], trusted)
        return _take_back_reached_clusters(np.arange(9), np.array([0, 1]), anchors, detection, config, spread,
                                           guard, ctx), spread

    final, spread = run(trusted=True)
    assert final.tolist() == [0, 1, 2, 6, 7, 8] and spread.reach_dropped.tolist() == [3, 4, 5]
    assert spread.info()["reach_dropped"] == 3 and "3 flag(s) taken back" in reporter.events[-1][1]["message"]
    final, spread = run(trusted=False)
    assert final.tolist() == list(range(9)) and spread.reach_dropped.size == 0
    assert "needs trusted anchors" in reporter.events[-1][1]["message"]
    # a member of the taken-back cluster that the anchors barely reach stays flagged: on mid-training encoders a
    # cluster of 62 poisons (own reach 0.03-0.07) and 70-81 clean samples went back whole (session 23)
    reach[4] = 0.1
    config = DiftConfig(cluster_reach_limit=0.5, cluster_reach_member_floor=0.2)
    final, spread = run(trusted=True)
    assert final.tolist() == [0, 1, 2, 4, 6, 7, 8] and spread.reach_dropped.tolist() == [3, 5]
    assert "1 member(s) the anchors barely reach" in reporter.events[-1][1]["message"]
    config = DiftConfig(cluster_reach_limit=0.5, cluster_reach_member_floor=0.0)  # off: the whole cluster, as before
    final, spread = run(trusted=True)
    assert spread.reach_dropped.tolist() == [3, 4, 5]
    config = DiftConfig(cluster_reach_limit=0.5, cluster_reach_member_floor=2.0)  # every member under it: said
    final, spread = run(trusted=True)
    assert final.tolist() == list(range(9)) and spread.reach_dropped.size == 0
    assert "took nothing back" in reporter.events[-1][1]["message"]


def test_the_cluster_reach_rule_leaves_a_single_poison_cluster_alone(poisoned, poisoned_anchors):
    from naviewer.defense.pipeline import PosthocDetector

    base = DiftConfig(knn_backend="exact", num_threads=2, gmm_n_init=2)
    plain = PosthocDetector(base).run(poisoned.features, poisoned_anchors, poisoned.poison)
    ruled = PosthocDetector(DiftConfig(**{**base.to_dict(), "cluster_reach_limit": 0.5})).run(
        poisoned.features, poisoned_anchors, poisoned.poison)
    assert ruled.final_ids.tolist() == plain.final_ids.tolist() and ruled.spread.reach_dropped.size == 0
    assert "reach_dropped" not in ruled.extra_scores()
