"""Which embeddings belong to a detection pass, and are they still the ones it ranked?

A post-hoc pass records the embeddings file it was computed on (run, tag) and a fingerprint of it;
the review opens exactly that file and refuses it when the fingerprint no longer matches (another
``naviewer detect`` rewrote it, or it was edited), instead of showing one encoder's ranking on
another encoder's map. The fingerprint hashes the array's header and sampled blocks, so it costs
milliseconds at any size and still changes when a different encoder writes the file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional

import numpy as np

from naviewer.errors import NaviewerError
from naviewer.io import check_regular_file

BLOCK = 1 << 16
SAMPLED_BLOCKS = 64


def file_fingerprint(path: "str | os.PathLike[str]") -> str:
    """sha256 over the size, the first and last 1 MiB and evenly spaced 64 KiB blocks of a file."""
    path = Path(path)
    check_regular_file(path)  # a pipe blocked the read below for ever
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(1 << 20))
        if size > 2 << 20:
            for i in range(SAMPLED_BLOCKS):
                handle.seek(int(size * i / SAMPLED_BLOCKS))
                digest.update(handle.read(BLOCK))
            handle.seek(max(0, size - (1 << 20)))
            digest.update(handle.read(1 << 20))
    return digest.hexdigest()


def embeddings_record(ws, run: str, tag: str) -> dict:
    """What a pass records about the embeddings it ranked."""
    path = ws.embeddings_path(run, tag)
    return {"run": run, "tag": tag, "fingerprint": file_fingerprint(path)}


def pass_embeddings(ws, pass_id: int, mmap: bool = True) -> Optional[tuple[np.ndarray, str, str]]:
    """(array, run, tag) of the embeddings pass ``pass_id`` was computed on; None when the pass did
    not record any (older passes, in-training passes). A NaviewerError when the file is gone or no
    longer the one the pass ranked."""
    info = ws.store.pass_info(int(pass_id)) or {}
    record = (info.get("settings") or {}).get("embeddings")
    if not isinstance(record, dict) or not record.get("run") or not record.get("tag"):
        return None
    path = ws.embeddings_path(record["run"], record["tag"])
    if not path.is_file():
        raise NaviewerError(f"detection pass {pass_id} was computed on embeddings that are gone", path)
    if record.get("fingerprint") and file_fingerprint(path) != record["fingerprint"]:
        ws.load_embeddings(record["run"], record["tag"], mmap=True)  # a damaged file is said as such first
        raise NaviewerError(f"detection pass {pass_id} was computed on other embeddings than this file holds now "
                            "(another detection rewrote it?): run naviewer detect again to review on matching "
                            "embeddings", path)
    array = ws.load_embeddings(record["run"], record["tag"], mmap=mmap)
    if len(array) != ws.store.sample_count():
        raise NaviewerError(f"the embeddings of detection pass {pass_id} have {len(array)} rows, the workspace "
                            f"{ws.store.sample_count()} samples", path)
    return array, record["run"], record["tag"]
