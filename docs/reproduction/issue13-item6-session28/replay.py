"""Session 28. Replay on the six stored demo runs (session 28): DIFT's in-training flags, the per-sample anchor reach, PatchSearch's
flags on the same encoder. Rules: T = take back flags with reach > L that PatchSearch finds no trigger in (when
PatchSearch finds a trigger in at least half of DIFT's flags); U = add PatchSearch's flags."""
import numpy as np
from naviewer.workspace import Workspace
from naviewer.workflows.workspace_setup import ground_truth_mask
for s, t in ((0, 1), (1, 1), (2, 1), (0, 2), (1, 2), (2, 2)):
    path = f"/work/exp/s28/demo6/cells/na-paper-simclr-s{s}-t{t}/workspace"
    try:
        ws = Workspace.open(path, read_only=True)
    except Exception as e:
        print(s, t, "missing", e); continue
    truth = ground_truth_mask(ws)
    passes = {p["method"] + ("-post" if p["epoch"] is None else ""): p["id"] for p in ws.store.passes()}
    d = ws.store.pass_scores(passes["dift"])
    F = np.asarray(d["flagged"], bool)
    reach = np.asarray(d["anchor_reach"], float)
    ps = ws.store.pass_scores(passes["patchsearch-post"])
    P = np.asarray(ps["flagged"], bool)
    share = (F & P).sum() / max(F.sum(), 1)
    line = f"s{s} t{t}: F {F.sum()} (clean {int((F & ~truth).sum())}, poisons {int((F & truth).sum())}/{int(truth.sum())}); P {P.sum()} (clean {int((P & ~truth).sum())}); P covers {share:.0%} of F"
    for L in (0.5, 0.7):
        back = F & (reach > L) & ~P if share >= 0.5 else np.zeros_like(F)
        K = F & ~back
        line += f" | T{L}: back {back.sum()} (poisons {int((back & truth).sum())}) -> clean {int((K & ~truth).sum())}"
        KU = K | P
        line += f", +U: {KU.sum()} (clean {int((KU & ~truth).sum())}, poisons {int((KU & truth).sum())})"
    print(line)
