"""Session 33: seed 1 / 2 threads (the demo's one miss) with EVERY poison removed, drawn four more times (seeds 2001,
3001, 4001, 5001; session 31's oracle.py drew seeds 1 and 1001: 2.8 / 17.6 %), so the kept set with no poison at all
has six draws, as the accept-all kept set and the floor now do (draws.sh). Is the miss detection's or the recipe's?
usage: oracle6.py [OUT]  (reads the cell workspace of draws.sh's matrix; prints one line, writes oracle6-s1-t2.json)"""
import json, sys
import torch
from naviewer.jobs import ensure_context
from naviewer.workflows.demo import DemoConfig
from naviewer.workflows.matrix import _Evaluator, _kept_retrain
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace

out = sys.argv[1] if len(sys.argv) > 1 else "/work/exp/s33"
cell = f"{out}/demo6/cells/na-paper-simclr-s1-t2"
record = json.load(open(f"{cell}/cell.json"))
demo = DemoConfig.from_overrides({k: v for k, v in record["recipe"].items() if v is not None})
torch.set_num_threads(2)
ctx = ensure_context(None)
with Workspace.open(f"{cell}/workspace") as ws:
    truth = ground_truth_mask(ws)
    removed = (ws.store.review_states() == "confirmed") | truth
    evaluator = _Evaluator(ws, ctx, "cpu")
    draws = [_kept_retrain(ws, removed, demo, evaluator, ctx, f"oracle-{r}", r) for r in (2, 3, 4, 5)]
    line = {"cell": "s1-t2", "removed": int(removed.sum()), "poisons_left": int((~removed & truth).sum()),
            "seeds": [d["seed"] for d in draws], "asr": [d["asr"]["uniform"] for d in draws],
            "knn": [d["knn_acc"] for d in draws]}
    print(json.dumps(line))
    json.dump(line, open(f"{out}/oracle6-s1-t2.json", "w"))
