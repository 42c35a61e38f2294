"""Frozen copy of ``naviewer.analysis.clusters.flagged_clusters`` and ``density_direction`` as they were
before the analyst panel's open was made cheap (issue 17 item 4): float64 copies of the whole density and
rank columns, ``density_direction`` over all N. Kept only as the same-run baseline of ``naviewer bench gui
--stall`` and for the tests that check the new code gives the same clusters; nothing else uses it.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from naviewer.analysis.clusters import Cluster, mutual_knn_components


def density_direction(density: Optional[np.ndarray], rank: Optional[np.ndarray]) -> float:
    """+1 if larger density values mean denser (rank 0 = densest), -1 otherwise; +1 when unknown."""
    if density is None or rank is None or len(density) < 2:
        return 1.0
    finite = np.isfinite(density)
    if finite.sum() < 2:
        return 1.0
    r = np.where(finite, rank, np.inf)
    densest, sparsest = int(np.argmin(r)), int(np.argmax(np.where(finite, rank, -np.inf)))
    return 1.0 if density[densest] >= density[sparsest] else -1.0



def flagged_clusters(
    flag_ids: np.ndarray,
    *,
    embeddings: Optional[np.ndarray] = None,
    precomputed: Optional[np.ndarray] = None,
    density: Optional[np.ndarray] = None,
    rank: Optional[np.ndarray] = None,
    mindist: Optional[np.ndarray] = None,
    labels: Optional[np.ndarray] = None,
    k: int = 10,
    n_representatives: int = 6,
) -> list[Cluster]:
    """Group ``flag_ids`` into clusters, ranked densest first.

    ``precomputed`` is a per-sample cluster column (the store's ``cluster`` score, -1 = none); when
    it labels the flags it is used as is. Otherwise the mutual kNN components of ``embeddings`` are
    used; without embeddings all flags form one cluster.
    """
    flag_ids = np.asarray(flag_ids, dtype=np.int64)
    if len(flag_ids) == 0:
        return []
    if precomputed is not None and (np.asarray(precomputed)[flag_ids] >= 0).any():
        comp = np.asarray(precomputed, dtype=np.int64)[flag_ids].copy()
        lone = comp < 0
        comp[lone] = comp.max() + 1 + np.arange(lone.sum())  # unclustered flags stay singletons
    elif embeddings is not None:
        comp = mutual_knn_components(np.asarray(embeddings)[flag_ids], k=k)
    else:
        comp = np.zeros(len(flag_ids), dtype=np.int64)

    sign = density_direction(density, rank)
    dens = None if density is None else np.asarray(density, dtype=np.float64)
    order_key = None
    if rank is not None:
        order_key = np.asarray(rank, dtype=np.float64)
    elif dens is not None:
        order_key = -sign * dens

    clusters: list[Cluster] = []
    # one stable sort groups the flags by component (a mask per component is O(flags x clusters): 10^10 at 10M)
    by_comp = np.argsort(comp, kind="stable")
    values, starts = np.unique(comp[by_comp], return_index=True)
    bounds = np.append(starts, len(by_comp))
    for j, c in enumerate(values.tolist()):
        members = flag_ids[by_comp[bounds[j]:bounds[j + 1]]]
        if order_key is not None:
            members = members[np.argsort(order_key[members], kind="stable")]
        mean_density = float(np.nanmean(dens[members])) if dens is not None else float("nan")
        mean_mindist = float(np.nanmean(mindist[members])) if mindist is not None and np.isfinite(mindist[members]).any() else float("nan")
        composition: list[tuple[int, int]] = []
        if labels is not None:
            values, counts = np.unique(np.asarray(labels)[members], return_counts=True)
            composition = sorted(zip(values.tolist(), counts.tolist()), key=lambda t: (-t[1], t[0]))
        if embeddings is not None and len(members) > n_representatives:
            x = np.asarray(embeddings[members], dtype=np.float32)
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
            centre = x.mean(axis=0)
            reps = members[np.argsort(-(x @ centre), kind="stable")[:n_representatives]]
        else:
            reps = members[:n_representatives]
        clusters.append(Cluster(int(c), members, mean_density, mean_mindist, composition, reps))

    def sort_key(cl: Cluster) -> tuple[float, float, int]:
        d = cl.mean_density
        primary = -sign * d if np.isfinite(d) else np.inf
        mean_rank = float(np.mean(order_key[cl.members])) if order_key is not None else 0.0
        return (primary, mean_rank, -cl.size)

    clusters.sort(key=sort_key)
    return [Cluster(i, c.members, c.mean_density, c.mean_mindist, c.composition, c.representatives) for i, c in enumerate(clusters)]
