from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from naviewer.defense.config import DiftConfig
from naviewer.defense.dift import detect_epoch
from naviewer.defense.knn import KnnIndex, as_float32
from naviewer.defense.spreading import (_fit_label_spreading, build_pool, label_spread, sparse_affinity,
                                        spreading_labels)
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
