"""Issue 17 item 4: ``flagged_clusters`` without float64 copies of N gives the clusters it gave before
(the frozen copy in ``naviewer.analysis._clusters_baseline``)."""

from __future__ import annotations

import numpy as np
import pytest

from naviewer.analysis.clusters import density_direction, flagged_clusters
from naviewer.analysis import _clusters_baseline as before


def _same(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.cluster_id == y.cluster_id
        assert np.array_equal(x.members, y.members)
        assert np.array_equal(x.representatives, y.representatives)
        assert x.composition == y.composition
        for u, v in ((x.mean_density, y.mean_density), (x.mean_mindist, y.mean_mindist)):
            assert (np.isnan(u) and np.isnan(v)) or u == v


def _scores(n: int, seed: int, missing: bool):
    rng = np.random.default_rng(seed)
    density = rng.random(n).astype(np.float32)
    rank = np.empty(n, np.int64)
    rank[np.argsort(-density, kind="stable")] = np.arange(n)
    flagged = rng.random(n) < 0.05
    mindist = rng.random(n).astype(np.float32)
    mindist[rng.random(n) < 0.3] = np.nan
    if missing:
        density[rng.random(n) < 0.1] = np.nan
    labels = rng.integers(0, 7, n)
    cluster = np.where(flagged & (rng.random(n) < 0.8), rng.integers(0, 12, n), -1)
    return density, rank, flagged, mindist, labels, cluster


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("missing", [False, True])
@pytest.mark.parametrize("how", ["precomputed", "embeddings", "none", "no rank"])
@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # the frozen former code's nanmean of an all-NaN cluster
def test_the_same_clusters_as_before(seed, missing, how) -> None:
    n = 4_000
    density, rank, flagged, mindist, labels, cluster = _scores(n, seed, missing)
    emb = np.random.default_rng(seed + 10).normal(size=(n, 8)).astype(np.float32)
    kwargs = dict(density=density, rank=None if how == "no rank" else rank, mindist=mindist, labels=labels, k=5)
    if how == "precomputed":
        kwargs["precomputed"] = cluster
    elif how == "embeddings":
        kwargs["embeddings"] = emb
    ids = np.flatnonzero(flagged)
    _same(flagged_clusters(ids, **kwargs), before.flagged_clusters(ids, **kwargs))


def test_density_direction_as_before() -> None:
    rng = np.random.default_rng(4)
    for _ in range(20):
        n = int(rng.integers(2, 50))
        density = rng.normal(size=n)
        rank = rng.permutation(n).astype(rng.choice([np.int64, np.float64]))
        if rng.random() < 0.5:
            density[rng.random(n) < 0.3] = np.nan
        assert density_direction(density, rank) == before.density_direction(density, rank)
        assert density_direction(-density, rank) == before.density_direction(-density, rank)
