"""Session 25: PatchSearch's flags with the session-11 rule (gmm2 split + robust outliers of the classifier's log-odds)
and with the neighbour rule (log-odds averaged with the 10 nearest neighbours' in the pass's embedding, robust z 3.5),
replayed on stored PatchSearch passes (the classifier's p as stored). Exact kNN on the L2-normalised embedding."""
import sys, glob, os, numpy as np
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace
from naviewer.defense.detectors.patchsearch import classifier_flags, neighbour_averaged
from naviewer.evaluation.detection import auroc

def pr(truth, f):
    tp = int((f & truth).sum())
    return f"{int(f.sum())} ({100 * tp / max(1, f.sum()):.0f} / {100 * tp / truth.sum():.0f})"

print("| cell | AUROC before / after | flags before (P / R %) | flags after (P / R %) |")
print("|---|---|---|---|")
for ws_path in sys.argv[1:]:
    with Workspace.open(ws_path, read_only=True) as ws:
        truth = np.asarray(ground_truth_mask(ws), bool)
        info = [p for p in ws.store.passes() if p["method"] == "patchsearch"][-1]
        p = np.asarray(ws.store.pass_scores(info["id"])["score"], float)
    cands = sorted(glob.glob(os.path.join(ws_path, "embeddings", "**", "*.npy"), recursive=True))
    z = [np.load(c, mmap_mode="r") for c in cands]
    z = np.array([np.asarray(a[:len(p)], np.float32) for a in z if a.ndim == 2 and a.shape[0] >= len(p)][-1])
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    nn = np.empty((len(p), 10), np.int64)
    for b in range(0, len(p), 2048):
        sim = z[b:b + 2048] @ z.T
        sim[np.arange(sim.shape[0]), b + np.arange(sim.shape[0])] = -np.inf
        nn[b:b + 2048] = np.argpartition(-sim, 10, axis=1)[:, :10]
    q = neighbour_averaged(p, nn)
    old = classifier_flags(p, "gmm2", 0.01, 3.5, 0, 0.2)["flags"]
    new = classifier_flags(q, "robust_z", 0.01, 3.5, 0, 0.2)["flags"]
    name = ws_path.split("/")[-2] if "/cells/" in ws_path else "CIFAR patch seed 1, epoch 70"
    print(f"| {name} | {auroc(p, truth):.3f} / {auroc(q, truth):.3f} | {pr(truth, old)} | {pr(truth, new)} |", flush=True)
