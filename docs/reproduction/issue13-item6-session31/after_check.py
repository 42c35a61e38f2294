"""Session 31: PatchSearch on each session-28 run's first retrained encoder (every DIFT flag removed): its flags among
the samples the retrain KEPT (what a second removal would take), poisons and clean."""
import numpy as np
from naviewer.workspace import Workspace
from naviewer.workflows.workspace_setup import ground_truth_mask
for c, path in [("s0-t1", "after-s0-t1"), ("s0-t2", "after-s0-t2"), ("s1-t1", "after-s1-t1"), ("s1-t2", "ws1t2"),
                ("s2-t1", "after-s2-t1"), ("s2-t2", "after-s2-t2")]:
    try:
        ws = Workspace.open(f"/work/exp/s31/{path}", read_only=True)
    except Exception as e:
        print(c, "missing"); continue
    truth = ground_truth_mask(ws)
    removed = ws.store.review_states() == "confirmed"
    pid = max(p["id"] for p in ws.store.passes() if p["method"] == "patchsearch" and p["run"] == "after1")
    ps = ws.store.pass_scores(pid)
    F = np.asarray(ps["flagged"], bool); tf = np.asarray(ps["trigger_found"], bool)
    kept = ~removed
    print(f"{c}: removed {removed.sum()} (poisons {int((removed & truth).sum())}); poisons kept {int((kept & truth).sum())}; "
          f"PatchSearch flags {F.sum()}, among kept {int((F & kept).sum())}: poisons {int((F & kept & truth).sum())}, "
          f"clean {int((F & kept & ~truth).sum())}; its classifier alone among kept: poisons {int((tf & kept & truth).sum())}, clean {int((tf & kept & ~truth).sum())}")
