"""Within DIFT's flags of every stored pass: AUROC of the per-sample anchor reach, clean flags vs poisons."""
import glob, numpy as np
from sklearn.metrics import roc_auc_score
from naviewer.workspace import Workspace
from naviewer.workflows.workspace_setup import ground_truth_mask
paths = sorted(glob.glob('/work/exp/s*/*/cells/*/workspace')) + sorted(glob.glob('/work/exp/s*/*/out/cells/*/workspace'))
for path in paths:
    with Workspace.open(path, read_only=True) as ws:
        truth = ground_truth_mask(ws)
        for p in ws.store.passes():
            if p['method'] != 'dift' or 'anchor_reach' not in p['scores']:
                continue
            s = ws.store.pass_scores(p['id'])
            f = s['flagged'].astype(bool)
            if s.get('reach_dropped') is not None:
                f = f | np.asarray(s['reach_dropped']).astype(bool)
            r = np.nan_to_num(np.asarray(s['anchor_reach'], float))
            name = path.split('/cells/')[0].split('/')[-1] + '/' + path.split('/cells/')[1].split('/')[0]
            kind = 'training e%d' % (p['epoch'] + 1) if p['epoch'] is not None else 'post-hoc'
            c = int((f & ~truth).sum())
            auc = roc_auc_score(truth[f], -r[f]) if 0 < c < f.sum() else float('nan')
            print(f"| {name} | {kind} | {f.sum()} | {c} | {auc:.3f} | {np.median(r[f & truth]):.2f} | {np.median(r[f & ~truth]) if c else float('nan'):.2f} |")
