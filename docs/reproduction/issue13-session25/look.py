import sys, json
import numpy as np
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace
from sklearn.metrics import roc_auc_score
ws_path, pid = sys.argv[1], int(sys.argv[2])
with Workspace.open(ws_path, read_only=True) as ws:
    truth = np.asarray(ground_truth_mask(ws), bool)
    sc = ws.store.pass_scores(pid)
    rec = [p for p in ws.store.passes() if p["id"] == pid][0]
print({k: (np.asarray(v).dtype, np.asarray(v).shape) for k, v in sc.items()})
print(json.dumps({k: v for k, v in rec.items() if k not in ("settings",)}, default=str)[:1500])
score = np.asarray(sc["score"], float)
ok = np.isfinite(score)
print("finite", ok.sum(), "auroc", roc_auc_score(truth[ok], score[ok]))
order = np.argsort(-np.where(ok, score, -np.inf))
tp = np.cumsum(truth[order]); n = np.arange(1, len(order)+1)
P = truth.sum()
for k in (100, 200, 250, 300, 325, 350, 400, 500):
    print(k, "prec", round(tp[k-1]/k, 3), "rec", round(tp[k-1]/P, 3), "score", round(score[order[k-1]], 4))
best = [(tp[i]/P, tp[i]/(i+1), i+1) for i in range(len(order)) if tp[i]/(i+1) >= 0.8]
print("best recall at prec>=0.8", max(best) if best else None)
lo = np.log(np.clip(score, 1e-6, 1-1e-6)/(1-np.clip(score, 1e-6, 1-1e-6)))
med = np.median(lo[ok]); mad = np.median(np.abs(lo[ok]-med))*1.4826
z = (lo-med)/mad
for q in (3.5, 5, 7):
    f = z > q
    print("z>", q, f.sum(), "prec", round((f&truth).sum()/max(1,f.sum()),3), "rec", round((f&truth).sum()/P,3))
print("poison p pct", np.percentile(score[truth], [10,25,50,75,90]).round(4), "clean p pct", np.percentile(score[~truth&ok],[50,90,99,99.9]).round(4))
