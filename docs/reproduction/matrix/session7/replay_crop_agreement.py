"""Replay matrix cells' review stops with and without crop agreement (issue 13 item 6, session 7).

Usage: python replay_crop_agreement.py CELL_DIR [CELL_DIR ...]  (cells of `naviewer reproduce --matrix`,
run with the session-5 rules; each holds workspace/ with the in-training DIFT pass 1 and a crop_density
post-hoc pass, and detection-epoch.pt). Per cell: the stop's embeddings, buffer and anchors; label spreading
and the two neighbourhood rules as DEMO_DIFT_SETTINGS had them; then crop agreement (probability threshold,
window x the flag count) from the post-hoc crop_density scores. Ground truth is read only to count.
"""
import sys
from pathlib import Path

import numpy as np

from naviewer.defense.config import DiftConfig
from naviewer.defense.knn import KnnIndex, as_float32
from naviewer.defense.spreading import crop_agreement, label_spread, neighbourhood_closure, weakly_reached_cluster
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
    nb, _ = KnnIndex(z, DiftConfig(knn_backend="exact")).neighbors_of(np.arange(len(z)), 10)
    spread = label_spread(z, buffer, anchors, DiftConfig(ls_alpha=0.7))
    p = spread.probability_of_all(len(z))
    flags = np.zeros(len(z), bool)
    flags[spread.flagged] = True
    flags[weakly_reached_cluster(p, nb, 0.1, 0.9, anchors)] = True
    without = flags.copy()
    without[neighbourhood_closure(np.flatnonzero(without), nb, 0.7, anchors)] = True
    row = [cell.name, "rules of session 5", pr(without, truth)]
    for threshold, window in [(0.05, 1.5), (0.05, 2.0), (0.05, 3.0), (0.1, 2.0), (0.02, 2.0)]:
        with_crop = flags.copy()
        with_crop[crop_agreement(p, crop, np.flatnonzero(flags), threshold, window, anchors)] = True
        with_crop[neighbourhood_closure(np.flatnonzero(with_crop), nb, 0.7, anchors)] = True
        row += [f"p>{threshold} window {window}", pr(with_crop, truth)]
    print(" | ".join(row))
