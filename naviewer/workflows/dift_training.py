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
   this is the ONE gate: :meth:`DiftRun.on_stable` returns the decision to the
   :class:`~naviewer.defense.pipeline.DiftHook`, which reports it (``dift_decision``: accepted
   only when acted on, else rejected / awaiting_review) and then calls :meth:`DiftRun.mitigate`;
4. Eq. 7 fine-tuning of the online backbone on the CONFIRMED samples (review states from the
   workspace store; rejected flags stay in the training set), one augmented view per image from
   the trainer's ``BatchAugment``, then ``method.sync_momentum_branch()``;
5. the restart: the confirmed samples leave the training store, ``trainer.replace_data(...,
   reset_schedule=True)`` (fresh optimiser, lr from the initial value over the remaining epochs).

One epoch's control flow: the trainer (``ssl``) calls the hook (``defense``) after the epoch; the
hook calls :meth:`DiftRun.on_stable` (this module) when the buffer is stable and, for an accepted
decision, :meth:`DiftRun.mitigate`, which fine-tunes and restarts the trainer. :class:`DiftRun`
holds the run's state between those calls; :func:`train_with_dift` and :func:`resume_after_review`
are the entry points. Every fine-tuning reports a :class:`~naviewer.workspace.runs.FinetuneOutcome`.

kNN accuracy and ASR (attack's test trigger, ``asr`` = ASR_nt, ``asr_all``) come from the
workspace's ``[evaluation]`` section and go into the epoch records of ``metrics.jsonl``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from naviewer.data.store import ImageStore
from naviewer.defense.anchors import Anchors
from naviewer.defense.config import DiftConfig
from naviewer.defense.distributed import synchronised_dift_hook
from naviewer.defense.finetune import reference_ids
from naviewer.defense.mitigate import mitigate_in_training, trainer_embed_settings
from naviewer.defense.pipeline import DetectionResult, DiftHook, save_detection
from naviewer.defense.review import ReviewDecision, ReviewGate  # ReviewGate: also the public gate's import path
from naviewer.errors import NaviewerError
from naviewer.evaluation.asr import attack_success_rates
from naviewer.evaluation.encoder import triggered_store
from naviewer.evaluation.knn import knn_predict
from naviewer.io import NPY_READ_ERRORS, atomic_path, json_loads
from naviewer.jobs import JobContext, ensure_context
from naviewer.ssl.checkpoints import load_training_checkpoint
from naviewer.ssl.distributed import MainRankSection, broadcast_object
from naviewer.ssl.embed import extract_embeddings
from naviewer.ssl.trainer import TrainConfig, Trainer, build_trainer
from naviewer.workflows.anchor_sources import UNTRUSTED_NOTICE, AnchorSet, load_anchor_set
from naviewer.workflows.workspace_setup import EvaluationSets, evaluation_sets, evaluation_truth, workspace_anchors
from naviewer.workspace import Workspace
from naviewer.workspace.anchor_record import section_fingerprint
from naviewer.workspace.runs import (
    AUTO_REVIEWER,
    REVIEW_CHECKPOINT,
    being_trained,
    continued_past_verdict,
    FinetuneOutcome,
    RunState,
    RunStatus,
    confirm_flags,
    confirmed_ids,
    interrupted_runs,
    interrupted_trainings,
    pending_review_runs,
    read_state,
    resumable_runs,
    stopped_after_review,
    training_lock,
    write_state,
)

# -- helpers ---------------------------------------------------------------------------------

class TimedHook:
    """Wraps a hook and adds up the seconds its ``after_epoch`` takes (detection time per run)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0

    def after_epoch(self, trainer: Trainer, epoch: int) -> None:
        start = time.perf_counter()
        try:
            self.inner.after_epoch(trainer, epoch)
        finally:
            self.seconds += time.perf_counter() - start


def current_ids(trainer: Trainer) -> np.ndarray:
    """Workspace ids of the trainer's current training store, in store order."""
    if trainer.source_indices is not None:
        return np.asarray(trainer.source_indices, dtype=np.int64)
    return np.arange(trainer.original_size, dtype=np.int64)


def monitor_asr_fn(evaluation: Optional[EvaluationSets], image_size: int, k: int = 200, temperature: float = 0.1,
                   seed: int = 0) -> Optional[Callable[[Trainer], dict]]:
    """``asr_fn(trainer) -> {"asr": ASR_nt, "asr_all": ...}`` for the trainer's monitor (kNN on the
    clean bank, the attack's test trigger pasted on the clean test set)."""
    if evaluation is None or evaluation.trigger_fn is None or evaluation.target is None:
        return None
    queries = evaluation.test if evaluation.test is not None else evaluation.train
    triggered = triggered_store(queries, evaluation.trigger_fn, np.random.default_rng(seed))
    classes = int(max(evaluation.train.labels.max(), queries.labels.max()) + 1)

    def asr(trainer: Trainer) -> dict:
        kw = dict(ctx=None, **trainer_embed_settings(trainer))
        bank = extract_embeddings(trainer.method.backbone, evaluation.train, **kw)
        feats = extract_embeddings(trainer.method.backbone, triggered, **kw)
        pred = knn_predict(bank, evaluation.train.labels, feats, classes, k, temperature)
        rates = attack_success_rates(pred, queries.labels, int(evaluation.target))
        return {"asr": rates["asr_nt"], "asr_all": rates["asr_all"]}

    return asr


def _evaluation_kwargs(ws: Workspace, trainer_config: TrainConfig, monitor: bool, ctx: JobContext) -> dict:
    if not monitor:
        return {}
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


def _anchor_preparer(anchor_set: AnchorSet) -> Optional[Callable[[Trainer, np.ndarray], Any]]:
    """``prepare(trainer, features)`` for the hook when the trusted anchors lie outside the training
    set: they are embedded with this epoch's encoder and appended. None when they are training samples."""
    if anchor_set.external is None:
        return None

    def prepare(trainer: Trainer, features: np.ndarray):
        return anchor_set.for_features(features, lambda store: extract_embeddings(
            trainer.method.backbone, store, ctx=None, **trainer_embed_settings(trainer)))

    return prepare


# -- fine-tuning + restart ---------------------------------------------------------------------

def finetune_and_restart(trainer: Trainer, ws: Workspace, pass_id: Optional[int], anchors: Anchors,
                         config: DiftConfig, ctx: Optional[JobContext] = None, seed: int = 0) -> FinetuneOutcome:
    """Eq. 7 on the confirmed samples, branch sync, then restart on the data without them.

    The workspace side of :func:`naviewer.defense.mitigate.mitigate_in_training` (which does the
    fine-tuning, at the training image size): workspace ids -> positions in the trainer's current
    store, the reference set for the stop rule from the detection pass. Returns what happened (also
    logged as ``finetune`` / ``restart`` events)."""
    ctx = ensure_context(ctx)
    start = time.perf_counter()
    ids = current_ids(trainer)
    confirmed = confirmed_ids(ws)
    in_store = np.isin(ids, confirmed)
    local = np.flatnonzero(in_store)
    outcome = FinetuneOutcome(confirmed=int(confirmed.size), pass_id=pass_id, removed=int(local.size))
    if local.size == 0:
        trainer.log_event("finetune", skipped=True, reason="no confirmed sample in the training set",
                          pass_id=pass_id, confirmed=outcome.confirmed, removed=outcome.removed)
        outcome.skipped, outcome.seconds = True, time.perf_counter() - start
        return outcome
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
        outcome.finetune = out.finetune.to_dict()
        outcome.restart_mode = "retrain" if out.fallback else config.restart_mode
        if out.fallback:  # said by every front end: the paper's restart asked for, a retrain run
            outcome.finetune["fallback"] = out.fallback
    else:
        trainer.log_event("finetune", skipped=True, reason="fewer than 2 confirmed samples",
                          pass_id=pass_id, confirmed=outcome.confirmed, removed=outcome.removed)
        trainer.replace_data(store.subset(keep), reset_schedule=True, source_indices=keep)
    # read after the restart: restart_mode="retrain" sets a new budget (retrain_epochs), not what was left
    outcome.kept = int(keep.size)
    outcome.remaining_epochs = int(trainer.total_epochs - trainer.completed_epochs)
    outcome.seconds = time.perf_counter() - start
    return outcome


# -- the run -------------------------------------------------------------------------------------

@dataclass
class DiftRunOutcome:
    """How a DIFT training run ended."""

    run: str
    status: RunStatus                    # finished | awaiting_review | noop
    fit: dict = field(default_factory=dict)
    pass_id: Optional[int] = None
    detection: Optional[dict] = None     # DetectionResult.summary() (+ metrics vs ground truth)
    finetuned: Optional[FinetuneOutcome] = None   # what the fine-tuning did (None: none ran)
    checkpoint: Optional[Path] = None
    timings: dict = field(default_factory=dict)
    flagged: Optional[np.ndarray] = None  # workspace ids of the final DIFT flags (same on every torchrun rank)
    anchors: Optional[dict] = None        # AnchorSet.describe(): where the anchors came from, trusted or not
    note: str = ""                        # why DIFT never stopped the run (never_stopped_note), where it did not

    @property
    def finetune(self) -> Optional[dict]:
        """The fine-tuning's record as the run state keeps it (``FinetuneOutcome.to_dict()``), or None."""
        return None if self.finetuned is None else self.finetuned.to_dict()

    def shared_fields(self) -> dict:
        """What rank 0 tells the other torchrun ranks about the run (they do not detect themselves)."""
        return {"status": self.status, "pass_id": self.pass_id, "detection": self.detection,
                "finetuned": self.finetuned, "flagged": self.flagged}


def _rank_info() -> tuple[bool, bool]:
    """(launched by torchrun with several processes, this is rank 0) from torchrun's environment."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1, int(os.environ.get("RANK", "0")) == 0


def _store_of(ws: Workspace, ctx: JobContext) -> ImageStore:
    return ImageStore.from_dataset(ws.checked_dataset(), ctx, "loading the training images")


def _what_the_review_did(ws: Workspace, run: str) -> str:
    """What a run stopped after its review did with the confirmed samples, from its state: "fine-tuned, or
    retrained from scratch" named neither (a probe, session 29)."""
    state = read_state(ws, run)
    record = (state.finetune or {}) if state is not None else {}
    removed = record.get("removed")
    took = f"took out {removed} confirmed sample{'s' if removed != 1 else ''} and " if isinstance(removed, int) else ""
    if record.get("restart_mode") == "retrain":
        fell_back = isinstance(record.get("finetune"), dict) and record["finetune"].get("fallback")
        return took + ("retrained from scratch: the paper's restart fell back to it, its Eq. 7 fine-tune took no step"
                       if fell_back else "retrained from scratch")
    steps = (record.get("finetune") or {}).get("steps") if isinstance(record.get("finetune"), dict) else None
    return took + (f"fine-tuned ({steps} Eq. 7 step{'s' if steps != 1 else ''}), then restarted training"
                   if isinstance(steps, int) else "fine-tuned, then restarted training")


def _run_waiting_for_review(ws: Workspace, run: Optional[str]) -> tuple[str, RunState]:
    """The run to resume (``run``, or the one run that waits) and its state; a NaviewerError otherwise."""
    if run is None:
        waiting = pending_review_runs(ws)
        if not waiting:
            from naviewer.workspace.runs import stopped_after_review

            stopped = [r.name for r in sorted((ws.path / "runs").glob("*")) if r.is_dir()
                       and stopped_after_review(ws, r.name)] if (ws.path / "runs").is_dir() else []
            if stopped:  # a fine-tune stopped while training on: its review is done (it sent a newcomer to start over)
                raise NaviewerError(f"run {stopped[0]!r} acted on its review ({_what_the_review_did(ws, stopped[0])}) "
                                    f"and stopped while training on: go "
                                    f"on with naviewer run WORKSPACE --resume" + ("" if len(stopped) == 1 else
                                                                                  f" --run {stopped[0]}"), ws.path)
            raise NaviewerError("no DIFT run of this workspace is waiting for a review "
                                "(start one with: naviewer run WORKSPACE --dift)", ws.path)
        if len(waiting) > 1:
            raise NaviewerError(f"several runs wait for a review ({', '.join(waiting)}): choose one with --run", ws.path)
        run = waiting[0]
    state = read_state(ws, run)
    if not state or state.status is not RunStatus.AWAITING_REVIEW:
        status = state.status if state else "unknown"
        raise NaviewerError(f"run {run!r} is not waiting for a review (status: {status})", ws.path / "runs" / run)
    return run, state


class DiftRun:
    """One training run of a workspace with DIFT in the loop, and the review gate in the middle.

    :meth:`train` builds the trainer with a :class:`~naviewer.defense.pipeline.DiftHook` that calls
    back into this object: :meth:`on_stable` when the buffer is stable (save the pass, decide at the
    gate) and :meth:`mitigate` once it was accepted (fine-tune, restart). :meth:`resume_after_review`
    takes up a run that stopped for review. Under torchrun rank 0 detects, reviews and writes the
    workspace; the other ranks follow it (:meth:`_follow`). The outcome builds up in ``outcome``.
    """

    def __init__(self, ws: Workspace, run: str, *, accept_all: bool = False, gate: Optional[ReviewGate] = None,
                 ctx: Optional[JobContext] = None) -> None:
        self.ws = ws
        self.run = run
        self.accept_all = bool(accept_all)
        self.gate = gate
        self.ctx = ensure_context(ctx)
        self.distributed, self.main = _rank_info()
        self.timings: dict[str, float] = {}
        self.outcome = DiftRunOutcome(run, RunStatus.FINISHED, timings=self.timings)
        self.config = DiftConfig()
        self.anchors: Optional[Anchors] = None
        self.trainer: Optional[Trainer] = None
        self.truth: Optional[np.ndarray] = None  # the evaluation's ground truth (metrics only, never detection)
        self.anchors_fp: Optional[str] = None    # which anchors the run detects with (recorded with its pass)
        self.review: dict[str, Any] = {}    # what the run state and the review events say about the pass
        self.resume = False                 # going on from the run's checkpoint (resume_interrupted)

    @property
    def checkpoint(self) -> Path:
        return self.ws.checkpoint_dir(self.run) / "last.pt"

    # -- training ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _claim(self):
        """Hold ``runs/.NAME.lock`` while this process trains the run: two ``naviewer run`` of one name started
        together both passed the checkpoint check and wrote one run's files mixed (one training lost). The
        operating system drops the lock when its holder dies, so a killed run never blocks the next."""
        from naviewer.workspace.workspace import _check_name

        _check_name("run", self.run)  # before the name becomes a path ("../x" would lock outside the workspace)
        if self.distributed and not self.main:
            yield
            return

        def unguarded(exc: BaseException) -> None:  # a file system without locks: train, and say so
            self.ctx.event("warning", message=f"run {self.run!r} could not be locked ({exc}); do not start a second "
                                              "run of this name until this one is done")

        with training_lock(self.ws, self.run, "wait for it, or choose another run name (--run NAME)", unguarded):
            yield

    def _drop_empty_folders(self) -> None:
        """A run that failed before training (its dataset gone) left empty ``checkpoints/NAME/`` behind."""
        for folder in (self.ws.path / "checkpoints" / self.run, self.ws.path / "runs" / self.run):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty

    def train(self, train_config: TrainConfig, config: DiftConfig, *, monitor: bool = True, dift: bool = True,
              exclude: Optional[np.ndarray] = None, resume: bool = False, run_kind: Optional[str] = None,
              record_extra: Optional[dict] = None) -> DiftRunOutcome:
        """See :func:`train_with_dift`; ``resume``: go on from the run's checkpoint (:func:`resume_interrupted`)."""
        with self._claim():
            return self._train(train_config, config, monitor=monitor, dift=dift, exclude=exclude, resume=resume,
                               run_kind=run_kind, record_extra=record_extra)

    def _train(self, train_config: TrainConfig, config: DiftConfig, *, monitor: bool, dift: bool,
               exclude: Optional[np.ndarray], resume: bool = False, run_kind: Optional[str] = None,
               record_extra: Optional[dict] = None) -> DiftRunOutcome:
        ws, ctx = self.ws, self.ctx
        self.config = config
        self.resume = resume
        if self.main:
            ws.store.check_writable()  # before the training: its record and its passes are written into it
        if self.checkpoint.exists() and not resume:
            state = read_state(ws, self.run)
            status = getattr(state, "status", None)
            if status is RunStatus.AWAITING_REVIEW:
                how = "or review its flags and resume it with naviewer finetune"
            elif self.run in interrupted_runs(ws):  # interrupted (Ctrl-C, a crash) before its pass
                how = (f"or continue it where it stopped: naviewer run WORKSPACE --resume --run {self.run}")
            else:  # finished: finetune would not go on with this training (a sweep's newcomer)
                said = getattr(status, "value", status) or "unknown"
                how = (f"it stopped with status {said!r}; detect on its checkpoint (naviewer detect WORKSPACE "
                       "--checkpoint this file) or train again under another --run name")
            raise NaviewerError(f"run {self.run!r} already has a checkpoint: choose another run name, {how}",
                                self.checkpoint)
        t0 = time.perf_counter()
        try:
            store = _store_of(ws, ctx)
            extra = _evaluation_kwargs(ws, train_config, monitor, ctx)
        except BaseException:
            self._drop_empty_folders()
            raise
        self.timings["load"] = time.perf_counter() - t0
        if dift and exclude is not None and len(exclude):  # said before the run is recorded
            raise NaviewerError("excluding samples from the start is only supported without DIFT")
        if self.main and not resume:  # a resumed run keeps its record
            left_out = ({"exclude": np.unique(np.asarray(exclude, dtype=np.int64)).tolist()}
                        if exclude is not None and len(exclude) else {})  # a resume leaves out the same samples
            ws.store.add_run(self.run, run_kind or ("dift-train" if dift else "train"),
                             {"train": train_config.to_dict(), **({"dift": config.to_dict()} if dift else {}),
                              "accept_all": self.accept_all, **left_out, **dict(record_extra or {})})
        if exclude is not None and len(exclude):
            keep = np.setdiff1d(np.arange(len(store), dtype=np.int64), np.asarray(exclude, dtype=np.int64))
            store = store.subset(keep)
        if not dift:
            return self._train_without_dift(train_config, store, extra)
        if self.distributed and not self.main:
            return self._follow(train_config, store, extra)
        return self._train_with_dift(train_config, store, extra)

    def _build_trainer(self, train_config: TrainConfig, store: ImageStore, extra: dict, hooks=None) -> Trainer:
        trainer = build_trainer(train_config, store, self.ws.run_dir(self.run), checkpoint_dir=self.checkpoint.parent,
                                **({"hooks": hooks} if hooks is not None else {}), **extra)
        if self.resume:  # a damaged checkpoint refuses here, before the run's record is rewritten as going on
            trainer.restore_checkpoint()
        return trainer

    def _train_without_dift(self, train_config: TrainConfig, store: ImageStore, extra: dict) -> DiftRunOutcome:
        """The same data and monitor without the defense (a baseline, or B1's retraining)."""
        trainer = self._build_trainer(train_config, store, extra)
        if self.main:
            write_state(self.ws, self.run, status=RunStatus.TRAINING, dift=False)
        t1 = time.perf_counter()
        summary = trainer.fit(self.ctx, resume=self.resume)
        self.timings["train"] = time.perf_counter() - t1
        if self.main:
            write_state(self.ws, self.run, status=RunStatus.FINISHED, epochs=summary["epochs"])
        return DiftRunOutcome(self.run, RunStatus.FINISHED, summary, checkpoint=self.checkpoint, timings=self.timings)

    def _follow(self, train_config: TrainConfig, store: ImageStore, extra: dict) -> DiftRunOutcome:
        """A torchrun rank other than 0: train its shard, embed its part of the training set when rank 0
        detects, and take rank 0's flags, fine-tuned weights and reduced data."""
        hook, _ = synchronised_dift_hook(None)
        trainer = self._build_trainer(train_config, store, extra, hooks=[hook])
        return self._fit(trainer)

    def _train_with_dift(self, train_config: TrainConfig, store: ImageStore, extra: dict) -> DiftRunOutcome:
        ws, ctx, config, outcome = self.ws, self.ctx, self.config, self.outcome
        anchor_set = load_anchor_set(ws, config.anchors_per_class, config.seed, ctx)
        self.anchors = anchor_set.anchors
        self.anchors_fp = section_fingerprint(ws.config.get("anchors"))  # as loaded (recorded there when drawn)
        outcome.anchors = anchor_set.describe()
        if not anchor_set.trusted:
            ctx.event("warning", message=UNTRUSTED_NOTICE)
        truth = evaluation_truth(ws, ctx)  # evaluation only: feeds dift_precision/recall, never detection
        self.truth = truth
        # one gate: ours (on_stable returns the decision); the hook reports it and calls our mitigation
        embed_fn, sync_hook = None, None
        if self.distributed:  # rank 0 detects on the gathered embeddings; the other ranks follow (_follow)
            sync_hook, embed_fn = synchronised_dift_hook(None, share=self._share_with_followers)
        hook = DiftHook(self.anchors, config, embed_fn=embed_fn, on_stable=self.on_stable, ground_truth=truth,
                        total_epochs=train_config.epochs, ctx=ctx, mitigate=self.mitigate,
                        prepare=_anchor_preparer(anchor_set),
                        # a rank holds its slice of the images only: the crop-agreement rule is skipped (said)
                        crop_fn=(lambda trainer, n, seed: None) if self.distributed else None,
                        on_update=self._keep_selection, replay=self._kept_selections if self.resume else None)
        timed = TimedHook(hook)
        if sync_hook is not None:
            sync_hook.inner = timed
        self.trainer = trainer = self._build_trainer(train_config, store, extra,
                                                     hooks=[sync_hook if sync_hook is not None else timed])
        # recorded once the trainer is built: a resume from a damaged checkpoint refuses there, nothing rewritten
        ws.update_config("dift", {**config.to_dict(), "review": "auto" if self.accept_all else "pause"})
        if self.main and not self.resume:  # an earlier run of this name (its checkpoint deleted) left its S_t here
            shutil.rmtree(self._selection_dir, ignore_errors=True)
        if self.resume and self.main:  # a damaged record refused now, before an epoch is trained and thrown away
            self._check_kept_selections(self._kept_selections())
        write_state(ws, self.run, status=RunStatus.DETECTING, dift=True, accept_all=self.accept_all,
                    anchors_fingerprint=anchors_fingerprint(ws))  # after load_anchor_set, which may record them
        self._fit(trainer)
        self.timings["detection"] = timed.seconds - self.timings.get("finetune", 0.0) - self.timings.get("trigger_check", 0.0)
        return self._finish(hook)

    # -- what an interrupted run needs to go on (naviewer run --resume) ------------------------------------------
    @property
    def _selection_dir(self) -> Path:
        return self.ws.run_dir(self.run) / "dift_selected"

    def _keep_selection(self, epoch: int, selected: np.ndarray) -> None:
        """Each detection epoch's S_t, beside the run's metrics: the buffer of a resumed run is rebuilt from them."""
        if not self.main:
            return
        with atomic_path(self._selection_dir / f"epoch_{int(epoch):05d}.npy") as temp:  # hidden until whole
            np.save(temp, np.asarray(selected, dtype=np.int64))

    def _kept_selections(self) -> list[tuple[int, np.ndarray]]:
        out = []
        n = len(self.trainer.store) if self.trainer is not None else None
        # only the records this run writes: a user's copy beside them (epoch_abc.npy) condemned the whole run
        paths = [p for p in self._selection_dir.glob("epoch_*.npy") if re.fullmatch(r"epoch_\d{5,}\.npy", p.name)]
        for path in sorted(paths):
            try:
                try:
                    selected = np.load(path, allow_pickle=False)
                except OSError:
                    raise
                except NPY_READ_ERRORS:  # NumPy's own words advise loading the file unsafely
                    raise ValueError("not a NumPy array of sample ids") from None
                problem = ("not a list of sample ids" if selected.ndim != 1 or not np.issubdtype(selected.dtype, np.integer)
                           else f"ids outside the run's {n} samples" if n is not None and selected.size
                           and (selected.min() < 0 or selected.max() >= n) else "")
                if problem:  # floats or ids past the end raised an IndexError at the first detection (a probe, session 30)
                    raise ValueError(problem)
                out.append((int(path.stem.split("_")[1]), selected.astype(np.int64)))
            except (OSError, ValueError, IndexError) as exc:
                raise NaviewerError(f"the run's record of a detection epoch is damaged ({exc}); the run cannot be "
                                    "resumed: train again under another --run name", path) from None
        return out

    def _check_kept_selections(self, kept: list[tuple[int, np.ndarray]]) -> None:
        """Every detection epoch the run's metrics record has its S_t: a record deleted (or the whole folder) was
        taken as an empty history and DIFT went on with a buffer rebuilt from what was left, exit 0, without a word
        (a bad-input probe, session 30). The S_t is written before the epoch's metrics, so a metric implies a record."""
        watched = _detection_epochs(self.ws.path / "runs" / self.run / "metrics.jsonl")
        missing = sorted(watched - {epoch for epoch, _ in kept})
        if missing:
            shown = ", ".join(str(e + 1) for e in missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
            raise NaviewerError(f"the records of detection epoch{'s' if len(missing) > 1 else ''} {shown} are missing "
                                "(deleted?), so DIFT's buffer cannot be rebuilt; the run cannot be resumed: train again "
                                "under another --run name", self._selection_dir)

    def _fit(self, trainer: Trainer) -> DiftRunOutcome:
        """Train to the end (or the review stop); under torchrun every rank then takes rank 0's view of the run."""
        t1 = time.perf_counter()
        self.outcome.fit = trainer.fit(self.ctx, resume=self.resume)
        self.timings["train_total"] = time.perf_counter() - t1
        self.outcome.checkpoint = self.checkpoint
        if self.distributed:
            shared = broadcast_object(self.outcome.shared_fields() if trainer.is_main else None, trainer.dist)
            for key, value in shared.items():
                setattr(self.outcome, key, value)
        return self.outcome

    def _share_with_followers(self, _trainer: Trainer, _value: Any) -> Optional[dict]:
        return self.outcome.shared_fields() if self.outcome.pass_id is not None else None

    def _finish(self, hook: DiftHook) -> DiftRunOutcome:
        outcome = self.outcome
        if outcome.status is RunStatus.AWAITING_REVIEW:
            return outcome
        epochs = outcome.fit["epochs"]
        if hook.result is None:
            outcome.note = never_stopped_note(hook, epochs, terminal=True)
            write_state(self.ws, self.run, status=RunStatus.FINISHED, note=never_stopped_note(hook, epochs),
                        epochs=epochs)
            outcome.status = RunStatus.FINISHED
            return outcome
        write_state(self.ws, self.run, status=RunStatus.FINISHED, epochs=epochs)
        if outcome.status is not RunStatus.NOOP:
            outcome.status = RunStatus.FINISHED
        return outcome

    # -- the hook's callbacks (rank 0) -----------------------------------------------------------------
    def on_stable(self, result: DetectionResult) -> ReviewDecision:
        """Save the pass, then the gate (accept-all, the GUI's ReviewGate, or stop): the decision."""
        ws, run, trainer, outcome = self.ws, self.run, self.trainer, self.outcome
        epoch = trainer.completed_epochs - 1
        self._trigger_check(result, epoch)  # before DIFT's pass is saved: DIFT's stays the workspace's latest
        result.settings["anchors_fingerprint"] = self.anchors_fp  # which anchors judged it (as the run loaded them)
        pass_id = save_detection(ws.store, result, run=run, epoch=epoch)
        outcome.pass_id = pass_id
        outcome.detection = result.summary()
        outcome.flagged = current_ids(trainer)[result.final_ids]
        info = {"workspace": str(ws.path), "run": run, "pass_id": pass_id, "epoch": epoch,
                "buffer": int(result.buffer_ids.size), "flagged": int(result.final_ids.size)}
        self.review = info
        if result.noop:
            write_state(ws, run, status=RunStatus.NOOP, **info, detection=result.summary())
            outcome.status = RunStatus.NOOP
            return ReviewDecision("noop")
        if self.accept_all:
            confirm_flags(ws, pass_id, leave=self._cleared(pass_id))
            return ReviewDecision("accepted", self._confirmed_positions(trainer), AUTO_REVIEWER)
        write_state(ws, run, status=RunStatus.AWAITING_REVIEW, **info, detection=result.summary())
        trainer.log_event("dift_review", **info)
        if self.gate is None:
            trainer.request_stop("dift_review")
            outcome.status = RunStatus.AWAITING_REVIEW
            return ReviewDecision("awaiting_review")
        if self.gate.wait(info, self.ctx):
            return ReviewDecision("accepted", self._confirmed_positions(trainer), "analyst")
        trainer.log_event("finetune", skipped=True, reason="review cancelled", pass_id=pass_id)
        write_state(ws, run, status=RunStatus.REVIEW_SKIPPED, **info, detection=result.summary())
        return ReviewDecision("rejected", reviewer="analyst")

    def _trigger_check(self, result: DetectionResult, epoch: int) -> None:
        """The trigger check (:mod:`naviewer.workflows.trigger_check`) when it is on and flags are reached as
        clean; recorded in ``result.settings``. Skipped, said, under torchrun (each rank holds a slice)."""
        reach = float(self.config.trigger_check_reach)
        if not reach or result.noop:
            return
        if self.distributed:
            self.ctx.event("log", message="trigger check skipped: a distributed run holds its images in slices")
            return
        from naviewer.errors import JobCancelled
        from naviewer.workflows.trigger_check import run_trigger_check

        trainer = self.trainer
        start = time.perf_counter()
        try:
            run_trigger_check(self.ws, result, backbone=trainer.method.backbone, store=trainer.store,
                              image_size=trainer_embed_settings(trainer).get("image_size"),
                              device=getattr(trainer, "device", None), reach_limit=reach, run=self.run, epoch=epoch,
                              truth=self.truth, ctx=self.ctx)
        except JobCancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - an optional second look: its failure (PatchSearch refusing these
            # images, memory) must not end the training at its detection epoch; nothing is cleared, and it is said
            self.ctx.event("warning", message=f"trigger check skipped: {exc}; accept-all confirms every flag")
        finally:
            self.timings["trigger_check"] = self.timings.get("trigger_check", 0.0) + time.perf_counter() - start

    def _cleared(self, pass_id: int) -> np.ndarray:
        """The flags the pass's trigger check clears (left unconfirmed by accept-all), said in the log."""
        from naviewer.workflows.trigger_check import accept_all_words, trigger_check_of

        check = trigger_check_of(self.ws, pass_id)
        if check is None:
            return np.zeros(0, np.int64)
        self.ctx.event("log", message=accept_all_words(check, self.ws.path))
        return check.cleared

    def _confirmed_positions(self, trainer: Trainer) -> np.ndarray:
        """Positions in the trainer's store of the samples the review confirmed (what is acted on)."""
        return np.flatnonzero(np.isin(current_ids(trainer), confirmed_ids(self.ws)))

    def mitigate(self, trainer: Trainer, _accepted: Any) -> dict:
        """The accepted decision: Eq. 7 on the confirmed samples, then the restart without them."""
        info = self.review
        trainer.save_checkpoint(tag=REVIEW_CHECKPOINT.removesuffix(".pt"))  # the encoder DIFT flagged with
        done = finetune_and_restart(trainer, self.ws, info["pass_id"], self.anchors, self.config, self.ctx,
                                    seed=self.config.seed)
        self.outcome.finetuned = done
        self.timings["finetune"] = done.seconds or 0.0
        record = done.to_dict()
        write_state(self.ws, self.run, status=RunStatus.RESTARTED, **info, finetune=record,
                    detection=self.outcome.detection)
        return record

    # -- after a review ---------------------------------------------------------------------------------
    def resume_after_review(self, state: RunState, *, monitor: bool = True, config_overrides: Optional[dict] = None,
                            dift_overrides: Optional[dict] = None) -> DiftRunOutcome:
        """See :func:`resume_after_review`: ``state`` is the run's, waiting for the review."""
        with self._claim():  # two finetunes of one run would fine-tune and write it twice
            return self._resume_after_review(state, monitor=monitor, config_overrides=config_overrides,
                                             dift_overrides=dift_overrides)

    def _reviewed_pass(self, state: RunState) -> int:
        """The pass the run stopped at, as its dift_state.json says: an id of a pass of this workspace. A garbled
        one raised a ValueError / OverflowError / TypeError, and one of no pass "finished" the run on nothing,
        rewriting its checkpoint (a mutation fuzz, session 22)."""
        from naviewer.workspace.runs import STATE_FILE

        raw = state.pass_id
        where = self.ws.path / "runs" / self.run / STATE_FILE
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise NaviewerError(f"the run waits for a review, but its detection pass id is {str(raw)[:40]!r}, not a "
                                "pass number: the run record is damaged", where)
        if self.ws.store.pass_info(raw) is None:
            raise NaviewerError(f"the run waits for the review of detection pass {raw}, which this workspace does not "
                                "have: the run record is damaged, or the pass was removed", where)
        return int(raw)

    def _resume_after_review(self, state: RunState, *, monitor: bool, config_overrides: Optional[dict],
                             dift_overrides: Optional[dict]) -> DiftRunOutcome:
        ws, ctx = self.ws, self.ctx
        pass_id = self._reviewed_pass(state)
        # the checkpoint first: a damaged one is refused before accept-all confirms the flags and before the review
        # encoder is kept (a review of session 23 found both done, then the refusal)
        trainer = self._resumed_trainer(config_overrides, monitor)
        # the settings before accept-all confirms anything: refused after it, the flags stayed confirmed, unsaid
        DiftConfig.from_workspace(ws, dift_overrides).validate()
        counts: dict = {}
        if self.main:  # under torchrun rank 0 confirms, fine-tunes and writes; the others follow
            if self.accept_all and pass_id is not None:
                confirm_flags(ws, pass_id, leave=self._cleared(pass_id))
            counts = {s: int((ws.store.review_states() == s).sum()) for s in ("confirmed", "rejected", "later")}
        self.review = {"pass_id": pass_id, "counts": counts}
        if self.main:
            keep_review_encoder(self.checkpoint)
        self.config = DiftConfig.from_workspace(ws, dift_overrides)
        if self.distributed:
            section = MainRankSection()
            section.run(trainer, self._finetune_reviewed, share=lambda _t, done: {"finetune": done, "review": counts})
            done, counts = section.shared["finetune"], section.shared["review"]
        else:
            done = self._finetune_reviewed(trainer)
        self.timings["finetune"] = done.seconds or 0.0
        t1 = time.perf_counter()
        summary = trainer.fit(ctx)
        self.timings["train_rest"] = time.perf_counter() - t1
        if self.main:
            write_state(ws, self.run, status=RunStatus.FINISHED, epochs=summary["epochs"])
        return DiftRunOutcome(self.run, RunStatus.FINISHED, summary, pass_id=pass_id, detection=state.detection,
                              finetuned=done, checkpoint=self.checkpoint, timings=self.timings)

    def _resumed_trainer(self, config_overrides: Optional[dict], monitor: bool) -> Trainer:
        """The run's trainer rebuilt from its checkpoint (no hooks: no detection after the review), metrics open."""
        ws, ctx = self.ws, self.ctx
        t0 = time.perf_counter()
        store = _store_of(ws, ctx)
        saved = load_training_checkpoint(self.checkpoint)
        train_config = TrainConfig.from_saved({**saved["config"], **dict(config_overrides or {})})
        del saved
        extra = _evaluation_kwargs(ws, train_config, monitor, ctx)
        trainer = Trainer.resume(ws.run_dir(self.run), store, hooks=[], config_overrides=config_overrides,
                                 checkpoint_dir=self.checkpoint.parent, **extra)
        trainer.open_metrics(ctx)
        self.timings["load"] = time.perf_counter() - t0
        return trainer

    def resume_restart(self, *, monitor: bool = True, config_overrides: Optional[dict] = None) -> DiftRunOutcome:
        """A run stopped after its review's fine-tune / remove-and-retrain, while training on the kept samples (a
        cancelled retrain, a closed window): go on from its checkpoint, which holds the kept subset and the
        restarted schedule, to the end. Before, such a run read as done and its half-trained encoder as the
        defense's result, with no way on."""
        with self._claim():
            ws, ctx = self.ws, self.ctx
            state = read_state(ws, self.run)
            allowed = {k: v for k, v in (config_overrides or {}).items() if k in ("device", "num_threads") and v is not None}
            trainer = self._resumed_trainer(allowed or None, monitor)
            step = "retrain" if (state.finetune or {}).get("restart_mode") == "retrain" else "fine-tune"
            # the run's own count ("at epoch 52 of 50" read the retrain's budget against the whole run's epochs)
            ctx.event("log", message=f"resuming run {self.run!r} after its review's {step}, at epoch "
                                     f"{trainer.completed_epochs} of {trainer.total_epochs}")
            t1 = time.perf_counter()
            summary = trainer.fit(ctx)
            self.timings["train_rest"] = time.perf_counter() - t1
            write_state(ws, self.run, status=RunStatus.FINISHED, epochs=summary["epochs"])
            finetuned = FinetuneOutcome.from_dict(state.finetune) if state.finetune else None
            return DiftRunOutcome(self.run, RunStatus.FINISHED, summary, pass_id=state.pass_id,
                                  detection=state.detection, finetuned=finetuned, checkpoint=self.checkpoint,
                                  timings=self.timings)

    def _finetune_reviewed(self, trainer: Trainer) -> FinetuneOutcome:
        """Rank 0 of a resumed run: fine-tune on what the review confirmed, checkpoint, record it."""
        pass_id, counts = self.review["pass_id"], self.review["counts"]
        config = self.config
        anchors = workspace_anchors(self.ws, config.anchors_per_class, config.seed)
        trainer.log_event("review_done", pass_id=pass_id, **counts)
        done = finetune_and_restart(trainer, self.ws, pass_id, anchors, config, self.ctx, seed=config.seed)
        trainer.save_checkpoint()
        write_state(self.ws, self.run, status=RunStatus.RESTARTED, finetune=done.to_dict(), review=counts)
        return done


# -- the entry points (CLI, GUI, demo, reproduce, matrix) ---------------------------------------------

def train_with_dift(ws: Workspace, train_config: TrainConfig, dift_config: Optional[DiftConfig] = None, *,
                    run: str = "dift", accept_all: bool = False, gate: Optional[ReviewGate] = None,
                    monitor: bool = True, dift: bool = True, exclude: Optional[np.ndarray] = None,
                    ctx: Optional[JobContext] = None, run_kind: Optional[str] = None,
                    record_extra: Optional[dict] = None) -> DiftRunOutcome:
    """Train ``train_config`` on the workspace's dataset with DIFT in the loop.

    ``accept_all``: confirm the flags at once and go on. Otherwise ``gate`` (GUI) makes the job wait
    for the analyst; without a gate the run stops after checkpointing with status
    ``awaiting_review`` (resume with :func:`resume_after_review`). ``dift=False`` trains without the
    defense (same data, same monitor); with ``exclude`` (workspace ids, only without DIFT) those
    samples are left out from the start (B1: retraining on the data a filter kept; recorded, so a resume leaves
    them out too). ``run_kind`` / ``record_extra``: the run's record kind (default ``dift-train`` / ``train``)
    and more keys in its config (a retrain on changed decisions names the run it follows)."""
    config = (dift_config or DiftConfig()).validate()
    start = config.detection_start(int(train_config.epochs))
    if dift and start >= int(train_config.epochs):  # it trained, said "done", and never detected (a sweep)
        raise NaviewerError(f"DIFT starts detecting at epoch {start + 1} but the run has {train_config.epochs} "
                            f"epoch{'' if train_config.epochs == 1 else 's'}: it would never detect. Train for more "
                            "epochs (--epochs), or start DIFT earlier (--dift-start)")
    return DiftRun(ws, run, accept_all=accept_all, gate=gate, ctx=ctx).train(
        train_config, config, monitor=monitor, dift=dift, exclude=exclude, run_kind=run_kind, record_extra=record_extra)


def _detection_epochs(metrics: Path) -> set[int]:
    """The epochs (0-based) whose record in a run's ``metrics.jsonl`` carries DIFT's figures: its detection epochs.
    Unreadable lines are passed over (a cut last line of a killed run)."""
    epochs: set[int] = set()
    try:
        lines = metrics.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return epochs
    for line in lines:
        if '"dift_detected"' not in line and '"run_start"' not in line:
            continue
        try:
            record = json_loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if record.get("kind") == "run_start" and record.get("resumed_from_epoch") is None:
            epochs.clear()  # a fresh start of the name (an earlier run's checkpoint deleted): its S_t were removed
        epoch = record.get("epoch")
        if record.get("kind") == "epoch" and isinstance(epoch, int) and not isinstance(epoch, bool):
            epochs.add(epoch)
    return epochs


def _check_run_files(ws: Workspace, run: str) -> None:
    """A run's own files that a resume opens, refused at once when they are not plain files: a metrics.jsonl made a
    named pipe hung the resume for ever, a last.pt made a folder read as "status: detecting; only a run ... can", and a
    dift_selected made a file was found only after an epoch of training (a bad-input probe, session 30)."""
    from naviewer.io import check_regular_file

    folder = ws.path / "runs" / run
    check_regular_file(folder / "metrics.jsonl", "run's metrics file")
    check_regular_file(ws.checkpoint_dir(run, create=False) / "last.pt", "run's checkpoint")
    selected = folder / "dift_selected"
    if os.path.lexists(selected) and not selected.is_dir():
        raise NaviewerError("the run's record of its detection epochs is a file, not a folder; the run cannot be "
                            "resumed: train again under another --run name", selected)


def resume_interrupted(ws: Workspace, run: Optional[str] = None, *, monitor: bool = True,
                       config_overrides: Optional[dict] = None, ctx: Optional[JobContext] = None) -> DiftRunOutcome:
    """``naviewer run WS --resume``: go on with a run that stopped before its end (Ctrl-C, a closed window, a
    crash) from its checkpoint, with its own settings: the trainer's state and, with DIFT, the detection buffer
    rebuilt from the S_t of every detection epoch before it (``runs/RUN/dift_selected/``), so the run goes on
    as it would have. ``config_overrides``: device and threads only. A run that already saved its detection pass
    goes on with ``naviewer finetune`` (awaiting review) or not at all (a restart after the pass)."""
    if _rank_info()[0]:
        raise NaviewerError("resuming a run under torchrun is not supported: resume it in one process", ws.path)
    run = run or the_interrupted_run(ws)
    _check_run_files(ws, run)
    state = read_state(ws, run)
    status = getattr(state, "status", None)
    if run in interrupted_trainings(ws):  # resume_stopped_run dispatches these to resume_plain_training
        raise NaviewerError(f"run {run!r} is a plain training (no DIFT): resume_plain_training goes on with it",
                            ws.path / "runs" / run)
    if stopped_after_review(ws, run):  # stopped during its review's fine-tune / retrain
        return DiftRun(ws, run, ctx=ctx).resume_restart(monitor=monitor, config_overrides=config_overrides)
    if run not in interrupted_runs(ws):  # the one test of what can go on; the rest says why not
        if status is RunStatus.AWAITING_REVIEW:
            raise NaviewerError(f"run {run!r} waits for the review of its flags: naviewer finetune WORKSPACE goes on "
                                "with it", ws.path / "runs" / run)
        if any(p.get("run") == run and p.get("method") == "dift" for p in ws.store.passes()):
            raise NaviewerError(f"run {run!r} saved its detection pass and went on past it; it cannot be resumed: "
                                "detect on its checkpoint (naviewer detect) or train again under another --run name",
                                ws.path / "runs" / run)
        folder = ws.path / "checkpoints" / run
        epochs = sorted(folder.glob("epoch_*.pt")) if folder.is_dir() else []
        if not (folder / "last.pt").is_file() and epochs and status is not None:  # (a probe, session 28)
            raise NaviewerError(f"run {run!r}'s last.pt is missing; {epochs[-1].name} is there: copy it to last.pt "
                                "to resume from it", folder / "last.pt")
        if status is None and (ws.path / "runs" / run / "metrics.jsonl").is_file():
            raise NaviewerError(f"run {run!r}'s state file is missing (was it deleted?): its metrics are there, but "
                                "where it stopped cannot be told; train a new run under another --run name",
                                ws.path / "runs" / run / "dift_state.json")
        said = getattr(status, "value", status) or "never started"
        raise NaviewerError(f"run {run!r} cannot be resumed (status: {said}; only a run of this workspace stopped "
                            "while training, with its record and a checkpoint, can)", ws.path / "runs" / run)
    checkpoint = ws.checkpoint_dir(run) / "last.pt"
    record = next(r for r in ws.store.runs() if r["name"] == run)
    recorded = state.get("anchors_fingerprint")
    past = continued_past_verdict(ws, run)  # no detection runs again: the anchors do not matter to it (a review)
    if recorded is not None and record["config"].get("dift") and not past \
            and recorded not in (anchors_fingerprint(ws), _whole_section_hash(ws)):
        # the buffer of the epochs before was built with the other anchors: going on would mix two detections
        raise NaviewerError(f"the workspace's DIFT anchors were replaced since run {run!r} started; it cannot be "
                            "resumed with other anchors: put them back, or train a new run", ws.config_path)
    saved = load_training_checkpoint(checkpoint)
    check_own_checkpoint(ws, run, saved["config"], checkpoint)
    allowed = {k: v for k, v in (config_overrides or {}).items() if k in ("device", "num_threads") and v is not None}
    train_config = TrainConfig.from_saved({**saved["config"], **allowed})
    done = int(saved.get("completed_epochs", 0))
    del saved
    ensure_context(ctx).event("log", message=f"resuming run {run!r} after epoch {done} of {train_config.epochs}, "
                                             "with its own settings")
    settings = record["config"]
    dift = settings.get("dift")
    config = DiftConfig.from_dict(dift).validate() if dift else DiftConfig()
    left_out = settings.get("exclude")  # a training that left samples out (B1, a retrain on changed decisions)
    exclude = np.asarray(left_out, dtype=np.int64) if isinstance(left_out, list) and left_out else None
    if past:  # DIFT's verdict is saved (its pass): the rest of the training goes on without the detection
        write_state(ws, run, past_verdict=True)
    return DiftRun(ws, run, accept_all=bool(settings.get("accept_all")), ctx=ctx).train(
        train_config, config, monitor=monitor, dift=dift is not None and not past, resume=True, exclude=exclude)


#: what a run's checkpoint must agree with its first start on (a resume goes on with the checkpoint's own settings)
_RUN_IDENTITY = ("method", "epochs", "batch_size", "image_size", "backbone")


def check_own_checkpoint(ws: Workspace, run: str, saved_config: dict, checkpoint: Path) -> None:
    """Refuse a ``last.pt`` that is not ``run``'s: another run's checkpoint copied into its folder was resumed "after
    epoch 2 of 2", the run marked finished and its other 295 epochs dropped without a word (a probe, session 28).
    Compared with the settings its first start logged (``runs/RUN/metrics.jsonl``); a run without that record passes."""
    from naviewer.workspace.runs import first_start_config

    started = first_start_config(ws.path / "runs" / run / "metrics.jsonl")
    if not started:
        return
    differ = [key for key in _RUN_IDENTITY if key in started and key in saved_config and started[key] != saved_config[key]]
    if not differ:
        return
    said = "; ".join(f"{key} {saved_config[key]!r} against {started[key]!r}" for key in differ)
    epochs = sorted(checkpoint.parent.glob("epoch_*.pt"))
    back = f" ({epochs[-1].name} is its latest epoch checkpoint)" if epochs else ""
    raise NaviewerError(f"this checkpoint is not run {run!r}'s: it records {said} (the run's start){back}; put the "
                        "run's own last.pt back, or train a new run under another --run name; nothing was changed",
                        checkpoint)


def keep_review_encoder(checkpoint: Path) -> Optional[Path]:
    """``checkpoint`` (the run's ``last.pt`` at its review stop) kept as ``at-review.pt`` beside it: a hard link
    (the trainer replaces ``last.pt`` atomically, so the link keeps the old file), a copy where links fail."""
    checkpoint = Path(checkpoint)
    target = checkpoint.with_name(REVIEW_CHECKPOINT)
    if not checkpoint.is_file():
        return None
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    try:
        os.link(checkpoint, target)
    except OSError:
        with atomic_path(target) as temp:
            shutil.copyfile(checkpoint, temp)
    return target


def anchors_fingerprint(ws: Workspace) -> str:
    """Which anchors the workspace's ``[anchors]`` names as the run starts (:func:`section_fingerprint`, as each
    pass records them), so that a resume can tell they were replaced."""
    return section_fingerprint(ws.config.get("anchors"))


def _whole_section_hash(ws: Workspace) -> str:
    """The run state's hash before session 31 (the whole ``[anchors]`` section, its words too): runs recorded with
    it still resume."""
    import hashlib
    import json

    section = ws.config.get("anchors") or {}
    return hashlib.sha256(json.dumps(section, sort_keys=True, default=str).encode()).hexdigest()[:16]


def resume_plain_training(ws: Workspace, run: str, *, config_overrides: Optional[dict] = None,
                          ctx: Optional[JobContext] = None) -> dict[str, Any]:
    """A plain training of the workspace (the window's Train: no DIFT, no run record) that stopped before its last
    epoch goes on from its checkpoint with its own settings (``config_overrides``: device and threads only), to the
    epochs it was started for. Before, a closed window lost it: only the command line's own runs could go on.
    Returns the trainer's summary and the checkpoint."""
    if _rank_info()[0]:
        raise NaviewerError("resuming a run under torchrun is not supported: resume it in one process", ws.path)
    if run not in interrupted_trainings(ws):
        if being_trained(ws, run):
            raise NaviewerError(f"run {run!r} is being trained by another process now: wait for it",
                                ws.path / "runs" / run)
        raise NaviewerError(f"run {run!r} is not a plain training that stopped before its end", ws.path / "runs" / run)
    ctx = ensure_context(ctx)
    with training_lock(ws, run):
        return _resume_plain(ws, run, config_overrides, ctx)


def _resume_plain(ws: Workspace, run: str, config_overrides: Optional[dict], ctx: JobContext) -> dict[str, Any]:
    checkpoint = ws.checkpoint_dir(run) / "last.pt"
    saved = load_training_checkpoint(checkpoint)
    check_own_checkpoint(ws, run, saved["config"], checkpoint)
    ctx.event("log", message=f"resuming training {run!r} after epoch {int(saved.get('completed_epochs', 0))} of "
                             f"{saved['config'].get('epochs')}, with its own settings")
    store = ImageStore.from_dataset(ws.checked_dataset(), ctx=ctx)
    allowed = {k: v for k, v in (config_overrides or {}).items() if k in ("device", "num_threads") and v is not None}
    labelled = bool((store.labels >= 0).any())  # the window's Train follows kNN accuracy on labelled images
    trainer = Trainer.resume(ws.run_dir(run), store, config_overrides=allowed, state=saved,
                             checkpoint_dir=ws.checkpoint_dir(run), eval_store=store if labelled else None)
    del saved
    return {**trainer.fit(ctx, resume=False), "run": run, "checkpoint": str(checkpoint)}


@dataclass
class StoppedRunResumed:
    """What :func:`resume_stopped_run` did: a plain training finished (``fit``, the trainer's summary) or a DIFT
    run went on (``outcome``: stopped for review, finished, ...)."""

    run: str
    fit: Optional[dict] = None
    outcome: Optional["DiftRunOutcome"] = None

    @property
    def plain(self) -> bool:
        return self.fit is not None


def resume_stopped_run(ws: Workspace, run: Optional[str] = None, *, monitor: bool = True,
                       config_overrides: Optional[dict] = None, ctx: Optional[JobContext] = None) -> StoppedRunResumed:
    """Go on with the run that stopped while training (``run`` or the one there is), whichever kind it is: the
    window's plain Train (:func:`resume_plain_training`) or a DIFT run (:func:`resume_interrupted`). The one
    dispatch the command line's ``run --resume`` and the window's Resume share."""
    run = run or the_interrupted_run(ws)
    if run in interrupted_trainings(ws):
        return StoppedRunResumed(run, fit=resume_plain_training(ws, run, config_overrides=config_overrides, ctx=ctx))
    outcome = resume_interrupted(ws, run, monitor=monitor, config_overrides=config_overrides, ctx=ctx)
    if outcome.status == RunStatus.FINISHED:  # a window's retrain cancelled and resumed: its before/after table too
        from naviewer.workflows.finetune_record import complete_finetune_result

        complete_finetune_result(ws, run, ctx, (config_overrides or {}).get("device"))
    return StoppedRunResumed(run, outcome=outcome)


def the_interrupted_run(ws: Workspace) -> str:
    """The one run of the workspace that stopped while training (a NaviewerError when none, or several)."""
    runs = resumable_runs(ws)
    if not runs:
        raise NaviewerError("no run of this workspace stopped while training: nothing to resume", ws.path)
    if len(runs) > 1:
        raise NaviewerError(f"several runs stopped while training ({', '.join(runs)}): choose one with --run", ws.path)
    return runs[0]


def resume_after_review(ws: Workspace, run: Optional[str] = None, *, accept_all: bool = False, monitor: bool = True,
                        config_overrides: Optional[dict] = None, dift_overrides: Optional[dict] = None,
                        ctx: Optional[JobContext] = None) -> DiftRunOutcome:
    """``naviewer finetune WS``: fine-tune on the confirmed flags, then finish training on the rest.

    ``dift_overrides`` change DIFT settings for the fine-tuning (e.g. ``base_lr`` after a divergence);
    ``config_overrides`` the training run's (device, threads)."""
    run, state = _run_waiting_for_review(ws, run)
    return DiftRun(ws, run, accept_all=accept_all, ctx=ctx).resume_after_review(
        state, monitor=monitor, config_overrides=config_overrides, dift_overrides=dift_overrides)


def never_stopped_note(hook: Any, epochs: Any, terminal: bool = False) -> str:
    """Why DIFT in the loop never stopped the training for a review, in words: "run too short for E_start +
    patience" was said after a 40-epoch run that had watched 30 epochs without its buffer ever holding enough (a
    newcomer, session 25: not short, and E_start is no word of theirs). ``terminal``: the reason alone, for the
    command line's last line, which says what to run itself (it read "DIFT flagged nothing: DIFT watched ... (Run ▸
    Detect; naviewer detect). Look at ... naviewer detect"; a review, session 32)."""
    buffer = getattr(hook, "buffer", None)
    if buffer is None or not buffer.history:
        start = getattr(buffer, "start_epoch", None)
        return ("detection never ran: the run ended before DIFT's first detection epoch"
                + (f" ({int(start) + 1})" if start is not None else "") + "; train longer, or start detection earlier")
    config = buffer.config
    watched = f"epochs {buffer.history[0].epoch + 1}-{buffer.history[-1].epoch + 1}"
    most = max(int(record.detected) for record in buffer.history)
    if most < int(config.n_min):
        log = list(getattr(hook, "guard_log", None) or [])
        rejected = [sep for _, decision, sep in log if decision == "rejected"]
        single = [sep for _, decision, sep in log if decision == "none"]
        from naviewer.defense.dift import guard_words

        why = "no crowded group away from the anchors at this encoder"
        for decision, seps in (("rejected", rejected), ("none", single)):
            if log and len(seps) >= len(log) / 2:  # the guard's reason, as a pass says it (a newcomer, session 32)
                finite = [v for v in seps if np.isfinite(v)]
                span = f"{min(finite):.1f}-{max(finite):.1f}" if finite else ""
                why = f"at {len(seps)} of its {len(log)} detection epochs " + guard_words(decision, span)
                break
        reason = (f"watched {watched} and its buffer never held the {int(config.n_min)} samples a verdict needs "
                  f"(at most {most}): {why}")
        if terminal:
            return "it " + reason + ", which is not a clean bill (a backdoor that has not formed leaves no crowded group)"
        return (f"DIFT {reason}. That is not a clean bill: a weak encoder crowds few poisons, and a "
                "backdoor that has not formed leaves none, so train longer or run the post-hoc detectors "
                "(Run ▸ Detect; naviewer detect)")
    reason = (f"watched {watched}; its buffer (up to {most} samples) never stayed the same for "
              f"{int(config.patience)} epochs in a row before the run ended")
    if terminal:
        return "it " + reason + ", which is not a clean bill; train longer, or detect post-hoc"
    return f"DIFT {reason}: train longer, or detect post-hoc (Run ▸ Detect)"
