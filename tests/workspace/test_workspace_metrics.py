"""metrics.jsonl: append + flush, and a reader that follows by offset and tolerates half-written lines."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from naviewer.workspace import append_metrics, read_metrics


def test_append_and_read_incrementally(tmp_path: Path) -> None:
    path = tmp_path / "run" / "metrics.jsonl"
    assert read_metrics(path) == ([], 0)
    append_metrics(path, {"kind": "run_start", "total_epochs": 2})
    append_metrics(path, {"kind": "epoch", "epoch": 0, "loss": np.float32(1.5), "time": 5.0})
    records, offset = read_metrics(path)
    assert [r["kind"] for r in records] == ["run_start", "epoch"]
    assert isinstance(records[0]["time"], float) and records[1]["time"] == 5.0 and records[1]["loss"] == 1.5
    assert read_metrics(path, offset) == ([], offset)
    append_metrics(path, {"kind": "epoch", "epoch": 1})
    more, offset2 = read_metrics(path, offset)
    assert [r["epoch"] for r in more] == [1] and offset2 == path.stat().st_size


def test_partial_last_line_is_left_for_later(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    append_metrics(path, {"kind": "step", "step": 1})
    line = json.dumps({"kind": "step", "step": 2}) + "\n"
    with open(path, "a") as handle:
        handle.write(line[:7])
    records, offset = read_metrics(path)
    assert [r["step"] for r in records] == [1]
    with open(path, "a") as handle:
        handle.write(line[7:])
    records, offset = read_metrics(path, offset)
    assert [r["step"] for r in records] == [2]


def test_garbage_lines_skipped_and_rewritten_file_restarts(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"kind": "step", "st\n[1, 2]\n{"kind": "epoch", "epoch": 0}\n')
    records, offset = read_metrics(path)
    assert records == [{"kind": "epoch", "epoch": 0}]
    path.write_text('{"kind": "run_start"}\n')  # a new run replaced the file
    records, _ = read_metrics(path, offset)
    assert records == [{"kind": "run_start"}]


def test_follow_a_file_another_process_appends(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    code = (
        "import sys\nfrom naviewer.workspace import append_metrics\n"
        "for i in range(200):\n    append_metrics(sys.argv[1], {'kind': 'step', 'step': i, 'pad': 'x' * 300})\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code, str(path)])
    seen: list[int] = []
    offset = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        records, offset = read_metrics(path, offset)
        seen.extend(r["step"] for r in records)
        if writer.poll() is not None and len(seen) >= 200:
            break
        time.sleep(0.005)
    assert writer.wait() == 0
    assert seen == list(range(200))
