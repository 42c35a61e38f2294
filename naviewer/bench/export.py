"""``naviewer bench export``: the manifest export at 1M-10M samples, streamed against the old whole-table export.

For each N a synthetic workspace shaped like an ImageNet file list (``train/n.../img_....JPEG`` under a
dataset root, 1000 labels; the keys cost nothing to make) is registered once, with one detection pass
(1% flagged, 2% candidates, 1% of samples in clusters) and review decisions on a part of the flags
(confirmed, rejected, later). Then, each in a fresh process so that its peak RSS is its own:

- *floor*: open the workspace and read what both exports read whole (review codes, the pass's scores);
- *streamed*: :func:`naviewer.workspace.export.export_manifests` (rows in chunks of 50,000);
- *old*: the export as it was before (``naviewer.bench._export_baseline``: every row as Python strings,
  object-array columns for samples.csv, the kept indices as a Python list in provenance.json).

Both write the same kept.txt and samples.csv (their SHA-256 in provenance.json are compared). ``--old-limit-gb``
caps the old export's address space (it needs several GB at 10M) so that it fails with MemoryError instead
of pushing a shared machine into swap or the OOM killer; a capped run is reported as such.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from naviewer.bench.workspace import SyntheticList
from naviewer.bench._rss import peak_rss_mb as _peak_mb


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser("export", help="manifest export at scale: streamed vs the old whole-table export",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, nargs="+", metavar="N", default=[1_000_000],
                        help="sample counts (e.g. 1000000 10000000)")
    parser.add_argument("--dir", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the old export")
    parser.add_argument("--old-limit-gb", type=float, default=12.0,
                        help="address-space cap of the old export's process, GB (0: none)")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    parser.set_defaults(func=run)
    return parser


class SyntheticFileList(SyntheticList):
    """``bench workspace``'s synthetic list described as a file list under ``/data/imagenet`` (never read:
    an export needs no image, but it writes absolute paths for file-backed sources)."""

    kind = "filelist"

    def describe(self) -> dict:
        return {"kind": "filelist", "path": "/data/imagenet/train.txt", "root": "/data/imagenet", "size": self.n}




def _make(path: Path, n: int) -> dict:
    import numpy as np

    from naviewer.workspace.workspace import Workspace

    start = time.perf_counter()
    ws = Workspace.create(path, dataset=SyntheticFileList(n))  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    density = rng.random(n).astype(np.float32)
    rank = np.empty(n, np.int64)
    rank[np.argsort(-density)] = np.arange(n)
    flagged = rank < max(1, n // 100)
    candidate = rank < max(1, n // 50)
    scores = {"density": density, "rank": rank, "candidate": candidate, "flagged": flagged,
              "mindist": np.where(candidate, rng.random(n).astype(np.float32), np.nan),
              "posterior": np.where(candidate, rng.random(n).astype(np.float32), np.nan),
              "cluster": np.where(flagged, rank % 97, -1)}
    ws.store.add_detection_pass("dift", scores, {"k": 10})
    flags = np.flatnonzero(flagged)
    ws.store.set_review(flags[0::4], "confirmed", "bench")
    ws.store.set_review(flags[1::4], "rejected", "bench")
    ws.store.set_review(flags[2::8], "later", "bench")
    ws.close()
    return {"seconds": time.perf_counter() - start}


def child(phase: str, folder: str, limit_gb: float = 0.0) -> dict:
    """One measured phase in this process (run in a fresh one by :func:`run_scale`)."""
    from naviewer.workspace.workspace import Workspace

    folder_path = Path(folder)
    out: dict = {"phase": phase}
    if phase == "floor":
        ws = Workspace.open(folder_path / "ws")
        codes = ws.store.review_codes()
        scores = ws.store.pass_scores(ws.store.latest_pass_id())
        out.update(peak_mb=_peak_mb(), n=len(codes), arrays=len(scores))
        ws.close()
        return out
    if phase == "old" and limit_gb > 0:
        import resource

        cap = int(limit_gb * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    if phase == "new":
        from naviewer.workspace.export import export_manifests
    elif phase == "old":
        from naviewer.bench._export_baseline import export_manifests
    else:
        raise ValueError(phase)
    ws = Workspace.open(folder_path / "ws")
    target = folder_path / f"export-{phase}"
    start = time.perf_counter()
    try:
        result = export_manifests(ws, target)
    except MemoryError:
        out.update(failed=f"MemoryError under a {limit_gb:g} GB address-space cap", seconds=time.perf_counter() - start,
                   peak_mb=_peak_mb())
        return out
    out.update(seconds=time.perf_counter() - start, peak_mb=_peak_mb(), kept=result.kept, total=result.total)
    record = json.loads(result.provenance_path.read_text(encoding="utf-8"))
    out["files"] = {name: record["files"][name]["sha256"] for name in ("kept.txt", "samples.csv")}
    out["bytes"] = {name: record["files"][name]["bytes"] for name in ("kept.txt", "samples.csv")}
    out["provenance_bytes"] = result.provenance_path.stat().st_size
    ws.close()
    shutil.rmtree(target)
    return out


def _run_child(phase: str, folder: Path, limit_gb: float = 0.0) -> dict:
    import subprocess
    import sys

    code = ("import json, sys; from naviewer.bench.export import child; "
            "print(json.dumps(child(sys.argv[1], sys.argv[2], float(sys.argv[3]))))")
    done = subprocess.run([sys.executable, "-c", code, phase, str(folder), str(limit_gb)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        if phase == "old":
            return {"phase": phase, "failed": f"exit {done.returncode}: {done.stderr.strip()[-300:]}"}
        raise RuntimeError(f"bench export child {phase} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_scale(sizes: list, scratch: "str | None", baseline: bool, limit_gb: float) -> list:
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            folder = Path(tmp)
            made = _make(folder / "ws", n)
            row = {"n": n, "make_s": made["seconds"], "floor": _run_child("floor", folder),
                   "new": _run_child("new", folder)}
            if baseline:
                row["old"] = _run_child("old", folder, limit_gb)
            rows.append(row)
            print(_format(row), flush=True)
    return rows


def _format(row: dict) -> str:
    n, floor, new, old = row["n"], row["floor"], row["new"], row.get("old")
    lines = [f"N = {n:,} (workspace made in {row['make_s']:.0f} s; {new['kept']:,} kept; kept.txt "
             f"{new['bytes']['kept.txt'] / 1e6:.0f} MB, samples.csv {new['bytes']['samples.csv'] / 1e6:.0f} MB, "
             f"provenance.json {new['provenance_bytes'] / 1e6:.0f} MB)",
             f"  floor (open + review codes + scores)  peak {floor['peak_mb']:7.0f} MB",
             f"  export, streamed    {new['seconds']:8.1f} s   peak {new['peak_mb']:7.0f} MB"]
    if old is not None and "failed" in old:
        lines.append(f"  export, old         failed: {old['failed']}")
    elif old is not None:
        same = old["files"] == new["files"]
        above = (new["peak_mb"] - floor["peak_mb"]) / max(old["peak_mb"] - floor["peak_mb"], 1e-9)
        lines.append(f"  export, old         {old['seconds']:8.1f} s   peak {old['peak_mb']:7.0f} MB   -> streamed/old: "
                     f"time x{new['seconds'] / old['seconds']:.2f}, peak x{new['peak_mb'] / old['peak_mb']:.2f}, "
                     f"peak above floor x{above:.2f}; same kept.txt and samples.csv: {same}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    print("manifest export at scale: each export in a fresh process (wall time, peak RSS)", flush=True)
    rows = run_scale([int(n) for n in args.scale], args.dir, not args.no_baseline, float(args.old_limit_gb))
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0
