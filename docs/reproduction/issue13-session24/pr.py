"""Precision / recall of every detection pass in a workspace against its ground_truth.json (evaluation only)."""
import sys
import numpy as np
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace

with Workspace.open(sys.argv[1], read_only=True) as ws:
    truth = np.asarray(ground_truth_mask(ws), bool)
    for p in ws.store.passes():
        flags = np.zeros(truth.size, bool)
        ids = ws.store.pass_flags(p["id"]) if hasattr(ws.store, "pass_flags") else None
        if ids is None:
            scores = ws.store.pass_scores(p["id"])
            flags = np.asarray(scores.get("flagged"), bool) if "flagged" in scores else flags
        else:
            flags[np.asarray(ids, int)] = True
        tp = int((flags & truth).sum())
        print(p["id"], p["method"], p.get("tag"), "epoch", p["epoch"], "flags", int(flags.sum()),
              f"precision {tp / max(1, flags.sum()):.3f} recall {tp / truth.sum():.3f}", "poisons", int(truth.sum()))
