"""Untrusted anchors: the screen, robust MinDist, and external anchors appended to the features."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from naviewer.defense.anchor_screen import screen_anchors
from naviewer.defense.anchors import Anchors, append_external, draw_anchors
from naviewer.defense.dift import detect_epoch, min_dist
from naviewer.defense.knn import KnnIndex
from naviewer.defense.pipeline import PosthocDetector
from naviewer.defense.synthetic import make_embeddings
from naviewer.errors import NaviewerError


@pytest.fixture(scope="module")
def heavy():
    """A 5 % poison cluster labelled as class 0 (a third of class 0 are poisons)."""
    return make_embeddings(2000, 32, n_classes=10, intrinsic_dim=8, poison_fraction=0.05, seed=3)


def _poisoned_anchor_draw(data, seed=0):
    """Label-drawn anchors, untrusted, with at least two poisons among class 0's."""
    for s in range(seed, seed + 50):
        a = draw_anchors(data.labels, 10, s)
        if data.poison[a.indices].sum() >= 2:
            return dataclasses.replace(a, trusted=False)
    raise AssertionError("no draw with poisoned anchors")


def test_median_mindist_ignores_a_minority_of_poisoned_anchors():
    clean = np.zeros((6, 2)); poison = np.full((4, 2), 10.0)
    anchors_z = np.vstack([clean, poison]).astype(np.float32)
    labels = np.zeros(10, dtype=np.int64)
    query = np.full((1, 2), 10.0, dtype=np.float32)  # sits on the poisoned anchors
    mean, _ = min_dist(query, anchors_z, labels, agg="mean")
    median, _ = min_dist(query, anchors_z, labels, agg="median")
    assert median[0] == pytest.approx(np.sqrt(200.0)) and mean[0] < 0.7 * median[0]
    with pytest.raises(NaviewerError):
        min_dist(query, anchors_z, labels, agg="max")


def test_screen_drops_poisoned_anchors_and_no_clean_one(heavy, small_config):
    anchors = _poisoned_anchor_draw(heavy)
    z = heavy.features / np.linalg.norm(heavy.features, axis=1, keepdims=True)
    index = KnnIndex(z.astype(np.float32), small_config)
    knn = index.all_neighbors(small_config.k)
    screen = screen_anchors(z, anchors, knn, small_config, index=index)
    dropped_poison = heavy.poison[screen.dropped]
    assert dropped_poison.all() and dropped_poison.size == heavy.poison[anchors.indices].sum()
    assert not heavy.poison[screen.anchors.indices].any()
    assert len(screen.notes) == screen.dropped.size and "label spreading" in screen.notes[0]
    assert screen.anchors.trusted is False


def test_untrusted_anchors_are_screened_inside_detection(heavy, small_config):
    anchors = _poisoned_anchor_draw(heavy)
    as_is = PosthocDetector(dataclasses.replace(small_config, untrusted_anchors="as-is", mindist_agg="mean"))
    screened = PosthocDetector(small_config)
    r_screened = screened.run(heavy.features, anchors, heavy.poison)
    assert r_screened.detection.anchor_notes and r_screened.summary()["anchors_dropped"] >= 2
    assert r_screened.summary()["anchors_trusted"] is False and r_screened.summary()["mindist_agg"] == "median"
    assert r_screened.metrics["final_recall"] >= as_is.run(heavy.features, anchors, heavy.poison).metrics["final_recall"]
    assert r_screened.metrics["final_recall"] > 0.9
    # trusted anchors are never screened
    trusted = PosthocDetector(small_config).run(heavy.features, dataclasses.replace(anchors, trusted=True))
    assert not trusted.detection.anchor_notes and trusted.detection.mindist_agg == "mean"


def test_external_anchors_join_at_the_end_and_results_cover_the_samples(heavy, small_config):
    clean = np.flatnonzero(~heavy.poison)
    outside = draw_anchors(heavy.clean_labels, 10, 0, candidates=clean)
    # "outside the training set": the anchors' features are copies with a little noise, not samples
    rng = np.random.default_rng(0)
    ext = heavy.features[outside.indices] + rng.normal(scale=0.01, size=(len(outside), heavy.features.shape[1]))
    features, anchors = append_external(heavy.features, None, ext.astype(np.float32), outside.labels)
    n = len(heavy.features)
    assert features.shape[0] == n + len(outside) and anchors.indices.min() == n
    result = PosthocDetector(small_config).run(features, anchors, heavy.poison, sample_count=n)
    scores = result.scores()
    assert all(len(v) == n for v in scores.values()) and all(len(v) == n for v in result.extra_scores().values())
    # the density rank is among the samples: a permutation of 0..n-1 (it read "rank 4,513 of 4,422" with 100
    # outside anchors), in the order of the samples' density
    assert sorted(scores["rank"].tolist()) == list(range(n))
    assert np.array_equal(np.argsort(scores["rank"]), np.argsort(-scores["density"], kind="stable"))
    assert result.final_ids.max() < n and result.summary()["n"] == n
    assert result.metrics["final_recall"] > 0.9 and result.metrics["final_precision"] > 0.8
    with pytest.raises(NaviewerError, match="dimensions"):
        append_external(heavy.features, None, ext[:, :5], outside.labels)


def test_a_class_mostly_in_the_dense_pile_keeps_its_anchors(small_config):
    # a dense clean class (or one the poisons outnumber): dropping most of its anchors would make its
    # clean members look far from every class, so they are kept, with a warning
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(size=(300, 8)), rng.normal(scale=0.01, size=(40, 8)) + 5.0]).astype(np.float32)
    labels = np.r_[np.zeros(300), np.ones(40)].astype(np.int64)
    anchors = Anchors(np.r_[np.arange(0, 10), np.arange(300, 310)], np.r_[np.zeros(10), np.ones(10)].astype(np.int64),
                      trusted=False)
    det = detect_epoch(x, anchors, dataclasses.replace(small_config, candidate_fraction=0.1))
    assert len(det.anchors) == 20 and not det.anchor_notes
    assert any("class 1" in w and "kept" in w for w in det.anchors.warnings)


def test_external_anchors_after_memory_mapped_embeddings_stay_memory_mapped(tmp_path):
    """A sharded embed's float16 map plus external anchors: the joined array is a float32 map with the same rows,
    not an in-memory copy of all N (5 GB at 10M x 128)."""
    from naviewer.defense.knn import is_mapped

    rng = np.random.default_rng(0)
    values = rng.normal(size=(3000, 8)).astype(np.float16)
    path = tmp_path / "emb.npy"
    np.save(path, values)
    mapped = np.load(path, mmap_mode="r")
    extra = rng.normal(size=(5, 8)).astype(np.float32)
    joined, anchors = append_external(mapped, Anchors(np.array([1, 2]), np.array([0, 1])), extra, np.array([0, 1, 1, 0, 1]))
    assert is_mapped(joined) and joined.dtype == np.float32 and joined.shape == (3005, 8)
    assert np.array_equal(joined[:3000], values.astype(np.float32))
    assert np.allclose(joined[3000:], extra.astype(np.float16).astype(np.float32))
    assert anchors.indices.tolist() == [1, 2, 3000, 3001, 3002, 3003, 3004]
