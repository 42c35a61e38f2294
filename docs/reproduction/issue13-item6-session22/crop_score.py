"""Does DIFT's own crop score (stored per sample) part the clean flags from the poisons, alone or with the reach?"""
import sys
import numpy as np
sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parent.parent / 'issue13-item6-session21'))
from stored import stored_passes
from sklearn.metrics import roc_auc_score

tot = {}
for name, _ws, p, s, truth in stored_passes():
    if p['run'] == 'ps22':  # the DIFT passes run_ps.py added beside its PatchSearch passes: not the runs' own
        continue
    f = s['flagged'].astype(bool)
    if 'reach_dropped' in s:
        f = f | np.asarray(s['reach_dropped']).astype(bool)
    B = s['buffer'].astype(bool)
    reach = np.nan_to_num(np.asarray(s['anchor_reach'], float), nan=0.0)
    crop = np.asarray(s.get('crop_score', np.full(len(f), np.nan)), float)
    tag = name + (' post-hoc' if p['epoch'] is None else f" e{p['epoch'] + 1}")
    clean, pois = f & ~truth, f & truth
    line = f"{tag:48s} clean {clean.sum():3d} pois {pois.sum():3d}"
    ok = np.isfinite(crop)
    if clean.sum() >= 2 and pois.sum() >= 2 and ok[f].all():
        # higher crop score = more suspicious? AUROC of poison vs clean flag by crop score
        a = roc_auc_score(truth[f], crop[f])
        line += f" crop AUROC(poison high) {a:.3f}; clean median {np.median(crop[clean]):.3f} pois median {np.median(crop[pois]):.3f}"
        q = np.quantile(crop[pois], 0.02)
        line += f" | pois q02 {q:.3f}"
    else:
        line += f" crop finite {ok[f].mean():.2f}"
    for L in (0.5, 0.7):
        for c in ('q10',):
            # take back: reach > L and crop below the flags' 10th percentile?  (oracle-free: the flags' own distribution)
            thr = np.quantile(crop[f][np.isfinite(crop[f])], 0.3) if np.isfinite(crop[f]).any() else -np.inf
            take = f & ~B & (reach > L) & (crop < thr)
            k = (L, c)
            tot.setdefault(k, [0, 0])
            tot[k][0] += int((take & ~truth).sum()); tot[k][1] += int((take & truth).sum())
    print(line)
print('TOTAL take-back (clean, poisons):', tot)
