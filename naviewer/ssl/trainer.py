"""The SSL training loop: epochs of batched two-view steps, schedule, checkpoints, hooks, metrics.

One ``Trainer`` drives any method (``naviewer.ssl.methods``) over an ``ImageStore``:

- per-step linear warm-up then cosine learning rate; SGD (or Adam) with the linear batch-size rule;
- AMP (bfloat16, or float16 with a GradScaler) and channels_last on CUDA; DDP under ``torchrun``
  (rank 0 writes checkpoints and metrics; the data is sharded by rank);
- ``RUN/metrics.jsonl`` and ``ctx.metric`` records as docs/workspace-format.md describes them;
- ``RUN/checkpoints/last.pt`` (+ ``epoch_XXXX.pt``), atomic, on schedule, on cancel and at the end;
  a resumed run continues with the same next-step loss as an uninterrupted one (model, optimiser,
  scaler, schedule position, numpy/torch RNG states, epoch and step are all restored);
- hooks ``after_epoch(trainer, epoch)`` (DIFT) which may ``request_stop()``, ``replace_data(...)``
  (restart on a cleaned set from the initial lr over the remaining epochs), ``add_epoch_metrics``
  and ``log_event``.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence

import numpy as np
import torch

from naviewer.data.store import ImageStore
from naviewer.errors import JobCancelled, NaviewerError
from naviewer.interrupts import cancel_on_sigint, print_stopping_notice
from naviewer.jobs import JobContext, ensure_context
from naviewer.settings import settings_from_dict
from naviewer.ssl.augment import AugmentSettings, BatchAugment
from naviewer.ssl.checkpoints import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    cleanup_checkpoint_temps,
    load_training_checkpoint,
    save_atomic,
)
from naviewer.ssl.device import resolve_device
from naviewer.catalogue import EPOCHS_MAX, LEGACY_RECIPE, LR_MAX, WEIGHT_DECAY_MAX, augment_values, check_recipe, default_recipe
from naviewer.ssl.distributed import DistInfo, all_reduce_mean, barrier, broadcast_flag, init_distributed
from naviewer.ssl.methods import SSLMethod, build_method


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in checkpoints and ``run_start``)."""

    method: str = "simclr"
    method_settings: dict[str, Any] = field(default_factory=dict)
    backbone: dict[str, Any] = field(default_factory=lambda: {"arch": "resnet18", "cifar_stem": True, "width": 64})
    epochs: int = 200
    batch_size: int = 256  # global batch: split evenly across DDP ranks
    lr: Optional[float] = None  # base lr at batch 256; None: the method's default
    lr_scaling: str = "linear"  # linear | sqrt | none: lr * (batch/256) ** (1 | 0.5 | 0)
    weight_decay: Optional[float] = None  # None: the method's default
    momentum: float = 0.9
    optimizer: str = "sgd"  # sgd | adam
    warmup_epochs: float = 10.0  # capped at half the run
    min_lr: float = 0.0
    image_size: int = 32
    augment_recipe: str = ""  # naviewer.catalogue recipe; "" = the method's paper recipe (set on creation)
    augment: dict[str, Any] = field(default_factory=dict)  # AugmentSettings overrides on top of the recipe
    device: str = "auto"
    amp: bool = True  # CUDA only
    amp_dtype: str = "bfloat16"  # bfloat16 | float16 (float16 uses a GradScaler)
    channels_last: bool = True  # CUDA only
    sync_bn: bool = False  # SyncBatchNorm across DDP ranks (CUDA; the toolbox uses it for SimSiam/BYOL)
    seed: int = 0
    checkpoint_every: int = 10  # also: last.pt after every epoch, on cancel and at the end
    knn_every: int = 5  # epochs; needs an eval store
    knn_k: int = 200
    knn_temperature: float = 0.1
    log_every: int = 10  # steps between "step" records
    num_threads: Optional[int] = None
    max_steps_per_epoch: Optional[int] = None
    cache_on_device: Any = "auto"

    def __post_init__(self) -> None:
        if not 1 <= self.epochs <= EPOCHS_MAX:  # 1e20 epochs ran until killed (a sweep)
            raise NaviewerError(f"epochs must be from 1 to {EPOCHS_MAX:,}, got {self.epochs:,}")
        if self.batch_size < 2:  # one message a value: "need epochs >= 1 and batch size >= 2 (got 1, 1)" blamed both
            raise NaviewerError(f"batch size must be at least 2 (contrastive pairs need another sample), got "
                                f"{self.batch_size:,}")
        if self.lr_scaling not in ("linear", "sqrt", "none"):
            raise NaviewerError(f"lr_scaling must be linear, sqrt or none, not {self.lr_scaling!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise NaviewerError(f"optimizer must be sgd or adam, not {self.optimizer!r}")
        if self.amp_dtype not in ("bfloat16", "float16"):
            raise NaviewerError("amp_dtype must be bfloat16 or float16")
        # every path (CLI, the GUI's dialog, a saved config) meets these: lr 1e300 overflowed inside torch's SGD
        for name, value, high in (("lr", self.lr, LR_MAX), ("weight_decay", self.weight_decay, WEIGHT_DECAY_MAX)):
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)
                                          and 0 <= value <= high and (value > 0 or name != "lr")):
                raise NaviewerError(f"{name} must be a finite number {'above 0' if name == 'lr' else 'from 0'} "
                                    f"up to {high:g}, got {value!r}")
        self.augment_recipe = check_recipe(self.augment_recipe or default_recipe(self.method))

    def augment_settings(self) -> dict[str, Any]:
        """The AugmentSettings fields this run trains with: its recipe, its overrides, its image size."""
        return {**augment_values(self.augment_recipe, self.augment), "image_size": self.image_size}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainConfig":
        """Build from a dict; unknown keys are a NaviewerError naming them (:data:`LEGACY_TRAIN_KEYS` are accepted)."""
        return settings_from_dict(cls, values, "training", LEGACY_TRAIN_KEYS)

    @classmethod
    def from_saved(cls, values: Mapping[str, Any]) -> "TrainConfig":
        """A config read back from a checkpoint: one saved before recipes were recorded trained with aug+."""
        return cls.from_dict({"augment_recipe": LEGACY_RECIPE, **dict(values)})


#: ``TrainConfig`` keys an older naviewer stored (checkpoints' ``config``, ``run_start`` records) that
#: this one no longer has: old name -> new name, or None (accepted and ignored). Empty: no training
#: setting has been renamed or removed yet (fields were only added; a missing key takes its default,
#: and ``from_saved`` gives a checkpoint without ``augment_recipe`` the aug+ it trained with). Add the
#: old name here when a field is renamed or removed, so old checkpoints keep resuming.
LEGACY_TRAIN_KEYS: dict[str, Optional[str]] = {}


class TrainHook(Protocol):
    def after_epoch(self, trainer: "Trainer", epoch: int) -> None: ...


@dataclass
class LRSchedule:
    """Linear warm-up then cosine decay, by global step, over one segment of the run."""

    base_lr: float
    start_step: int
    total_steps: int
    warmup_steps: int
    min_lr: float = 0.0

    def lr_at(self, global_step: int) -> float:
        s = global_step - self.start_step
        if s < self.warmup_steps:
            return self.base_lr * (s + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        p = min(max((s - self.warmup_steps) / span, 0.0), 1.0)
        return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * p))


class MetricsWriter:
    """Appends the records docs/workspace-format.md describes to ``metrics.jsonl`` (flushed per line) and mirrors them to ctx."""

    def __init__(self, path: Optional[Path], ctx: JobContext, enabled: bool) -> None:
        from naviewer.io import check_regular_file

        if path is not None and enabled:
            check_regular_file(path, "metrics file")  # a pipe in its place blocked the first record for ever
        self.path = path
        self.ctx = ctx
        self.enabled = enabled

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if self.path is not None:
            line = json.dumps({**record, "time": time.time()}, default=_json_default)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()
        self.ctx.metric(**record)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) so that model initialisation is reproducible."""
    torch.manual_seed(seed)


@contextlib.contextmanager
def _resumable(path: Path):
    """A training checkpoint whose fields cannot rebuild the run (a schedule of text, a broken rng state, sample
    ids out of range) is one NaviewerError naming the file, not a traceback from deep in the restore."""
    try:
        yield
    except NaviewerError as exc:
        if exc.path is None:  # "unknown SSL method 'dino'" named no file
            raise NaviewerError(f"cannot resume from this checkpoint: {exc.message}", path) from None
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RuntimeError) as exc:
        text = str(exc)
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if "size mismatch" in text:  # torch's load_state_dict lists every layer: 64 lines inside one message
            first = next((line for line in lines if "size mismatch" in line), "")
            text = f"its weights do not fit the encoder it records ({first.rstrip('.')}; and more)"
        elif len(lines) > 1 and "loading state_dict" in lines[0]:  # the first line ends at "for SimCLR:"
            detail = lines[1] if len(lines[1]) <= 200 else lines[1][:200] + "…"
            text = f"its weights do not fit the encoder it records ({detail.rstrip('.')})"
        else:
            text = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
        raise NaviewerError(f"damaged training checkpoint: cannot resume from it ({text}); start a new run, or "
                            "resume from an intact checkpoint", path) from None


class Trainer:
    """Trains ``method`` on ``store``; see the module docstring. ``fit(ctx)`` runs it."""

    def __init__(
        self,
        method: SSLMethod,
        store: ImageStore,
        config: Optional[TrainConfig] = None,
        run_dir: "str | Path | None" = None,
        hooks: Sequence[TrainHook] = (),
        *,
        eval_store: Optional[ImageStore] = None,
        eval_test_store: Optional[ImageStore] = None,
        asr_fn: Optional[Callable[["Trainer"], Any]] = None,
        checkpoint_dir: "str | Path | None" = None,
    ) -> None:
        self._checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.config = config if config is not None else TrainConfig(method=method.name)
        cfg = self.config
        if cfg.num_threads:
            torch.set_num_threads(int(cfg.num_threads))
        self.method = method
        self.store = store
        self.original_size = len(store)
        self.source_indices: Optional[np.ndarray] = None
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.hooks = list(hooks)
        self.eval_store = eval_store
        self.eval_test_store = eval_test_store
        self.asr_fn = asr_fn
        if eval_store is not None:
            labelled = np.flatnonzero(np.asarray(eval_store.labels) >= 0)
            if len(labelled) == 0:
                raise NaviewerError("the kNN evaluation set has no labels")
            if len(labelled) < len(eval_store):  # the bank holds labelled samples only
                self.eval_store = eval_store = eval_store.subset(labelled)

        device = resolve_device(cfg.device)
        self.dist: DistInfo = init_distributed(device.type)
        if device.type == "cuda":
            index = self.dist.local_rank if self.dist.enabled else (device.index or 0)
            device = torch.device("cuda", index)
            torch.cuda.set_device(device)
            torch.backends.cudnn.benchmark = True
        self.device = device
        self.use_amp = bool(cfg.amp) and device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if cfg.amp_dtype == "bfloat16" else torch.float16
        if self.use_amp and self.amp_dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            self.amp_dtype = torch.float16
        self.channels_last = bool(cfg.channels_last) and device.type == "cuda"

        torch.manual_seed(cfg.seed + self.dist.rank)
        self.method.backbone.naviewer_image_size = int(cfg.image_size)  # extract_embeddings' default size
        self.method.to(device)
        if self.channels_last:
            self.method.to(memory_format=torch.channels_last)
        self.model: torch.nn.Module = self.method
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            if cfg.sync_bn and device.type == "cuda":
                torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.method)

            self.model = DDP(self.method, device_ids=[device.index] if device.type == "cuda" else None)

        aug_settings = AugmentSettings.from_dict(cfg.augment_settings())
        self.augment = BatchAugment(aug_settings, cache_on_device=cfg.cache_on_device,
                                    channels_last=self.channels_last)
        self.rng = np.random.default_rng([cfg.seed, self.dist.rank, 7919])

        self.local_batch = cfg.batch_size // self.dist.world_size
        if self.local_batch < 2:
            raise NaviewerError(f"batch size {cfg.batch_size} is too small for {self.dist.world_size} processes")
        self.total_epochs = int(cfg.epochs)
        #: the epoch the last restart on new data began at (0: none); the progress counts the epochs after it
        self.restart_epoch = 0
        self.completed_epochs = 0
        self.step_in_epoch = 0
        self.global_step = 0
        self.data_version = 0
        self.epoch = 0
        self._epoch_loss = 0.0
        self._epoch_count = 0
        self._epoch_time = 0.0
        self._waited_s = 0.0  # seconds spent in _check (paused), left out of the throughput
        self._epoch_segment: Optional[tuple[float, float]] = None  # (clock, _waited_s) where this epoch's run began
        self._stop_reason: Optional[str] = None
        #: the epoch whose end (monitor, hooks, record) was under way: a cancel there checkpoints with the epoch
        #: counted as done, and a resumed run finishes that end first (DIFT's detection of that epoch was lost)
        self._epoch_end_pending: Optional[int] = None
        self._saved_at: Optional[tuple[int, int, int]] = None
        self._extra_metrics: dict[str, Any] = {}
        self.ctx: JobContext = JobContext()
        self._writer = MetricsWriter(None, self.ctx, False)
        self.steps_per_epoch = self._steps_per_epoch()
        self.base_lr = self._scaled_lr()
        self._build_optimizer()
        warmup = min(int(round(cfg.warmup_epochs * self.steps_per_epoch)), (self.total_epochs * self.steps_per_epoch) // 2)
        self.schedule = LRSchedule(self.base_lr, 0, self.total_epochs * self.steps_per_epoch, warmup, cfg.min_lr)

    # -- setup helpers --------------------------------------------------------------------------
    def _steps_per_epoch(self) -> int:
        per_rank = len(self.store) // self.dist.world_size
        steps = per_rank // self.local_batch
        if self.config.max_steps_per_epoch:
            steps = min(steps, int(self.config.max_steps_per_epoch))
        if steps < 1:
            raise NaviewerError(
                f"the dataset ({len(self.store)} images) is smaller than one batch of {self.config.batch_size}; "
                "lower the batch size")
        return steps

    def _scaled_lr(self) -> float:
        cfg = self.config
        base = cfg.lr if cfg.lr is not None else type(self.method).default_lr
        power = {"linear": 1.0, "sqrt": 0.5, "none": 0.0}[cfg.lr_scaling]
        return float(base) * (cfg.batch_size / 256.0) ** power

    def _build_optimizer(self) -> None:
        cfg = self.config
        wd = cfg.weight_decay if cfg.weight_decay is not None else type(self.method).default_weight_decay
        groups = []
        for group in self.method.parameter_groups():
            group = dict(group)
            group["fixed_lr"] = bool(group.get("fixed_lr", False))
            group["lr"] = self.base_lr
            groups.append(group)
        if cfg.optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(groups, lr=self.base_lr, momentum=cfg.momentum,
                                                                    weight_decay=wd)
        else:
            self.optimizer = torch.optim.Adam(groups, lr=self.base_lr, weight_decay=wd)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)

    # -- public controls (for hooks and other threads) --------------------------------------------
    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    @property
    def current_lr(self) -> float:
        return self.schedule.lr_at(self.global_step)

    @property
    def checkpoint_dir(self) -> Optional[Path]:
        """``checkpoint_dir`` if given (a workspace's checkpoints/<run>/), else RUN/checkpoints."""
        if self._checkpoint_dir is not None:
            return self._checkpoint_dir
        return self.run_dir / "checkpoints" if self.run_dir is not None else None

    def request_stop(self, reason: str = "requested") -> None:
        """Finish after the current epoch (or at once when called from a hook), then checkpoint."""
        self._stop_reason = reason

    @property
    def stop_reason(self) -> Optional[str]:
        """Why ``fit`` stops early (:meth:`request_stop`'s reason); None while nothing asked it to."""
        return self._stop_reason

    def rebuild_optimizer(self) -> None:
        """A fresh optimiser (new momentum buffers, grad scaler) over the method's parameter groups
        at the base lr: what a follower rank does when rank 0 rebuilt its own."""
        self._build_optimizer()

    def restore_schedule(self, values: Mapping[str, Any]) -> None:
        """Take the lr schedule ``dataclasses.asdict(schedule)`` describes (rank 0's, sent over)."""
        self.schedule = LRSchedule(**values)

    def add_epoch_metrics(self, **values: Any) -> None:
        """Extra fields (e.g. dift_detected) merged into the current epoch's record."""
        self._extra_metrics.update(values)

    def open_metrics(self, ctx: Optional[JobContext] = None) -> None:
        """Attach ``ctx`` and RUN/metrics.jsonl before ``fit`` so that what happens between a resume
        and ``fit`` (DIFT's fine-tuning and restart after a review) is logged like in-run events."""
        self.ctx = ensure_context(ctx)
        path = None
        if self.run_dir is not None and self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            path = self.run_dir / "metrics.jsonl"
        self._writer = MetricsWriter(path, self.ctx, self.is_main)

    def log_event(self, event: str, **data: Any) -> None:
        """An ``event`` record in metrics.jsonl (and ctx.event)."""
        if self.is_main:
            self._writer.write({"kind": "event", "event": event, **data})
            self.ctx.event(event, **data)

    def replace_data(self, store: ImageStore, reset_schedule: bool = True, remaining_epochs: Optional[int] = None,
                     source_indices: Optional[np.ndarray] = None, warmup_epochs: float = 0.0) -> None:
        """Train on ``store`` from now on (DIFT's restart on D minus the flagged poisons).

        With ``reset_schedule`` the optimiser is re-created (fresh momentum buffers) and the lr
        restarts from the base lr (after ``warmup_epochs``) with a cosine over the remaining epochs
        (``remaining_epochs`` None keeps the total budget). ``source_indices`` (into the store the
        trainer started with) lets a resumed run rebuild the same subset.
        """
        self.store = store
        self.augment.release()
        self.data_version += 1
        if source_indices is not None:
            source_indices = np.asarray(source_indices, dtype=np.int64)
            self.source_indices = (self.source_indices[source_indices] if self.source_indices is not None
                                   else source_indices)
        else:
            self.source_indices = None
        remaining = remaining_epochs if remaining_epochs is not None else self.total_epochs - self.completed_epochs
        self.total_epochs = self.completed_epochs + max(0, int(remaining))
        self.restart_epoch = self.completed_epochs
        self.steps_per_epoch = self._steps_per_epoch()
        if reset_schedule:
            self._build_optimizer()
            total = max(1, int(remaining) * self.steps_per_epoch)
            warm = min(int(round(warmup_epochs * self.steps_per_epoch)), total // 2)
            self.schedule = LRSchedule(self.base_lr, self.global_step, total, warm, self.config.min_lr)
        self.log_event("restart", n_samples=len(store), remaining_epochs=int(remaining),
                       reset_schedule=bool(reset_schedule), restart_epoch=int(self.restart_epoch),
                       total_epochs=int(self.total_epochs), steps_per_epoch=int(self.steps_per_epoch))

    def epoch_text(self, epoch: int) -> str:
        """"epoch 10 of 50" for the progress line; after a restart on new data (DIFT's, after the review) the epochs
        since it, then the run's: "epoch 10 of 50 after the restart (44 of 84 in all)" ("epoch 44 of 84" alone
        read as a retrain 84 epochs long)."""
        if not self.restart_epoch:
            return f"epoch {epoch + 1} of {self.total_epochs}"
        since, budget = epoch + 1 - self.restart_epoch, self.total_epochs - self.restart_epoch
        # "(35 of 84 in all)" puzzled a newcomer (session 21): which 84? the epochs before the restart are named
        # a retrain from scratch says so: the Fine-tune tab said "a fresh encoder" and the status bar "after the
        # restart" (a newcomer, session 26)
        words = getattr(self, "restart_words", None) or "after the restart"
        # "(the run's 42 of 89)" alone: ", with the 39 before it" cut the status bar's line at 1280x720 (a newcomer,
        # session 31)
        return f"epoch {since} of {budget} {words} (the run's {epoch + 1} of {self.total_epochs})"

    # -- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "method": self.method.describe(),
            "config": self.config.to_dict(),
            "model": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "schedule": asdict(self.schedule),
            "completed_epochs": self.completed_epochs,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "total_epochs": self.total_epochs,
            "restart_epoch": self.restart_epoch,
            "data_version": self.data_version,
            "epoch_loss": [self._epoch_loss, self._epoch_count, self._epoch_time_so_far()],
            "epoch_end_pending": self._epoch_end_pending,
            "original_size": self.original_size,
            "source_indices": torch.from_numpy(self.source_indices) if self.source_indices is not None else None,
            "rng": {
                "numpy": json.dumps(self.rng.bit_generator.state),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
        }

    def save_checkpoint(self, tag: Optional[str] = None) -> Optional[Path]:
        """Write ``last.pt`` (and ``<tag>.pt``) atomically on rank 0; returns last.pt's path."""
        if not self.is_main or self.checkpoint_dir is None:
            return None
        if tag is None and self._saved_at == (self.global_step, self.completed_epochs, self.data_version):
            return self.checkpoint_dir / "last.pt"  # nothing changed since the last save
        self._saved_at = (self.global_step, self.completed_epochs, self.data_version)
        state = self.state_dict()
        last = save_atomic(state, self.checkpoint_dir / "last.pt")
        if tag:
            save_atomic(state, self.checkpoint_dir / f"{tag}.pt")
        self.log_event("checkpoint", path=str(last), epoch=self.completed_epochs, step=self.global_step,
                       **({"tag": tag} if tag else {}))
        return last

    def load_state(self, state: Mapping[str, Any], base_store: Optional[ImageStore] = None) -> None:
        """Restore everything :meth:`state_dict` saved (the method must be built the same way)."""
        self.method.load_state_dict(state["model"])
        original = int(state.get("original_size", len(self.store)))
        indices = state.get("source_indices")
        base = base_store if base_store is not None else self.store
        if indices is not None:
            if len(base) != original:
                raise NaviewerError(f"the checkpoint trained on a subset of a {original}-image dataset, "
                                    f"but this dataset has {len(base)} images")
            self.source_indices = indices.numpy().astype(np.int64)
            self.store = base.subset(self.source_indices)
            self.augment.release()
        elif len(self.store) != original:
            raise NaviewerError(f"the checkpoint was trained on {original} images, this dataset has {len(self.store)}")
        self.completed_epochs = int(state["completed_epochs"])
        self.step_in_epoch = int(state["step_in_epoch"])
        self.global_step = int(state["global_step"])
        self._restored = True  # the next fit's run_start says where it resumed (Trainer.resume, then fit)
        self.total_epochs = int(state.get("total_epochs", self.total_epochs))
        self.restart_epoch = int(state.get("restart_epoch", 0))
        self.data_version = int(state.get("data_version", 0))
        self._epoch_loss, self._epoch_count, self._epoch_time = state.get("epoch_loss", [0.0, 0, 0.0])
        self._epoch_count = int(self._epoch_count)
        pending = state.get("epoch_end_pending")
        self._epoch_end_pending = int(pending) if isinstance(pending, int) and 0 <= pending < self.completed_epochs \
            else None
        self.steps_per_epoch = self._steps_per_epoch()
        self._build_optimizer()
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.schedule = LRSchedule(**state["schedule"])
        rng = state.get("rng") or {}
        if rng.get("numpy"):
            self.rng.bit_generator.state = json.loads(rng["numpy"])
        if rng.get("torch") is not None:
            torch.set_rng_state(rng["torch"])
        if rng.get("cuda") and torch.cuda.is_available():
            try:
                torch.cuda.set_rng_state_all(rng["cuda"])
            except RuntimeError:  # different GPU count: keep the fresh streams
                pass

    def restore_checkpoint(self) -> bool:
        """Load ``last.pt`` of the checkpoint folder, if there is one (True when loaded). A caller that records
        the run as going on calls it first: a damaged checkpoint then refuses before any record is rewritten."""
        if self.checkpoint_dir is None or not (self.checkpoint_dir / "last.pt").is_file():
            return False
        with _resumable(self.checkpoint_dir / "last.pt"):
            self.load_state(load_training_checkpoint(self.checkpoint_dir / "last.pt"))
        return True

    @classmethod
    def resume(cls, run_dir: "str | Path", store: ImageStore, hooks: Sequence[TrainHook] = (),
               config_overrides: Optional[Mapping[str, Any]] = None, state: Optional[Mapping[str, Any]] = None,
               **kwargs: Any) -> "Trainer":
        """Rebuild a run from ``run_dir/checkpoints/last.pt`` on the ORIGINAL store (the one the run
        started with); ``config_overrides`` may change e.g. device, epochs or num_threads. ``state``: that
        checkpoint already loaded (``naviewer train --resume`` reads it first to check the options)."""
        folder = kwargs.get("checkpoint_dir")
        path = (Path(folder) if folder is not None else Path(run_dir) / "checkpoints") / "last.pt"
        state = load_training_checkpoint(path) if state is None else state
        with _resumable(path):
            config = TrainConfig.from_saved({**state["config"], **dict(config_overrides or {})})
            described = state["method"]
            method = build_method(described["method"], backbone=described["backbone"], **described["settings"])
            trainer = cls(method, store, config, run_dir, hooks, **kwargs)
            trainer.load_state(state)
            if config_overrides and "epochs" in config_overrides:
                new_total = max(int(config_overrides["epochs"]), trainer.completed_epochs)
                # a longer (or shorter) run stretches the current cosine segment to the new end
                trainer.schedule.total_steps = max(
                    1, trainer.schedule.total_steps + (new_total - trainer.total_epochs) * trainer.steps_per_epoch)
                trainer.total_epochs = new_total
            trainer.schedule.lr_at(trainer.global_step)  # a schedule of text fails here, not in the first step
        return trainer

    # -- the loop ---------------------------------------------------------------------------------
    def _epoch_order(self, epoch: int) -> np.ndarray:
        """The same permutation on every rank; this rank's shard of it."""
        perm = np.random.default_rng([self.config.seed, epoch, self.data_version, 104729]).permutation(len(self.store))
        return perm[self.dist.rank::self.dist.world_size]

    def _set_lr(self) -> float:
        lr = self.schedule.lr_at(self.global_step)
        for group in self.optimizer.param_groups:
            group["lr"] = self.schedule.base_lr if group.get("fixed_lr") else lr
        return lr

    def _check(self, ctx: JobContext) -> None:
        started = time.perf_counter()
        if ctx.paused:
            self.log_event("paused")
            ctx.check()
            self.log_event("resumed")
        ctx.check()
        # time spent here is not training: the throughput and the epoch's time leave it out (a paused epoch read
        # as a dip in the monitor's throughput plot; session 25)
        self._waited_s += time.perf_counter() - started

    def fit(self, ctx: Optional[JobContext] = None, resume: bool = False) -> dict[str, Any]:
        """Train to the end (or until a stop request); returns a summary. Cancel -> checkpoint + JobCancelled."""
        ctx = ensure_context(ctx)
        self.ctx = ctx
        metrics_path = None
        if self.run_dir is not None and self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            metrics_path = self.run_dir / "metrics.jsonl"
        self._writer = MetricsWriter(metrics_path, ctx, self.is_main)
        resumed = False
        if self.is_main and self.checkpoint_dir is not None:
            cleanup_checkpoint_temps(self.checkpoint_dir)  # left by a process killed while saving
        if resume and not self.__dict__.get("_restored") and self.restore_checkpoint():
            resumed = True
        # a trainer rebuilt by Trainer.resume (naviewer train --resume, a resumed window training) is resumed too:
        # without the marker the monitor could not place its steps
        resumed = resumed or bool(self.__dict__.pop("_restored", False))
        self._writer.write({
            "kind": "run_start", "config": self.config.to_dict(), "total_epochs": self.total_epochs,
            "steps_per_epoch": self.steps_per_epoch, "method": self.method.name,
            "world_size": self.dist.world_size, "device": str(self.device), "n_samples": len(self.store),
            **({"resumed_from_epoch": self.completed_epochs, "resumed_from_step": self.global_step} if resumed else {}),
            # a resumed retrain's progress counts from its restart, not from the epochs before the review
            **({"restart_epoch": int(self.restart_epoch)} if self.restart_epoch else {}),
        })
        last_loss = float("nan")
        if self.completed_epochs < self.total_epochs:  # the next stage named at once, not "loading images 100 %"
            ctx.progress(0, self.steps_per_epoch, f"{self.epoch_text(self.completed_epochs)}: "
                                                  "first steps (building batches on the device)")
        # Ctrl-C cancels at the next step boundary, so the checkpoint below is consistent (one process only:
        # under torchrun the ranks could stop at different steps and wait on each other)
        sigint = (cancel_on_sigint(ctx, print_stopping_notice() if self.is_main else None)
                  if not self.dist.enabled else contextlib.nullcontext())
        try:
            with sigint:
                if self._epoch_end_pending is not None:  # loaded from a run stopped at an epoch's end: finish it
                    epoch = self._epoch_end_pending
                    self.log_event("epoch_end_resumed", epoch=epoch)
                    self._end_epoch(epoch, {"kind": "epoch", "epoch": epoch, "resumed_end": True})
                while self.completed_epochs < self.total_epochs and self._stop_reason is None:
                    last_loss = self._run_epoch(ctx)
            self.save_checkpoint()
            self.log_event("finished", epochs=self.completed_epochs, step=self.global_step,
                           **({"reason": self._stop_reason} if self._stop_reason else {}))
        except JobCancelled:
            self.save_checkpoint()
            self.log_event("cancelled", epoch=self.completed_epochs, step=self.global_step)
            raise
        return {"epochs": self.completed_epochs, "global_step": self.global_step, "loss": last_loss,
                "stopped": self._stop_reason}

    def _epoch_time_so_far(self) -> float:
        """The current epoch's working seconds: those of earlier segments (before a resume) and of the one running,
        pauses left out. A checkpoint saved mid-epoch (a cancel) kept only the earlier ones, 0 on a first segment, and
        the resumed epoch's images/s then divided all its steps by the last segment's time (a read-through, session
        26)."""
        if self._epoch_segment is None:
            return self._epoch_time
        started, waited = self._epoch_segment
        return self._epoch_time + time.perf_counter() - started - (self._waited_s - waited)

    def _run_epoch(self, ctx: JobContext) -> float:
        cfg = self.config
        epoch = self.completed_epochs
        self.epoch = epoch
        order = self._epoch_order(epoch)
        self.method.train()
        spe = self.steps_per_epoch
        log_every = max(1, int(cfg.log_every))
        t_epoch, waited_epoch = time.perf_counter(), self._waited_s
        self._epoch_segment = (t_epoch, waited_epoch)
        t_log, n_log, waited_log = t_epoch, 0, self._waited_s
        pending: list[torch.Tensor] = []
        lr = self.current_lr
        while self.step_in_epoch < spe:
            self._check(ctx)
            step = self.step_in_epoch
            batch = order[step * self.local_batch:(step + 1) * self.local_batch]
            v1, v2 = self.augment.two_views(self.store, batch, self.rng, self.device)
            lr = self._set_lr()
            with torch.autocast(device_type=self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                loss = self.model(v1, v2)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.method.after_step((epoch + (step + 1) / spe) / max(1, self.total_epochs))
            pending.append(loss.detach())
            self.step_in_epoch += 1
            self.global_step += 1
            n_log += len(batch) * self.dist.world_size
            if self.step_in_epoch % log_every == 0 or self.step_in_epoch == spe:
                values = torch.stack(pending).float().cpu().numpy()
                pending.clear()
                if not np.isfinite(values).all():
                    raise NaviewerError(f"training diverged (loss is {values[-1]}) in epoch {epoch + 1}, "
                                        f"step {self.global_step}; lower the learning rate")
                self._epoch_loss += float(values.sum())
                self._epoch_count += len(values)
                now = time.perf_counter()
                self._writer.write({"kind": "step", "epoch": epoch, "step": self.global_step,
                                    "loss": float(values[-1]), "lr": lr,
                                    "images_per_s": n_log / max(now - t_log - (self._waited_s - waited_log), 1e-9)})
                t_log, n_log, waited_log = now, 0, self._waited_s
                ctx.progress(self.step_in_epoch, spe, self.epoch_text(epoch))
        self._epoch_time = self._epoch_time_so_far()
        self._epoch_segment = None
        epoch_time = self._epoch_time
        loss = all_reduce_mean(self._epoch_loss / max(1, self._epoch_count), self.dist, self.device)
        record: dict[str, Any] = {
            "kind": "epoch", "epoch": epoch, "loss": loss, "lr": lr,
            "images_per_s": spe * self.local_batch * self.dist.world_size / max(epoch_time, 1e-9),
            "epoch_time_s": epoch_time,
        }
        self.completed_epochs = epoch + 1
        self.step_in_epoch = 0
        self._epoch_loss, self._epoch_count, self._epoch_time = 0.0, 0, 0.0
        self._end_epoch(epoch, record)
        if self.dist.enabled:
            stop = broadcast_flag(self._stop_reason is not None, self.dist, self.device)
            if stop and self._stop_reason is None:
                self._stop_reason = "requested"
        every = int(cfg.checkpoint_every or 0)
        tag = f"epoch_{epoch:04d}" if every and (epoch + 1) % every == 0 else None
        self.save_checkpoint(tag)
        return loss

    def _end_epoch(self, epoch: int, record: dict[str, Any]) -> None:
        """The monitor, the hooks (DIFT's detection) and the epoch's record, after its last step. Marked pending
        while under way, so that a checkpoint written by a cancel here is resumed by doing it again."""
        self._epoch_end_pending = epoch
        self._extra_metrics = {}
        if self._monitor_due(epoch):
            record.update(self._monitor())
        for hook in self.hooks:
            hook.after_epoch(self, epoch)
        record.update(self._extra_metrics)
        self._extra_metrics = {}
        self._writer.write(record)
        self._epoch_end_pending = None

    # -- monitors ---------------------------------------------------------------------------------
    def _monitor_due(self, epoch: int) -> bool:
        if self.eval_store is None and self.asr_fn is None:
            return False
        every = int(self.config.knn_every or 0)
        last = epoch + 1 == self.total_epochs
        return last or (every > 0 and (epoch + 1) % every == 0)

    def _monitor(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.is_main:
            if self.eval_store is not None:
                out["knn_acc"] = self.knn_accuracy()
            if self.asr_fn is not None:
                value = self.asr_fn(self)
                if isinstance(value, Mapping):
                    out.update(value)
                elif value is not None:
                    out["asr"] = float(value)
        barrier(self.dist)
        return out

    def knn_accuracy(self) -> float:
        """Weighted kNN accuracy of the current backbone (bank = eval_store; queries = eval_test_store
        or leave-one-out on the bank)."""
        from naviewer.evaluation.knn import knn_accuracy
        from naviewer.ssl.embed import extract_embeddings

        assert self.eval_store is not None
        size = self.config.image_size
        kw = dict(image_size=size, ctx=None, channels_last=self.channels_last,
                  mean=self.augment.settings.mean, std=self.augment.settings.std)
        bank = extract_embeddings(self.method.backbone, self.eval_store, **kw)
        classes = int(max(self.eval_store.labels.max(), 0) + 1)
        if self.eval_test_store is not None:
            queries = extract_embeddings(self.method.backbone, self.eval_test_store, **kw)
            classes = max(classes, int(self.eval_test_store.labels.max()) + 1)
            return knn_accuracy(bank, self.eval_store.labels, queries, self.eval_test_store.labels, classes,
                                self.config.knn_k, self.config.knn_temperature, device=self.device)
        return knn_accuracy(bank, self.eval_store.labels, bank, self.eval_store.labels, classes,
                            self.config.knn_k, self.config.knn_temperature, exclude_self=True, device=self.device)


def build_trainer(config: TrainConfig, store: ImageStore, run_dir: "str | Path | None" = None,
                  hooks: Sequence[TrainHook] = (), **kwargs: Any) -> Trainer:
    """Seed, build ``config.method`` with ``config.backbone`` and wrap it in a Trainer."""
    seed_everything(config.seed)
    method = build_method(config.method, backbone=config.backbone, **config.method_settings)
    return Trainer(method, store, config, run_dir, hooks, **kwargs)
