"""Session 24: would flagging the samples spreading did not reach, by their crop score alone, add poisons or clean
samples? Over every stored DIFT pass with a crop score (the matrix and demo runs of sessions 18-23, the CIFAR cell of
session 24): for a robust-z bar Z (median + Z x 1.4826 MAD of the pass's crop scores) and a window W (crop rank within
W x |flags|), count the unflagged samples the rule would add, poisons and clean."""
import glob, sys
import numpy as np
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace

PATHS = sorted(glob.glob('/work/exp/s*/*/cells/*/workspace')) + sorted(glob.glob('/work/exp/s*/*/out/cells/*/workspace')) \
    + ['/work/exp/s24/cifar/ws']
ZS, WS = (4, 6, 8, 10, 15), (1.0, 2.0)
tot = {(z, w): [0, 0] for z in ZS for w in WS}
rows = 0
for path in PATHS:
    with Workspace.open(path, read_only=True) as ws:
        truth = np.asarray(ground_truth_mask(ws), bool)
        for p in ws.store.passes():
            if p['method'] != 'dift':
                continue
            s = ws.store.pass_scores(p['id'])
            if 'crop_score' not in s or 'flagged' not in s:
                continue
            c = np.asarray(s['crop_score'], float); f = np.asarray(s['flagged'], bool)
            if not np.isfinite(c).any() or f.sum() == 0:
                continue
            rows += 1
            med = np.nanmedian(c); mad = 1.4826 * np.nanmedian(np.abs(c - med))
            z = (c - med) / max(mad, 1e-12)
            rank = np.empty(c.size, int); rank[np.argsort(-np.nan_to_num(c, nan=-np.inf))] = np.arange(c.size)
            line = [path.split('/exp/')[1].replace('/workspace', '').replace('/cells', ''), f"pass {p['id']} ep {p['epoch']}",
                    f"flags {f.sum()} ({(f & truth).sum()}P) missed {(truth & ~f).sum()}"]
            for zb in ZS:
                for w in WS:
                    add = ~f & (z > zb) & (rank < w * f.sum())
                    tot[(zb, w)][0] += int((add & truth).sum()); tot[(zb, w)][1] += int((add & ~truth).sum())
                    if w == 1.0:
                        line.append(f"z{zb}:+{(add & truth).sum()}P/{(add & ~truth).sum()}C")
            print(' | '.join(line), flush=True)
print(f"\n{rows} passes; totals (poisons added / clean added):")
for (zb, w), (pp, cc) in tot.items():
    print(f"  Z {zb:>2} window {w:g} x flags: +{pp} poisons, +{cc} clean")
