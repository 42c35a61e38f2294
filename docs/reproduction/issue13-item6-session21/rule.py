"""Per-sample anchor reach inside DIFT's flags: what would a per-sample take-back remove, per stored pass?"""
import numpy as np

from stored import stored_passes

Ls = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
tot = {L: [0, 0] for L in Ls}
for name, _ws, p, s, truth in stored_passes():
    f = s['flagged'].astype(bool)
    reach = np.asarray(s['anchor_reach'], float)
    B = s['buffer'].astype(bool)
    dropped = s.get('reach_dropped')
    nan = np.isnan(reach[f]).sum()
    tag = name + (' post-hoc' if p['epoch'] is None else f" training e{p['epoch'] + 1}")
    line = f"{tag:55s} flags {f.sum():4d} poisons {truth.sum():3d} clean-flags {(f&~truth).sum():3d} missed {(truth&~f).sum():3d} nanreach {nan}"
    if dropped is not None: line += f" already-dropped {int(np.asarray(dropped).astype(bool).sum())}"
    print(line)
    r = np.nan_to_num(reach, nan=0.0)
    pois_r = np.sort(r[f & truth])[::-1][:6]
    print('     top poison reach', np.round(pois_r, 2), ' in B:', int((f & truth & B & (r > 0.5)).sum()), 'of >0.5')
    out = []
    for L in Ls:
        take = f & ~B & (r > L)
        c, q = int((take & ~truth).sum()), int((take & truth).sum())
        tot[L][0] += c; tot[L][1] += q
        out.append(f"L{L}: clean {c} poison {q}")
    print('    ', ' | '.join(out))
print('TOTAL', {L: tuple(v) for L, v in tot.items()})
