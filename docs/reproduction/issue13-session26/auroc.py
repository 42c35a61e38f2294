"""AUROC and precision / recall of every detection pass in a workspace against its ground_truth.json (evaluation only)."""
import sys
import numpy as np
from sklearn.metrics import roc_auc_score
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace

with Workspace.open(sys.argv[1], read_only=True) as ws:
    truth = np.asarray(ground_truth_mask(ws), bool)
    for p in ws.store.passes():
        scores = ws.store.pass_scores(p["id"])
        flags = np.asarray(scores.get("flagged"), bool) if "flagged" in scores else np.zeros(truth.size, bool)
        auc = "-"
        if "score" in scores:
            s = np.asarray(scores["score"], float)
            ok = np.isfinite(s)
            if ok.any() and truth[ok].any() and (~truth[ok]).any():
                auc = f"{roc_auc_score(truth[ok], s[ok]):.3f}"
        tp = int((flags & truth).sum())
        print(p["id"], p["method"], p.get("tag"), "AUROC", auc, "flags", int(flags.sum()),
              f"P {tp / max(1, flags.sum()):.3f} R {tp / truth.sum():.3f}", "keys", sorted(scores)[:12])
