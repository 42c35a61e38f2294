import json, numpy as np
from sklearn.metrics import roc_auc_score
from naviewer.workspace import Workspace
P = set(json.load(open("private_poison_ids.json")))
y = np.array([i in P for i in range(1080)])
with Workspace.open("gui-ws") as ws:
    for p in ws.store.passes():
        pid = p["id"]; sc = ws.store.pass_scores(pid)
        f = sc.get("flagged"); ids = set(np.flatnonzero(f).tolist()) if f is not None else set()
        tp = len(ids & P)
        line = f"pass {pid} {p['method']} {p.get('run')}: flagged {len(ids)} tp {tp} prec {tp/max(1,len(ids)):.2f} rec {tp/len(P):.2f}"
        for k in ("score", "density", "rank", "mindist", "posterior"):
            s = sc.get(k)
            if s is not None and len(s)==1080:
                s = s.astype(float); ok=np.isfinite(s)
                try: line += f" | AUROC({k}) {roc_auc_score(y[ok], s[ok]):.3f}"
                except Exception: pass
        print(line)
