"""Session 20: the cluster-reach rule (reached_clusters) replayed on the stored DIFT passes of the demo6 cells:
groups = the pass's stored flagged clusters (flagged_clusters = groups_of on the same kNN graph)."""
import json, sys
from pathlib import Path
import numpy as np
from naviewer.workspace import Workspace
from naviewer.analysis.session import AnalysisSession
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.defense.spreading import CLUSTER_REACH_EVIDENCE
root = Path(sys.argv[1]); limit = float(sys.argv[2]) if len(sys.argv) > 2 else 0.6
out = {}
for cell in sorted((root / "cells").iterdir()):
    rec = json.loads((cell / "cell.json").read_text())
    with Workspace.open(cell / "workspace") as ws:
        truth = ground_truth_mask(ws)
        s = AnalysisSession.from_workspace(ws, rec["dift"]["pass_id"])
        sc = s.scores
        flagged = np.asarray(sc["flagged"]).astype(bool); buf = np.asarray(sc["buffer"]).astype(bool)
        reach = np.asarray(sc["anchor_reach"]); cl = np.asarray(sc["cluster"])
        groups = [np.flatnonzero(cl == c) for c in np.unique(cl[cl >= 0])]
        med = [float(np.median(reach[g])) for g in groups]; seeded = [bool(buf[g].any()) for g in groups]
        fire = len(groups) >= 2 and any(sd and m <= CLUSTER_REACH_EVIDENCE for sd, m in zip(seeded, med))
        dropped = np.zeros_like(flagged)
        if fire:
            for g, m, sd in zip(groups, med, seeded):
                if not sd and m > limit:
                    dropped[g] = True
        kept = flagged & ~dropped
        out[cell.name] = {"flags": int(flagged.sum()), "dropped": int(dropped.sum()), "dropped_poisons": int((dropped & truth).sum()),
                          "kept": int(kept.sum()), "kept_poisons": int((kept & truth).sum()), "kept_clean": int((kept & ~truth).sum()),
                          "precision": round(float((kept & truth).sum() / max(kept.sum(), 1)), 3),
                          "recall": round(float((kept & truth).sum() / truth.sum()), 3)}
        print(cell.name, out[cell.name])
print(json.dumps(out))
