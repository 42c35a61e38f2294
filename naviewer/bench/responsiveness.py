"""``naviewer bench responsiveness``: GUI-thread delays while a real tiny training runs behind the window.

Each run is a fresh process (``python -m naviewer.gui.stall``): the main window trains a tiny
SimCLR in its worker while a 10 ms timer on the GUI thread records its gaps. The baseline is the
same run with the training monitor detached (no plotting), interleaved with the monitored runs so
load swings hit both. Also reported: the GUI gaps during the one-off ``import torch`` in a worker.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser("responsiveness", help="GUI-thread gaps during training: monitor on vs off", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="pairs of runs (default 3)")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per run (default 3)")
    parser.set_defaults(func=run)
    return parser


def _one(seconds: float, monitor: bool) -> dict:
    env = dict(os.environ)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    argv = [sys.executable, "-m", "naviewer.gui.stall", "--seconds", str(seconds)] + ([] if monitor else ["--no-monitor"])
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"stall probe failed (exit {out.returncode}):\n{out.stderr[-2000:]}")


def run(args: argparse.Namespace) -> int:
    results: dict[bool, list[dict]] = {False: [], True: []}
    for _ in range(max(1, args.repeat)):
        for monitor in (False, True):
            results[monitor].append(_one(args.seconds, monitor))
    print(f"{'run':42s} {'max gap (each)':>24s} {'median max':>11s} {'p99 (each)':>20s} {'steps':>6s}")
    for monitor, name in ((False, "baseline: training, monitor detached"), (True, "training, monitor plotting every step")):
        runs = results[monitor]
        maxes = [r["max_ms"] for r in runs]
        print(f"{name:42s} {' / '.join(f'{m:.0f}' for m in maxes):>21s} ms {statistics.median(maxes):8.0f} ms "
              f"{' / '.join(format(r['p99_ms'], '.0f') for r in runs):>17s} ms {statistics.median(r['steps'] for r in runs):6.0f}")
    base = statistics.median(r["max_ms"] for r in results[False])
    mon = statistics.median(r["max_ms"] for r in results[True])
    print(f"monitor vs baseline (median max gap): {mon / base:.2f}x")
    imports = results[False] + results[True]
    print("one-off torch import in a worker: " + ", ".join(
        f"{r['torch_import_s']:.1f} s (max gap {r['torch_import_gaps']['max_ms']:.0f} ms)" for r in imports[:3]))
    return 0
