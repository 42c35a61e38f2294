"""Append-only JSONL metrics: one writer appends and flushes, any reader follows by byte offset.

Why offsets: the GUI monitor follows ``runs/<run>/metrics.jsonl`` while another process (a CLI
job, torchrun rank 0) writes it. It remembers how far it has read and asks only for what is new.
A line is consumed only once its newline has been written, so a record caught half-written is
read on the next call instead of being lost or raising.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Union

from naviewer.io import json_default, json_loads

PathLike = Union[str, "os.PathLike[str]"]


def append_metrics(path: PathLike, record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line and flush it; adds ``"time"`` (unix seconds) if missing.

    The whole line goes out in a single ``write`` on a file opened in append mode, so concurrent
    appenders do not interleave within a line on POSIX.
    """
    record = dict(record)
    record.setdefault("time", time.time())
    line = json.dumps(record, default=json_default, separators=(",", ":")) + "\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:
        handle.write(line.encode("utf-8"))
        handle.flush()


def read_metrics(path: PathLike, start_offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Records from complete lines after byte ``start_offset``, and the offset to resume from.

    A missing file gives ``([], 0)``. A trailing line without its newline is left for the next
    call. A complete line that is not a JSON object (a torn write from a killed process) is
    skipped. If the file is now shorter than ``start_offset`` it was rewritten, and reading
    restarts from the beginning.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return [], 0
    if start_offset > size:
        start_offset = 0
    with open(path, "rb") as handle:
        handle.seek(start_offset)
        data = handle.read()
    end = data.rfind(b"\n")
    if end < 0:
        return [], start_offset
    records: list[dict[str, Any]] = []
    for raw in data[: end + 1].splitlines():
        raw = raw.strip()
        if not raw:
            continue
        try:
            value = json_loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(value, dict):
            records.append(value)
    return records, start_offset + end + 1
