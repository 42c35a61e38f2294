"""``naviewer bench responsiveness``: GUI-thread delays while a real tiny training runs behind the window.

Each run is a fresh process (``python -m naviewer.gui.stall``): the main window trains a tiny
SimCLR in its worker while a 10 ms timer on the GUI thread records its gaps. The baseline is the
same run with the training monitor detached (no plotting), interleaved with the monitored runs so
load swings hit both. Also reported: the GUI gaps during the one-off ``import torch`` in a worker.

``--import`` (issue 17): the one-off import alone, interleaved fresh processes: the old way (the first
job imports torch in its worker while the window is up) against the new one (the window preloads the
engine when it first shows, ctypes-mapped libraries first; the first job's import then finds it loaded).
Reported per way: the largest GUI-thread gap while the import runs, and the gap at the first job.
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
    parser.add_argument("--import", dest="import_only", action="store_true",
                        help="instead: the one-off torch import, in the first job's worker vs preloaded when the window shows")
    parser.set_defaults(func=run)
    return parser


def _one(seconds: float, monitor: bool, extra: "list[str] | None" = None) -> dict:
    env = dict(os.environ)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    argv = [sys.executable, "-m", "naviewer.gui.stall", "--seconds", str(seconds)] + ([] if monitor else ["--no-monitor"])
    argv += extra or []
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"stall probe failed (exit {out.returncode}):\n{out.stderr[-2000:]}")


def run_import(repeat: int) -> int:
    runs: dict[bool, list[dict]] = {False: [], True: []}
    for _ in range(max(1, repeat)):
        for preload in (False, True):
            runs[preload].append(_one(0, True, ["--import-only"] + (["--preload"] if preload else [])))
    old = [r["torch_import_gaps"]["max_ms"] for r in runs[False]]
    at_show = [r["preload"]["gaps"]["max_ms"] for r in runs[True]]
    at_job = [r["torch_import_gaps"]["max_ms"] for r in runs[True]]
    each = lambda values: " / ".join(f"{v:.0f}" for v in values)  # noqa: E731
    print("largest GUI-thread gap (10 ms timer), fresh process per run")
    print(f"  before: import in the first job's worker             {each(old):>24s} ms  (median {statistics.median(old):.0f})")
    print(f"  after:  preload when the window shows (before work)  {each(at_show):>24s} ms  (median "
          f"{statistics.median(at_show):.0f}; ctypes dlopen "
          f"{statistics.median(r['preload'].get('dlopen_s', 0) for r in runs[True]):.1f} s, import "
          f"{statistics.median(r['preload'].get('import_s', 0) for r in runs[True]):.1f} s)")
    print(f"  after:  the first job's import (already loaded)      {each(at_job):>24s} ms  (median {statistics.median(at_job):.0f})")
    print(f"  stall at the first job, after/before: {statistics.median(at_job) / statistics.median(old):.2f}x; "
          f"stall while preloading vs the old import: {statistics.median(at_show) / statistics.median(old):.2f}x")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.import_only:
        return run_import(args.repeat)
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
