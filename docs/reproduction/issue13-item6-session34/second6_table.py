"""Session 34: the second round (second6.sh) against the first removal and the floor, six draws each, one row a run:
the second round's draws and mean, its gap to the floor's mean (± standard error of the difference), and the first
removal's gap (session 33's six draws).
usage: second6_table.py [MATRIX_DIR] [SECOND_DIR]  (defaults /work/exp/s33/demo6, /work/exp/s34)"""
import json, math, sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/exp/s33/demo6")
second = Path(sys.argv[2] if len(sys.argv) > 2 else "/work/exp/s34")
mean = lambda xs: sum(xs) / len(xs)
var = lambda xs: sum((x - mean(xs)) ** 2 for x in xs) / (len(xs) - 1)
print("| seed | thr | check after the retrain adds: poisons / clean (poisons left) | second removal: 6 draws (mean) | "
      "second - floor (± s.e.) | first removal - floor (± s.e.), session 33 |")
print("|---|---|---|---|---|---|")
for seed, threads in ((0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2)):
    key = f"s{seed}-t{threads}"
    path = second / f"second6-{key}.json"
    if not path.is_file():
        print(f"| {seed} | {threads} | not drawn | | | |")
        continue
    s = json.loads(path.read_text())
    r = json.loads((root / "cells" / f"na-paper-simclr-{key}" / "cell.json").read_text())
    first = [100 * d["asr"]["uniform"] for d in [r["after"]["retrain"]] + r["after"].get("retrain_repeats", [])]
    floors = [100 * d["asr"]["uniform"] for d in [r["floor"]] + r.get("floor_repeats", [])]
    if not s["second_adds"]:  # the check flagged nothing: the second removal is the first (its draws: session 33's)
        se1 = math.sqrt(var(first) / len(first) + var(floors) / len(floors))
        print(f"| {seed} | {threads} | 0 / 0 ({s['poisons_left']}) | the first removal's (nothing to add) | "
              f"{mean(first) - mean(floors):+.1f} (± {se1:.1f}) | {mean(first) - mean(floors):+.1f} (± {se1:.1f}) |")
        continue
    two = [100 * x for x in s["asr"]]
    se2 = math.sqrt(var(two) / len(two) + var(floors) / len(floors))
    se1 = math.sqrt(var(first) / len(first) + var(floors) / len(floors))
    clean = s["second_adds"] - s["second_adds_poisons"]
    print(f"| {seed} | {threads} | {s['second_adds_poisons']} / {clean} ({s['poisons_left']}) | "
          f"{' / '.join(f'{x:.1f}' for x in two)} ({mean(two):.1f}) | {mean(two) - mean(floors):+.1f} (± {se2:.1f}) | "
          f"{mean(first) - mean(floors):+.1f} (± {se1:.1f}) |")
