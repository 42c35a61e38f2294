"""Session 26: the DIFT buffer's kNN density against the trusted anchors' own, on a clean and a poisoned encoder.

Run from /work/exp/s26/cifar (the workspaces are not in the repository): wsclean = post-hoc DIFT on the floor's epoch-40
encoder over the clean subset (clean.sh); ws = DIFT in training on CorruptEncoder 10 % (ce10.sh). The anchors are
ids of the clean subset, which is also the first 4,068 samples of the crafted set."""
import numpy as np

from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace

for w in ("wsclean", "ws"):
    with Workspace.open(w, read_only=True) as ws:
        sc = ws.store.pass_scores(1)
        d, buf = np.asarray(sc["density"], float), np.asarray(sc["buffer"], bool)
        ids = np.asarray(ws.config["anchors"]["external"]["ids"], int)
        try:
            print(w, "anchors among the poisons:", int(np.asarray(ground_truth_mask(ws), bool)[ids].sum()))
        except Exception:  # noqa: BLE001 - the clean workspace has no ground truth
            pass
        a = np.sort(d[ids])
        print(w, "flags", int(np.asarray(sc["flagged"], bool).sum()), "anchor density median / q90 / max",
              np.round([np.median(a), np.quantile(a, .9), a.max()], 3), "buffer min / median",
              np.round([d[buf].min(), np.median(d[buf])], 3), "buffer members above the anchors' max:",
              int((d[buf] > a.max()).sum()), "of", int(buf.sum()))
