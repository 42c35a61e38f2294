"""Sample identity in bulk: every sample's source key and content hash, with progress and cancel.

A workspace records both for each sample id when it is created (``store.add_samples``); this
walks a dataset once, hashing straight from the whole array when the source holds one.
"""

from __future__ import annotations

from typing import Optional

from naviewer.data.base import ImageDataset, pixel_hash
from naviewer.jobs import JobContext, ensure_context


def sample_identity(dataset: ImageDataset, ctx: Optional[JobContext] = None) -> tuple[list[str], list[str]]:
    """(source keys, content hashes) of every sample, in index order."""
    ctx = ensure_context(ctx)
    n = len(dataset)
    whole = dataset.as_array()
    keys: list[str] = []
    hashes: list[str] = []
    for index in range(n):
        if index % 512 == 0:
            ctx.check()
            ctx.progress(index, n, "hashing samples")
        keys.append(dataset.source_key(index))
        hashes.append(pixel_hash(whole[index]) if whole is not None else dataset.content_hash(index))
    ctx.progress(n, n, "hashing samples")
    return keys, hashes
