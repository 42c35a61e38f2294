"""Replay the CIFAR cell's in-training DIFT stop (epoch 44) with the rules after label spreading varied:
the stop's encoder (last.pt, saved after epoch 44) and the stop's buffer (pass 1), the workspace's trusted
anchors and [dift]; only the settings named on each row change. Ground truth is read only to count.

Usage: python replay_stop.py WS CHECKPOINT GROUND_TRUTH_JSON [ROWS_JSON]
ROWS_JSON (optional; session 13's `rows_units.json`): the rows to replay instead of the ones below, a JSON
list of [name, {setting: value}].
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

ws_path, checkpoint, gt_path = sys.argv[1:4]
truth = np.array([r["kind"] == "poison" for r in json.load(open(gt_path))["samples"]])
ws = Workspace.open(ws_path)
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
rows = [("the stop's settings (naviewer preset)", {}),
        ("crop agreement 2 (the demo's)", {"crop_agreement": 2.0, "crop_agreement_threshold": 0.05}),
        ("crop agreement 1", {"crop_agreement": 1.0, "crop_agreement_threshold": 0.05}),
        ("crop agreement 2, threshold 0.02", {"crop_agreement": 2.0, "crop_agreement_threshold": 0.02})]
if len(sys.argv) > 4:
    rows = [(name, dict(change)) for name, change in json.load(open(sys.argv[4]))]
for name, change in rows:
    config = dataclasses.replace(base, **change).validate()
    detection = detect_epoch(features, anchors, config, sample_count=n)
    result = finalize(detection, buffer, anchors, config, sample_count=n, crop_scores=crops)
    spread = result.spread
    parts = [f"flags {pr(result.final_ids)}"]
    for key in ("soft", "crop", "closure"):
        ids = getattr(spread, key, None)
        if ids is not None and len(ids):
            parts.append(f"{key} +{pr(ids)}")
    print(f"{name}: " + ", ".join(parts), flush=True)
if crop is not None:
    order = np.argsort(-crop)
    print(f"crop_density alone on this encoder: top {truth.sum()} hold {int(truth[order[:truth.sum()]].sum())} poisons",
          flush=True)
