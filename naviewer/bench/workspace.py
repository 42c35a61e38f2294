"""``naviewer bench workspace``: the SQLite store at ImageNet scale, and the workspace at 10M.

Default: storing and reading one detection pass as compressed per-array blobs (what the store
does) against the baseline of one SQL row per sample written with ``executemany`` in a single
transaction, and times sample registration, review reads and the manifest export.

``--scale N [N ...]`` (issue 17 item 4): for each N, fresh processes (so each peak RSS is its own)
register N file-list-like samples through ``Workspace.create`` (rows streamed into SQLite in
chunks), open the workspace, and open an analysis session on it (labels, scores, lazy keys).
Baselines measured in the same run: the old registration path (every key and hash built as a
Python list first, then one ``executemany``), the old open (the same database with its sample
summary removed, so the samples table is checked by scanning it, as before), and a process that
only imports naviewer (the RSS floor). Ratios: new against old at each N, and seconds per million
samples against the first N.

``--file-list M [M ...]`` (issue 17 item 4): real ``path label`` lists of M lines over real image
files (``--files`` tiny 1x1 PNGs in 1000 class folders; lines past that many point at hard links
to them, so every line is a distinct path and the duplicate check collapses nothing). For each M,
fresh processes time opening the list with ``FileListDataset`` (compact keys) and with the
file-list reader as it was before item 4 (kept here as :class:`LegacyFileList`: a tuple, a
``Path``, a key string, a label int and a dict entry per line), each with its peak RSS; then
``Workspace.create`` registers the first ``--register`` lines (every image decoded and hashed)
with both readers. The tree is made under ``--dir`` (free disk checked first) and removed
afterwards unless ``--keep`` (then a later run reuses it).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from naviewer.bench._rss import peak_rss_mb as _peak_mb


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser("workspace", help="detection-pass storage: blobs vs row-per-sample SQL, export time")
    parser.add_argument("--n", type=int, default=1_281_167, help="samples (default: ImageNet-1k train size)")
    parser.add_argument("--dir", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--scale", type=int, nargs="+", metavar="N",
                        help="instead: registration, open and session at each N (e.g. 1000000 3000000 10000000), "
                             "each phase in its own process (wall time, peak RSS) against the old paths")
    parser.add_argument("--no-baseline", action="store_true",
                        help="with --scale: skip the old registration path (it holds every key in memory)")
    parser.add_argument("--file-list", type=int, nargs="+", metavar="M",
                        help="instead: open M-line file lists over real image files (e.g. 1000000 10000000), "
                             "new reader against the old one, each in its own process (wall time, peak RSS)")
    parser.add_argument("--files", type=int, default=1_000_000,
                        help="with --file-list: real 1x1 PNG files to make (lines past this many are hard links)")
    parser.add_argument("--register", type=int, default=None, metavar="R",
                        help="with --file-list: register the first R lines in a workspace (default: min(M, 100000); "
                             "0 skips)")
    parser.add_argument("--baseline-up-to", type=int, default=None, metavar="M",
                        help="with --file-list: run the old reader only on lists of at most M lines (it is slow)")
    parser.add_argument("--json", default=None, help="with --file-list: also write the figures to this JSON file")
    parser.add_argument("--keep", action="store_true",
                        help="with --file-list: keep the image tree under --dir (a later run reuses it)")
    parser.set_defaults(func=run)
    return parser


class SyntheticList:
    """N samples shaped like an ImageNet file list (``train/n.../img_....JPEG``, 1000 labels), made up on
    the fly: the dataset side costs nothing, so the figures are the workspace's own."""

    kind = "memory"

    def __init__(self, n: int) -> None:
        import numpy as np

        self.n = int(n)
        self.labels = (np.arange(self.n, dtype=np.int64) * 7919) % 1000
        self.class_names = [f"n{c:08d}" for c in range(1000)]

    def __len__(self) -> int:
        return self.n

    def source_key(self, index: int) -> str:
        return f"train/n{index % 1000:08d}/img_{index:08d}.JPEG"

    def content_hash(self, index: int) -> str:
        return f"{index * 2654435761 % (1 << 64):032x}"

    def describe(self) -> dict:
        return {"kind": "memory", "size": self.n}


def _scores(n: int) -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    density = rng.random(n).astype(np.float32)
    rank = np.empty(n, np.int64)
    rank[np.argsort(-density)] = np.arange(n)
    flagged = rank < max(1, n // 100)
    return {"density": density, "rank": rank, "candidate": rank < max(1, n // 50), "flagged": flagged,
            "cluster": np.where(flagged, rank % 97, -1)}


def child(phase: str, n: int, folder: str) -> dict:
    """One measured phase (run in a fresh process by :func:`run_scale`); returns its figures."""
    import numpy as np

    from naviewer.workspace.workspace import Workspace

    path = Path(folder) / "ws"
    out: dict = {"phase": phase, "n": n}
    if phase == "floor":
        import naviewer.analysis.session  # noqa: F401

        out["peak_mb"] = _peak_mb()
    elif phase == "register":
        t, ws = _timed(lambda: Workspace.create(path, dataset=SyntheticList(n)))  # type: ignore[arg-type]
        out.update(seconds=t, peak_mb=_peak_mb())
        scores = _scores(n)
        out["pass_seconds"], _ = _timed(lambda: ws.store.add_detection_pass("dift", scores, {"k": 10}))
        ws.close()
    elif phase == "register_lists":  # what registration did before: every key and hash in a list, then one call
        ws = Workspace.create(path)
        data = SyntheticList(n)

        def old() -> None:  # the registration loop as it was before issue 17 item 4 (same checks, same hash)
            from naviewer.data.names import list_line_problem
            from naviewer.workspace.workspace import dataset_hash

            keys: list = []
            hashes: list = []
            for index in range(n):
                key = str(data.source_key(index))
                if list_line_problem(key):
                    raise ValueError(key)
                keys.append(key)
                hashes.append(str(data.content_hash(index)))
            dataset_hash(hashes)
            ws.store.add_samples(keys, hashes, data.labels)

        out["seconds"], _ = _timed(old)
        out["peak_mb"] = _peak_mb()
        ws.close()
    elif phase in ("open", "open_old"):
        if phase == "open_old":  # no summary: the open scans the samples table as every open did before
            import sqlite3

            conn = sqlite3.connect(path / "naviewer.sqlite", isolation_level=None)
            conn.execute("DELETE FROM meta WHERE key='samples_summary'")
            conn.close()
        t, ws = _timed(lambda: Workspace.open(path))
        out.update(seconds=t, peak_mb=_peak_mb(), samples=ws.store.sample_count())
        ws.close()
    elif phase == "session":
        from naviewer.analysis.session import AnalysisSession

        ws = Workspace.open(path)
        t, session = _timed(lambda: AnalysisSession.from_workspace(ws))
        t_order, order = _timed(session.suspicion_order)
        key = session.source_keys[int(order[0])] if session.source_keys is not None else None
        out.update(seconds=t, order_seconds=t_order, peak_mb=_peak_mb(), first_key=key,
                   flagged=int(session.flagged_mask.sum()))
        ws.close()
    else:
        raise ValueError(phase)
    return out


def _run_child(phase: str, n: int, folder: Path) -> dict:
    import json
    import subprocess
    import sys

    code = ("import json, sys; from naviewer.bench.workspace import child; "
            "print(json.dumps(child(sys.argv[1], int(sys.argv[2]), sys.argv[3])))")
    done = subprocess.run([sys.executable, "-c", code, phase, str(n), str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"bench child {phase} {n} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_scale(sizes: list, scratch: "str | None", baseline: bool = True) -> list:
    import shutil

    rows = []
    floor = None
    for n in sizes:
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            folder = Path(tmp)
            if floor is None:
                floor = _run_child("floor", 0, folder)["peak_mb"]
            row: dict = {"n": n, "floor_mb": floor}
            if baseline:
                row["register_lists"] = _run_child("register_lists", n, folder)
                shutil.rmtree(folder / "ws")
            row["register"] = _run_child("register", n, folder)
            row["db_mb"] = (folder / "ws" / "naviewer.sqlite").stat().st_size / 1e6
            row["open"] = _run_child("open", n, folder)
            row["session"] = _run_child("session", n, folder)
            row["open_old"] = _run_child("open_old", n, folder)
            rows.append(row)
            print(_format_row(row, rows[0]), flush=True)
    return rows


def _format_row(row: dict, first: dict) -> str:
    n, floor = row["n"], row["floor_mb"]
    per_m = lambda r, phase: r[phase]["seconds"] / (r["n"] / 1e6)  # noqa: E731
    reg, opened, old_open, session = row["register"], row["open"], row["open_old"], row["session"]
    lines = [f"N = {n:,} (database {row['db_mb']:.0f} MB; import-only process {floor:.0f} MB)"]
    line = (f"  register, streamed         {reg['seconds']:8.1f} s  peak {reg['peak_mb']:7.0f} MB"
            f"  ({per_m(row, 'register'):.1f} s per million; x{per_m(row, 'register') / per_m(first, 'register'):.2f} "
            f"of the first N's)")
    lines.append(line)
    if "register_lists" in row:
        old = row["register_lists"]
        lines.append(f"  register, old (lists)      {old['seconds']:8.1f} s  peak {old['peak_mb']:7.0f} MB"
                     f"  -> streamed/old: time x{reg['seconds'] / old['seconds']:.2f}, "
                     f"peak above floor x{(reg['peak_mb'] - floor) / max(old['peak_mb'] - floor, 1e-9):.2f}")
    lines.append(f"  detection pass (8 arrays)  {reg['pass_seconds']:8.2f} s")
    lines.append(f"  open                       {opened['seconds']:8.2f} s  peak {opened['peak_mb']:7.0f} MB"
                 f"  (old open {old_open['seconds']:.2f} s, peak {old_open['peak_mb']:.0f} MB -> "
                 f"x{opened['seconds'] / old_open['seconds']:.2f})")
    lines.append(f"  analysis session           {session['seconds']:8.2f} s  peak {session['peak_mb']:7.0f} MB"
                 f"  (+ suspicion order {session['order_seconds']:.2f} s; {session['flagged']:,} flagged)")
    return "\n".join(lines)


def _timed(fn):  # noqa: ANN001, ANN202
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def run(args: argparse.Namespace) -> int:
    if args.file_list:
        from naviewer.bench import _filelist_scale

        return _filelist_scale.main(args)
    if args.scale:
        print("workspace at scale: each phase in a fresh process (wall time, peak RSS)", flush=True)
        run_scale([int(n) for n in args.scale], args.dir, baseline=not args.no_baseline)
        return 0
    import numpy as np

    from naviewer.workspace.export import export_manifests
    from naviewer.workspace.store import WorkspaceStore
    from naviewer.workspace.workspace import Workspace

    n = int(args.n)
    rng = np.random.default_rng(0)
    density = rng.random(n).astype(np.float32)
    scores = {
        "density": density,
        "rank": np.argsort(np.argsort(-density)),
        "candidate": density > 0.9,
        "mindist": np.where(density > 0.9, rng.random(n), np.nan),
        "posterior": np.where(density > 0.9, rng.random(n), np.nan),
        "flagged": density > 0.999,
        "spread": density > 0.998,
        "cluster": np.where(density > 0.999, 0, -1),
    }
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        root = Path(scratch)
        ws = Workspace.create(root / "ws")
        store: WorkspaceStore = ws.store
        keys = [f"train/n{i % 1000:08d}/img_{i:08d}.JPEG" for i in range(n)]
        hashes = [f"{i:032x}" for i in range(n)]
        t_samples, _ = _timed(lambda: store.add_samples(keys, hashes, rng.integers(0, 1000, n)))
        t_blob_write, pass_id = _timed(lambda: store.add_detection_pass("dift", scores, {"k": 10}))
        store._samples_cache = None
        t_blob_read, back = _timed(lambda: store.pass_scores(pass_id))
        assert all(np.array_equal(back[k], v, equal_nan=True) for k, v in scores.items())
        flagged_ids = np.flatnonzero(scores["flagged"])
        t_review, _ = _timed(lambda: store.set_review(flagged_ids, "confirmed", "bench"))
        t_states, _ = _timed(store.review_states)
        t_export, result = _timed(lambda: export_manifests(ws, root / "export"))
        ws.close()

        conn = sqlite3.connect(root / "rows.sqlite", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(
            "CREATE TABLE scores(pass_id INTEGER, sample_id INTEGER, density REAL, rank INTEGER, candidate INTEGER, "
            "mindist REAL, posterior REAL, flagged INTEGER, spread INTEGER, cluster INTEGER, "
            "PRIMARY KEY(pass_id, sample_id))"
        )
        columns = [scores[k].tolist() for k in ("density", "rank", "candidate", "mindist", "posterior", "flagged", "spread", "cluster")]

        def rows_write() -> None:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO scores VALUES(1, ?, ?, ?, ?, ?, ?, ?, ?, ?)", zip(range(n), *columns)
            )
            conn.execute("COMMIT")

        def rows_read() -> dict:
            rows = conn.execute(
                "SELECT density, rank, candidate, mindist, posterior, flagged, spread, cluster FROM scores "
                "WHERE pass_id=1 ORDER BY sample_id"
            ).fetchall()
            cols = list(zip(*rows))
            return {"density": np.asarray(cols[0], dtype=np.float32), "rank": np.asarray(cols[1], dtype=np.int64)}

        t_rows_write, _ = _timed(rows_write)
        t_rows_read, _ = _timed(rows_read)
        conn.close()
        size_rows = (root / "rows.sqlite").stat().st_size + sum(
            p.stat().st_size for p in root.glob("rows.sqlite-wal")
        )

    print(f"workspace store benchmark, N = {n:,} samples")
    print(f"  register samples (executemany)          {t_samples:8.2f} s")
    print(f"  detection pass, blobs: write {t_blob_write:6.3f} s, read {t_blob_read:6.3f} s")
    print(f"  baseline row-per-sample: write {t_rows_write:6.3f} s, read {t_rows_read:6.3f} s  (file {size_rows / 1e6:.0f} MB)")
    print(f"  ratio baseline/blobs: write x{t_rows_write / t_blob_write:.1f}, read x{t_rows_read / t_blob_read:.1f}")
    print(f"  set_review of {len(flagged_ids):,} ids in one batch  {t_review:8.3f} s")
    print(f"  review_states over N                    {t_states:8.3f} s")
    print(f"  export manifests ({result.kept:,} kept)     {t_export:8.2f} s")
    return 0
