"""Trigger check (session 28's rule) replayed on session 27's matrix cells."""
import glob, numpy as np
from naviewer.workspace import Workspace
from naviewer.workflows.workspace_setup import ground_truth_mask
for cell in sorted(glob.glob("/work/exp/s27/matrix/out/cells/*")):
    name = cell.rsplit("/", 1)[1]
    try:
        ws = Workspace.open(cell + "/workspace", read_only=True)
    except Exception as e:
        print(name, "missing", e); continue
    truth = ground_truth_mask(ws)
    passes = {}
    for p in ws.store.passes():
        passes.setdefault(p["method"] + ("-post" if p["epoch"] is None else ""), p["id"])
    if "dift" not in passes or "patchsearch-post" not in passes:
        print(name, "passes:", sorted(passes)); continue
    d = ws.store.pass_scores(passes["dift"])
    F = np.asarray(d["flagged"], bool)
    reach = np.asarray(d.get("anchor_reach", np.zeros(len(F))), float)
    P = np.asarray(ws.store.pass_scores(passes["patchsearch-post"])["flagged"], bool)
    share = (F & P).sum() / max(F.sum(), 1)
    back = F & (reach > 0.5) & ~P if share >= 0.5 else np.zeros_like(F)
    print(f"{name}: F {F.sum()} (clean {int((F & ~truth).sum())}, poisons {int((F & truth).sum())}/{int(truth.sum())}); "
          f"P {P.sum()} (clean {int((P & ~truth).sum())}); covers {share:.0%}; reach>0.5 among F {int((F & (reach > 0.5)).sum())}; "
          f"taken back {back.sum()} (poisons {int((back & truth).sum())})")
