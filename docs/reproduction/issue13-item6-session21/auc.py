"""Within DIFT's flags of every stored pass: AUROC of the per-sample anchor reach, clean flags vs poisons."""
import numpy as np
from sklearn.metrics import roc_auc_score

from stored import stored_passes

for name, _ws, p, s, truth in stored_passes():
    f = s['flagged'].astype(bool)
    if s.get('reach_dropped') is not None:
        f = f | np.asarray(s['reach_dropped']).astype(bool)
    r = np.nan_to_num(np.asarray(s['anchor_reach'], float))
    kind = 'training e%d' % (p['epoch'] + 1) if p['epoch'] is not None else 'post-hoc'
    c = int((f & ~truth).sum())
    auc = roc_auc_score(truth[f], -r[f]) if 0 < c < f.sum() else float('nan')
    print(f"| {name} | {kind} | {f.sum()} | {c} | {auc:.3f} | {np.median(r[f & truth]):.2f} | {np.median(r[f & ~truth]) if c else float('nan'):.2f} |")
