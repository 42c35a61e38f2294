import numpy as np
from naviewer.workspace import Workspace
from naviewer.defense.detectors.patchsearch import classifier_flags, neighbour_averaged
from naviewer.defense.detectors.base import threshold
from sklearn.metrics import roc_auc_score
ws_path = "/work/exp/s25/newcomer/ws1"
with Workspace.open(ws_path, read_only=True) as ws:
    ps = [p for p in ws.store.passes() if p["method"] == "patchsearch"]
    print([(p["id"], p["run"]) for p in ps])
    p = np.asarray(ws.store.pass_scores(ps[0]["id"])["score"], float)
    keys = [ws.store.sample_key(i) for i in range(450, 452)] if hasattr(ws.store, "sample_key") else None
n = len(p); truth = np.zeros(n, bool); truth[450:480] = True
z = np.load(ws_path + "/embeddings/posthoc/last-24d5a79d.npy").astype(np.float32)[:n]
z /= np.linalg.norm(z, axis=1, keepdims=True)
sim = z @ z.T; np.fill_diagonal(sim, -np.inf)
def pr(f): tp=(f&truth).sum(); return f"{f.sum()} ({100*tp/max(1,f.sum()):.0f}/{100*tp/truth.sum():.0f})"
print("own auroc", round(roc_auc_score(truth, p), 3), "flags", pr(classifier_flags(p, "gmm2", .01, 3.5, 0, 0.2)["flags"]))
for k in (10, 20):
    nn = np.argpartition(-sim, k, axis=1)[:, :k]
    q = neighbour_averaged(p, nn)
    print(k, "auroc", round(roc_auc_score(truth, q), 3), "flags robust_z", pr(classifier_flags(q, "robust_z", .01, 3.5, 0, 0.2)["flags"]))
order = np.argsort(-p)[:60]; print("top60 poisons own", truth[order].sum())
