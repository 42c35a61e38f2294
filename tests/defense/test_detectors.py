"""Detectors behind one interface: hand-computed values, invariances, planted clusters, flags."""

from __future__ import annotations

import numpy as np
import pytest

from naviewer.defense.anchors import draw_anchors
from naviewer.defense.detectors import DetectorInputs, detector_names, make_detector, threshold
from naviewer.defense.detectors.density import lid_mle
from naviewer.defense.synthetic import make_embeddings
from naviewer.errors import NaviewerError
from naviewer.evaluation.detection import auroc

LINE = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [10.0, 0.0]])


def _raw(detector, x, **kw):
    return make_detector(detector, backend="exact", **kw).run(DetectorInputs(x, normalize=False))


def test_by_hand_on_a_line():
    kd = _raw("kdist", LINE, k=2, direction="sparse")
    assert np.allclose(np.exp(kd.score), [2, 1, 1, 2, 8], atol=1e-9)
    slof = _raw("slof", LINE, k=2)
    # SLOF(10) = mean(d_k(10)/d_k(3), d_k(10)/d_k(2)) = mean(8/2, 8/1)
    assert np.exp(slof.score[4]) == pytest.approx(6.0) and np.argmax(slof.score) == 4
    lid = _raw("lid", LINE, k=2)
    # point 0: neighbours at 1 and 2 -> -1 / mean(ln(1/2), ln(2/2)) = 2 / ln 2
    assert lid.score[0] == pytest.approx(2 / np.log(2), rel=1e-9)
    assert lid_mle(np.array([[1.0, 1.0]]))[0] == np.inf  # equal distances: no finite estimate
    dao = _raw("dao", LINE, k=2, k_lid=2)
    assert np.argmax(dao.score) == 4 and np.isfinite(dao.score).all()


@pytest.mark.parametrize("name", ["lid", "slof", "dao"])
def test_scale_and_order_invariance(name):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8))
    base = _raw(name, x, k=10).score
    assert np.allclose(_raw(name, x * 7.5, k=10).score, base, rtol=1e-4, atol=1e-6)  # float32 distances
    perm = rng.permutation(300)
    assert np.allclose(_raw(name, x[perm], k=10).score, base[perm], rtol=1e-4, atol=1e-6)  # float32 distances


@pytest.fixture(scope="module")
def planted():
    return make_embeddings(2000, 32, n_classes=10, intrinsic_dim=8, poison_fraction=0.02, seed=7)


def test_planted_tight_cluster_ranks_first_in_the_dense_direction(planted):
    inputs = DetectorInputs(planted.features)
    dense = make_detector("kdist", k=16).run(inputs)
    assert auroc(dense.score, planted.poison) >= 0.99
    assert planted.poison[dense.flagged].mean() >= 0.9   # top 1 %: the planted cluster
    # past the cluster's size the k-th neighbour is clean and far: the sparse direction takes over
    sparse = make_detector("kdist", k=60, direction="sparse").run(DetectorInputs(planted.features))
    assert auroc(sparse.score, planted.poison) >= 0.95
    # SLOF carries no signal inside a tight cluster in global mode (see naviewer/defense/detectors/density.py)
    assert 0.3 <= auroc(make_detector("slof").run(inputs).score, planted.poison) <= 0.75


@pytest.mark.parametrize("name", ["kdist", "lid", "slof", "dao"])
def test_an_isotropic_blob_gives_chance(name):
    x = np.random.default_rng(3).normal(size=(1500, 16))
    truth = np.zeros(1500, dtype=bool)
    truth[np.random.default_rng(4).choice(1500, 60, replace=False)] = True
    assert abs(auroc(make_detector(name).run(DetectorInputs(x)).score, truth) - 0.5) < 0.1


def test_detectors_share_one_neighbour_table(planted):
    inputs = DetectorInputs(planted.features)
    make_detector("dao", k=16, k_lid=20).run(inputs)
    table = inputs.cache["knn"]
    make_detector("kdist", k=16).run(inputs)
    assert inputs.cache["knn"] is table


def test_dift_and_b1_as_detectors(planted, small_config):
    anchors = draw_anchors(planted.clean_labels, 10, 0, candidates=np.flatnonzero(~planted.poison))
    inputs = DetectorInputs(planted.features, anchors=anchors)
    dift = make_detector("dift", dift={"knn_backend": "exact", "gmm_n_init": 2}).run(inputs)
    assert dift.threshold["rule"] == "own" and planted.poison[dift.flagged].mean() > 0.7
    assert np.array_equal(dift.flagged, inputs.cache["dift"].final_ids)  # the adapter is DIFT's own pass
    assert dift.clusters is not None and dift.scores_for_pass()["cluster"].shape == (2000,)
    with pytest.raises(NaviewerError, match="anchors"):
        make_detector("dift").run(DetectorInputs(planted.features))
    db = make_detector("dbscan").run(DetectorInputs(planted.features))
    assert db.flags.dtype == bool and set(np.unique(db.score)) <= {0.0, 1.0}


def test_threshold_rules_and_registry():
    s = np.r_[np.zeros(95), np.full(5, 10.0)] + np.random.default_rng(0).normal(scale=0.1, size=100)
    for rule in ("top_fraction", "robust_z", "gmm2"):
        flags, info = threshold(s, rule, fraction=0.05)
        assert flags[95:].all() and not flags[:95].any(), rule
    flags, info = threshold(np.random.default_rng(1).normal(size=500), "gmm2")
    assert not flags.any() and info["value"] is None   # one population: the guard keeps everything
    assert {"kdist", "lid", "slof", "dao", "dift", "dbscan", "optics"} <= set(detector_names())
    with pytest.raises(NaviewerError, match="choose from"):
        make_detector("nope")
    with pytest.raises(NaviewerError, match="has no setting .kk.; its settings: k, "):
        make_detector("lid", kk=3)
    with pytest.raises(NaviewerError):
        make_detector("kdist", direction="up").run(DetectorInputs(np.random.default_rng(0).normal(size=(50, 3))))


def test_auroc():
    assert auroc(np.array([0.1, 0.2, 0.9, 0.8]), np.array([0, 0, 1, 1], bool)) == 1.0
    assert auroc(np.array([1.0, 1.0]), np.array([0, 1], bool)) == 0.5
    assert auroc(np.array([1.0, 2.0]), np.array([0, 0], bool)) is None


def test_the_catalogue_names_every_registered_detector():
    """The torch-free CLI help lists the detectors from naviewer.catalogue: it must match the registry."""
    from naviewer.catalogue import DETECTOR_NAMES
    from naviewer.defense.detectors import detector_names

    assert tuple(detector_names()) == DETECTOR_NAMES


@pytest.mark.parametrize("name, settings", [("patchsearch", {"classifier": "maybe"}), ("kdist", {"k": 2.5}),
                                            ("crop_density", {"scale": 0.5}), ("lid", {"k": True})])
def test_a_setting_of_the_wrong_type_is_named(name, settings):
    """From the command line ``classifier=maybe`` stays a string: an error naming the setting, not a truthy value."""
    from naviewer.defense.detectors import make_detector

    key = next(iter(settings))
    with pytest.raises(NaviewerError, match=f"setting {key} must be"):
        make_detector(name, **settings)


def test_a_split_is_joined_by_the_robust_outliers():
    """The split takes the top mode only; poisons spread out above the clean mass are the robust outliers."""
    from naviewer.defense.detectors.base import threshold, with_outliers

    rng = np.random.default_rng(0)
    score = np.concatenate([rng.normal(0, 1, 4000), rng.normal(30, 0.5, 80), rng.uniform(6, 12, 270), [np.nan]])
    split, description = threshold(score, "gmm2", seed=0)
    assert split[4000:4080].all() and not split[4080:4350].any()
    flags, record = with_outliers(score, split, description, 3.5)
    assert flags[4000:4350].all() and flags[:4000].sum() <= 5 and not flags[-1]
    assert record["or"] == "robust_z" and record["outliers_added"] == int((flags & ~split).sum()) >= 200


def test_lid_needs_two_neighbours_at_least() -> None:
    """lid:k=1 was accepted and gave an empty score column (one distance has no ratio; a probe, session 29)."""
    import pytest

    from naviewer.defense.detectors import make_detector
    from naviewer.errors import NaviewerError

    with pytest.raises(NaviewerError, match="k >= 2"):
        make_detector("lid", k=1)
    with pytest.raises(NaviewerError, match="k_lid >= 2"):
        make_detector("dao", k_lid=1)
    assert make_detector("lid", k=2).settings.k == 2
