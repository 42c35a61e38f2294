"""``naviewer bench workspace``: the SQLite store at ImageNet scale.

Measures storing and reading one detection pass as compressed per-array blobs (what the store
does) against the baseline of one SQL row per sample written with ``executemany`` in a single
transaction, and times sample registration, review reads and the manifest export.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser("workspace", help="detection-pass storage: blobs vs row-per-sample SQL, export time")
    parser.add_argument("--n", type=int, default=1_281_167, help="samples (default: ImageNet-1k train size)")
    parser.add_argument("--dir", default=None, help="scratch folder (default: a temporary one)")
    parser.set_defaults(func=run)
    return parser


def _timed(fn):  # noqa: ANN001, ANN202
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def run(args: argparse.Namespace) -> int:
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
