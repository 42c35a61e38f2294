"""Session 23: anchor separation (sanity.anchor_report) against the encoder's kNN accuracy, on stored encoders:
the newcomer's weak CIFAR-subset encoders (5 classes, kNN 47-54 %) and demo runs."""
import sys, glob, json
import numpy as np, torch
torch.set_num_threads(1)
from pathlib import Path
from naviewer.workspace import Workspace
from naviewer.workflows.finetune_record import embed_checkpoint
from naviewer.workflows.anchor_sources import load_anchor_set
from naviewer.defense.sanity import anchor_report
out = []
for ws_path, ckpts in [(a, b.split(",")) for a, b in (x.split("=") for x in sys.argv[1:])]:
    with Workspace.open(ws_path) as ws:
        anchors = load_anchor_set(ws, record=False).anchors
        labels = np.asarray(ws.store.labels() if hasattr(ws.store, "labels") else ws.dataset().labels)
        for c in ckpts:
            z = embed_checkpoint(ws, Path(c))
            z = z / np.linalg.norm(z, axis=1, keepdims=True)
            r = anchor_report(z[anchors.indices], anchors.labels)
            # leave-one-out 20-NN label agreement over the labelled set, as a kNN-accuracy stand-in
            lab = labels >= 0
            zz = z[lab]; ll = labels[lab]
            sim = zz @ zz.T; np.fill_diagonal(sim, -9)
            nn = np.argsort(-sim, axis=1)[:, :20]
            votes = np.array([np.bincount(ll[row], minlength=ll.max() + 1).argmax() for row in nn])
            rec = {"ws": ws_path, "ckpt": c, "classes": int(len(np.unique(anchors.labels))), "anchors": int(len(anchors.indices)),
                   "anchor_separation": r.figures.get("anchor_separation"), "knn20_loo": float((votes == ll).mean()),
                   "warned": bool(r.warnings)}
            print(json.dumps(rec), flush=True)
