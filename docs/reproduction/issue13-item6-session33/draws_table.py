"""Session 33: the six demo runs with six retrains of each kept set and six floor draws (draws.sh), one row a run:
every draw, the means, mean - floor, and the spread of that gap (standard error of the difference of two means).
usage: draws_table.py [MATRIX_DIR]  (default /work/exp/s33/demo6)"""
import json, math, sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/exp/s33/demo6")
print("| seed | thr | removed (poisons left) | after retrain, uniform: 6 draws (mean) | floor: 6 draws (mean) | "
      "mean - floor (± s.e.) | first two draws - first three floors (session 31) |")
print("|---|---|---|---|---|---|---|")
for seed, threads in ((0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2)):
    r = json.loads((root / "cells" / f"na-paper-simclr-s{seed}-t{threads}" / "cell.json").read_text())
    after = [r["after"]["retrain"]] + r["after"].get("retrain_repeats", [])
    floors = [r["floor"]] + r.get("floor_repeats", [])
    a = [100 * d["asr"]["uniform"] for d in after]
    f = [100 * d["asr"]["uniform"] for d in floors]
    mean = lambda xs: sum(xs) / len(xs)
    var = lambda xs: sum((x - mean(xs)) ** 2 for x in xs) / (len(xs) - 1)
    se = math.sqrt(var(a) / len(a) + var(f) / len(f))
    left = r["poisons"] - r["dift"]["true_flags"]
    removed = r["after"]["retrain"]["removed"]
    old = mean(a[:2]) - mean(f[:3])
    print(f"| {seed} | {threads} | {removed} ({left}) | {' / '.join(f'{x:.1f}' for x in a)} ({mean(a):.1f}) | "
          f"{' / '.join(f'{x:.1f}' for x in f)} ({mean(f):.1f}) | {mean(a) - mean(f):+.1f} (± {se:.1f}) | {old:+.1f} |")
