"""crop_density's flags with the session-11 rule (the split, else the top 1 %, or a robust outlier, z > 3.5) against
the split alone, replayed on the stored passes' scores. Usage: python cropunion.py WORKSPACE [WORKSPACE ...]."""
import sys

import numpy as np

from naviewer.defense.detectors.base import threshold
from naviewer.defense.detectors.crops import CropDensitySettings, crop_flags
from naviewer.evaluation.detection import auroc
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace


def count(f, truth):
    if truth is None or not truth.any():
        return f"{int(f.sum())}"
    tp = int((f & truth).sum())
    return f"{int(f.sum())} ({100 * tp / max(f.sum(), 1):.0f} / {100 * tp / truth.sum():.0f})"


for path in sys.argv[1:]:
    ws = Workspace.open(path, read_only=True)
    truth = ground_truth_mask(ws)
    for record in [p for p in ws.store.passes() if p.get("method") == "crop_density"]:
        score = np.asarray(ws.store.pass_scores(int(record["id"]))["score"], float)
        split, _ = threshold(score, "gmm2", seed=0)
        if not split.any():
            split, _ = threshold(score, "top_fraction", 0.01)
        flags, rule = crop_flags(score, CropDensitySettings())
        name = path.rstrip("/").split("/")[-2] if "cells" in path else path
        area = f"AUROC {auroc(score, truth):.3f}, " if truth is not None and truth.any() else ""
        print(f"{name} pass {record['id']}: {area}split (else top 1 %) {count(split, truth)} -> with outliers "
              f"{count(flags, truth)}")
    ws.close()
