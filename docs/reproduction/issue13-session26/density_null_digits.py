"""Session 26: the DIFT buffer's kNN density against the trusted anchors' own, on the digits: the demo's in-training
pass (poisoned) and post-hoc DIFT with the demo's no-poison floor encoder over the clean digits. Run from
/work/exp/s26/digits (run.sh, then the clean detect below); the workspaces are not in the repository."""
import sys

import numpy as np

from naviewer.workspace import Workspace


def anchor_ids(ws) -> np.ndarray:
    section = ws.config.get("anchors") or {}
    ids = (section.get("external") or {}).get("ids") or section.get("indices") or []
    return np.asarray(ids, int)


for w, pass_id in (a.split(":") for a in sys.argv[1:]):
    with Workspace.open(w, read_only=True) as ws:
        sc = ws.store.pass_scores(int(pass_id))
        d, buf = np.asarray(sc["density"], float), np.asarray(sc["buffer"], bool)
        flags = int(np.asarray(sc["flagged"], bool).sum())
        ids = anchor_ids(ws)
        if not len(ids) or not buf.any():
            print(w, pass_id, "flags", flags, "buffer", int(buf.sum()), "anchors", len(ids), "(nothing to compare)")
            continue
        a = np.sort(d[ids])
        print(w, pass_id, "flags", flags, "anchor density median / q90 / max",
              np.round([np.median(a), np.quantile(a, .9), a.max()], 3), "buffer min / median",
              np.round([d[buf].min(), np.median(d[buf])], 3), "buffer members above the anchors' max:",
              int((d[buf] > a.max()).sum()), "of", int(buf.sum()))
