"""Session 28: the demo's seed 0 / 2 threads run (59 clean "0"s among its 172 flags) with the trigger check of
replay.py: DIFT's flags, less those the trusted anchors reach above 0.5 (relative reach) in which PatchSearch (on the
same encoder) finds no trigger; PatchSearch found one in 51 % of DIFT's flags, so the check applies. Two fresh
retrains of the kept set (seed, seed + 1000) through the matrix's _train_kept, as session 22's oracle.py did.
Usage: python trigger_check.py [OUT.json]"""
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

from naviewer.jobs import JobContext
from naviewer.workflows import matrix as mx
from naviewer.workflows.demo import DemoConfig
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace

CELL = Path("/work/exp/s28/demo6/cells/na-paper-simclr-s0-t2")
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/exp/s28/trigger_check.json")
out = json.loads(OUT.read_text()) if OUT.exists() else {}
rec = json.loads((CELL / "cell.json").read_text())
torch.set_num_threads(int(rec["cell"]["threads"]))
demo = DemoConfig.from_overrides(rec["recipe"])
with Workspace.open(CELL / "workspace") as ws:
    truth = ground_truth_mask(ws)
    passes = {p["method"] + ("-post" if p["epoch"] is None else ""): p["id"] for p in ws.store.passes()}
    dift = ws.store.pass_scores(passes["dift"])
    flagged = np.asarray(dift["flagged"], bool)
    reach = np.asarray(dift["anchor_reach"], float)
    trigger = np.asarray(ws.store.pass_scores(passes["patchsearch-post"])["flagged"], bool)
    covered = (flagged & trigger).sum() / max(int(flagged.sum()), 1)
    back = flagged & (reach > 0.5) & ~trigger if covered >= 0.5 else np.zeros_like(flagged)
    removed = flagged & ~back
    entry = out.setdefault("s0t2-trigger-check", {
        "flagged": int(flagged.sum()), "covered": float(covered), "taken_back": int(back.sum()),
        "taken_back_poisons": int((back & truth).sum()), "removed": int(removed.sum()),
        "removed_poisons": int((removed & truth).sum()), "removed_clean": int((removed & ~truth).sum()), "draws": []})
    ctx = JobContext()
    evaluator = mx._Evaluator(ws, ctx, torch.device("cpu"))
    for r in range(len(entry["draws"]), 2):
        base = demo.train_config()
        config = dataclasses.replace(base, seed=int(base.seed) + 1000 * r)
        res = mx._train_kept(ws, removed, config, f"trigger28-{r}", evaluator, ctx)
        entry["draws"].append({"seed": config.seed, "asr": res["asr"], "knn_acc": res["knn_acc"]})
        print("draw", r, {k: round(100 * v, 1) for k, v in res["asr"].items()}, flush=True)
        OUT.write_text(json.dumps(out, indent=1))
print(json.dumps(out))
