import sys
import numpy as np
from naviewer.defense.anchors import Anchors
from naviewer.defense.config import DiftConfig
from naviewer.defense.dift import detect_epoch, min_dist, anchor_spread
from naviewer.workflows.anchor_sources import load_anchor_set
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace
ws = Workspace.open(sys.argv[1], read_only=True)
z = np.load(sys.argv[2]).astype(np.float32)
config = DiftConfig.from_workspace(ws)
truth = ground_truth_mask(ws)
every = load_anchor_set(ws, 10, 0, record=False).anchors
labels = every.labels
for per in (10, 3, 1):
    for seed in range(3 if per < 10 else 1):
        rng = np.random.default_rng(seed)
        pick = np.concatenate([rng.choice(np.flatnonzero(labels == c), per, replace=False) for c in np.unique(labels)])
        a = Anchors(every.indices[pick], labels[pick])
        d = detect_epoch(z, a, config)
        zn = d.features
        cand = d.candidates
        scale = anchor_spread(zn[a.indices], a.labels) if config.mindist_scale == "anchor_spread" else None
        allmd = min_dist(zn, zn[a.indices], a.labels, scale)[0]
        pool = np.setdiff1d(np.arange(len(z)), np.r_[cand, a.indices])
        ref = allmd[pool]
        cm = np.median(d.mindist)
        pois_c = truth[cand].mean()
        pct = (ref < cm).mean() * 100
        clean_ref = allmd[pool][~truth[pool]]
        print(f"{per}/class s{seed}: cand poison share {pois_c:.2f}; cand median MinDist at the {pct:.0f}th pct of the rest; "
              f"poisons' median at {(ref < np.median(allmd[truth])).mean()*100:.0f}th; ref p50 {np.percentile(ref,50):.3f} p95 {np.percentile(ref,95):.3f}", flush=True)
