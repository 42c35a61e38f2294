"""Session 31: the second round replayed. Each session-28 run's kept set after the first retrain, minus the kept
samples PatchSearch flags on that retrained encoder (after_check.py), trained twice afresh (seeds 0 and 1000, the
run's threads) and evaluated as the matrix evaluates: does the ASR come down to the floor?
usage: second_round.py CELL (s1-t2 ...) -> prints one line, writes second_round-CELL.json"""
import json, sys
import numpy as np, torch
from naviewer.jobs import ensure_context
from naviewer.workflows.demo import DemoConfig
from naviewer.workflows.matrix import _Evaluator, _kept_retrain
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace

cell = sys.argv[1]
path = {"s1-t2": "ws1t2"}.get(cell, f"after-{cell}")
record = json.load(open(f"/work/exp/s28/demo6/cells/na-paper-simclr-{cell}/cell.json"))
demo = DemoConfig.from_overrides({k: v for k, v in record["recipe"].items() if v is not None})
torch.set_num_threads(int(record["cell"]["threads"]))
ctx = ensure_context(None)
with Workspace.open(f"/work/exp/s31/{path}") as ws:
    truth = ground_truth_mask(ws)
    removed = ws.store.review_states() == "confirmed"
    pid = max(p["id"] for p in ws.store.passes() if p["method"] == "patchsearch" and p["run"] == "after1")
    extra = np.asarray(ws.store.pass_scores(pid)["flagged"], bool) & ~removed
    second = removed | extra
    evaluator = _Evaluator(ws, ctx, "cpu")
    out = [_kept_retrain(ws, second, demo, evaluator, ctx, f"second-{r}", r) for r in (0, 1)]
    line = {"cell": cell, "first_removed": int(removed.sum()), "second_adds": int(extra.sum()),
            "second_adds_poisons": int((extra & truth).sum()), "poisons_left": int((~second & truth).sum()),
            "asr": [o["asr"]["uniform"] for o in out], "knn": [o["knn_acc"] for o in out]}
    print(json.dumps(line))
    json.dump(line, open(f"/work/exp/s31/second_round-{cell}.json", "w"))
