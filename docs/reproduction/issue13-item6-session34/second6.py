"""Session 34: a second round on session 31's six demo runs, six draws each. PatchSearch on each run's first
retrained encoder (checkpoints/demo/last.pt: every accept-all removal out), its flags among the KEPT samples removed
too, and that kept set trained six times (seeds S + 1000 r, the run's threads) as the matrix's draws are. Does a check
after the retrain bring the ASR to the floor (session 33's six-draw floors), and does it hurt the runs that held?
usage: second6.py CELL (s1-t2 ...) -> prints one line, writes second6-CELL.json"""
import json, sys
import numpy as np, torch
from naviewer.jobs import ensure_context
from naviewer.workflows.demo import DemoConfig
from naviewer.workflows.matrix import _Evaluator, _kept_retrain
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace

cell = sys.argv[1]
src = f"/work/exp/s33/demo6/cells/na-paper-simclr-{cell}"
record = json.load(open(f"{src}/cell.json"))
demo = DemoConfig.from_overrides({k: v for k, v in record["recipe"].items() if v is not None})
torch.set_num_threads(int(record["cell"]["threads"]))
ctx = ensure_context(None)
with Workspace.open(f"/work/exp/s34/second-{cell}") as ws:
    truth = ground_truth_mask(ws)
    removed = ws.store.review_states() == "confirmed"
    pid = max(p["id"] for p in ws.store.passes() if p["method"] == "patchsearch" and p["run"] == "after1")
    extra = np.asarray(ws.store.pass_scores(pid)["flagged"], bool) & ~removed
    second = removed | extra
    evaluator = _Evaluator(ws, ctx, "cpu")
    out = []
    for r in range(6):
        out.append(_kept_retrain(ws, second, demo, evaluator, ctx, f"second-{r}", r))
        print(cell, r, out[-1]["asr"]["uniform"], flush=True)
    line = {"cell": cell, "first_removed": int(removed.sum()), "second_adds": int(extra.sum()),
            "second_adds_poisons": int((extra & truth).sum()), "poisons_left": int((~second & truth).sum()),
            "seeds": [o["seed"] for o in out], "asr": [o["asr"]["uniform"] for o in out],
            "knn": [o["knn_acc"] for o in out]}
    print(json.dumps(line), flush=True)
    json.dump(line, open(f"/work/exp/s34/second6-{cell}.json", "w"))
