"""Post-hoc DIFT (the workspace's [dift]) on a stop's embeddings with 10, 3, 2 and 1 trusted anchors a class,
drawn (seeded) from the workspace's own trusted anchors; prints the guard's decision and the flags."""
import sys, glob
import numpy as np
from naviewer.defense.anchors import Anchors
from naviewer.defense.config import DiftConfig
from naviewer.defense.pipeline import PosthocDetector
from naviewer.workflows.anchor_sources import load_anchor_set
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace

ws = Workspace.open(sys.argv[1], read_only=True)
z = np.load(sys.argv[2]).astype(np.float32)
config = DiftConfig.from_workspace(ws)
for kv in sys.argv[3:]:
    k, v = kv.split("="); config = DiftConfig(**{**config.to_dict(), k: type(getattr(config, k))(v)})
truth = ground_truth_mask(ws)
every = load_anchor_set(ws, 10, 0, record=False).anchors
labels = every.labels
for per in (10, 3, 2, 1):
    for seed in range(3 if per < 10 else 1):
        rng = np.random.default_rng(seed)
        pick = np.concatenate([rng.choice(np.flatnonzero(labels == c), per, replace=False) for c in np.unique(labels)])
        a = Anchors(every.indices[pick], labels[pick])
        r = PosthocDetector(config).run(z, a, truth)
        sp = r.detection.split
        f = np.zeros(len(z), bool); f[r.final_ids] = True
        tp = int((f & truth).sum())
        print(f"{per}/class seed {seed}: sep {sp.separation:.2f} guard {sp.guard_decision or '-'} selected {int(sp.selected.sum())} "
              f"median {sp.median:.3f} ref_p {sp.reference_p:.3f} -> flags {int(f.sum())} ({100*tp/max(f.sum(),1):.0f} / {100*tp/truth.sum():.0f})", flush=True)
