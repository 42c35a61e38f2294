"""Per-detector flagged / precision / recall / AUROC against MY ground truth.
usage: python metrics.py SAMPLES_CSV ATTACK(A|B|A2...)
Reads every *_score / *_flagged column of naviewer's samples.csv, plus DIFT's columns
(flagged, density, posterior, spread) of the exported pass.
AUROC: higher score = more suspicious (naviewer's convention as far as documented); if a
score is oriented the other way the AUROC shows < 0.5 and is reported as is.
"""
import csv, json, sys
import numpy as np
from sklearn.metrics import roc_auc_score

csvp, atk = sys.argv[1], sys.argv[2]
gt = json.load(open("/work/exp/s29/indep/data/ground_truth.json"))
pois = {g["file"] for g in gt[atk]}
rows = list(csv.DictReader(open(csvp)))
y = np.array([r["source_key"] in pois for r in rows])
assert y.sum() == len(pois), (y.sum(), len(pois))

def num(v):
    try:
        return float(v)
    except ValueError:
        return np.nan

def line(name, score, flag):
    f = np.array(flag, bool)
    tp = int((f & y).sum()); nf = int(f.sum())
    prec = tp / nf if nf else float("nan")
    rec = tp / y.sum()
    s = np.array(score, float)
    if np.all(np.isnan(s)):
        auc = float("nan")
    else:
        s = np.where(np.isnan(s), np.nanmin(s) - 1, s)
        auc = roc_auc_score(y, s)
    return f"| {name} | {nf} | {tp} | {prec:.3f} | {rec:.3f} | {auc:.3f} |"

print(f"{csvp}: {len(rows)} samples, {int(y.sum())} poisons")
print("| detector | flagged | true poisons flagged | precision | recall | AUROC |")
print("|---|---|---|---|---|---|")
cols = rows[0].keys()
# DIFT columns (present when this export is of a DIFT pass)
if any(r["density"] for r in rows):
    fl = [r["flagged"] == "1" for r in rows]
    for sc in ("density", "posterior", "spread", "mindist"):
        print(line(f"DIFT flags / AUROC of {sc}", [num(r[sc]) for r in rows], fl))
for c in cols:
    if c.endswith("_score"):
        n = c[:-6]
        print(line(n, [num(r[c]) for r in rows], [r.get(n + "_flagged") == "1" for r in rows]))
