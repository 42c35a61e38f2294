"""Session 25: the neighbour rule on PatchSearch passes it was not chosen on: session 22's PatchSearch runs on the
stored demo / matrix runs of sessions 18-20 (their run 'ps22' passes and embeddings; the demo recipe's 36 references)."""
import sys, glob, os, numpy as np
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace
from naviewer.defense.detectors.patchsearch import classifier_flags, neighbour_averaged
from naviewer.evaluation.detection import auroc

def pr(truth, f):
    tp = int((f & truth).sum())
    return f"{int(f.sum())} ({100 * tp / max(1, f.sum()):.0f} / {100 * tp / truth.sum():.0f})"

print("| run | AUROC before / after | flags before (P / R %) | flags after (P / R %) |")
print("|---|---|---|---|")
for ws_path in sys.argv[1:]:
    with Workspace.open(ws_path, read_only=True) as ws:
        truth = np.asarray(ground_truth_mask(ws), bool)
        rows = [p for p in ws.store.passes() if p["method"] == "patchsearch" and p["run"] == "ps22"]
        if not rows:
            continue
        p = np.asarray(ws.store.pass_scores(rows[-1]["id"])["score"], float)
    cands = sorted(glob.glob(os.path.join(ws_path, "embeddings", "ps22", "*.npy")))
    z = [np.load(c) for c in cands]
    z = [a for a in z if a.ndim == 2 and a.shape[0] >= len(p)]
    if not z:
        print(ws_path, "no ps22 embeddings"); continue
    z = np.array(z[-1][:len(p)], np.float32)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    sim = z @ z.T
    np.fill_diagonal(sim, -np.inf)
    nn = np.argpartition(-sim, 10, axis=1)[:, :10]
    q = neighbour_averaged(p, nn)
    old = classifier_flags(p, "gmm2", 0.01, 3.5, 0, 0.2)["flags"]
    new = classifier_flags(q, "robust_z", 0.01, 3.5, 0, 0.2)["flags"]
    name = ws_path.split("/work/exp/")[1].replace("/workspace", "").replace("/cells/", " ")
    print(f"| {name} | {auroc(p, truth):.3f} / {auroc(q, truth):.3f} | {pr(truth, old)} | {pr(truth, new)} |", flush=True)
