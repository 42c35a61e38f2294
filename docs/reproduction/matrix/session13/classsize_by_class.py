"""The anchor-reach guard's class-size caveat, replayed with the reach measured per class (issue 13, session 13).

Session 9 (`../session9/classsize.py`) kept every class but the target at 1/f of its non-anchor samples on a
review stop and found the joint reach (`anchor_reach`: every anchor spread as one label) of the clean target
class falling under the guard's limit at f = 2-5. This replays the same subsets with both reaches:
`anchor_reach` and `anchor_reach_by_class` (each class's anchors spread alone, each column in its own class's
median units, spreading's flags kept out of the medians). Per f: the clean target class's median reach, the
weak-reach groups (size : poisons, reach), and the flags of the whole recipe (weak-reach + crop agreement +
closure) with the guard at L = 0.75 on either reach. Ground truth is read only to count.

Usage: python classsize_by_class.py CELL_DIR [CELL_DIR ...]  (cells of `naviewer reproduce --matrix`: a
workspace/ with the in-training DIFT pass 1 (its buffer) and a crop_density pass, and detection-epoch.pt)."""
import sys
from pathlib import Path

import numpy as np

from naviewer.defense.config import DiftConfig
from naviewer.defense.knn import KnnIndex, as_float32
from naviewer.defense.spreading import (anchor_reach, anchor_reach_by_class, crop_agreement, far_from_anchors,
                                        groups_of, label_spread, neighbourhood_closure, weakly_reached_cluster)
from naviewer.workflows.anchor_sources import load_anchor_set
from naviewer.workflows.demo import embed_checkpoint
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace


def pr(flag, truth):
    hits, n = int((flag & truth).sum()), int(flag.sum())
    return f"{n:4d} ({100 * hits / max(n, 1):3.0f} / {100 * hits / max(truth.sum(), 1):3.0f})"


def relative(reach, anchors):
    return reach / np.median(np.delete(reach, anchors))


for cell in map(Path, sys.argv[1:]):
    ws = Workspace.open(cell / "workspace", read_only=True)
    truth_all = ground_truth_mask(ws)
    labels_all = np.asarray(ws.dataset().labels, np.int64)
    buf_all = np.flatnonzero(np.asarray(ws.store.pass_scores(1)["buffer"], bool))
    crop_passes = [p for p in ws.store.passes() if p["method"] == "crop_density"]
    crop_all = np.asarray(ws.store.pass_scores(int(crop_passes[-1]["id"]))["score"], float) if crop_passes else None
    anchor_set = load_anchor_set(ws, 10, 0, record=False).anchors
    z_all = embed_checkpoint(ws, cell / "detection-epoch.pt")
    ws.close()
    target = int(np.bincount(labels_all[truth_all]).argmax())
    print(f"== {cell.name}: {len(z_all)} samples, {int(truth_all.sum())} poisons, target {target}, "
          f"{anchor_set.indices.size} anchors, crop scores {'yes' if crop_all is not None else 'no'}", flush=True)
    for f in (1, 2, 3, 5, 8):
        rng = np.random.default_rng(0)
        keep = np.zeros(len(z_all), bool)
        keep[anchor_set.indices] = True
        keep[truth_all] = True
        keep[labels_all == target] = True
        for c in np.unique(labels_all):
            if c != target:
                pool = np.flatnonzero((labels_all == c) & ~keep)
                keep[rng.choice(pool, int(round(pool.size / f)), replace=False)] = True
        ids = np.flatnonzero(keep)
        where = np.full(len(z_all), -1)
        where[ids] = np.arange(ids.size)
        z, truth, labels = as_float32(z_all[ids], True), truth_all[ids], labels_all[ids]
        anchors, anchor_labels = where[anchor_set.indices], anchor_set.labels
        buffer = where[buf_all][where[buf_all] >= 0]
        n = len(z)
        crop = crop_all[ids] if crop_all is not None else np.zeros(n)
        nb, dist = KnnIndex(z, DiftConfig(knn_backend="exact")).neighbors_of(np.arange(n), 10)
        spread = label_spread(z, buffer, anchors, DiftConfig(ls_alpha=0.7))
        p = spread.probability_of_all(n)
        reaches = {"joint": relative(anchor_reach(nb, dist, anchors, 0.7), anchors),
                   "by class": relative(anchor_reach_by_class(nb, dist, anchors, anchor_labels, 0.7,
                                                              exclude=spread.flagged), anchors)}
        clean_target = (labels == target) & ~truth
        soft = np.setdiff1d(weakly_reached_cluster(p, nb, 0.1, 0.9, anchors), spread.flagged)
        row = [f"f {f}: {n} samples"]
        for name, reach in reaches.items():
            guard = lambda x, r=reach: far_from_anchors(x, r, nb, 0.75)  # noqa: E731
            flags = np.zeros(n, bool)
            flags[spread.flagged] = True
            flags[guard(soft)] = True
            if crop_all is not None:
                flags[guard(crop_agreement(p, crop, np.flatnonzero(flags), 0.05, 2.0, anchors))] = True
            flags[neighbourhood_closure(np.flatnonzero(flags), nb, 0.7, anchors)] = True
            groups = " ".join(f"[{g.size}:{int(truth[g].sum())} {np.median(reach[g]):.2f}]" for g in groups_of(soft, nb))
            row.append(f"{name}: clean target {np.median(reach[clean_target]):.2f}, poisons "
                       f"{np.median(reach[truth]):.2f}, groups {groups or '-'}, flags {pr(flags, truth)}")
        flags = np.zeros(n, bool)
        flags[spread.flagged] = True
        flags[soft] = True
        if crop_all is not None:
            flags[crop_agreement(p, crop, np.flatnonzero(flags), 0.05, 2.0, anchors)] = True
        flags[neighbourhood_closure(np.flatnonzero(flags), nb, 0.7, anchors)] = True
        row.append(f"no guard: {pr(flags, truth)}")
        print(" | ".join(row), flush=True)
