"""Smoothed per-sample anchor reach (median over a sample's kNN neighbourhood) on posthoc DIFT passes with saved
embeddings: what a per-sample take-back would remove."""
import glob, json, numpy as np
from naviewer.workspace import Workspace
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.analysis.embeddings import pass_embeddings
paths = sorted(glob.glob('/work/exp/s*/*/cells/*/workspace')) + sorted(glob.glob('/work/exp/s*/*/out/cells/*/workspace'))
Ls = (0.4, 0.5, 0.6, 0.7)
Ks = (5, 10, 20)
tot = {(k, L): [0, 0] for k in Ks for L in Ls}
for path in paths:
    with Workspace.open(path, read_only=True) as ws:
        truth = ground_truth_mask(ws)
        for p in ws.store.passes():
            if p['method'] != 'dift' or p['epoch'] is not None or 'anchor_reach' not in p['scores']:
                continue
            rec = pass_embeddings(ws, p['id'])
            if rec is None: print(path, 'no emb'); continue
            X = np.array(rec[0], np.float32)
            X /= np.linalg.norm(X, axis=1, keepdims=True) + 1e-12
            sim = X @ X.T
            order = np.argsort(-sim, axis=1)[:, :max(Ks) + 1]  # itself first
            s = ws.store.pass_scores(p['id'])
            f = s['flagged'].astype(bool)
            dropped = s.get('reach_dropped')
            if dropped is not None:  # as before the cluster rule: its take-backs back in
                f = f | np.asarray(dropped).astype(bool)
            r = np.nan_to_num(np.asarray(s['anchor_reach'], float))
            B = s['buffer'].astype(bool)
            name = path.split('/cells/')[0].split('/')[-1] + '/' + path.split('/cells/')[1].split('/')[0]
            print(f"{name:40s} flags {f.sum()} clean {(f&~truth).sum()} k={p['settings'].get('config',{}).get('k') if isinstance(p.get('settings'),dict) else '?'}")
            out = []
            for k in Ks:
                sm = np.median(r[order[:, :k + 1]], axis=1)
                for L in Ls:
                    take = f & ~B & (sm > L)
                    c, q = int((take & ~truth).sum()), int((take & truth).sum())
                    tot[(k, L)][0] += c; tot[(k, L)][1] += q
                    out.append(f"k{k} L{L}: {c}/{q}")
            print('    clean/poison taken:', ' '.join(out))
print('TOTAL clean/poison', {f"k{k} L{L}": tuple(v) for (k, L), v in tot.items()})
