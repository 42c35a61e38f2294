"""Markdown rows and growth exponents from scale.json (what bench detect --scale --json wrote)."""
import json
import sys

import numpy as np

figures = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "scale.json"))
print("| N x D | backend | wall (s) | CPU (s) | build / query / recall check (s) | peak RSS | kNN recall@10 | planted P / R |")
print("|---|---|---|---|---|---|---|---|")
for r in sorted(figures["rows"], key=lambda r: (r["backend"], r["n"])):
    t, m = r["timings"], r["metrics"]
    name = {"ivfsq": "IVF-SQ8 (lists of ~256, nprobe 32)", "hnsw": "HNSW (M 8, ef 64, 64-d PCA + re-rank)",
            "ivffs": "IVF-PQ4 fast scan (lists of ~256, nprobe 32)"}.get(
        r["backend"], r["backend"])
    print(f"| {r['n']:,} x {figures['dim']} | {name} | {r['wall_s']:,.0f} | {r['cpu_s']:,.0f} | "
          f"{t.get('knn_build', 0):,.0f} / {t.get('knn_query', 0):,.0f} / {t.get('knn_recall_check', 0):,.0f} | "
          f"{r['peak_rss_mb'] / 1024:.2f} GB | {r['knn_recall']:.3f} | "
          f"{m['final_precision']:.3f} / {m['final_recall']:.3f} |")
for backend in sorted({r["backend"] for r in figures["rows"]}):
    pts = sorted((r["n"], r["wall_s"], r["cpu_s"]) for r in figures["rows"] if r["backend"] == backend)
    if len(pts) >= 2:
        n = np.log([p[0] for p in pts])
        wall = np.polyfit(n, np.log([p[1] for p in pts]), 1)[0]
        cpu = np.polyfit(n, np.log([p[2] for p in pts]), 1)[0]
        print(f"\n{backend}: wall time ~ N^{wall:.2f}, CPU time ~ N^{cpu:.2f} over {', '.join(f'{p[0]:,}' for p in pts)}")
