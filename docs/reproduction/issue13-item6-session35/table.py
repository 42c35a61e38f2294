"""Session 35: the demo's recipe with accept-all's check after the retrain, as matrix cells (matrix6.sh), one row a
run: DIFT's flags, the first removal, what the check after the retrain added, every draw of the first and of the
second removal and of the floor, and each removal's mean minus the floor's (± the standard error of that difference).
usage: table.py [MATRIX_DIR]  (default /work/exp/s35/m)"""
import json, math, sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/exp/s35/m")
mean = lambda xs: sum(xs) / len(xs)
var = lambda xs: sum((x - mean(xs)) ** 2 for x in xs) / (len(xs) - 1) if len(xs) > 1 else float("nan")


def draws(first, repeats):
    return [100 * d["asr"]["uniform"] for d in [first] + list(repeats or [])]


def gap(a, f):
    return f"{mean(a) - mean(f):+.1f} (± {math.sqrt(var(a) / len(a) + var(f) / len(f)):.1f})"


print("| seed | thr | DIFT flags at epoch (P / R %) | first removal (poisons left) | check after the retrain adds: "
      "poisons / clean | floor: draws (mean) | first removal: draws (mean) | first - floor | recipe's removal: draws "
      "(mean) | **recipe - floor** |")
print("|---|---|---|---|---|---|---|---|---|---|")
for seed, threads in ((0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2)):
    path = root / "cells" / f"na-paper-simclr-s{seed}-t{threads}" / "cell.json"
    if not path.is_file():
        print(f"| {seed} | {threads} | not run yet |")
        continue
    r = json.loads(path.read_text())
    d, after = r["dift"], r["after"]
    cleared = (d.get("trigger_check") or {}).get("cleared_poisons", 0)
    left = r["poisons"] - (d["true_flags"] - cleared)
    check = after.get("check") or {}
    added, added_p = len(check.get("added") or []), check.get("added_poisons", 0)
    f = draws(r["floor"], r.get("floor_repeats"))
    a = draws(after["retrain"], after.get("retrain_repeats"))
    s = draws(after["second"], after.get("second_repeats")) if after.get("second") else a
    fmt = lambda xs: " / ".join(f"{x:.1f}" for x in xs) + f" ({mean(xs):.1f})"
    print(f"| {seed} | {threads} | {d['flagged']} at {d['epoch'] + 1} ({100 * d['precision']:.0f} / {100 * d['recall']:.0f}) | "
          f"{after['retrain']['removed']} ({left}) | {added_p} / {added - added_p} | {fmt(f)} | {fmt(a)} | {gap(a, f)} | "
          f"{fmt(s) if after.get('second') else 'the first (nothing added)'} | **{gap(s, f)}** |")
