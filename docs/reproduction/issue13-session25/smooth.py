import sys, numpy as np
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace
from sklearn.metrics import roc_auc_score
ws_path, pid, emb = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with Workspace.open(ws_path, read_only=True) as ws:
    truth = np.asarray(ground_truth_mask(ws), bool)
    sc = ws.store.pass_scores(pid)
p = np.asarray(sc["score"], float)
z = np.load(emb).astype(np.float32)
z /= np.linalg.norm(z, axis=1, keepdims=True)
sim = z @ z.T
np.fill_diagonal(sim, -np.inf)
P = truth.sum()
def report(name, s):
    order = np.argsort(-s); tp = np.cumsum(truth[order])
    best = max([(tp[i]/P, tp[i]/(i+1), i+1) for i in range(len(order)) if tp[i]/(i+1) >= 0.8] or [(0,0,0)])
    print(f"{name:28s} auroc {roc_auc_score(truth, s):.3f} P@{P} {tp[P-1]/P:.3f} best rec@prec>=.8 {best[0]:.3f} ({best[2]} flags)")
report("own p", p)
lo = np.log(np.clip(p,1e-6,1-1e-6)/(1-np.clip(p,1e-6,1-1e-6)))
for k in (5, 10, 20, 50):
    nn = np.argpartition(-sim, k, axis=1)[:, :k]
    m = p[nn].mean(1)
    mlo = lo[nn].mean(1)
    report(f"knn mean p k={k}", m)
    report(f"own*knn mean k={k}", p * m)
    report(f"lo + knn lo k={k}", lo + mlo)
    r = np.argsort(np.argsort(p))/len(p)
    report(f"rank own+knn k={k}", r + r[nn].mean(1))
