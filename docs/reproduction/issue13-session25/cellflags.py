"""Session 25: PatchSearch's own flag rule on its p and on the neighbour-smoothed p (k nearest in the embedding)."""
import sys, glob, os, numpy as np
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace
from naviewer.defense.detectors.patchsearch import classifier_flags
from cells import smooth

def pr(truth, f):
    tp = (f & truth).sum()
    return f"{f.sum()} ({100*tp/max(1,f.sum()):.0f} / {100*tp/truth.sum():.0f})"

for ws_path in sys.argv[1:]:
    with Workspace.open(ws_path, read_only=True) as ws:
        truth = np.asarray(ground_truth_mask(ws), bool)
        passes = [p for p in ws.store.passes() if p["method"] == "patchsearch"]
        if not passes:
            continue
        p = np.asarray(ws.store.pass_scores(passes[-1]["id"])["score"], float)
    emb = [a for a in sorted(glob.glob(os.path.join(ws_path, "embeddings", "**", "*.npy"), recursive=True))]
    z = None
    for cand in emb:
        a = np.load(cand, mmap_mode="r")
        if a.ndim == 2 and a.shape[0] >= len(p):
            z = np.asarray(a[:len(p)], np.float32)
    name = ws_path.split("/")[-2] if "cells" in ws_path else "cifar-patch"
    own = classifier_flags(p, "gmm2", 0.01, 3.5, 0, 0.2)["flags"]
    row = [name, "own " + pr(truth, own)]
    for k in (10, 20):
        s = smooth(p, z, k) / 2
        ps = 1 / (1 + np.exp(-s))
        f = classifier_flags(ps, "gmm2", 0.01, 3.5, 0, 0.2)["flags"]
        row.append(f"k{k} " + pr(truth, f))
    print(" | ".join(row), flush=True)
