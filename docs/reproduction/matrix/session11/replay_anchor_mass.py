"""Replay the eleven stored review stops with 10, 3 and 1 trusted anchors a class, the benign label's mass off
(the paper: one unit an anchor) and held at 10 anchors a class (``anchor_mass_per_class``, issue 13, session 11).

Usage: python replay_anchor_mass.py CELL_DIR [CELL_DIR ...]  (as session 8's replay_fewer_anchors.py, whose anchor
subsets, rules and settings it keeps). Ground truth is read only to count.
"""
import sys
from pathlib import Path

import numpy as np

from naviewer.defense.config import DiftConfig
from naviewer.defense.knn import KnnIndex, as_float32
from naviewer.defense.spreading import (anchor_reach, crop_agreement, far_from_anchors, label_spread,
                                        neighbourhood_closure, weakly_reached_cluster)
from naviewer.workflows.anchor_sources import load_anchor_set
from naviewer.workflows.demo import embed_checkpoint
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace


def pr(flag, truth):
    hits, n = int((flag & truth).sum()), int(flag.sum())
    return f"{n:4d} ({100 * hits / max(n, 1):3.0f} / {100 * hits / truth.sum():3.0f})"


for cell in map(Path, sys.argv[1:]):
    ws = Workspace.open(cell / "workspace", read_only=True)
    truth = ground_truth_mask(ws)
    labels = np.asarray(ws.store.labels())
    buffer = np.flatnonzero(np.asarray(ws.store.pass_scores(1)["buffer"], bool))
    crop_pass = [p for p in ws.store.passes() if p["method"] == "crop_density"][-1]
    crop = np.asarray(ws.store.pass_scores(int(crop_pass["id"]))["score"], float)
    every = load_anchor_set(ws, 10, 0, record=False).anchors.indices
    z = as_float32(embed_checkpoint(ws, cell / "detection-epoch.pt"), True)
    ws.close()
    n = len(z)
    nb, dist = KnnIndex(z, DiftConfig(knn_backend="exact")).neighbors_of(np.arange(n), 10)
    row = [cell.name]
    for per_class in (10, 3, 1):
        rng = np.random.default_rng(0)
        anchors = np.sort(np.concatenate([rng.choice(every[labels[every] == c], per_class, replace=False)
                                          for c in np.unique(labels[every])]))
        reach = anchor_reach(nb, dist, anchors, 0.7)
        reach = reach / np.median(np.delete(reach, anchors))
        for mass in (0.0, 10.0):
            spread = label_spread(z, buffer, anchors, DiftConfig(ls_alpha=0.7, anchor_mass_per_class=mass),
                                  anchor_labels=labels[anchors])
            p = spread.probability_of_all(n)
            flags = np.zeros(n, bool)
            flags[spread.flagged] = True
            alone = flags.copy()
            soft = far_from_anchors(np.setdiff1d(weakly_reached_cluster(p, nb, 0.1, 0.9, anchors), spread.flagged),
                                    reach, nb, 0.75)
            flags[soft] = True
            flags[far_from_anchors(crop_agreement(p, crop, np.flatnonzero(flags), 0.05, 2.0, anchors), reach, nb,
                                   0.75)] = True
            flags[neighbourhood_closure(np.flatnonzero(flags), nb, 0.7, anchors)] = True
            row.append(f"{per_class}/class mass {mass:g}: spreading {pr(alone, truth)}, recipe {pr(flags, truth)}")
    print(" | ".join(row), flush=True)
