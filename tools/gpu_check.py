#!/usr/bin/env python3
"""The ready GPU check: what only a GPU can show, in one run of under 10 minutes on one large GPU.

Run it whenever a task is lent a GPU machine, and commit the table to ``docs/performance.md``::

    python tools/gpu_check.py --out gpu-check --budget 500   # on the GPU machine (308 s on an H200, 2026-12-04)
    python tools/gpu_check.py --quick --out /tmp/gc      # anywhere, CPU-sized (~2 min): keeps it from rotting

Each section is one naviewer command in a child process (its own GPU memory, a timeout, a failure
recorded rather than fatal), and writes its figures as JSON:

1. ``train``: SSL training throughput (SimCLR, ResNet-18 CIFAR stem, batch 512, AMP and channels_last
   on CUDA): naviewer's batched augmentation + step vs a per-sample PIL DataLoader pipeline vs the
   model's forward+backward ceiling (``naviewer bench train``);
2. ``embed``: embedding extraction vs the forward ceiling and a PIL DataLoader (``naviewer bench embed``);
3. ``detect``: the DIFT detection pass with the exact kNN (on the GPU when there is one) and with HNSW,
   at 1M synthetic embeddings (``naviewer bench detect --scale``);
4. ``dift``: a short SimCLR run on the CIFAR subset at 32 px (the paper's resolution) with Noisy
   Alignment poisons: no defense, B1, DIFT in the loop (``naviewer reproduce``).

Writes ``OUT/gpu_check.json`` (every figure, the machine) and ``OUT/gpu_check.md`` (one table). How the lent H200
was prepared (hnswlib built there from its sdist, the CIFAR subset carried):
``docs/reproduction/gpu-check/2026-12-04/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def cifar_subset() -> str:
    """The shared CIFAR-10 subset beside the repository (or $NAVIEWER_CIFAR10_SUBSET), else the built-in digits."""
    env = os.environ.get("NAVIEWER_CIFAR10_SUBSET")
    if env:
        return env
    shared = ROOT.parent / "shared" / "data" / "cifar10-subset"
    return str(shared) if (shared / "cifar-10-batches-py").is_dir() else "demo"


def sections(out: Path, quick: bool) -> dict[str, list[str]]:
    """The naviewer command line of every section (full: GPU-sized; quick: CPU-sized, seconds)."""
    data = cifar_subset()
    if quick:
        net = ["--arch", "resnet10", "--width", "8", "--image-size", "16"]
        return {
            "train": ["bench", "train", "--dataset", "demo", *net, "--batch-size", "32", "--steps", "2", "--workers", "0",
                      "--rounds", "1", "--json", str(out / "train.json")],
            "embed": ["bench", "embed", "--dataset", "demo", *net, "--batch-size", "32", "--images", "64", "--steps", "1",
                      "--json", str(out / "embed.json")],
            "detect": ["bench", "detect", "--scale", "4000", "--backends", "exact,hnsw", "--dim", "32",
                       "--json", str(out / "detect.json")],
            "dift": ["reproduce", "--attack", "na", "--dataset", "demo", "--method", "simclr", "--epochs", "1", *net,
                     "--batch-size", "128", "--rate", "0.05", "--no-b2", "--no-linear", "--no-floor",
                     "--dift-start", "0", "--out", str(out / "dift")],
        }
    net = ["--arch", "resnet18", "--width", "64", "--image-size", "32"]
    return {
        "train": ["bench", "train", "--dataset", data, *net, "--batch-size", "512", "--steps", "20", "--workers", "8",
                  "--json", str(out / "train.json")],
        "embed": ["bench", "embed", "--dataset", data, *net, "--batch-size", "512", "--images", "4096", "--steps", "5",
                  "--json", str(out / "embed.json")],
        "detect": ["bench", "detect", "--scale", "1000000", "--backends", "exact,hnsw", "--dim", "128", "--threads",
                   str(min(16, os.cpu_count() or 1)), "--json", str(out / "detect.json")],
        "dift": ["reproduce", "--attack", "na", "--dataset", data, "--method", "simclr", "--epochs", "100", *net,
                 "--batch-size", "512", "--rate", "0.05", "--no-b2", "--no-floor", "--out", str(out / "dift")],
    }


# Seconds each full-size section may take (measured sizes leave room; a stuck one is cut, its row says so).
SECTION_TIMEOUTS = {"train": 150.0, "embed": 90.0, "detect": 240.0, "dift": 420.0}


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = bool(torch.cuda.is_available())
        if info["cuda"]:
            info["gpu"] = torch.cuda.get_device_name(0)
            info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    except ImportError:  # pragma: no cover - torch is a dependency
        info["torch"] = None
    return info


def run_section(name: str, argv: list[str], out: Path, timeout: float) -> dict[str, Any]:
    """One section in a child process; its figures, seconds and log tail (never raises)."""
    start = time.perf_counter()
    log = out / f"{name}.log"
    try:
        proc = subprocess.run([sys.executable, "-m", "naviewer", *argv], cwd=str(out), capture_output=True, text=True,
                              timeout=timeout)
        code, text = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        code = None
        text = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        text += f"\n[timed out after {timeout:.0f} s]"
    log.write_text(text, encoding="utf-8")
    record: dict[str, Any] = {"command": "naviewer " + " ".join(argv), "exit_code": code,
                              "seconds": time.perf_counter() - start, "ok": code == 0}
    figures = out / f"{name}.json"
    results = out / name / "results.json"
    for path in (figures, results):
        if code == 0 and path.is_file():
            record["figures"] = json.loads(path.read_text(encoding="utf-8"))
    if code != 0:
        record["log_tail"] = text[-2000:]
    return record


def _f(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{float(value):,.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    """The one table of ``gpu_check.md``: every figure against the baseline measured in the same run."""
    m = report["machine"]
    device = m.get("gpu") or "CPU only"
    lines = [f"GPU check ({'quick, CPU-sized' if report['quick'] else 'full'}), {m['time']}: {device}, "
             f"{m['cpus']} CPUs, torch {m.get('torch')}, Python {m['python']}.", "",
             "| section | measurement | figure | baseline (same run) | ratio |", "|---|---|---|---|---|"]
    s = report["sections"]
    for name, record in s.items():
        if record.get("skipped"):
            lines.append(f"| {name} | skipped ({record['skipped']}) | - | - | - |")
        elif not record.get("ok"):
            what = "cut at its timeout" if record.get("exit_code") is None else f"exit {record.get('exit_code')}"
            lines.append(f"| {name} | failed ({what}, {record['seconds']:.0f} s) | - | - | - |")
    t = (s.get("train") or {}).get("figures")
    if t:
        cfg = f"{t['arch']} w{t['width']}, {t['image_size']} px, batch {t['batch_size']}, AMP {t['amp']}"
        lines.append(f"| train | naviewer augment + step ({cfg}) | {_f(t['naviewer_ips'])} img/s | PIL DataLoader in "
                     f"process {_f(t['baseline_ips'])} img/s | {t['naviewer_ips'] / t['baseline_ips']:.2f}x |")
        if t.get("baseline_workers_ips"):
            lines.append(f"| train | naviewer (block-timed) | {_f(t['naviewer_blocks_ips'])} img/s | PIL DataLoader, "
                         f"{t['workers']} workers {_f(t['baseline_workers_ips'])} img/s | "
                         f"{t['naviewer_blocks_ips'] / t['baseline_workers_ips']:.2f}x |")
        lines.append(f"| train | naviewer vs the fwd+bwd ceiling | {_f(t['naviewer_ips'])} img/s | ceiling "
                     f"{_f(t['ceiling_ips'])} img/s | {t['naviewer_ips'] / t['ceiling_ips']:.2f} |")
    e = (s.get("embed") or {}).get("figures")
    if e:
        lines.append(f"| embed | extract_embeddings ({e['arch']} w{e['width']}, batch {e['batch_size']}) | "
                     f"{_f(e['naviewer_ips'])} img/s | forward ceiling {_f(e['ceiling_ips'])} img/s | "
                     f"{e['naviewer_ips'] / e['ceiling_ips']:.2f} |")
        lines.append(f"| embed | extract_embeddings | {_f(e['naviewer_ips'])} img/s | PIL DataLoader "
                     f"{_f(e['baseline_ips'])} img/s | {e['naviewer_ips'] / e['baseline_ips']:.2f}x |")
    d = (s.get("detect") or {}).get("figures")
    if d:
        rows = {r["backend"]: r for r in d["rows"]}
        for backend, r in rows.items():
            mt = r["metrics"]
            base = rows.get("hnsw") if backend != "hnsw" else None
            ratio = f"{base['wall_s'] / r['wall_s']:.2f}x" if base else "1"
            lines.append(f"| detect | full DIFT pass, {backend} kNN, N={r['n']:,d} x {d['dim']} | {_f(r['wall_s'], 1)} s, "
                         f"peak RSS {_f(r['peak_rss_mb'] / 1024, 1)} GB, planted P/R {mt['final_precision']:.2f}/"
                         f"{mt['final_recall']:.2f} | {'hnsw ' + _f(base['wall_s'], 1) + ' s' if base else 'baseline'} | "
                         f"{ratio} |")
    r = (s.get("dift") or {}).get("figures")
    if r:
        res = r.get("results") or {}
        none, dift = res.get("none") or {}, res.get("dift") or {}
        det = (r.get("dift") or {}).get("detection") or {}
        cfg = r.get("config") or {}
        lines.append(f"| dift | SimCLR {cfg.get('epochs')} epochs, NA 5 %: kNN acc / ASR with DIFT | "
                     f"{_f(100 * (dift.get('knn_acc') or 0), 1)} % / {_f(100 * (dift.get('knn_asr_nt') or 0), 1)} % | "
                     f"no defense {_f(100 * (none.get('knn_acc') or 0), 1)} % / "
                     f"{_f(100 * (none.get('knn_asr_nt') or 0), 1)} % | - |")
        lines.append(f"| dift | flags in training (precision / recall) | {det.get('final_count', 0)} "
                     f"({_f(100 * (det.get('final_precision') or 0))} / {_f(100 * (det.get('final_recall') or 0))} %) | "
                     f"total {_f(r.get('total_s'))} s | - |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="new output folder")
    parser.add_argument("--quick", action="store_true", help="CPU-sized (a minute or two): proves the check still runs")
    parser.add_argument("--only", default="", help="comma list of sections (train, embed, detect, dift)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per section (default: each section's own, SECTION_TIMEOUTS; quick 300)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for the whole check: a section gets at most what is left of it, so a slow "
                             "one cannot take the lease's last minutes from the table (a device lease: 540)")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    plan = sections(out, args.quick)
    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in plan]
        if unknown:
            print(f"gpu_check: unknown section(s) {', '.join(unknown)}; choose from {', '.join(plan)}", file=sys.stderr)
            return 2
        plan = {k: v for k, v in plan.items() if k in wanted}
    started = time.perf_counter()
    report: dict[str, Any] = {"quick": bool(args.quick), "machine": machine(), "sections": {}}
    for name, command in plan.items():
        print(f"== {name}: naviewer {' '.join(command)}", flush=True)
        timeout = args.timeout or (300.0 if args.quick else SECTION_TIMEOUTS[name])
        left = None if args.budget is None else args.budget - (time.perf_counter() - started)
        if left is not None and left < 20:
            record = {"command": "naviewer " + " ".join(command), "exit_code": None, "seconds": 0.0, "ok": False,
                      "skipped": "budget spent"}
            print(f"   skipped: {max(left, 0):.0f} s of the budget left", flush=True)
        else:
            record = run_section(name, command, out, timeout if left is None else min(timeout, left))
            print(f"   {'ok' if record['ok'] else 'FAILED'} in {record['seconds']:.0f} s", flush=True)
        report["sections"][name] = record
        (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    text = markdown(report)
    (out / "gpu_check.md").write_text(text, encoding="utf-8")
    print(text)
    return 0 if all(r["ok"] for r in report["sections"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
