"""The demo6 table for results.md: per cell the flags, the two retrains and three floors (uniform, the README's
protocol), the paper protocol's means, and the remedy (clean cluster rejected) where run.
Usage: python demo6_table.py [OUT] (default OUT: the folder demo6.sh wrote into; session 28 ran it on its own OUT)."""
import json
import sys
import numpy as np
OUT = sys.argv[1] if len(sys.argv) > 1 else "OUT"
r = json.load(open(f"{OUT}/demo6/matrix.json"))
try:
    remedy = json.load(open(f"{OUT}/remedy.json"))
except OSError:
    remedy = {}
pct = lambda v: f"{100 * v:.1f}"
print("| seed | thr | flags at epoch | flags (P / R %) | clean flags | after retrain, uniform: draws (mean) | floor, uniform: draws (mean) | mean - floor | paper protocol: after mean / floor mean | clean cluster rejected: draws (mean - floor) | kNN acc after |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for c in sorted(r["cells"], key=lambda c: (c["cell"]["threads"], c["cell"]["seed"])):
    fl = [c["floor"]] + c.get("floor_repeats", [])
    a = c["after"]; rt = [a["retrain"]] + a.get("retrain_repeats", [])
    u = [x["asr"]["uniform"] for x in rt]; fu = [x["asr"]["uniform"] for x in fl]
    p = [x["asr"]["paper"] for x in rt]; fp = [x["asr"]["paper"] for x in fl]
    d = c["dift"]
    clean = round(d["flagged"] * (1 - d["precision"]))
    rem = remedy.get(c["key"])
    if rem:
        ru = [x["asr"]["uniform"] for x in rem["draws"]]
        rtext = " / ".join(pct(v) for v in ru) + f" ({100 * (np.mean(ru) - np.mean(fu)):+.1f})"
    else:
        rtext = "-"
    print(f"| {c['cell']['seed']} | {c['cell']['threads']} | {d['epoch'] + 1} | {d['flagged']} ({100 * d['precision']:.0f} / {100 * d['recall']:.0f}) | {clean} | "
          f"{' / '.join(pct(v) for v in u)} ({pct(np.mean(u))}) | {' / '.join(pct(v) for v in fu)} ({pct(np.mean(fu))}) | "
          f"{100 * (np.mean(u) - np.mean(fu)):+.1f} | {pct(np.mean(p))} / {pct(np.mean(fp))} | {rtext} | "
          + " / ".join("%.0f" % (100 * x["knn_acc"]) for x in rt) + " |")
