"""Session 35: the README's "What to expect" ranges over the six runs (matrix6.sh's cells).
usage: ranges.py [MATRIX_DIR [OVERRIDE_DIR]]  (default /work/exp/s35/m /work/exp/s35/m02): the cells OVERRIDE_DIR holds
(the runs whose kept set the trigger check at 0.2 changes, matrix02.sh) replace MATRIX_DIR's (0.5)"""
import json, math, sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/exp/s35/m")
override = Path(sys.argv[2] if len(sys.argv) > 2 else "/work/exp/s35/m02")
mean = lambda xs: sum(xs) / len(xs)
rows = {}
for seed, threads in ((0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2)):
    key = f"na-paper-simclr-s{seed}-t{threads}"
    path = override / "cells" / key / "cell.json"
    r = json.loads((path if path.is_file() else root / "cells" / key / "cell.json").read_text())
    d, after = r["dift"], r["after"]
    final = [after["second"]] + after.get("second_repeats", []) if after.get("second") else \
        [after["retrain"]] + after.get("retrain_repeats", [])
    first = [after["retrain"]] + after.get("retrain_repeats", [])
    floors = [r["floor"]] + r.get("floor_repeats", [])
    asr = lambda ds: [100 * x["asr"]["uniform"] for x in ds]
    check = after.get("check") or {}
    cleared = (d.get("trigger_check") or {}).get("cleared", 0)
    rows[(seed, threads)] = {
        "epoch": d["epoch"] + 1, "flagged": d["flagged"], "P": 100 * d["precision"], "R": 100 * d["recall"],
        "cleared": cleared, "left": r["poisons"] - (d["true_flags"] - (d.get("trigger_check") or {}).get("cleared_poisons", 0)),
        "adds_p": check.get("added_poisons", 0), "adds_c": len(check.get("added") or []) - check.get("added_poisons", 0),
        "before": 100 * r["before"]["asr"]["uniform"], "final": mean(asr(final)), "final_draws": asr(final),
        "floor": mean(asr(floors)), "floor_draws": asr(floors), "gap": mean(asr(final)) - mean(asr(floors)),
        "first_gap": mean(asr(first)) - mean(asr(floors)), "n": len(final), "nf": len(floors),
        "knn": 100 * mean([x["knn_acc"] for x in final])}
span = lambda k, f="{:.0f}": f"{f.format(min(v[k] for v in rows.values()))}-{f.format(max(v[k] for v in rows.values()))}"
for k, v in rows.items():
    print(k, {x: (round(y, 1) if isinstance(y, float) else y) for x, y in v.items() if not x.endswith("draws")})
print("flags at epoch", span("epoch"), "| flagged", span("flagged"), "| P", span("P"), "R", span("R"))
print("trigger check clears", sorted(v["cleared"] for v in rows.values()))
print("first removal leaves poisons", sorted(v["left"] for v in rows.values()))
print("check adds poisons / clean", [(v["adds_p"], v["adds_c"]) for v in rows.values()])
print("ASR before", span("before", "{:.1f}"), "-> final mean", span("final", "{:.1f}"),
      "single draws", f"{min(min(v['final_draws']) for v in rows.values()):.1f}-{max(max(v['final_draws']) for v in rows.values()):.1f}")
print("floor mean", span("floor", "{:.1f}"), "single", f"{min(min(v['floor_draws']) for v in rows.values()):.1f}-{max(max(v['floor_draws']) for v in rows.values()):.1f}")
print("gap (recipe)", sorted(round(v["gap"], 1) for v in rows.values()), "| gap (first removal alone)", sorted(round(v["first_gap"], 1) for v in rows.values()))
print("kNN after", span("knn"), "| draws", sorted({v["n"] for v in rows.values()}), "floors", sorted({v["nf"] for v in rows.values()}))
