import json
from pathlib import Path
HERE = Path(__file__).parent
D = HERE.parent / "issue13-item6-session14"  # the draws records
reach = {"s0-t1": (4, 1.00), "s0-t2": (8, 0.43), "s1-t1": (20, 1.03), "s1-t2": (7, 0.76), "s2-t1": (1, 0.17), "s2-t2": (34, 0.38)}
poison_reach = {"s0-t1": "0.00 / 0.00", "s0-t2": "0.00 / 0.01", "s1-t1": "0.00 / 0.06", "s1-t2": "0.00 / 0.04", "s2-t1": "0.00 / 0.01", "s2-t2": "0.00"}
print("| seed / threads | clean flags: one cluster of (reach) | poison clusters' reach | ASR after, accept-all: mean of two | floor: two draws (mean) | accept-all mean - floor mean | oracle retrain (exactly the poisons removed) | oracle - floor mean |")
print("|---|---|---|---|---|---|---|---|")
for s in range(3):
    for t in (1, 2):
        k = f"s{s}-t{t}"; w = f"ws-36-{k}"
        draws = json.loads((D / f"{w}-draws.json").read_text())
        f2p = HERE / f"{w}-floor2.json"
        f2 = json.loads(f2p.read_text()) if f2p.exists() else {}
        a = [100 * draws["first"]["asr"]["uniform"], 100 * draws["second"]["asr"]["uniform"]]
        fl = [100 * draws["floor"]["asr"]["uniform"]] + ([100 * f2["floor2"]["asr"]["uniform"]] if "floor2" in f2 else [])
        am, fm = sum(a) / 2, sum(fl) / len(fl)
        o = 100 * f2["oracle"]["asr"]["uniform"] if "oracle" in f2 else None
        n, r = reach[k]
        print(f"| {s} / {t} | {n} ({r:.2f}) | {poison_reach[k]} | {am:.1f} | {' / '.join(f'{x:.1f}' for x in fl)} ({fm:.1f}) | {am - fm:+.1f} | "
              + (f"{o:.1f} | {o - fm:+.1f} |" if o is not None else "- | - |"))
