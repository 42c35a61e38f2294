"""Session 35: the trigger check's reach limit replayed on the six cells' stored passes: at limit L, the DIFT flags
reached above L in which the detection-epoch PatchSearch finds no trigger (what accept-all would leave), clean / poison."""
import json, numpy as np
from naviewer.workspace import Workspace
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.analysis.reach import trigger_check_clears, TRIGGER_CHECK_COVERAGE
for c in ("s0-t1", "s0-t2", "s1-t1", "s1-t2", "s2-t1", "s2-t2"):
    d = f"m/cells/na-paper-simclr-{c}"
    cell = json.load(open(f"{d}/cell.json"))
    with Workspace.open(f"{d}/workspace", read_only=True) as ws:
        truth = np.asarray(ground_truth_mask(ws), bool)
        pid = cell["dift"]["pass_id"]
        sc = ws.store.pass_scores(pid)
        fl, reach = np.asarray(sc["flagged"], bool), np.asarray(sc["anchor_reach"], float)
        tc = cell["dift"].get("trigger_check")
        ps = tc["patchsearch_pass"] if tc else None
        if ps is None:  # no check ran at 0.5: the detection-time PatchSearch of the matrix's post-hoc detectors?
            print(c, "no trigger check pass; clean flags", int((fl & ~truth).sum()), "reach", np.round(np.sort(reach[fl & ~truth]), 2)[:20], "poison reach max", round(float(reach[fl & truth].max()), 3))
            continue
        patch = np.asarray(ws.store.pass_scores(ps)["flagged"], bool)
        out = []
        for L in (0.5, 0.3, 0.2, 0.15, 0.1):
            cleared, share = trigger_check_clears(fl, reach, patch, L, TRIGGER_CHECK_COVERAGE)
            out.append(f"L={L}: {int((~truth[cleared]).sum())} clean / {int(truth[cleared].sum())} poison")
        print(c, f"flags {int(fl.sum())} (clean {int((fl & ~truth).sum())}), PS covers {share if False else ''}", "; ".join(out),
              "| poison reach max", round(float(reach[fl & truth].max()), 3))
