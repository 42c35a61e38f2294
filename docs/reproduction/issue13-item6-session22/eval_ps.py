import glob, numpy as np
from sklearn.metrics import roc_auc_score
from naviewer.workspace import Workspace
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.analysis.reach import reached_flags
MAP = {'s19-demo6-': '/work/exp/s19/demo6/cells/', 's20-demo2-': '/work/exp/s20/demo2/cells/', 's20-mx-': '/work/exp/s20/mx/cells/',
       's19-mx1-': '/work/exp/s19/mx1/cells/', 's19-mx2-': '/work/exp/s19/mx2/cells/', 's18-mx-': '/work/exp/s18/mx/out/cells/', 's18-mx2-': '/work/exp/s18/mx2/out/cells/'}
tot = {}
n_pass = 0
for f in sorted(glob.glob('*.npz')):
    name = f[:-4]
    pre = next(k for k in MAP if name.startswith(k))
    ws_path = MAP[pre] + name[len(pre):] + '/workspace'
    z = np.load(f)
    ps, psf = z['score'].astype(float), z['flagged'].astype(bool)
    with Workspace.open(ws_path, read_only=True) as ws:
        truth = ground_truth_mask(ws)
        for p in ws.store.passes():
            if p['method'] != 'dift' or p['run'] == 'ps22':
                continue
            s = ws.store.pass_scores(p['id'])
            fl = s['flagged'].astype(bool)
            if 'reach_dropped' in s: fl = fl | np.asarray(s['reach_dropped']).astype(bool)
            clean, pois = fl & ~truth, fl & truth
            n_pass += 1
            ok = np.isfinite(ps)
            line = f"{name:40s} pass {p['id']} ({'e%d' % (p['epoch']+1) if p['epoch'] is not None else 'post'}): clean {clean.sum():3d} pois {pois.sum():3d} ps-finite {ok[fl].mean():.2f}"
            if clean.sum() >= 2 and pois.sum() >= 2:
                x = np.nan_to_num(ps, nan=np.nanmin(ps))
                line += f" AUROC poison>clean {roc_auc_score(truth[fl], x[fl]):.3f}; ps-flagged among clean {int((psf & clean).sum())} pois {int((psf & pois).sum())}"
            reach = np.nan_to_num(np.asarray(s['anchor_reach'], float), nan=0)
            B = s['buffer'].astype(bool)
            for L in (0.5, 0.7):
                take = fl & ~B & (reach > L) & ~psf   # anchors say clean AND patchsearch found no trigger
                take2 = fl & (reach > L) & ~psf
                k = L
                tot.setdefault(k, [0, 0, 0, 0, 0, 0])
                only = fl & ~B & (reach > L)
                tot[k][4] += int((only & ~truth).sum()); tot[k][5] += int((only & truth).sum())
                tot[k][0] += int((take & ~truth).sum()); tot[k][1] += int((take & truth).sum())
                tot[k][2] += int((take2 & ~truth).sum()); tot[k][3] += int((take2 & truth).sum())
                line += f" | L{L}: take {int((take2&~truth).sum())}c/{int((take2&truth).sum())}p"
            print(line)
print('TOTAL (two-signal outside B: clean, pois; two-signal any: clean, pois; reach only outside B: clean, pois):', tot)
print('passes', n_pass)
