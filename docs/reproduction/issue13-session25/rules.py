import sys, glob, os, numpy as np
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace
from naviewer.defense.detectors.base import threshold
from cells import smooth
def pr(truth, f):
    tp = (f & truth).sum()
    return f"{f.sum()}({100*tp/max(1,f.sum()):.0f}/{100*tp/truth.sum():.0f})"
for ws_path in sys.argv[1:]:
    with Workspace.open(ws_path, read_only=True) as ws:
        truth = np.asarray(ground_truth_mask(ws), bool)
        passes = [p for p in ws.store.passes() if p["method"] == "patchsearch"]
        p = np.asarray(ws.store.pass_scores(passes[-1]["id"])["score"], float)
    z = None
    for cand in sorted(glob.glob(os.path.join(ws_path, "embeddings", "**", "*.npy"), recursive=True)):
        a = np.load(cand, mmap_mode="r")
        if a.ndim == 2 and a.shape[0] >= len(p):
            z = np.asarray(a[:len(p)], np.float32)
    name = ws_path.split("/")[-2] if "cells" in ws_path else "cifar-patch"
    s = smooth(p, z, 10) / 2
    row = [name[:26].ljust(26)]
    for rule, zz in (("gmm2", 3.5), ("robust_z", 3.5), ("robust_z", 5.0), ("robust_z", 7.0)):
        f, d = threshold(s, rule, 0.01, zz, seed=0)
        row.append(f"{rule}{zz if rule!='gmm2' else ''} {pr(truth, f)}")
    print(" | ".join(row), flush=True)
