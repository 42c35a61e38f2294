"""Session 23: the cluster-reach rule's take-backs on every stored DIFT pass (sessions 18-20 runs, their ps22
post-hoc passes, and session 23's calibration run), and what a member floor would keep: a member of a taken-back
cluster whose own anchor reach is at most F stays flagged. Exact offline: the take-back is the last rule."""
import glob, json, sys
import numpy as np
from naviewer.workspace import Workspace
from naviewer.workflows.workspace_setup import ground_truth_mask

FLOORS = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5]
paths = sorted(set(glob.glob('/work/exp/s1[89]/*/cells/*/workspace') + glob.glob('/work/exp/s20/*/cells/*/workspace')
                   + glob.glob('/work/exp/s*/*/out/cells/*/workspace') + ['/work/exp/s23/cal/ws']))
tot = {f: [0, 0] for f in FLOORS}
dropped_tot = [0, 0]
passes = fired = 0
for path in paths:
    try:
        ws = Workspace.open(path, read_only=True)
    except Exception as exc:
        print(path, 'cannot open', exc); continue
    with ws:
        truth = ground_truth_mask(ws)
        if truth is None:
            continue
        for p in ws.store.passes():
            if p['method'] != 'dift':
                continue
            if path.endswith('s23/cal/ws') and p['id'] > 11:  # passes 12-15: the reruns with the floor in the rule
                continue
            sc = ws.store.pass_scores(p['id'])
            passes += 1
            if 'reach_dropped' not in sc or 'anchor_reach' not in sc:
                continue
            d = np.asarray(sc['reach_dropped']).astype(bool)
            if not d.any():
                continue
            fired += 1
            r = np.asarray(sc['anchor_reach'], float)
            pois, clean = int((d & truth).sum()), int((d & ~truth).sum())
            dropped_tot[0] += pois; dropped_tot[1] += clean
            row = []
            for f in FLOORS:
                keep = d & (r <= f)
                kp, kc = int((keep & truth).sum()), int((keep & ~truth).sum())
                tot[f][0] += kp; tot[f][1] += kc
                row.append(f"{f:g}:{kp}p/{kc}c")
            name = path.split('/work/exp/')[1].replace('/workspace', '')
            print(f"{name:55s} pass {p['id']:>2} ({p.get('run')}, e{p.get('epoch')}): took back {pois}p/{clean}c; "
                  f"poison reach med {np.median(r[d & truth]) if pois else float('nan'):.3f}; kept by floor " + " ".join(row), flush=True)
print("passes", passes, "rule fired on", fired, "; taken back in all: poisons", dropped_tot[0], "clean", dropped_tot[1])
print("kept back by floor (poisons, clean):", {f: tuple(v) for f, v in tot.items()})
