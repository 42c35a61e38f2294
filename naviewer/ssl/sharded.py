"""Embeddings at scale: extraction split into shards across processes (and GPUs) under torchrun.

Why: one process embeds ~1k-10k images/s; ten million samples are hours. Under ``torchrun`` every
rank takes its own shards (shard i goes to rank i mod world size) and writes its rows straight into
one memory-mapped ``.npy`` (float16 by default: half the disk and RAM of float32, more than enough
precision for cosine kNN). A shard is marked done only after its rows are flushed, so a run that
was stopped resumes with the shards not yet done (the same command again, any world size); the
file gets its final name only when every shard is done. Without torchrun it is one rank doing
every shard, still resumable. Progress is reported per shard.

Layout while running: ``OUT.partial.npy`` (the array) and ``OUT.shards/`` (``plan.json`` and one
``NNNNN.done`` per finished shard).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from naviewer.errors import NaviewerError
from naviewer.io import atomic_write_text, file_stamp, json_loads
from naviewer.jobs import JobContext, ensure_context

PathLike = Union[str, "os.PathLike[str]"]
PLAN_FILE = "plan.json"


@dataclass(frozen=True)
class ShardPlan:
    """How the rows are cut: what a resumed run must agree with."""

    rows: int
    dim: int
    dtype: str
    shard_size: int
    source: str = ""  # fingerprint of the encoder's weights and the dataset's labels: another run's shards differ
    #: the input size the rows were embedded at (0: the encoder's own): a resumed run at another --image-size
    #: wrote its rows beside the first run's, one array at two sizes, and said nothing
    image_size: int = 0

    @property
    def count(self) -> int:
        return -(-self.rows // self.shard_size)

    def bounds(self, shard: int) -> tuple[int, int]:
        return shard * self.shard_size, min(self.rows, (shard + 1) * self.shard_size)


def source_path(out: Path) -> Path:
    """Beside a finished extraction: its plan, with the fingerprint of the encoder and labels it embedded."""
    return out.with_name(out.name + ".source.json")


def record_source(out: Path, backbone: Any, labels: Any, *, rows: int, dim: int, dtype: Any,
                  image_size: Optional[int]) -> None:
    """Beside a plain (unsharded) extraction too: what it embedded, so a later sharded run of the same encoder reuses
    it, and ``embed --out`` can tell its own earlier file from someone else's array of the same shape."""
    plan = ShardPlan(int(rows), int(dim), np.dtype(dtype).name, max(int(rows), 1), source_fingerprint(backbone, labels),
                     int(image_size or 0))
    atomic_write_text(source_path(out), json.dumps({**asdict(plan), "stamp": file_stamp(out)}))


def read_source_record(out: Path) -> Optional[dict]:
    """The record beside ``out`` when it is one naviewer wrote for this very file (its size and time as recorded;
    a record without a stamp, from a sharded run, is taken as it is), else None."""
    recorded = _read_source(out)
    if recorded is None or not isinstance(recorded.get("source"), str):
        return None
    stamp = recorded.get("stamp")
    if stamp is not None and stamp != file_stamp(out):
        return None
    return recorded


def _read_source(out: Path) -> Optional[dict]:
    try:
        values = json_loads(source_path(out).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return values if isinstance(values, dict) else None


def source_fingerprint(backbone: Any, labels: Any) -> str:
    """sha256 over the encoder's weights and the dataset's labels (and count): the shards of another
    encoder or dataset with the same row count and width are never taken as this run's."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in backbone.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    digest.update(np.ascontiguousarray(np.asarray(labels, dtype=np.int64)).tobytes())
    return digest.hexdigest()[:16]


def _read_plan(plan_file: Path, image_size: Optional[int] = None) -> "ShardPlan":
    """The plan on disk; one written before plans recorded the input size takes ``image_size`` (its run cannot
    say, and refusing it would send the user to delete finished shards)."""
    try:
        values = json_loads(plan_file.read_text(encoding="utf-8"))
        if isinstance(values, dict) and "image_size" not in values and image_size is not None:
            values["image_size"] = int(image_size)
        plan = ShardPlan(**values)
        if not all(isinstance(getattr(plan, f), int) and getattr(plan, f) > 0 for f in ("rows", "dim", "shard_size")):
            raise ValueError("rows, dim and shard_size must be positive whole numbers")
        return plan
    except (OSError, ValueError, TypeError) as exc:
        raise NaviewerError(f"the unfinished extraction's plan is damaged ({exc}); delete {plan_file.parent.name} and "
                            "its .partial.npy to start over", plan_file) from None


def partial_path(out: Path) -> Path:
    return out.with_name(out.name[:-4] + ".partial.npy" if out.name.endswith(".npy") else out.name + ".partial.npy")


def shard_dir(out: Path) -> Path:
    return out.with_name(out.name + ".shards")


def done_shards(out: Path, plan: ShardPlan) -> set[int]:
    folder = shard_dir(out)
    return {i for i in range(plan.count) if (folder / f"{i:05d}.done").is_file()}


def sharded_embeddings(backbone: Any, store: Any, out_path: PathLike, *, shard_size: int = 65536,
                       dtype: Union[str, np.dtype] = "float16", device: Any = None, batch_size: int = 256,
                       image_size: Optional[int] = None, rank: Optional[int] = None, world_size: Optional[int] = None,
                       ctx: Optional[JobContext] = None) -> Optional[np.ndarray]:
    """Embed every sample of ``store`` into ``out_path`` (an (N, D) ``.npy``), this rank's shards only.

    ``rank``/``world_size`` default to the torch.distributed group (one process without one). Every
    rank returns the finished array as a read-only memory map (None where it is not finished: a rank
    called without a process group cannot wait for the others). A finished ``out_path`` is reused as it is when the
    encoder, labels and size it records beside it (:func:`source_path`) are this call's; else it is refused."""
    import torch.distributed as dist

    from naviewer.data.store import store_rows
    from naviewer.ssl.embed import extract_embeddings

    ctx = ensure_context(ctx)
    out = Path(out_path)
    if shard_size < 1:
        raise NaviewerError(f"shard size must be >= 1, got {shard_size}")
    grouped = dist.is_available() and dist.is_initialized()
    if rank is None or world_size is None:
        rank, world_size = (dist.get_rank(), dist.get_world_size()) if grouped else (0, 1)

    def barrier() -> None:
        if grouped and world_size > 1:
            dist.barrier()

    if out.exists():  # a finished extraction is reused as it is, but only one of this dataset's rows
        try:
            done = np.load(out, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError):
            raise NaviewerError("--out exists and is not a .npy embeddings array: choose another --out", out) from None
        if done.ndim != 2 or len(done) != len(store) or done.dtype != np.dtype(dtype):
            hint = (f" (or --dtype {done.dtype.name} to reuse it, as a plain embed wrote it)"
                    if done.ndim == 2 and len(done) == len(store) and done.dtype != np.dtype(dtype) else "")
            raise NaviewerError(f"--out exists and is not this extraction's result ({done.dtype} {done.shape}, this "
                                f"one is {np.dtype(dtype)} with {len(store)} rows): choose another --out{hint}", out)
        # of this encoder and these labels at this size: the same shape from another checkpoint was taken as this
        # one's, "wrote" said, and detect --embeddings credited them to the new checkpoint (a probe, session 28)
        recorded = read_source_record(out)
        source = source_fingerprint(backbone, store.labels)
        if recorded is None or recorded.get("source") != source or \
                int(recorded.get("image_size") or 0) != int(image_size or 0):
            del done
            raise NaviewerError("--out holds a finished extraction of another checkpoint, dataset or image size (or "
                                "one this version cannot tell): choose another --out, or delete it to embed again", out)
        barrier()
        return done
    n = len(store)
    if n == 0:
        raise NaviewerError("cannot embed an empty dataset")
    dtype = np.dtype(dtype)
    folder, part = shard_dir(out), partial_path(out)
    plan_file = folder / PLAN_FILE
    if rank == 0:
        probe = extract_embeddings(backbone, store.subset([0]), device=device, batch_size=1, image_size=image_size)
        plan = ShardPlan(n, int(probe.shape[1]), dtype.name, int(shard_size), source_fingerprint(backbone, store.labels),
                         int(image_size or 0))
        if plan_file.is_file():
            old = _read_plan(plan_file, plan.image_size)
            if old != plan or not part.is_file():
                raise NaviewerError(f"an unfinished extraction with other settings is here ({asdict(old)}); delete "
                                    f"{part.name} and {folder.name} or choose another --out", folder)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            np.lib.format.open_memmap(part, mode="w+", dtype=dtype, shape=(n, plan.dim)).flush()
            tmp = plan_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(asdict(plan)), encoding="utf-8")
            os.replace(tmp, plan_file)
    barrier()
    if not plan_file.is_file():
        raise NaviewerError("rank 0 made no shard plan: start every rank under torchrun", folder)
    plan = _read_plan(plan_file)
    try:
        array = np.load(part, mmap_mode="r+", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise NaviewerError(f"the unfinished extraction's rows are damaged ({exc}); delete it and {folder.name} to "
                            "start over", part) from None
    if array.shape != (plan.rows, plan.dim) or array.dtype != np.dtype(plan.dtype):
        raise NaviewerError(f"the unfinished extraction's rows are {array.dtype} {array.shape}, its plan says "
                            f"{plan.dtype} ({plan.rows}, {plan.dim}); delete it and {folder.name} to start over", part)
    done = done_shards(out, plan)
    mine = [i for i in range(plan.count) if i % world_size == rank and i not in done]
    ctx.event("log", message=f"rank {rank}/{world_size}: {len(mine)} of {plan.count} shards to embed "
                             f"({len(done)} done before)")
    for step, shard in enumerate(mine):
        ctx.check()
        begin, end = plan.bounds(shard)
        ctx.progress(step, len(mine), f"rank {rank}: shard {shard + 1} of {plan.count} (rows {begin}-{end - 1})")
        feats = extract_embeddings(backbone, store_rows(store, begin, end), device=device,
                                   batch_size=batch_size, image_size=image_size)
        array[begin:end] = feats.astype(dtype, copy=False)
        array.flush()
        (folder / f"{shard:05d}.done").touch()
        from naviewer.interrupts import note_saved

        # a stop said only "cancelled" (a probe, session 29): how far it got, and that the same command goes on
        note_saved(f"{len(done) + step + 1} of {plan.count} shards of {out.name} (the same command goes on from "
                   "there)", key=f"shards:{out}")
    ctx.progress(len(mine), len(mine), f"rank {rank}: shards done")
    del array
    barrier()
    if rank == 0:
        missing = sorted(set(range(plan.count)) - done_shards(out, plan))
        if missing:
            raise NaviewerError(f"{len(missing)} shard(s) were not embedded (first: {missing[0]}); run the same "
                                "command again to finish them", folder)
        atomic_write_text(source_path(out), json.dumps(asdict(plan)))  # what a re-run compares (before the name)
        os.replace(part, out)
        shutil.rmtree(folder, ignore_errors=True)
    barrier()
    return np.load(out, mmap_mode="r") if out.is_file() else None
