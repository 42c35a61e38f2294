"""Session 35: would a trigger-check limit of 0.2 change the kept set of the runs that had no check at 0.5? PatchSearch
on each cell's detection-epoch encoder (as the check runs it), then what the check would clear at 0.2."""
import json, shutil, sys, numpy as np, torch
from naviewer.workspace import Workspace
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.analysis.reach import trigger_check_clears, TRIGGER_CHECK_COVERAGE
from naviewer.workflows.posthoc import posthoc_detect
c, threads = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(threads)
src = f"m/cells/na-paper-simclr-{c}"
dst = f"/tmp/verify-{c}"
shutil.rmtree(dst, ignore_errors=True); shutil.copytree(f"{src}/workspace", dst)
cell = json.load(open(f"{src}/cell.json"))
with Workspace.open(dst) as ws:
    truth = np.asarray(ground_truth_mask(ws), bool)
    pid = cell["dift"]["pass_id"]
    sc = ws.store.pass_scores(pid)
    fl, reach = np.asarray(sc["flagged"], bool), np.asarray(sc["anchor_reach"], float)
    out = posthoc_detect(ws, f"{src}/detection-epoch.pt", run="verify", detectors=("patchsearch",))
    patch = np.asarray(ws.store.pass_scores(out.detector_passes["patchsearch"])["flagged"], bool)
    for L in (0.5, 0.2):
        cleared, share = trigger_check_clears(fl, reach, patch, L, TRIGGER_CHECK_COVERAGE)
        above = int((fl & (reach > L)).sum())
        print(c, f"L={L}: flags reached above {above}; PatchSearch flags {share:.0%} of the flags; clears {int((~truth[cleared]).sum())} clean / {int(truth[cleared].sum())} poison", flush=True)
