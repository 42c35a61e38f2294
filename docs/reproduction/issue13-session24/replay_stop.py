"""Session 24: replay the CIFAR cell's in-training DIFT stop (epoch 40 of the session-24 run) with the crop-outlier
rule varied (session 12's replay_stop.py, rows and counts changed): the stop's encoder (last.pt) and buffer (pass 1),
the workspace's trusted anchors and [dift]; only crop_outlier_z changes. Ground truth is read only to count.

Usage: python replay_stop.py WS CHECKPOINT
"""
import dataclasses
import json
import sys

import numpy as np

from naviewer.data.store import streaming_store
from naviewer.defense.config import DiftConfig
from naviewer.defense.detectors.crops import crop_density_scores
from naviewer.defense.dift import detect_epoch
from naviewer.defense.pipeline import finalize
from naviewer.ssl.checkpoints import load_encoder
from naviewer.ssl.embed import extract_embeddings
from naviewer.workflows.anchor_sources import load_anchor_set
from naviewer.workflows.posthoc import embed_workspace
from naviewer.workspace import Workspace

from naviewer.workflows.workspace_setup import ground_truth_mask

ws_path, checkpoint = sys.argv[1:3]
ws = Workspace.open(ws_path)
truth = np.asarray(ground_truth_mask(ws), bool)
base = DiftConfig.from_workspace(ws)
buffer = np.flatnonzero(np.asarray(ws.store.pass_scores(1)["buffer"], bool))
stored_flags = np.asarray(ws.store.pass_scores(1)["flagged"], bool)
encoder = load_encoder(checkpoint)
size = encoder.image_size
store = streaming_store(ws.dataset())
samples = np.asarray(embed_workspace(ws, encoder.backbone, run="replay", tag="stop-e44", image_size=size, store=store))
anchor_set = load_anchor_set(ws, base.anchors_per_class, base.seed)
features, anchors = anchor_set.for_features(samples, lambda trusted: extract_embeddings(encoder.backbone, trusted,
                                                                                         image_size=size))
n = len(samples)
crop = None


def crops():
    global crop
    if crop is None:
        crop = crop_density_scores(encoder.backbone, store.materialize(None, "images") if hasattr(store, "materialize")
                                   else store, n, image_size=size, seed=int(base.seed))
    return crop


def pr(ids):
    m = np.zeros(n, bool)
    m[np.asarray(ids, np.int64)] = True
    hits = int((m & truth).sum())
    return f"{int(m.sum())} ({100 * hits / max(m.sum(), 1):.0f} / {100 * hits / truth.sum():.0f} %)"


print(f"stored stop: buffer {pr(buffer)}, flags {pr(np.flatnonzero(stored_flags))}", flush=True)
rows = [(f"crop_outlier_z {z:g}" + (" (off: the stop as it ran)" if z == 0 else ""), {"crop_outlier_z": float(z)})
        for z in (0, 4, 6, 8, 10)]
for name, change in rows:
    config = dataclasses.replace(base, **change).validate()
    detection = detect_epoch(features, anchors, config, sample_count=n)
    result = finalize(detection, buffer, anchors, config, sample_count=n, crop_scores=crops)
    spread = result.spread
    parts = [f"flags {pr(result.final_ids)}"]
    for key in ("soft", "crop", "crop_outliers", "closure", "reach_dropped"):
        ids = getattr(spread, key, None)
        if ids is not None and len(ids):
            parts.append(f"{key} +{pr(ids)}")
    print(f"{name}: " + ", ".join(parts), flush=True)
if crop is not None:
    order = np.argsort(-crop)
    print(f"crop_density alone on this encoder: top {truth.sum()} hold {int(truth[order[:truth.sum()]].sum())} poisons",
          flush=True)
