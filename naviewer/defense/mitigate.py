"""DIFT mitigation inside a training run (docs/dift.md, Fine-tuning and Restart): fine-tune, sync branches, restart.

Called once a review accepted the flags (``DiftHook(mitigate=True)`` after its decision, or the
workspace workflow's fine-tuning on the CONFIRMED samples). It needs the SSL trainer's public controls only: ``trainer.method``
(``backbone``, ``sync_momentum_branch()``), ``trainer.store``, ``trainer.augment``, ``trainer.device``,
``trainer.replace_data`` and ``trainer.log_event``. The SSL package is imported lazily, so the rest of
``naviewer.defense`` stays usable on embeddings alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Union

import numpy as np

from naviewer.defense.anchors import Anchors
from naviewer.defense.config import DiftConfig
from naviewer.defense.finetune import FinetuneResult, finetune_backbone, make_cluster_score_fn, reference_ids
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context

if TYPE_CHECKING:
    from naviewer.ssl.trainer import Trainer


@dataclass
class MitigationResult:
    removed: np.ndarray            # sample ids taken out of the training set
    kept: int
    finetune: FinetuneResult
    #: "retrain" when the paper's restart fell back to a retrain from scratch (Eq. 7 took no step), else ""
    fallback: str = ""

    def to_dict(self) -> dict:
        return {"removed": int(self.removed.size), "kept": self.kept, **self.finetune.to_dict()}


def trainer_embed_settings(trainer: Trainer) -> dict:
    """``extract_embeddings`` keywords for a trainer's encoder: the TRAINING image size and the
    augmentation's normalisation (not the dataset's own size: a 32 px set trained at 16 px must be
    embedded at 16 px). Empty when the trainer does not say (then the backbone's recorded size)."""
    out: dict = {}
    settings = getattr(getattr(trainer, "augment", None), "settings", None)
    size = getattr(getattr(trainer, "config", None), "image_size", None) or getattr(settings, "image_size", None)
    if size:
        out["image_size"] = int(size)
    if settings is not None and getattr(settings, "mean", None) is not None:
        out["mean"] = tuple(settings.mean)
        out["std"] = tuple(settings.std)
    return out


#: what the terminal says when the paper's restart fell back to a retrain (``finetune`` and ``run`` alike)
FALLBACK_WORDS = ("the paper's restart fell back to a retrain from scratch: its Eq. 7 fine-tune took no step (the "
                  "confirmed samples were already as spread out as the reference), and going on from these weights "
                  "keeps what the poisons taught (--dift-set restart_fallback=false: the paper's restart as written)")


def retrain_budget(trainer: Trainer, config: DiftConfig) -> int:
    """Epochs of a ``restart_mode="retrain"`` run: ``retrain_epochs``, else the run's configured epochs."""
    if config.retrain_epochs is not None:
        return int(config.retrain_epochs)
    configured = getattr(getattr(trainer, "config", None), "epochs", None)
    return int(configured if configured else trainer.total_epochs)


def reinitialize_method(trainer: Trainer, seed: Optional[int] = None) -> None:
    """Put fresh weights (the ones ``build_method`` gives with the run's seed) into ``trainer.method``, in
    place, so the optimiser rebuilt by ``replace_data`` and a DDP wrapper keep pointing at them. A backdoor
    learned before the restart then cannot survive in the weights: the run is the same run on the kept data."""
    import torch

    from naviewer.ssl.methods import build_method

    cfg = trainer.config
    seed = int(cfg.seed if seed is None else seed)
    saved = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        fresh = build_method(cfg.method, backbone=cfg.backbone, **dict(cfg.method_settings or {}))
    finally:
        torch.random.set_rng_state(saved)
    trainer.method.load_state_dict(fresh.state_dict())


def mitigate_in_training(trainer: Trainer, poison_ids: np.ndarray, anchors: Union[Anchors, np.ndarray, None],
                         config: Optional[DiftConfig] = None, reference: Optional[np.ndarray] = None,
                         ctx: Optional[JobContext] = None, restart: bool = True, *,
                         event: Optional[dict] = None, seed_key: int = 1109) -> MitigationResult:
    """Fine-tune ``trainer.method.backbone`` on ``poison_ids`` (ids into ``trainer.store``) with Eq. 7,
    copy it into the momentum branch, then (``restart``) train on the store without them with a fresh
    optimiser and schedule. ``reference``: benign dense ids for the stop rule (None: no early stop);
    ``anchors`` (an Anchors or store ids; None: lambda fallback) give lambda from their feature norms.
    Every embedding is taken at the trainer's training image size. ``event``: extra fields of the
    ``finetune`` event (e.g. the detection pass). With ``config.restart_mode == "retrain"`` (and
    ``restart``) there is no fine-tuning: the method is re-initialised and trained for
    :func:`retrain_budget` epochs on the kept samples; so too with ``continue`` when Eq. 7 takes no step
    (``config.restart_fallback``)."""
    import torch

    from naviewer.ssl.embed import extract_embeddings

    config = (config or DiftConfig()).validate()
    ctx = ensure_context(ctx)
    store = trainer.store
    n = len(store)
    poison_ids = np.unique(np.asarray(poison_ids, dtype=np.int64))
    if poison_ids.size < 2:
        raise NaviewerError(f"DIFT mitigation needs at least 2 flagged samples, got {poison_ids.size}")
    if poison_ids.max() >= n:
        raise NaviewerError(f"flagged id {int(poison_ids.max())} is outside the {n} training samples")
    keep = np.setdiff1d(np.arange(n, dtype=np.int64), poison_ids, assume_unique=True)

    def retrain(result: FinetuneResult, reason: str, fallback: str = "") -> MitigationResult:
        epochs = retrain_budget(trainer, config)
        reinitialize_method(trainer)
        if hasattr(trainer, "log_event"):
            trainer.log_event("finetune", removed=int(poison_ids.size), n=int(poison_ids.size), steps=result.steps,
                              skipped=not fallback, reason=reason, restart_mode="retrain",
                              **({"fallback": fallback} if fallback else {}), **dict(event or {}))
        warmup = float(getattr(getattr(trainer, "config", None), "warmup_epochs", 0.0) or 0.0)
        trainer.restart_words = "of the retrain from scratch"  # the progress line names what runs now
        trainer.replace_data(store.subset(keep), reset_schedule=True, remaining_epochs=epochs, source_indices=keep,
                             warmup_epochs=warmup)
        return MitigationResult(removed=poison_ids, kept=int(keep.size), finetune=result, fallback=fallback)

    if restart and config.restart_mode == "retrain":
        # Eq. 7 would be wasted on weights that are about to be re-initialised
        return retrain(FinetuneResult(steps=0, lam=0.0, lr=0.0), "restart_mode=retrain: the encoder is re-initialised")
    backbone = trainer.method.backbone
    device = getattr(trainer, "device", None)
    emb_kw = trainer_embed_settings(trainer)

    def embed(model, ids: np.ndarray) -> np.ndarray:
        return extract_embeddings(model, store.subset(np.asarray(ids, dtype=np.int64)), device=device, **emb_kw)

    anchor_ids = np.asarray(getattr(anchors, "indices", anchors if anchors is not None else []), dtype=np.int64)
    anchor_ids = anchor_ids[(anchor_ids >= 0) & (anchor_ids < n)]
    anchor_norms = np.linalg.norm(embed(backbone, anchor_ids), axis=1) if anchor_ids.size else None
    score_fn = None
    if reference is not None and len(reference) >= 2:
        score_fn = make_cluster_score_fn(embed, poison_ids, np.asarray(reference, dtype=np.int64),
                                         config.ft_cluster_k)
    rng = np.random.default_rng([config.seed, seed_key])

    def poison_views(idx: np.ndarray) -> "torch.Tensor":
        return trainer.augment(store, poison_ids[np.asarray(idx, dtype=np.int64)], rng, device)

    result = finetune_backbone(backbone, poison_views, int(poison_ids.size), config, ctx, cluster_score_fn=score_fn,
                               anchor_norms=anchor_norms, device=device)
    trainer.method.sync_momentum_branch()
    if (restart and config.restart_fallback and result.steps == 0 and result.before is not None
            and result.before.gone and not result.diverged):
        # the paper's restart relies on Eq. 7 spreading the poisons out; judged spread already, it took no step and
        # training went on from the weights the poisons shaped: an independent composite attack kept 61-72 % ASR
        # (from 100 %) with every poison removed (an outside test, session 29). Retrained from scratch instead.
        return retrain(result, "the paper's restart fell back to a retrain from scratch: Eq. 7 took no step (the "
                               "confirmed samples already as spread out as the reference), so going on from these "
                               "weights would keep what the poisons taught", fallback="retrain")
    if hasattr(trainer, "log_event"):
        fields = {"removed": int(poison_ids.size), "n": int(poison_ids.size),
                  **{k: v for k, v in result.to_dict().items() if v is not None}, **dict(event or {})}
        trainer.log_event("finetune", **fields)
    if restart:
        trainer.replace_data(store.subset(keep), reset_schedule=True, source_indices=keep)
    return MitigationResult(removed=poison_ids, kept=int(keep.size), finetune=result)


def mitigate_result(trainer: Trainer, result, anchors: Anchors, config: Optional[DiftConfig] = None,
                    ctx: Optional[JobContext] = None, restart: bool = True) -> Optional[MitigationResult]:
    """Mitigate from a :class:`~naviewer.defense.pipeline.DetectionResult`; None when DIFT was a no-op."""
    if result.noop or result.final_ids.size < 2:
        return None
    det = result.detection
    reference = reference_ids(det.candidates, result.final_ids, det.rank, size=int(result.final_ids.size),
                              seed=(config or DiftConfig()).seed)
    return mitigate_in_training(trainer, result.final_ids, anchors, config, reference, ctx, restart)
