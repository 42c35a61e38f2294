"""Per run: the clusters of the demo pass, how many poisons each holds, which rules flagged them, and each cluster's
median anchor reach (the store's anchor_reach score). argv: workspace folders (copies: opening writes)."""
import sys
import numpy as np
from naviewer.workspace import Workspace
from naviewer.workflows.workspace_setup import ground_truth_mask
for path in sys.argv[1:]:
    with Workspace.open(path) as ws:
        truth = np.asarray(ground_truth_mask(ws), bool)
        sc = ws.store.pass_scores(ws.store.latest_pass_id())
        cl = sc["cluster"]
        print(path)
        for c in np.unique(cl[cl >= 0]):
            ids = np.flatnonzero(cl == c)
            rules = {k: int((sc[k][ids] > 0).sum()) for k in ("buffer", "spread", "closure", "crop", "candidate") if k in sc}
            print(f"  size {len(ids)} poisons {int(truth[ids].sum())} reach {np.nanmedian(sc['anchor_reach'][ids]):.2f} {rules}")
