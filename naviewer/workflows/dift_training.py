"""SSL training on a workspace with DIFT in the loop (docs/dift.md, The run), and the review gate.

The run (``<ws>/runs/<run>/``, checkpoints in ``<ws>/checkpoints/<run>/``):

1. train; from E_start on, :class:`~naviewer.defense.pipeline.DiftHook` embeds the training set
   after every epoch, folds the detections into the buffer and emits the ``dift_*`` epoch metrics;
2. once the buffer is stable it label-spreads; the result is saved as a detection pass of the
   workspace (``save_detection``) and the run's state file ``dift_state.json``
   (:mod:`naviewer.workspace.runs`) says where it is;
3. the review gate: with ``accept_all`` every flag that nobody rejected is confirmed at once
   (reviewer ``auto-accept``); otherwise an event ``dift_review`` is logged and either
   - the run stops after checkpointing (CLI: review with ``naviewer review`` or the GUI, then
     ``naviewer finetune WS`` = :func:`resume_after_review`), or
   - with a :class:`ReviewGate` (GUI), the job waits in its worker thread until
     ``gate.release()`` (cancel still works);
   this is the ONE gate: the workflow's ``on_stable`` returns the decision to the
   :class:`~naviewer.defense.pipeline.DiftHook`, which reports it (``dift_decision``: accepted
   only when acted on, else rejected / awaiting_review) and then calls the fine-tuning below;
4. Eq. 7 fine-tuning of the online backbone on the CONFIRMED samples (review states from the
   workspace store; rejected flags stay in the training set), one augmented view per image from
   the trainer's ``BatchAugment``, then ``method.sync_momentum_branch()``;
5. the restart: the confirmed samples leave the training store, ``trainer.replace_data(...,
   reset_schedule=True)`` (fresh optimiser, lr from the initial value over the remaining epochs).

kNN accuracy and ASR (attack's test trigger, ``asr`` = ASR_nt, ``asr_all``) come from the
workspace's ``[evaluation]`` section and go into the epoch records of ``metrics.jsonl``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from naviewer.defense.review import ReviewDecision, ReviewGate  # ReviewGate: also the public gate's import path
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context
from naviewer.workspace.runs import (
    AUTO_REVIEWER,
    RunStatus,
    confirm_flags,
    confirmed_ids,
    pending_review_runs,
    read_state,
    write_state,
)

# -- helpers ---------------------------------------------------------------------------------

class TimedHook:
    """Wraps a hook and adds up the seconds its ``after_epoch`` takes (detection time per run)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0

    def after_epoch(self, trainer, epoch: int) -> None:
        start = time.perf_counter()
        try:
            self.inner.after_epoch(trainer, epoch)
        finally:
            self.seconds += time.perf_counter() - start


def current_ids(trainer) -> np.ndarray:
    """Workspace ids of the trainer's current training store, in store order."""
    if trainer.source_indices is not None:
        return np.asarray(trainer.source_indices, dtype=np.int64)
    return np.arange(trainer.original_size, dtype=np.int64)


def _embed_settings(trainer) -> dict:
    from naviewer.defense.mitigate import trainer_embed_settings

    return trainer_embed_settings(trainer)


def trainer_embed_fn(trainer) -> np.ndarray:
    """Eval-mode backbone features of the trainer's current store at the TRAINING image size."""
    from naviewer.ssl.embed import extract_embeddings

    return extract_embeddings(trainer.method.backbone, trainer.store, ctx=trainer.ctx,
                              message="DIFT: embedding the training set", **_embed_settings(trainer))


def monitor_asr_fn(evaluation, image_size: int, k: int = 200, temperature: float = 0.1,
                   seed: int = 0) -> Optional[Callable]:
    """``asr_fn(trainer) -> {"asr": ASR_nt, "asr_all": ...}`` for the trainer's monitor (kNN on the
    clean bank, the attack's test trigger pasted on the clean test set)."""
    if evaluation is None or evaluation.trigger_fn is None or evaluation.target is None:
        return None
    from naviewer.evaluation.asr import attack_success_rates
    from naviewer.evaluation.encoder import triggered_store
    from naviewer.evaluation.knn import knn_predict
    from naviewer.ssl.embed import extract_embeddings

    queries = evaluation.test if evaluation.test is not None else evaluation.train
    triggered = triggered_store(queries, evaluation.trigger_fn, np.random.default_rng(seed))
    classes = int(max(evaluation.train.labels.max(), queries.labels.max()) + 1)

    def asr(trainer) -> dict:
        kw = dict(ctx=None, **_embed_settings(trainer))
        bank = extract_embeddings(trainer.method.backbone, evaluation.train, **kw)
        feats = extract_embeddings(trainer.method.backbone, triggered, **kw)
        pred = knn_predict(bank, evaluation.train.labels, feats, classes, k, temperature)
        rates = attack_success_rates(pred, queries.labels, int(evaluation.target))
        return {"asr": rates["asr_nt"], "asr_all": rates["asr_all"]}

    return asr


def _evaluation_kwargs(ws, trainer_config, monitor: bool, ctx) -> dict:
    if not monitor:
        return {}
    from naviewer.workflows.workspace_setup import evaluation_sets

    sets = evaluation_sets(ws, ctx)
    if sets is None:
        return {}
    out: dict[str, Any] = {"eval_store": sets.train}
    if sets.test is not None:
        out["eval_test_store"] = sets.test
    asr = monitor_asr_fn(sets, trainer_config.image_size, trainer_config.knn_k, trainer_config.knn_temperature)
    if asr is not None:
        out["asr_fn"] = asr
    return out


# -- fine-tuning + restart ---------------------------------------------------------------------

def finetune_and_restart(trainer, ws, pass_id: Optional[int], anchors, config, ctx: Optional[JobContext] = None,
                         seed: int = 0) -> dict:
    """Eq. 7 on the confirmed samples, branch sync, then restart on the data without them.

    The workspace side of :func:`naviewer.defense.mitigate.mitigate_in_training` (which does the
    fine-tuning, at the training image size): workspace ids -> positions in the trainer's current
    store, the reference set for the stop rule from the detection pass. Returns a record of what
    happened (also logged as ``finetune`` / ``restart`` events)."""
    from naviewer.defense.finetune import reference_ids
    from naviewer.defense.mitigate import mitigate_in_training

    ctx = ensure_context(ctx)
    start = time.perf_counter()
    ids = current_ids(trainer)
    confirmed = confirmed_ids(ws)
    in_store = np.isin(ids, confirmed)
    local = np.flatnonzero(in_store)
    record: dict[str, Any] = {"pass_id": pass_id, "confirmed": int(confirmed.size), "removed": int(local.size)}
    if local.size == 0:
        trainer.log_event("finetune", skipped=True, reason="no confirmed sample in the training set", **record)
        record.update(skipped=True, seconds=time.perf_counter() - start)
        return record
    store = trainer.store
    keep = np.flatnonzero(~in_store)
    if local.size >= 2:
        position = {int(v): k for k, v in enumerate(ids)}
        anchor_local = np.array([position[int(a)] for a in anchors.indices if int(a) in position], dtype=np.int64)
        ref = None
        if pass_id is not None:
            scores = ws.store.pass_scores(pass_id)
            if "candidate" in scores and "rank" in scores:
                cand = np.flatnonzero(np.asarray(scores["candidate"], dtype=bool)[ids])
                rank = np.asarray(scores["rank"], dtype=np.int64)[ids]
                size = min(int(local.size), int(len(ids) - local.size))
                if size >= 2:
                    ref = reference_ids(cand, local, rank, size, seed=seed)
        out = mitigate_in_training(trainer, local, anchor_local, config, ref, ctx, restart=True,
                                   event={"pass_id": pass_id}, seed_key=4099)
        record["finetune"] = out.finetune.to_dict()
        record["restart_mode"] = config.restart_mode
    else:
        trainer.log_event("finetune", skipped=True, reason="fewer than 2 confirmed samples", **record)
        record["finetune"] = None
        trainer.replace_data(store.subset(keep), reset_schedule=True, source_indices=keep)
    # read after the restart: restart_mode="retrain" sets a new budget (retrain_epochs), not what was left
    remaining = trainer.total_epochs - trainer.completed_epochs
    record.update(kept=int(keep.size), remaining_epochs=int(remaining), seconds=time.perf_counter() - start)
    return record


# -- the run -------------------------------------------------------------------------------------

@dataclass
class DiftRunOutcome:
    """How a DIFT training run ended."""

    run: str
    status: RunStatus                    # finished | awaiting_review | noop
    fit: dict = field(default_factory=dict)
    pass_id: Optional[int] = None
    detection: Optional[dict] = None     # DetectionResult.summary() (+ metrics vs ground truth)
    finetune: Optional[dict] = None
    checkpoint: Optional[Path] = None
    timings: dict = field(default_factory=dict)
    flagged: Optional[np.ndarray] = None  # workspace ids of the final DIFT flags (same on every torchrun rank)
    anchors: Optional[dict] = None        # AnchorSet.describe(): where the anchors came from, trusted or not

    def shared_fields(self) -> dict:
        """What rank 0 tells the other torchrun ranks about the run (they do not detect themselves)."""
        return {"status": self.status, "pass_id": self.pass_id, "detection": self.detection,
                "finetune": self.finetune, "flagged": self.flagged}


def _rank_info() -> tuple[bool, bool]:
    """(launched by torchrun with several processes, this is rank 0) from torchrun's environment."""
    import os

    return int(os.environ.get("WORLD_SIZE", "1")) > 1, int(os.environ.get("RANK", "0")) == 0


def _store_of(ws, ctx):
    from naviewer.data.store import ImageStore

    return ImageStore.from_dataset(ws.dataset(), ctx, "loading the training images")


def _share_outcome(trainer, outcome: DiftRunOutcome) -> None:
    """After ``fit`` on every torchrun rank: the others take rank 0's view of the run (status, pass, flags)."""
    from naviewer.ssl.distributed import broadcast_object

    fields_ = broadcast_object(outcome.shared_fields() if trainer.is_main else None, trainer.dist)
    for key, value in fields_.items():
        setattr(outcome, key, value)


def _follow_dift_run(ws, run: str, train_config, store, run_dir, ckpt_dir, extra: dict, outcome: DiftRunOutcome,
                     timings: dict, ctx) -> DiftRunOutcome:
    """A torchrun rank other than 0 in :func:`train_with_dift`: train its shard, embed its part of the
    training set when rank 0 detects, and take rank 0's flags, fine-tuned weights and reduced data."""
    from naviewer.defense.distributed import synchronised_dift_hook
    from naviewer.ssl.trainer import build_trainer

    hook, _ = synchronised_dift_hook(None)
    trainer = build_trainer(train_config, store, run_dir, hooks=[hook], checkpoint_dir=ckpt_dir, **extra)
    t1 = time.perf_counter()
    outcome.fit = trainer.fit(ctx)
    timings["train_total"] = time.perf_counter() - t1
    outcome.checkpoint = ckpt_dir / "last.pt"
    outcome.timings = timings
    _share_outcome(trainer, outcome)
    return outcome


def train_with_dift(ws, train_config, dift_config=None, *, run: str = "dift", accept_all: bool = False,
                    gate: Optional[ReviewGate] = None, monitor: bool = True, dift: bool = True,
                    exclude: Optional[np.ndarray] = None, ctx: Optional[JobContext] = None) -> DiftRunOutcome:
    """Train ``train_config`` (a TrainConfig) on the workspace's dataset with DIFT in the loop.

    ``accept_all``: confirm the flags at once and go on. Otherwise ``gate`` (GUI) makes the job wait
    for the analyst; without a gate the run stops after checkpointing with status
    ``awaiting_review`` (resume with :func:`resume_after_review`). ``dift=False`` trains without the
    defense (same data, same monitor); with ``exclude`` (workspace ids, only without DIFT) those
    samples are left out from the start (B1: retraining on the data a filter kept)."""
    from naviewer.defense.config import DiftConfig
    from naviewer.defense.pipeline import DiftHook, save_detection
    from naviewer.ssl.trainer import build_trainer
    from naviewer.workflows.anchor_sources import UNTRUSTED_NOTICE, load_anchor_set
    from naviewer.workflows.workspace_setup import ground_truth_mask

    ctx = ensure_context(ctx)
    config = (dift_config or DiftConfig()).validate()
    distributed, main = _rank_info()  # under torchrun only rank 0 writes the workspace and runs DIFT

    def state(**values: Any) -> None:
        if main:
            write_state(ws, run, **values)

    run_dir = ws.run_dir(run)
    ckpt_dir = ws.checkpoint_dir(run)
    if (ckpt_dir / "last.pt").exists():
        raise NaviewerError(f"run {run!r} already has a checkpoint: choose another run name, or resume it "
                            "(naviewer finetune after a review)", ckpt_dir / "last.pt")
    t0 = time.perf_counter()
    store = _store_of(ws, ctx)
    extra = _evaluation_kwargs(ws, train_config, monitor, ctx)
    timings: dict[str, float] = {"load": time.perf_counter() - t0}
    if main:
        ws.store.add_run(run, "dift-train" if dift else "train",
                         {"train": train_config.to_dict(), **({"dift": config.to_dict()} if dift else {}),
                          "accept_all": bool(accept_all)})
    if exclude is not None and len(exclude):
        if dift:
            raise NaviewerError("excluding samples from the start is only supported without DIFT")
        keep = np.setdiff1d(np.arange(len(store), dtype=np.int64), np.asarray(exclude, dtype=np.int64))
        store = store.subset(keep)
    if not dift:
        trainer = build_trainer(train_config, store, run_dir, checkpoint_dir=ckpt_dir, **extra)
        state(status=RunStatus.TRAINING, dift=False)
        t1 = time.perf_counter()
        summary = trainer.fit(ctx)
        timings["train"] = time.perf_counter() - t1
        state(status=RunStatus.FINISHED, epochs=summary["epochs"])
        return DiftRunOutcome(run, RunStatus.FINISHED, summary, checkpoint=ckpt_dir / "last.pt", timings=timings)

    outcome = DiftRunOutcome(run, RunStatus.FINISHED)
    if distributed and not main:
        return _follow_dift_run(ws, run, train_config, store, run_dir, ckpt_dir, extra, outcome, timings, ctx)
    anchor_set = load_anchor_set(ws, config.anchors_per_class, config.seed, ctx)
    anchors = anchor_set.anchors
    outcome.anchors = anchor_set.describe()
    if not anchor_set.trusted:
        ctx.event("warning", message=UNTRUSTED_NOTICE)
    truth = ground_truth_mask(ws)  # evaluation only: feeds dift_precision/recall, never detection
    ws.update_config("dift", {**config.to_dict(), "review": "auto" if accept_all else "pause"})
    holder: dict[str, Any] = {}

    def on_stable(result) -> ReviewDecision:
        """Save the pass, then the gate (accept-all, the GUI's ReviewGate, or stop): the decision."""
        trainer = holder["trainer"]
        epoch = trainer.completed_epochs - 1
        pass_id = save_detection(ws.store, result, run=run, epoch=epoch)
        outcome.pass_id = pass_id
        outcome.detection = result.summary()
        outcome.flagged = current_ids(trainer)[result.final_ids]
        info = {"workspace": str(ws.path), "run": run, "pass_id": pass_id, "epoch": epoch,
                "buffer": int(result.buffer_ids.size), "flagged": int(result.final_ids.size)}
        holder["info"] = info
        if result.noop:
            write_state(ws, run, status=RunStatus.NOOP, **info, detection=result.summary())
            outcome.status = RunStatus.NOOP
            return ReviewDecision("noop")
        if accept_all:
            confirm_flags(ws, pass_id)
            return ReviewDecision("accepted", _current_confirmed(trainer), AUTO_REVIEWER)
        write_state(ws, run, status=RunStatus.AWAITING_REVIEW, **info, detection=result.summary())
        trainer.log_event("dift_review", **info)
        if gate is None:
            trainer.request_stop("dift_review")
            outcome.status = RunStatus.AWAITING_REVIEW
            return ReviewDecision("awaiting_review")
        if gate.wait(info, ctx):
            return ReviewDecision("accepted", _current_confirmed(trainer), "analyst")
        trainer.log_event("finetune", skipped=True, reason="review cancelled", pass_id=pass_id)
        write_state(ws, run, status=RunStatus.REVIEW_SKIPPED, **info, detection=result.summary())
        return ReviewDecision("rejected", reviewer="analyst")

    def _current_confirmed(trainer) -> np.ndarray:
        """Positions in the trainer's store of the samples the review confirmed (what is acted on)."""
        return np.flatnonzero(np.isin(current_ids(trainer), confirmed_ids(ws)))

    def mitigate(trainer, _accepted) -> dict:
        info = holder["info"]
        record = finetune_and_restart(trainer, ws, info["pass_id"], anchors, config, ctx, seed=config.seed)
        outcome.finetune = record
        timings["finetune"] = record.get("seconds", 0.0)
        write_state(ws, run, status=RunStatus.RESTARTED, **info, finetune=record, detection=outcome.detection)
        return record

    # one gate: ours (on_stable returns the decision); the hook reports it and calls our mitigation
    embed_fn, hooks = trainer_embed_fn, None
    if distributed:  # rank 0 detects on the gathered embeddings; the other ranks follow (_follow_dift_run)
        from naviewer.defense.distributed import synchronised_dift_hook

        sync_hook, embed_fn = synchronised_dift_hook(None, share=lambda _t, _v: outcome.shared_fields() if outcome.pass_id is not None else None)
        hooks = [sync_hook]
    prepare = None
    if anchor_set.external is not None:
        def prepare(trainer, features: np.ndarray):
            """The trusted images outside the training set, embedded with this epoch's encoder."""
            from naviewer.ssl.embed import extract_embeddings

            return anchor_set.for_features(features, lambda store: extract_embeddings(
                trainer.method.backbone, store, ctx=None, **_embed_settings(trainer)))

    hook = DiftHook(anchors, config, embed_fn=embed_fn, on_stable=on_stable, ground_truth=truth,
                    total_epochs=train_config.epochs, ctx=ctx, mitigate=mitigate, prepare=prepare)
    timed = TimedHook(hook)
    if hooks is None:
        hooks = [timed]
    else:
        hooks[0].inner = timed
    trainer = build_trainer(train_config, store, run_dir, hooks=hooks, checkpoint_dir=ckpt_dir, **extra)
    holder["trainer"] = trainer
    write_state(ws, run, status=RunStatus.DETECTING, dift=True, accept_all=bool(accept_all))
    t1 = time.perf_counter()
    summary = trainer.fit(ctx)
    timings["train_total"] = time.perf_counter() - t1
    timings["detection"] = timed.seconds - timings.get("finetune", 0.0)
    outcome.fit = summary
    outcome.checkpoint = ckpt_dir / "last.pt"
    outcome.timings = timings
    if distributed:
        _share_outcome(trainer, outcome)
    if outcome.status is RunStatus.AWAITING_REVIEW:
        return outcome
    if hook.result is None:
        write_state(ws, run, status=RunStatus.FINISHED, note="detection never stopped (run too short for E_start + patience)",
                    epochs=summary["epochs"])
        outcome.status = RunStatus.FINISHED
        return outcome
    write_state(ws, run, status=RunStatus.FINISHED, epochs=summary["epochs"])
    outcome.status = RunStatus.FINISHED if outcome.status is not RunStatus.NOOP else RunStatus.NOOP
    return outcome


def resume_after_review(ws, run: Optional[str] = None, *, accept_all: bool = False, monitor: bool = True,
                        config_overrides: Optional[dict] = None, dift_overrides: Optional[dict] = None,
                        ctx: Optional[JobContext] = None) -> DiftRunOutcome:
    """``naviewer finetune WS``: fine-tune on the confirmed flags, then finish training on the rest.

    ``dift_overrides`` change DIFT settings for the fine-tuning (e.g. ``base_lr`` after a divergence);
    ``config_overrides`` the training run's (device, threads)."""
    from naviewer.defense.config import DiftConfig
    from naviewer.ssl.trainer import TrainConfig, Trainer
    from naviewer.ssl.checkpoints import load_training_checkpoint
    from naviewer.workflows.workspace_setup import workspace_anchors

    ctx = ensure_context(ctx)
    if run is None:
        waiting = pending_review_runs(ws)
        if not waiting:
            raise NaviewerError("no DIFT run of this workspace is waiting for a review "
                                "(start one with: naviewer run WORKSPACE --dift)", ws.path)
        if len(waiting) > 1:
            raise NaviewerError(f"several runs wait for a review ({', '.join(waiting)}): choose one with --run", ws.path)
        run = waiting[0]
    state = read_state(ws, run)
    if not state or state.status is not RunStatus.AWAITING_REVIEW:
        status = state.status if state else "unknown"
        raise NaviewerError(f"run {run!r} is not waiting for a review (status: {status})", ws.path / "runs" / run)
    pass_id = state.pass_id
    distributed, main = _rank_info()  # under torchrun rank 0 confirms, fine-tunes and writes; the others follow
    counts: dict = {}
    if main:
        if accept_all and pass_id is not None:
            confirm_flags(ws, int(pass_id))
        counts = {s: int((ws.store.review_states() == s).sum()) for s in ("confirmed", "rejected", "later")}
    ckpt_dir = ws.checkpoint_dir(run)
    t0 = time.perf_counter()
    store = _store_of(ws, ctx)
    saved = load_training_checkpoint(ckpt_dir / "last.pt")
    train_config = TrainConfig.from_saved({**saved["config"], **dict(config_overrides or {})})
    del saved
    extra = _evaluation_kwargs(ws, train_config, monitor, ctx)
    trainer = Trainer.resume(ws.run_dir(run), store, hooks=[], config_overrides=config_overrides,
                             checkpoint_dir=ckpt_dir, **extra)
    trainer.open_metrics(ctx)
    timings = {"load": time.perf_counter() - t0}

    def finetune(trainer) -> dict:
        config = DiftConfig.from_workspace(ws, dift_overrides)
        anchors = workspace_anchors(ws, config.anchors_per_class, config.seed)
        trainer.log_event("review_done", pass_id=pass_id, **counts)
        record = finetune_and_restart(trainer, ws, None if pass_id is None else int(pass_id), anchors, config, ctx,
                                      seed=config.seed)
        trainer.save_checkpoint()
        write_state(ws, run, status=RunStatus.RESTARTED, finetune=record, review=counts)
        return record

    if distributed:
        from naviewer.ssl.distributed import MainRankSection

        section = MainRankSection()
        section.run(trainer, finetune, share=lambda _t, rec: {"finetune": rec, "review": counts})
        record, counts = section.shared["finetune"], section.shared["review"]
    else:
        record = finetune(trainer)
    timings["finetune"] = record.get("seconds", 0.0)
    t1 = time.perf_counter()
    summary = trainer.fit(ctx)
    timings["train_rest"] = time.perf_counter() - t1
    if main:
        write_state(ws, run, status=RunStatus.FINISHED, epochs=summary["epochs"])
    return DiftRunOutcome(run, RunStatus.FINISHED, summary, pass_id=None if pass_id is None else int(pass_id),
                          detection=state.detection, finetune=record, checkpoint=ckpt_dir / "last.pt",
                          timings=timings)
