"""patchsearch's flags with the session-11 rule (the log-odds split or a robust outlier, z > 3.5), replayed on the
stored passes' scores (the classifier's p) of the fifteen matrix cells, the clean digits and the CIFAR cell.

Usage: python psunion.py WORKSPACE [WORKSPACE ...]; ground truth is read only to count.
"""
import sys

import numpy as np

from naviewer.defense.detectors.patchsearch import classifier_flags
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace

for path in sys.argv[1:]:
    ws = Workspace.open(path, read_only=True)
    truth = ground_truth_mask(ws)
    record = [p for p in ws.store.passes() if p.get("method") == "patchsearch"][-1]
    p = np.asarray(ws.store.pass_scores(int(record["id"]))["score"], float)
    ws.close()
    out = classifier_flags(p, "gmm2", 0.01, 3.5, 0, max_fraction=0.2)
    f = out["flags"]
    name = path.rstrip("/").split("/")[-2] if "cells" in path else path
    if truth is not None and truth.any():
        tp = int((f & truth).sum())
        hits = np.cumsum(truth[np.argsort(-p, kind="stable")])  # the best any cut on this ranking can do
        precision, recall = hits / np.arange(1, p.size + 1), hits / truth.sum()
        best = recall[precision >= 0.8].max() if (precision >= 0.8).any() else 0.0
        print(f"{name}: {f.sum()} flags ({100 * tp / max(f.sum(), 1):.0f} / {100 * tp / truth.sum():.0f}), "
              f"outliers added {out['threshold'].get('outliers_added', '-')}, refused: {out['threshold'].get('refused', 'no')}; "
              f"best recall of any cut at precision >= 0.8: {best:.2f}")
    else:
        print(f"{name}: {f.sum()} flags (no poisons)")
