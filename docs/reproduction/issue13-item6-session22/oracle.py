"""Session 22: what a perfect review would leave on the two demo runs accept-all misses.
s0t2 (session 19): reject the clean flags, confirm the poisons (removed = flagged & truth);
s1t2 (session 20, cluster-reach rule in the loop): remove every poison, the 4 unflagged too (removed = flagged | truth).
Two fresh retrains each (seed, seed + 1000) through the matrix's _train_kept, as session 19's remedy.py did."""
import json, sys, dataclasses
from pathlib import Path
import numpy as np
import torch
from naviewer.jobs import JobContext
from naviewer.workspace import Workspace
from naviewer.analysis.session import AnalysisSession
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workflows import matrix as mx
from naviewer.workflows.demo import DemoConfig

CELLS = {"s0t2-reject-clean": ("/work/exp/s19/demo6/cells/na-paper-simclr-s0-t2", "poisons_only"),
         "s1t2-all-poisons": ("/work/exp/s20/demo2/cells/na-paper-simclr-s1-t2", "all_poisons"),
         # the review the pointer leads to: the flags reached above 0.7 looked at (clean ones rejected, poisons
         # confirmed), every other flag confirmed unseen
         "s0t2-pointer": ("/work/exp/s19/demo6/cells/na-paper-simclr-s0-t2", "pointer")}
OUT = Path("/work/exp/s22/oracle/oracle.json")
out = json.loads(OUT.read_text()) if OUT.exists() else {}
for key in sys.argv[1:]:
    folder, mode = CELLS[key]
    cell = Path(folder)
    rec = json.loads((cell / "cell.json").read_text())
    torch.set_num_threads(int(rec["cell"]["threads"]))
    demo = DemoConfig.from_overrides(rec["recipe"])
    with Workspace.open(cell / "workspace") as ws:
        truth = ground_truth_mask(ws)
        s = AnalysisSession.from_workspace(ws, rec["dift"]["pass_id"])
        flagged = s.flagged_mask.copy()
        if mode == "pointer":
            from naviewer.analysis.reach import reached_flags
            looked = np.zeros_like(flagged)
            looked[reached_flags(s.scores)] = True
            removed = flagged & ~(looked & ~truth)
        else:
            removed = (flagged & truth) if mode == "poisons_only" else (flagged | truth)
        entry = out.setdefault(key, {"removed": int(removed.sum()), "removed_poisons": int((removed & truth).sum()),
                                     "removed_clean": int((removed & ~truth).sum()), "flagged": int(flagged.sum()),
                                     "draws": []})
        ctx = JobContext()
        evaluator = mx._Evaluator(ws, ctx, torch.device("cpu"))
        for r in range(len(entry["draws"]), 2):
            base = demo.train_config()
            config = dataclasses.replace(base, seed=int(base.seed) + 1000 * r)
            res = mx._train_kept(ws, removed, config, f"oracle22-{r}", evaluator, ctx)
            entry["draws"].append({"seed": config.seed, "asr": res["asr"], "knn_acc": res["knn_acc"]})
            print(key, "draw", r, {k: round(100 * v, 1) for k, v in res["asr"].items()}, flush=True)
            OUT.write_text(json.dumps(out, indent=1))
print(json.dumps(out))
