"""How often patchsearch's window overlaps the true trigger box, per poison searched (from the stored pass)."""
import sys, json, numpy as np
from naviewer.workspace import Workspace
ws = Workspace.open(sys.argv[1])
gt = json.load(open(sys.argv[1] + "/ground_truth.json"))
passes = [p for p in ws.store.passes() if p.get("method") == "patchsearch"]
a = ws.store.pass_scores(int(passes[-1]["id"]))
box = np.stack([a[f"best_box_{f}"] for f in ("top", "left", "height", "width")], 1)
ious, hits, n = [], 0, 0
top = np.argsort(-np.asarray(a["score"]))[:20]
for i, s in enumerate(gt["samples"]):
    if s["kind"] == "clean" or box[i, 2] <= 0: continue
    tb = s.get("trigger", {}).get("box") or s.get("layout", {}).get("regions", {}).get("trigger")
    if tb is None: continue
    (ay, ax, ah, aw), (by, bx, bh, bw) = box[i], tb
    iy = max(0, min(ay + ah, by + bh) - max(ay, by)); ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    n += 1; hits += (iy * ix) / (bh * bw) >= 0.5
print(sys.argv[1], "poisons searched", n, "window covers >= half the trigger:", hits)
score = np.asarray(a["score"])
best = None
for i in np.argsort(-score):
    s = gt["samples"][i]
    if s["kind"] == "clean" or box[i, 2] <= 0: continue
    (ay, ax, ah, aw), (by, bx, bh, bw) = box[i], s["trigger"]["box"]
    iy = max(0, min(ay + ah, by + bh) - max(ay, by)); ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    if (iy * ix) / (bh * bw) >= 0.5:
        print("first covering sample", i, "rank", int(np.flatnonzero(np.argsort(-score) == i)[0])); break
