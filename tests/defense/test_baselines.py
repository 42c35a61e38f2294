from __future__ import annotations

import numpy as np
from sklearn.cluster import DBSCAN

from naviewer.defense.baselines import dbscan_filter, optics_filter
from naviewer.defense.config import DiftConfig
from naviewer.defense.knn import as_float32
from naviewer.defense.synthetic import make_embeddings
from naviewer.evaluation.detection import detection_metrics


def test_dbscan_on_the_sparse_graph_equals_sklearn_on_all_pairs():
    s = make_embeddings(1500, 32, n_classes=6, intrinsic_dim=8, poison_fraction=0.02, seed=5)
    res = dbscan_filter(s.features, DiftConfig(knn_backend="exact"))
    z = as_float32(s.features, True)
    full = DBSCAN(eps=res.params["eps"], min_samples=20).fit(z).labels_
    assert np.array_equal(np.flatnonzero(full != -1), res.flagged)
    assert detection_metrics(res.flagged, s.poison).recall == 1.0


def test_optics_flags_the_tightest_small_cluster():
    s = make_embeddings(1500, 32, n_classes=6, intrinsic_dim=8, poison_fraction=0.02, seed=5)
    res = optics_filter(s.features, DiftConfig(knn_backend="exact"), graph_k=30)
    m = detection_metrics(res.flagged, s.poison)
    assert m.recall >= 0.9 and m.precision >= 0.9
    assert res.labels.shape == (1500,) and res.flagged_mask().sum() == res.flagged.size
