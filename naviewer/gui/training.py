"""The default training job: the Train dialog's settings handed to the SSL engine's Trainer.

Runs entirely in the worker thread (torch is imported here, never on the GUI thread). It does
what the CLI does: open the dataset (from the workspace or a dataset path), decode it into an
``ImageStore``, build ``TrainConfig`` + ``build_trainer`` and ``fit(ctx)``; the trainer writes
``RUN/metrics.jsonl`` and checkpoints and reports the same records through ``ctx.metric``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from naviewer.errors import NaviewerError
from naviewer.jobs import JobCancelled, JobContext

RUNS_DIR_ENV = "NAVIEWER_RUNS_DIR"
#: TrainConfig's backbone and image size when the settings name none (here without importing torch;
#: tests/gui/test_train_estimate.py keeps them equal)
DEFAULT_BACKBONE = {"arch": "resnet18", "cifar_stem": True, "width": 64}
DEFAULT_IMAGE_SIZE = 32


def runs_root() -> Path:
    """Where runs go when no workspace is open: $NAVIEWER_RUNS_DIR, else ~/naviewer-runs."""
    return Path(os.environ.get(RUNS_DIR_ENV) or Path.home() / "naviewer-runs")


def run_training(
    settings: dict[str, Any],
    ctx: JobContext,
    workspace: Optional[Path] = None,
    dataset_path: Optional[Path] = None,
    run_name: str = "run",
) -> dict[str, Any]:
    """Train with dialog ``settings`` (method, augment_recipe, epochs, batch_size, lr, device); returns fit()'s summary."""
    _import_engine()
    if workspace is not None:  # held while it trains: Run ▸ Resume interrupted run elsewhere must not take it up
        from naviewer.workspace import Workspace
        from naviewer.workspace.runs import training_lock

        with Workspace.open(workspace) as ws, training_lock(ws, run_name):
            return _train(settings, ctx, workspace, dataset_path, run_name)
    return _train(settings, ctx, workspace, dataset_path, run_name)


def _train(settings: dict[str, Any], ctx: JobContext, workspace: Optional[Path], dataset_path: Optional[Path],
           run_name: str) -> dict[str, Any]:
    from naviewer.data.store import ImageStore
    from naviewer.ssl.trainer import TrainConfig, build_trainer

    ctx.progress(0, None, "loading images")
    dataset, run_dir, checkpoint_dir = _training_source(workspace, dataset_path, run_name)
    store = ImageStore.from_dataset(dataset, ctx=ctx)
    ctx.check()
    config = TrainConfig.from_dict(train_config_values(settings))
    # the next stage named at once: building the encoder (and the batches on the device) takes a while,
    # and "loading images 100 %" must not sit there meanwhile
    ctx.progress(0, None, f"images loaded; building the {backbone_text(settings)} encoder on {config.device}")
    labelled = bool((store.labels >= 0).any())
    trainer = build_trainer(config, store, run_dir, eval_store=store if labelled else None,
                            checkpoint_dir=checkpoint_dir)
    return trainer.fit(ctx)


def embed_for_the_map(ws: Any, run_name: str, ctx: JobContext, device: Optional[str] = None) -> None:
    """Every sample embedded by the run's encoder at its review stop, for the Analyst's map (as the demo does): an
    in-training pass keeps none, and the map was a paragraph over a strip of ranks (a newcomer, session 27; a resumed
    demo too, session 29). For the map only: a failure or a Cancel here does not undo the training."""
    if not (ws.checkpoint_dir(run_name) / "last.pt").is_file():
        return
    from naviewer.jobs import JobCancelled
    from naviewer.workflows.demo import save_review_embeddings

    ctx.progress(0, None, "embedding every sample for the Analyst's map")
    try:
        save_review_embeddings(ws, run_name, ctx, device)
    except (NaviewerError, OSError, JobCancelled) as exc:
        ctx.event("warning", message=f"the samples were not embedded for the Analyst's map ({exc or 'cancelled'})"
                                     ": Run ▸ Detect… with the run's checkpoint draws it")


def run_dift_training(settings: dict[str, Any], ctx: JobContext, workspace: Path, run_name: str) -> dict[str, Any]:
    """The Train dialog with DIFT in the loop: ``naviewer run WORKSPACE --dift`` with the dialog's recipe and the
    workspace's [dift] settings; the run stops for the review (status ``awaiting_review``, its pass id), or ends
    (``noop``: DIFT found no crowded group). The window then opens the workspace, which docks the Analyst."""
    _import_engine()
    from naviewer.defense.config import DiftConfig
    from naviewer.ssl.trainer import TrainConfig
    from naviewer.workflows.dift_training import train_with_dift
    from naviewer.workspace import Workspace

    with Workspace.open(workspace) as ws:
        config = TrainConfig.from_dict(train_config_values(settings))
        dift = DiftConfig.from_workspace(ws, {"review": DiftConfig.review})
        out = train_with_dift(ws, config, dift, run=run_name, accept_all=False, monitor=True, dift=True, ctx=ctx)
        if out.pass_id is not None:
            embed_for_the_map(ws, run_name, ctx, settings.get("device"))
        from naviewer.workspace.runs import read_state

        try:  # why it ended without a review ("run too short ..."): the window says it
            state = read_state(ws, run_name)
            note = str((state.extra or {}).get("note") or "") if state is not None else ""
        except NaviewerError:
            note = ""
        return {"status": getattr(out.status, "value", out.status), "pass_id": out.pass_id, "run": run_name,
                "flagged": (out.detection or {}).get("flagged") if isinstance(out.detection, dict) else None,
                "note": note}


def run_leave_out_training(settings: dict[str, Any], ctx: JobContext, workspace: Path, run_name: str) -> dict[str, Any]:
    """A fresh encoder trained on the samples the review keeps (every sample but the confirmed poisons), as
    ``naviewer run WORKSPACE --leave-out-confirmed``: the run records what it left out, so a resume leaves out the
    same. Returns the fit's summary, with ``left_out``."""
    _import_engine()
    from naviewer.ssl.trainer import TrainConfig
    from naviewer.workflows.dift_training import train_with_dift
    from naviewer.workspace import Workspace
    from naviewer.workspace.runs import confirmed_ids

    with Workspace.open(workspace) as ws:
        exclude = confirmed_ids(ws)
        if not len(exclude):
            raise NaviewerError("no sample is confirmed as a poison any more: nothing to leave out (untick it to "
                                "train on every sample)", ws.path)
        ctx.progress(0, None, f"leaving out the {len(exclude):,} confirmed poisons")
        config = TrainConfig.from_dict(train_config_values(settings))
        out = train_with_dift(ws, config, None, run=run_name, monitor=True, dift=False, exclude=exclude, ctx=ctx)
        return {**dict(out.fit or {}), "left_out": int(len(exclude)), "run": run_name}


def _import_engine() -> None:
    """torch and the trainer, imported while no other thread imports them (the device probe); a
    NaviewerError when this installation has no training engine."""
    from naviewer.gui.environment import import_training_engine

    try:
        import_training_engine()
    except ImportError as exc:
        raise NaviewerError(f"the training engine is not available in this installation ({exc})") from exc


def _training_source(workspace: Optional[Path], dataset_path: Optional[Path], run_name: Optional[str]):
    """(dataset, run_dir, checkpoint_dir) of the open workspace or dataset path; the dirs are None
    without a ``run_name``."""
    if workspace is not None:
        from naviewer.workspace import Workspace

        ws = Workspace.open(workspace)
        try:
            dataset = ws.dataset()
            if run_name is None:
                return dataset, None, None
            return dataset, ws.run_dir(run_name), ws.checkpoint_dir(run_name)
        finally:
            ws.close()
    if dataset_path is not None:
        from naviewer.data import open_dataset

        return open_dataset(dataset_path), (runs_root() / run_name) if run_name else None, None
    raise NaviewerError("nothing to train on: open a workspace or a dataset first")


def backbone_text(settings: dict[str, Any]) -> str:
    """"ResNet-18 width 64, 32 px": the encoder a Train dialog's settings build (TrainConfig's defaults
    where the settings say nothing)."""
    backbone = {**DEFAULT_BACKBONE, **dict(settings.get("backbone") or {})}
    arch = str(backbone.get("arch", "resnet18"))
    name = arch.replace("resnet", "ResNet-") if arch.startswith("resnet") else arch
    width = f" width {backbone['width']}" if backbone.get("width") else ""
    return f"{name}{width}, {int(settings.get('image_size') or DEFAULT_IMAGE_SIZE)} px"


#: an estimate slower than either is said to be slow (with what to change)
SLOW_EPOCH_S = 5 * 60
SLOW_RUN_S = 4 * 3600


def estimate_training_time(settings: dict[str, Any], ctx: JobContext, workspace: Optional[Path] = None,
                           dataset_path: Optional[Path] = None, steps: int = 3, seed: int = 0) -> dict[str, Any]:
    """Time a few training steps of ``settings`` (the Train dialog's) on a sample of the open images
    and scale them to an epoch and to the run: the Train dialog shows it before anything starts.

    Runs in a worker job (torch is imported here); ``ctx.check()`` between steps cancels it. One step
    more than ``steps`` is run and the first is left out (it builds the batches on the device and warms
    the kernels up). Returns ``seconds_per_step``, ``steps_per_epoch``, ``seconds_per_epoch``,
    ``seconds_total``, ``device``, ``encoder`` (``backbone_text``), ``n_samples``, ``batch_size`` and
    ``slow`` (a sentence, or "")."""
    import time

    import numpy as np

    _import_engine()
    from naviewer.data.base import SubsetDataset
    from naviewer.data.store import ImageStore
    from naviewer.ssl.trainer import TrainConfig, build_trainer

    ctx.progress(0, None, "estimate: opening the images")
    dataset, _run_dir, _ckpt = _training_source(workspace, dataset_path, None)
    n = len(dataset)
    batch = int(settings["batch_size"])
    if n < batch:
        raise NaviewerError(f"the dataset ({n:,} images) is smaller than one batch of {batch:,}; lower the batch size")
    # every timed step needs a whole batch: a set of one to two batches gave one step, nothing to time, and a red
    # "failed" job each time the dialog opened (a newcomer, session 30); its images are repeated (the time of a step
    # does not depend on which images it holds)
    take = batch * (steps + 1)
    order = np.random.default_rng(seed).permutation(n)
    ids = np.sort(np.resize(order, take))
    store = ImageStore.from_dataset(SubsetDataset(dataset, ids), ctx=ctx,
                                    message=f"estimate: loading a sample of {take:,} images")
    ctx.check()
    values = {**train_config_values(settings), "epochs": 1, "max_steps_per_epoch": steps + 1, "log_every": 1,
              "knn_every": 0, "checkpoint_every": 0, "warmup_epochs": 0.0}
    config = TrainConfig.from_dict(values)
    encoder = backbone_text(settings)
    ctx.progress(0, None, f"estimate: building the {encoder} encoder")
    trainer = build_trainer(config, store, None)
    clock = _StepClock(ctx, steps + 1)
    drain = _autograd_drain()  # made before any training graph: see _autograd_drain
    hooks = cancel_within_step(trainer.method, ctx)
    try:
        trainer.fit(clock)
    except JobCancelled:
        drain.backward()
        raise
    finally:
        for hook in hooks:
            hook.remove()
    gaps = np.diff(clock.times)
    if gaps.size == 0:
        raise NaviewerError("the estimate ran no training step")
    per_step = float(np.median(gaps))
    steps_per_epoch = max(1, n // batch)
    per_epoch = per_step * steps_per_epoch
    total = per_epoch * int(settings.get("epochs") or 1)
    out = {"seconds_per_step": per_step, "steps_per_epoch": steps_per_epoch, "seconds_per_epoch": per_epoch,
           "seconds_total": total, "device": str(trainer.device), "encoder": encoder, "n_samples": n,
           "batch_size": batch, "measured_at": time.time(),
           "seconds_per_embedding_pass": _embedding_pass_time(trainer, store, n, ctx)}
    out["slow"] = slow_warning(out)
    return out


def _embedding_pass_time(trainer: Any, store: Any, n: int, ctx: JobContext) -> float:
    """Seconds one embedding of all ``n`` images takes with the trainer's encoder (DIFT ranks every sample this way
    each epoch from its start: the estimate left it out, and a DIFT run took longer than it said). Timed on the
    estimate's sample (the encoder warmed up by the training steps) and scaled to ``n``."""
    import time

    from naviewer.defense.mitigate import trainer_embed_settings
    from naviewer.ssl.embed import extract_embeddings

    ctx.progress(0, None, "estimate: timing an embedding pass (DIFT's ranking)")
    start = time.perf_counter()
    extract_embeddings(trainer.method.backbone, store, device=trainer.device, ctx=ctx,
                       message="estimate: timing an embedding pass", **trainer_embed_settings(trainer))
    return (time.perf_counter() - start) * n / max(1, len(store))


def cancel_within_step(model: Any, ctx: JobContext) -> list:
    """Check ``ctx``'s cancel before each leaf module's forward and as each weight's gradient is computed: a
    cancelled estimate stops within a layer of either pass. It checked between steps only, and one step of a wide
    encoder on a loaded CPU takes a minute: a newcomer saw "cancelling" for 77 s while the training they had
    started competed with it, then 21 s in the backward pass the forward checks did not reach. The gradient hook
    raises JobCancelled through autograd, which hands it to ``backward()``'s caller. Returns the hooks' handles."""
    def check(_module: Any, _inputs: Any) -> None:
        ctx.check()

    def check_gradient(_grad: Any) -> None:
        ctx.check()

    forward = [module.register_forward_pre_hook(check) for module in model.modules()
               if next(module.children(), None) is None]
    return forward + [param.register_hook(check_gradient) for param in model.parameters() if param.requires_grad]


def _autograd_drain() -> Any:
    """A one-node graph to run backward on after a backward pass was cancelled from a gradient hook.

    The cancelled pass leaves its unvisited nodes in this thread's autograd ready queue; the thread's exit frees
    them, and when that exit overlapped the interpreter's (a window closed right after a cancel) freeing them
    needed the GIL and aborted the process ("terminate called without an active exception"). The queue pops the
    newest nodes first, so a node made before the training graphs is popped last: its backward walks the stale
    nodes out of the queue, here, while the interpreter is alive. (A CUDA pass runs on autograd's device threads,
    which live to the process's end; the queue this empties is the calling thread's, the CPU's.)"""
    import torch

    return (torch.zeros(1, requires_grad=True) * 1.0).sum()


def slow_warning(estimate: dict[str, Any]) -> str:
    """What to change when the estimate is slow (an epoch over SLOW_EPOCH_S or the run over SLOW_RUN_S); ""."""
    from naviewer.gui.format import duration

    per_epoch, total = float(estimate["seconds_per_epoch"]), float(estimate["seconds_total"])
    if per_epoch < SLOW_EPOCH_S and total < SLOW_RUN_S:
        return ""
    device = str(estimate.get("device", ""))
    advice = ("a GPU, a smaller batch or a narrower encoder" if device.startswith("cpu")
              else "a smaller batch, fewer epochs or a narrower encoder")
    return (f"Slow: {estimate['encoder']} at batch {int(estimate['batch_size']):,} on {device} takes about "
            f"{duration(per_epoch)} an epoch, {duration(total)} in all. Consider {advice}.")


class _StepClock(JobContext):
    """The estimate's context: times each step record, forwards cancel / pause and progress to the job's."""

    def __init__(self, outer: JobContext, steps: int) -> None:
        super().__init__()
        self.outer, self.steps = outer, steps
        self.times: list[float] = []

    def check(self) -> None:
        self.outer.check()

    def cancel(self) -> None:
        self.outer.cancel()

    def progress(self, done: float, total: Optional[float] = None, message: str = "") -> None:
        self.outer.progress(len(self.times), self.steps, f"estimate: timing {self.steps} training steps")

    def metric(self, **values: Any) -> None:
        import time

        if values.get("kind") == "step":
            self.times.append(time.perf_counter())

    def event(self, kind: str, **data: Any) -> None:
        pass


def train_config_values(settings: dict[str, Any]) -> dict[str, Any]:
    """Dialog settings -> ``TrainConfig`` fields (lr None: the method's own default)."""
    values: dict[str, Any] = {
        "method": settings["method"],
        "epochs": int(settings["epochs"]),
        "batch_size": int(settings["batch_size"]),
        "lr": None if settings.get("lr") is None else float(settings["lr"]),
        "device": settings.get("device", "auto"),
        "augment_recipe": str(settings.get("augment_recipe") or ""),  # "": the method's paper recipe
    }
    for key in ("backbone", "image_size", "max_steps_per_epoch", "log_every", "knn_every", "num_threads", "seed"):
        if key in settings:  # advanced keys a script or the demo may pass through
            values[key] = settings[key]
    if settings.get("threads"):  # the Train form's Threads: recorded with the run (its figures depend on them)
        values["num_threads"] = int(settings["threads"])
    return values
