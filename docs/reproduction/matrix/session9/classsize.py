"""The anchor-reach guard's class-size caveat, measured on stored review stops (issue 13, session 9).

A stop's embeddings, buffer and anchors are replayed with every class but the target kept at 1/f of its
non-anchor samples (anchors and poisons always kept), so the target class is f times larger relative to the
others while its geometry is the real one. Per f: the weak-reach groups (size : poisons, median anchor reach
relative to the median sample), and the flags of the session-8 rules with the guard (L = 0.75) and without.
Usage: python classsize.py STOP.npz CELL_WORKSPACE (for the labels)."""
import sys
import numpy as np
from naviewer.defense.config import DiftConfig
from naviewer.defense.knn import KnnIndex, as_float32
from naviewer.defense.spreading import (anchor_reach, crop_agreement, far_from_anchors, groups_of, label_spread,
                                        neighbourhood_closure, weakly_reached_cluster)
from naviewer.workspace import Workspace

d = np.load(sys.argv[1])
ws = Workspace.open(sys.argv[2], read_only=True)
labels = np.asarray(ws.dataset().labels, np.int64)
ws.close()
z_all, truth_all, anchors_all = d["z"], d["truth"], d["anchors"]
target = int(np.bincount(labels[truth_all]).argmax())


def pr(flag, truth):
    hits, n = int((flag & truth).sum()), int(flag.sum())
    return f"{n:4d} ({100 * hits / max(n, 1):3.0f} / {100 * hits / truth.sum():3.0f})"


for f in (1, 2, 3, 5, 8):
    rng = np.random.default_rng(0)
    keep = np.zeros(len(z_all), bool)
    keep[anchors_all] = True
    keep[truth_all] = True
    keep[labels == target] = True
    for c in np.unique(labels):
        if c == target:
            continue
        pool = np.flatnonzero((labels == c) & ~keep)
        keep[rng.choice(pool, int(round(pool.size / f)), replace=False)] = True
    ids = np.flatnonzero(keep)
    where = np.full(len(z_all), -1)
    where[ids] = np.arange(ids.size)
    z, truth, anchors = as_float32(z_all[ids], True), truth_all[ids], where[anchors_all]
    buffer = where[d["buf"]][where[d["buf"]] >= 0]
    crop = d["crop"][ids]
    n = len(z)
    nb, dist = KnnIndex(z, DiftConfig(knn_backend="exact")).neighbors_of(np.arange(n), 10)
    spread = label_spread(z, buffer, anchors, DiftConfig(ls_alpha=0.7))
    p = spread.probability_of_all(n)
    reach = anchor_reach(nb, dist, anchors, 0.7)
    reach = reach / np.median(np.delete(reach, anchors))
    clean_target = (labels[ids] == target) & ~truth
    row = [f"f {f}: {n} samples, target class {int(clean_target.sum())} clean of {int((~truth).sum())}",
           f"clean target's median reach {np.median(reach[clean_target]):.2f}"]
    for limit in (0.0, 0.75):
        guard = (lambda x: far_from_anchors(x, reach, nb, limit)) if limit else (lambda x: x)
        flags = np.zeros(n, bool)
        flags[spread.flagged] = True
        soft = guard(np.setdiff1d(weakly_reached_cluster(p, nb, 0.1, 0.9, anchors), spread.flagged))
        flags[soft] = True
        flags[guard(crop_agreement(p, crop, np.flatnonzero(flags), 0.05, 2.0, anchors))] = True
        flags[neighbourhood_closure(np.flatnonzero(flags), nb, 0.7, anchors)] = True
        row.append(f"{'guard L 0.75' if limit else 'no guard'}: {pr(flags, truth)}")
    soft = np.setdiff1d(weakly_reached_cluster(p, nb, 0.1, 0.9, anchors), spread.flagged)
    groups = " ".join(f"[{g.size}:{int(truth[g].sum())} {np.median(reach[g]):.2f}]" for g in groups_of(soft, nb))
    print(" | ".join(row) + f" | weak-reach groups {groups or '-'}", flush=True)
