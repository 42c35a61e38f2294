"""The item-6 table from the runs' records (one.py's JSON, draw2.py's draws, the metrics)."""
import json, glob
from pathlib import Path
rows = []
for rec_file in sorted(glob.glob("ws-36-s*-t*.json")):
    if rec_file.endswith("-draws.json"):
        continue
    rec = json.load(open(rec_file))
    ws = Path(rec_file[:-5])
    demo = rec.get("demo") or {}
    ms = [json.loads(l) for l in open(ws / "runs/demo/metrics.jsonl") if l.strip()]
    ep = [m for m in ms if m.get("kind") == "epoch" and m.get("asr") is not None]
    stop = demo.get("detection_epoch")
    before = [m for m in ep if m["epoch"] <= stop][-1]
    after = ep[-1]
    draws = ws.with_name(ws.name + "-draws.json")
    d = json.load(open(draws)) if draws.exists() else None
    a1 = d["first"]["asr"]["uniform"] if d else after["asr"]
    a2 = d["second"]["asr"]["uniform"] if d else None
    floor = rec["floor"]["asr"]
    mean = a1 if a2 is None else (a1 + a2) / 2
    rows.append((rec["seed"], rec["threads"], stop + 1, demo["flagged"], 100 * demo["precision"], 100 * demo["recall"],
                 100 * before["asr"], 100 * a1, None if a2 is None else 100 * a2, 100 * mean, 100 * floor,
                 100 * (mean - floor), 100 * (d["first"]["knn_acc"] if d else after["knn_acc"]),
                 None if not d else 100 * d["first"]["asr"]["paper"], None if not d or a2 is None else 100 * d["second"]["asr"]["paper"],
                 None if not d else 100 * d["floor"]["asr"]["paper"]))
print("| seed | thr | flags at epoch | flags (P / R %) | ASR before | after retrain, uniform: draws (mean) | floor | mean - floor | after, paper protocol: draws | floor, paper | kNN acc after |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
f = lambda v: "-" if v is None else f"{v:.1f}"
for r in sorted(rows, key=lambda r: (r[1], r[0])):
    draws = f(r[7]) if r[8] is None else f"{f(r[7])} / {f(r[8])} ({f(r[9])})"
    paper = "-" if r[13] is None else (f(r[13]) if r[14] is None else f"{f(r[13])} / {f(r[14])}")
    print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} ({r[4]:.0f} / {r[5]:.0f}) | {r[6]:.0f} | {draws} | {f(r[10])} | {r[11]:+.1f} | {paper} | {f(r[15])} | {r[12]:.0f} |")
