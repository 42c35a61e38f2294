"""DIFT in a ``torchrun`` (DDP) training run: detection once, on rank 0, over the whole training set.

Every rank embeds its contiguous shard of the training store (with rank 0's BatchNorm statistics,
so the shards agree) and rank 0 gathers the (N, D) array; detection, the buffer, label spreading,
the review gate, the workspace writes and Eq. 7 fine-tuning then run on rank 0 alone inside a
:class:`~naviewer.ssl.distributed.MainRankSection`, which afterwards hands every rank rank 0's
reduced training set, schedule and fine-tuned weights (see :func:`synchronised_dift_hook`).
Eq. 7 is a pairwise loss over the whole poison batch and the poison set is small, so it runs on
one rank and its result is broadcast: no per-step collective can get out of step.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from naviewer.ssl.distributed import MainRankSection, RankZeroHook, broadcast_module, gather_rows


def sharded_training_embeddings(trainer) -> Optional[np.ndarray]:
    """Run on EVERY rank: eval-mode features of ``trainer.store`` at the training size, (N, D) on
    rank 0 (None elsewhere); the single-process result in a single process."""
    from naviewer.defense.mitigate import trainer_embed_settings
    from naviewer.ssl.embed import extract_embeddings

    info = trainer.dist
    store = trainer.store
    kw = dict(device=trainer.device, message="DIFT: embedding the training set", **trainer_embed_settings(trainer))
    if not info.enabled:
        return extract_embeddings(trainer.method.backbone, store, ctx=trainer.ctx, **kw)
    broadcast_module(trainer.method.backbone, info, buffers_only=True)  # rank 0's BN statistics everywhere
    n = len(store)
    if n < info.world_size:  # fewer samples than ranks: rank 0 alone
        return extract_embeddings(trainer.method.backbone, store, ctx=trainer.ctx, **kw) if info.is_main else None
    part = np.array_split(np.arange(n, dtype=np.int64), info.world_size)[info.rank]
    mine = extract_embeddings(trainer.method.backbone, store.subset(part), ctx=trainer.ctx if info.is_main else None,
                              **kw)
    return gather_rows(mine, info)


def synchronised_dift_hook(inner: Any, share: Optional[Callable[[Any, Any], Any]] = None,
                           section: Optional[MainRankSection] = None) -> tuple[RankZeroHook, Callable]:
    """Wrap a DIFT hook (on rank 0; None on the others) for a DDP run.

    Returns ``(hook, embed_fn)``: give ``embed_fn`` to the :class:`~naviewer.defense.pipeline.DiftHook`
    (rank 0) and ``hook`` to the trainer on every rank. ``share(trainer, None)`` is evaluated on
    rank 0 after each epoch's hook; a non-None value (e.g. the flags) reaches every rank as
    ``hook.section.shared``."""
    section = section or MainRankSection({"embed": sharded_training_embeddings})
    section.services.setdefault("embed", sharded_training_embeddings)

    def embed_fn(trainer) -> np.ndarray:
        return section.call(trainer, "embed")

    return RankZeroHook(inner, section, share), embed_fn
