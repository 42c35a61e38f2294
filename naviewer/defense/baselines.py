"""Baseline B1 (Li et al., USENIX Security 2024): density clustering flags the poison cluster.

docs/dift.md, Baselines (naviewer's parameters; the paper gives none), on the same L2-normalised backbone features as DIFT:

* DBSCAN(eps, min_samples=20): eps = the 1st percentile of the 20-NN distance, so only the densest
  ~1% can be core points; every clustered point (core or border, ``labels_ != -1``) is flagged.
* OPTICS(min_samples=20, xi=0.05): flag the cluster with the smallest mean core distance among
  those no larger than 5% of N.

Both run on a precomputed *sparse* neighbour graph from the kNN index (hnswlib or exact) instead of
all pairwise distances: DBSCAN only needs neighbours within eps, which for eps at the 1st
percentile of d_20 are almost always among the 50 nearest; OPTICS then sees distances beyond the
graph as infinite (an approximation of full OPTICS, which is O(N^2) in 512-d and takes minutes to
hours at 50k - the cost DIFT criticises).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import scipy.sparse as sp

from naviewer.defense.config import DiftConfig
from naviewer.defense.knn import KnnIndex, KnnResult, as_float32
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context


@dataclass
class BaselineResult:
    method: str                    # dbscan | optics
    flagged: np.ndarray            # sorted int64 ids
    labels: np.ndarray             # (N,) cluster label per sample, -1 noise
    params: dict = field(default_factory=dict)
    seconds: float = 0.0

    def flagged_mask(self) -> np.ndarray:
        mask = np.zeros(self.labels.size, dtype=bool)
        mask[self.flagged] = True
        return mask


def distance_graph(neighbors: np.ndarray, distances: np.ndarray, n: int, max_distance: float = np.inf) -> sp.csr_matrix:
    """Symmetric sparse distance graph from kNN lists, keeping edges <= ``max_distance``.

    Zero distances (exact duplicates) are stored as a tiny positive value so that sparse storage
    does not drop them."""
    neighbors = np.asarray(neighbors, dtype=np.int64)
    rows = np.repeat(np.arange(neighbors.shape[0], dtype=np.int64), neighbors.shape[1])
    cols = neighbors.ravel()
    d = np.asarray(distances, dtype=np.float64).ravel()
    keep = (cols >= 0) & (cols != rows) & (d <= max_distance)
    d = np.maximum(d[keep], 1e-12)
    g = sp.csr_matrix((d, (rows[keep], cols[keep])), shape=(n, n))
    return g.maximum(g.T).tocsr()


def _neighbors(features: np.ndarray, k: int, config: DiftConfig, knn: Optional[KnnResult],
               ctx: JobContext) -> tuple[np.ndarray, KnnResult]:
    z = as_float32(features, config.normalize)
    k = min(k, z.shape[0] - 1)
    if knn is not None and knn.k >= k and knn.neighbors.shape[0] == z.shape[0]:
        return z, KnnResult(knn.neighbors[:, :k], knn.distances[:, :k], knn.backend)
    return z, KnnIndex(z, config, ctx).all_neighbors(k, ctx)


def dbscan_filter(features: np.ndarray, config: Optional[DiftConfig] = None, min_samples: int = 20,
                  eps: Optional[float] = None, eps_percentile: float = 1.0, graph_k: int = 50,
                  knn: Optional[KnnResult] = None, ctx: Optional[JobContext] = None) -> BaselineResult:
    """B1 with DBSCAN: flag every sample that DBSCAN puts in a cluster."""
    from sklearn.cluster import DBSCAN

    config = (config or DiftConfig()).validate()
    ctx = ensure_context(ctx)
    start = time.perf_counter()
    if min_samples < 2:
        raise NaviewerError(f"DBSCAN min_samples must be >= 2, got {min_samples}")
    z, nn = _neighbors(features, max(graph_k, min_samples), config, knn, ctx)
    n = z.shape[0]
    if eps is None:
        kth = nn.distances[:, min(min_samples, nn.k) - 1]
        eps = float(np.percentile(kth, eps_percentile))
    graph = distance_graph(nn.neighbors, nn.distances, n, max_distance=eps)
    ctx.check()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit(graph).labels_
    flagged = np.flatnonzero(labels != -1).astype(np.int64)
    return BaselineResult("dbscan", flagged, labels.astype(np.int64),
                          {"eps": eps, "min_samples": min_samples, "eps_percentile": eps_percentile,
                           "graph_k": int(nn.k)}, time.perf_counter() - start)


def optics_filter(features: np.ndarray, config: Optional[DiftConfig] = None, min_samples: int = 20,
                  xi: float = 0.05, max_fraction: float = 0.05, n_clusters: int = 1, graph_k: int = 50,
                  knn: Optional[KnnResult] = None, ctx: Optional[JobContext] = None) -> BaselineResult:
    """B1 with OPTICS: flag the ``n_clusters`` clusters of smallest mean core distance, each <= max_fraction N."""
    from sklearn.cluster import OPTICS

    config = (config or DiftConfig()).validate()
    ctx = ensure_context(ctx)
    start = time.perf_counter()
    z, nn = _neighbors(features, max(graph_k, min_samples), config, knn, ctx)
    n = z.shape[0]
    graph = distance_graph(nn.neighbors, nn.distances, n)
    ctx.check()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = OPTICS(min_samples=min_samples, xi=xi, metric="precomputed").fit(graph)
    labels = model.labels_.astype(np.int64)
    core = model.core_distances_
    scored = []
    for label in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == label)
        if members.size <= max_fraction * n:
            finite = core[members][np.isfinite(core[members])]
            if finite.size:
                scored.append((float(finite.mean()), int(label)))
    chosen = [label for _, label in sorted(scored)[:n_clusters]]
    flagged = np.flatnonzero(np.isin(labels, chosen)).astype(np.int64)
    return BaselineResult("optics", flagged, labels,
                          {"min_samples": min_samples, "xi": xi, "max_fraction": max_fraction,
                           "n_clusters": n_clusters, "graph_k": int(nn.k), "chosen_clusters": chosen},
                          time.perf_counter() - start)
