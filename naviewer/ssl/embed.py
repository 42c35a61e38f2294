"""Embedding extraction: the backbone's features for every sample, batched on the device.

Images go bucket by bucket through the eval transform (resize to the training size S, normalise),
so a store with 32x32 images and 32x64 composites needs no per-image loop. With ``out_path`` the
array is written into a memory-mapped ``.npy`` under a temporary name and renamed when complete, so
a reader never sees half a file and a 1M x 512 array never has to fit in RAM.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from naviewer.data.store import ImageStore, LazyImageStore
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context
from naviewer.ssl.augment import CIFAR_MEAN, CIFAR_STD, EvalTransform
from naviewer.ssl.device import resolve_device


def default_image_size(store: "ImageStore | LazyImageStore") -> int:
    """The side of the most common bucket (32 for CIFAR, even with 2:1 composites mixed in); of a lazy
    store, of its first 256 images."""
    if isinstance(store, LazyImageStore):
        store = store.subset(np.arange(min(len(store), 256)))
    counts = Counter({(b.height, b.width): len(b.indices) for b in store.buckets})
    (h, w), _ = counts.most_common(1)[0]
    return int(min(h, w))


def _model_device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _reserve(tmp: Path, final: Path) -> None:
    """Allocate the memory-mapped file's blocks now: a full disk is then one clear error, instead of
    a SIGBUS when a write through the map finds no block (the map is sparse until written)."""
    import errno

    allocate = getattr(os, "posix_fallocate", None)
    if allocate is None:
        return
    size = tmp.stat().st_size
    with open(tmp, "r+b") as handle:
        try:
            allocate(handle.fileno(), 0, size)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise NaviewerError(f"not enough disk space for the embeddings ({size / 1e6:.0f} MB)", final) from None
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
                raise


def _pieces(store: "ImageStore | LazyImageStore", ctx: JobContext):
    """(sample indices, their uint8 images) of one size at a time: an ImageStore's buckets, or each
    decoded chunk's buckets of a lazy store (so only one chunk is ever decoded)."""
    if isinstance(store, LazyImageStore):
        for offset, chunk in store.chunks(ctx):
            for bucket in chunk.buckets:
                yield bucket.indices + offset, bucket.images
    else:
        for bucket in store.buckets:
            yield bucket.indices, bucket.images


def extract_embeddings(
    backbone: nn.Module,
    store: "ImageStore | LazyImageStore",
    device: "torch.device | str | None" = None,
    batch_size: int = 256,
    dtype: "np.dtype | type" = np.float32,
    ctx: Optional[JobContext] = None,
    *,
    image_size: Optional[int] = None,
    out_path: "str | os.PathLike[str] | None" = None,
    mean: tuple[float, float, float] = CIFAR_MEAN,
    std: tuple[float, float, float] = CIFAR_STD,
    amp: bool = True,
    channels_last: Optional[bool] = None,
    message: str = "extracting embeddings",
    view: str = "squash",
) -> np.ndarray:
    """(N, D) features of every sample of ``store`` in sample order, in eval mode.

    ``device`` None uses the backbone's own device; another device moves the backbone there for the
    call and back afterwards. ``image_size`` None uses the encoder's training size when known
    (``backbone.naviewer_image_size``, set by the Trainer and ``load_encoder``), else the store's
    common size. With ``out_path``
    the result is a read-only memory map of the written ``.npy``.
    """
    ctx = ensure_context(ctx)
    n = len(store)
    if n == 0:
        raise NaviewerError("cannot extract embeddings of an empty dataset")
    home = _model_device(backbone)
    device = resolve_device(device) if device is not None else home
    # the size the encoder was trained at (set by the Trainer and load_encoder), else the store's own
    size = int(image_size or getattr(backbone, "naviewer_image_size", None) or default_image_size(store))
    if channels_last is None:
        channels_last = device.type == "cuda"
    transform = EvalTransform(size, tuple(mean), tuple(std), channels_last=channels_last, view=view)
    dtype = np.dtype(dtype)
    use_amp = amp and device.type == "cuda"
    was_training = backbone.training
    moved = device != home
    if moved:
        backbone.to(device)
    backbone.eval()

    out: Optional[np.ndarray] = None
    tmp: Optional[Path] = None
    final = Path(out_path) if out_path is not None else None
    done = 0
    try:
        for indices, bucket_images in _pieces(store, ctx):
            for start in range(0, len(indices), batch_size):
                ctx.check()
                stop = min(start + batch_size, len(indices))
                images = torch.from_numpy(bucket_images[start:stop])
                if device.type == "cuda":
                    images = images.pin_memory().to(device, non_blocking=True)
                elif device.type != "cpu":
                    images = images.to(device)
                with torch.inference_mode(), torch.autocast(device_type=device.type, enabled=use_amp):
                    feats = backbone(transform(images))
                feats_np = feats.float().cpu().numpy()
                if out is None:
                    shape = (n, feats_np.shape[1])
                    if final is not None:
                        final.parent.mkdir(parents=True, exist_ok=True)
                        from naviewer.ssl.checkpoints import cleanup_checkpoint_temps

                        # a killed writer's full-size .NAME.PID.tmp went nowhere (a probe, session 28)
                        cleanup_checkpoint_temps(final.parent)
                        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
                        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
                        _reserve(tmp, final)
                    else:
                        out = np.empty(shape, dtype=dtype)
                out[indices[start:stop]] = feats_np.astype(dtype, copy=False)
                done += stop - start
                ctx.progress(done, n, message)
        assert out is not None
        if final is not None and tmp is not None:
            out.flush()  # type: ignore[union-attr]
            del out
            os.replace(tmp, final)
            tmp = None
            # a sharded extraction's record of what it embedded no longer describes this file (a review, session 28)
            final.with_name(final.name + ".source.json").unlink(missing_ok=True)
            return np.load(final, mmap_mode="r")
        return out
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()
        backbone.train(was_training)
        if moved:
            backbone.to(home)

