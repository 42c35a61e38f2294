"""Session 19: the README's remedy on the demo6 cells whose clean flags formed a cluster of their own: reject the
clusters the trusted anchors reach (anchor reach > 0.17), confirm the rest, retrain twice (seed, seed + 1000), and
evaluate as the matrix does. argv: cell keys."""
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

out = {}
for key in sys.argv[1:]:
    cell = Path("OUT/demo6/cells") / key
    rec = json.loads((cell / "cell.json").read_text())
    torch.set_num_threads(int(rec["cell"]["threads"]))
    demo = DemoConfig.from_overrides(rec["recipe"])
    with Workspace.open(cell / "workspace") as ws:
        truth = ground_truth_mask(ws)
        s = AnalysisSession.from_workspace(ws, rec["dift"]["pass_id"])
        flagged = s.flagged_mask.copy()
        rejected = np.zeros_like(flagged)
        for cl in s.clusters():
            if cl.anchor_reach is not None and cl.anchor_reach > 0.17:
                rejected[cl.members] = True
        removed = flagged & ~rejected
        ctx = JobContext()
        evaluator = mx._Evaluator(ws, ctx, torch.device("cpu"))
        draws = []
        for r in (0, 1):
            base = demo.train_config()
            config = dataclasses.replace(base, seed=int(base.seed) + 1000 * r)
            res = mx._train_kept(ws, removed, config, f"remedy-{r}", evaluator, ctx)
            draws.append({"seed": config.seed, "asr": res["asr"], "knn_acc": res["knn_acc"]})
            print(key, "draw", r, {k: round(100 * v, 1) for k, v in res["asr"].items()}, flush=True)
        out[key] = {"removed": int(removed.sum()), "removed_poisons": int((removed & truth).sum()),
                    "removed_clean": int((removed & ~truth).sum()), "rejected": int(rejected.sum()), "draws": draws}
    Path("OUT/remedy.json").write_text(json.dumps(out, indent=1))
print(json.dumps(out))
