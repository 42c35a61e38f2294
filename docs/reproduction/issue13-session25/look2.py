import sys, numpy as np
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace
with Workspace.open(sys.argv[1], read_only=True) as ws:
    truth = np.asarray(ground_truth_mask(ws), bool)
    sc = ws.store.pass_scores(int(sys.argv[2]))
    labels = np.asarray(ws.dataset().labels) if hasattr(ws.dataset(), "labels") else None
score = np.asarray(sc["score"], float)
order = np.argsort(-score)[:400]
cl = order[~truth[order]]
print("clean in top400", len(cl), "labels", np.bincount(labels[cl], minlength=10))
print("poison labels", np.bincount(labels[truth], minlength=10))
print("all labels", np.bincount(labels, minlength=10))
print("cluster of clean top", np.bincount(np.asarray(sc["cluster"])[cl])[:40])
print("cluster of poisons", np.bincount(np.asarray(sc["cluster"])[truth])[:40])
