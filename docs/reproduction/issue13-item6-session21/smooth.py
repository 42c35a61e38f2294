"""Smoothed per-sample anchor reach (median over a sample's kNN neighbourhood) on posthoc DIFT passes with saved
embeddings: what a per-sample take-back would remove."""
import numpy as np

from naviewer.analysis.embeddings import pass_embeddings
from stored import stored_passes

Ls = (0.4, 0.5, 0.6, 0.7)
Ks = (5, 10, 20)
tot = {(k, L): [0, 0] for k in Ks for L in Ls}
for name, ws, p, s, truth in stored_passes(posthoc_only=True):
    rec = pass_embeddings(ws, p['id'])
    if rec is None: print(name, 'no emb'); continue
    X = np.array(rec[0], np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True) + 1e-12
    sim = X @ X.T
    order = np.argsort(-sim, axis=1)[:, :max(Ks) + 1]  # itself first
    f = s['flagged'].astype(bool)
    dropped = s.get('reach_dropped')
    if dropped is not None:  # as before the cluster rule: its take-backs back in
        f = f | np.asarray(dropped).astype(bool)
    r = np.nan_to_num(np.asarray(s['anchor_reach'], float))
    B = s['buffer'].astype(bool)
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
