"""Replay matrix cells' review stops with the anchor-reach guard at several limits (issue 13, session 8).

Usage: python replay_anchor_reach.py CELL_DIR [CELL_DIR ...]  (cells of `naviewer reproduce --matrix` run with
the session-7 rules: workspace/ with the in-training DIFT pass 1 and a crop_density post-hoc pass, and
detection-epoch.pt). Per cell: the stop's embeddings, buffer and anchors; label spreading, the weak-reach rule,
crop agreement and the closure as DEMO_DIFT_SETTINGS had them in session 7; then the same with the guard
(`anchor_reach_limit` L) on what the two middle rules add. Also prints each group the weak-reach rule adds
(size : poisons, median anchor reach relative to the median sample). Ground truth is read only to count.
"""
import sys
from pathlib import Path

import numpy as np

from naviewer.defense.config import DiftConfig
from naviewer.defense.knn import KnnIndex, as_float32
from naviewer.defense.spreading import (anchor_reach, crop_agreement, far_from_anchors, groups_of, label_spread,
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
    buffer = np.flatnonzero(np.asarray(ws.store.pass_scores(1)["buffer"], bool))
    crop_pass = [p for p in ws.store.passes() if p["method"] == "crop_density"][-1]
    crop = np.asarray(ws.store.pass_scores(int(crop_pass["id"]))["score"], float)
    anchors = load_anchor_set(ws, 10, 0, record=False).anchors.indices
    z = as_float32(embed_checkpoint(ws, cell / "detection-epoch.pt"), True)
    ws.close()
    n = len(z)
    nb, dist = KnnIndex(z, DiftConfig(knn_backend="exact")).neighbors_of(np.arange(n), 10)
    spread = label_spread(z, buffer, anchors, DiftConfig(ls_alpha=0.7))
    p = spread.probability_of_all(n)
    reach = anchor_reach(nb, dist, anchors, 0.7)
    reach = reach / np.median(np.delete(reach, anchors))
    row = [cell.name, f"spreading {pr(np.isin(np.arange(n), spread.flagged), truth)}"]
    for limit in (0.0, 0.5, 0.75, 1.0, 2.0):
        guard = (lambda ids: far_from_anchors(ids, reach, nb, limit)) if limit else (lambda ids: ids)
        flags = np.zeros(n, bool)
        flags[spread.flagged] = True
        soft = guard(np.setdiff1d(weakly_reached_cluster(p, nb, 0.1, 0.9, anchors), spread.flagged))
        flags[soft] = True
        flags[guard(crop_agreement(p, crop, np.flatnonzero(flags), 0.05, 2.0, anchors))] = True
        flags[neighbourhood_closure(np.flatnonzero(flags), nb, 0.7, anchors)] = True
        row.append(f"L {limit}: {pr(flags, truth)}" if limit else f"session 7 rules: {pr(flags, truth)}")
    soft = np.setdiff1d(weakly_reached_cluster(p, nb, 0.1, 0.9, anchors), spread.flagged)
    groups = " ".join(f"[{g.size}:{int(truth[g].sum())} {np.median(reach[g]):.2f}]" for g in groups_of(soft, nb))
    print(" | ".join(row) + f" | weak-reach groups {groups or '-'}", flush=True)
