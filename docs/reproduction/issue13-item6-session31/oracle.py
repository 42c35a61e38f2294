"""Session 31: seed 1 / 2 threads with EVERY poison removed (the 109 DIFT flags and the 4 it missed), trained twice
afresh (seeds 1 and 1001, 2 threads): how far above the floor is a kept set with no poison at all?"""
import json
import numpy as np, torch
from naviewer.jobs import ensure_context
from naviewer.workflows.demo import DemoConfig
from naviewer.workflows.matrix import _Evaluator, _kept_retrain
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace

record = json.load(open("/work/exp/s28/demo6/cells/na-paper-simclr-s1-t2/cell.json"))
demo = DemoConfig.from_overrides({k: v for k, v in record["recipe"].items() if v is not None})
torch.set_num_threads(2)
ctx = ensure_context(None)
with Workspace.open("/work/exp/s31/ws1t2") as ws:
    truth = ground_truth_mask(ws)
    removed = (ws.store.review_states() == "confirmed") | truth
    evaluator = _Evaluator(ws, ctx, "cpu")
    out = [_kept_retrain(ws, removed, demo, evaluator, ctx, f"oracle-{r}", r) for r in (0, 1)]
    line = {"cell": "s1-t2", "removed": int(removed.sum()), "poisons_left": int((~removed & truth).sum()),
            "asr": [o["asr"]["uniform"] for o in out], "knn": [o["knn_acc"] for o in out]}
    print(json.dumps(line))
    json.dump(line, open("/work/exp/s31/oracle-s1-t2.json", "w"))
