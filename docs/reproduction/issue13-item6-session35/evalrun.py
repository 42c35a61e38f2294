"""Session 35: one product run of the demo's recipe (demo --no-gui, finetune --accept-all with the check after the
retrain): the first retrain's and the second's uniform ASR by the matrix's evaluator, and what each round removed.
usage: evalrun.py WS THREADS -> one JSON line"""
import json, sys
import numpy as np, torch
from naviewer.jobs import ensure_context
from naviewer.workflows.matrix import _Evaluator
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace

path, threads = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(threads)
ctx = ensure_context(None)
with Workspace.open(path) as ws:
    truth = ground_truth_mask(ws)
    log = ws.store.audit_log()
    passes = {p["id"]: p for p in ws.store.passes()}
    rounds = {}
    for row in log:
        if row["new"] == "confirmed" and row["note"].startswith("accept-all of detection pass"):
            pid = int(row["note"].rsplit(" ", 1)[1])
            rounds.setdefault(passes[pid]["method"], []).append(row["sample_id"])
    first = np.asarray(rounds.get("dift", []), int)
    second = np.asarray(rounds.get("patchsearch", []), int)
    confirmed = ws.store.review_states() == "confirmed"
    check = [p for p in passes.values() if p["method"] == "patchsearch" and p["epoch"] is None]
    evaluator = _Evaluator(ws, ctx, "cpu")
    out = {"ws": path, "first_removed": int(first.size), "first_poisons": int(truth[first].sum()),
           "check_flagged": int(np.asarray(ws.store.pass_scores(check[-1]["id"])["flagged"], bool).sum()) if check else None,
           "second_adds": int(second.size), "second_adds_poisons": int(truth[second].sum()) if second.size else 0,
           "poisons_left": int((truth & ~confirmed).sum()), "clean_removed": int((~truth & confirmed).sum())}
    out["first_asr"] = evaluator(ws.checkpoint_dir("demo") / "last.pt")["asr"]["uniform"]
    again = ws.checkpoint_dir("demo-again-1") / "last.pt"
    if again.is_file():
        ev = evaluator(again)
        out["second_asr"], out["second_knn"] = ev["asr"]["uniform"], ev["knn_acc"]
    print(json.dumps(out), flush=True)
