"""DDP plumbing: the trainer runs unchanged under ``torchrun`` (NCCL on GPUs, gloo on CPUs).

Beyond joining the group this module owns the two things a multi-process run gets wrong easily:

- **teardown**: every rank meets the others at a timed barrier (on the rendezvous store) before the process group
  is destroyed; a rank tearing gloo down while another still talks to it aborted the process
  ("terminate called without an active exception"). :func:`distributed_session` does it on the
  normal path and, with a short wait, on the error path; the group's ``timeout`` (env
  ``NAVIEWER_DIST_TIMEOUT``, seconds) bounds every collective so an exception on one rank never
  leaves the other waiting forever.
- **rank-0 sections**: work that must happen once (DIFT detection, the review gate, writing the
  workspace, Eq. 7 fine-tuning) runs on rank 0 only inside :class:`MainRankSection`; the other
  ranks serve the collective steps it asks for (e.g. embedding their shard of the training set)
  and afterwards adopt what it changed on the trainer: the training subset, the schedule, the
  optimiser reset and the weights (broadcast from rank 0, so every rank continues bit-identical).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Callable, Iterator, Mapping, Optional

import numpy as np
import torch
import torch.distributed as dist

from naviewer.errors import JobCancelled, NaviewerError

#: default bound on any collective (seconds); rank 0 may work alone this long (DIFT detection,
#: fine-tuning) while the other ranks wait for it
DEFAULT_TIMEOUT_S = 1800.0
#: how long a failing rank waits for the others at teardown before destroying the group anyway
ERROR_TEARDOWN_S = 20.0


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job; ``world_size == 1`` when not launched by torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def dist_timeout() -> timedelta:
    """The process group's collective timeout: ``NAVIEWER_DIST_TIMEOUT`` seconds, else 30 minutes."""
    raw = os.environ.get("NAVIEWER_DIST_TIMEOUT")
    try:
        seconds = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise NaviewerError(f"NAVIEWER_DIST_TIMEOUT must be a number of seconds, not {raw!r}") from None
    return timedelta(seconds=max(1.0, seconds))


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group torchrun describes in the environment (once); single process otherwise."""
    if env_world_size() <= 1 or not dist.is_available():
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=dist_timeout())
    return current_info()


def current_info() -> DistInfo:
    """The running group's ranks (single process when no group is initialised)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def comm_device(info: DistInfo) -> torch.device:
    """Where collective tensors must live: the rank's GPU with NCCL, else the CPU."""
    if info.enabled and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


_TEARDOWNS = 0


def _store_barrier(seconds: float) -> None:
    """Every rank checks in at the rendezvous store and waits at most ``seconds`` for the others.

    Unlike a gloo (monitored) barrier this honours its timeout on every rank - a non-zero rank's
    gloo send to a rank stuck in another collective waits the group's whole timeout - and a rank
    only checks in once all of its own collectives have completed, so none is destroyed mid-talk."""
    global _TEARDOWNS
    _TEARDOWNS += 1
    store = dist.distributed_c10d._get_default_store()
    key = f"naviewer/teardown/{_TEARDOWNS}"
    if store.add(f"{key}/arrived", 1) >= dist.get_world_size():
        store.set(f"{key}/all", "1")
    store.wait([f"{key}/all"], timedelta(seconds=seconds))


_LEFT_A_GROUP = False


def left_a_process_group() -> bool:
    """Whether this process tore down a process group of several ranks (the CLI then leaves without the
    interpreter's finalisation: ``naviewer.cli._leave_after_a_process_group``)."""
    return _LEFT_A_GROUP


def shutdown_distributed(ok: bool = True, wait_s: Optional[float] = None) -> bool:
    """Meet the other ranks, then destroy the process group; a no-op without one.

    ``ok`` False (an exception on this rank) waits only ``ERROR_TEARDOWN_S`` for the others: when
    they failed the same way they arrive at once and the teardown is clean; when only this rank
    failed, it leaves, so that torchrun stops the others instead of letting them wait in their next
    collective for the group's timeout. Returns whether every rank was met."""
    global _LEFT_A_GROUP
    if not (dist.is_available() and dist.is_initialized()):
        return True
    _LEFT_A_GROUP = _LEFT_A_GROUP or dist.get_world_size() > 1
    met = True
    try:
        if dist.get_world_size() > 1:
            seconds = wait_s if wait_s is not None else (dist_timeout().total_seconds() if ok else ERROR_TEARDOWN_S)
            _store_barrier(seconds)
    except Exception as exc:  # noqa: BLE001 - teardown must go on; say why it was not clean
        met = False
        print(f"naviewer: rank {dist.get_rank()}: the other processes did not reach the teardown within "
              f"the wait ({type(exc).__name__}); closing anyway", file=sys.stderr)
    finally:
        dist.destroy_process_group()
    return met


@contextmanager
def distributed_session() -> Iterator[None]:
    """Tear a torchrun run's process group down safely when the block ends, however it ends."""
    try:
        yield
    except BaseException:
        shutdown_distributed(ok=False)
        raise
    shutdown_distributed(ok=True)


def all_reduce_mean(value: float, info: DistInfo, device: torch.device) -> float:
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size


def broadcast_flag(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank if it is True on rank 0 (stop requests, cancel)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def broadcast_object(value: Any, info: DistInfo, src: int = 0) -> Any:
    """Rank ``src``'s ``value`` on every rank (small picklable things: decisions, ids, settings)."""
    if not info.enabled:
        return value
    box = [value if info.rank == src else None]
    dist.broadcast_object_list(box, src=src, device=comm_device(info))
    return box[0]


def broadcast_module(module: torch.nn.Module, info: DistInfo, src: int = 0, buffers_only: bool = False) -> None:
    """Copy rank ``src``'s parameters and buffers (BN statistics, momentum branch) into every rank's module."""
    if not info.enabled:
        return
    tensors = list(module.buffers()) if buffers_only else [*module.parameters(), *module.buffers()]
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t.data, src=src)


def module_fingerprint(module: torch.nn.Module) -> torch.Tensor:
    """One float64 sum per parameter: cheap, and changes whenever a weight does."""
    with torch.no_grad():
        sums = [p.detach().double().sum() for p in module.parameters()]
    return torch.stack(sums).cpu() if sums else torch.zeros(0, dtype=torch.float64)


def gather_rows(rows: np.ndarray, info: DistInfo, dst: int = 0) -> Optional[np.ndarray]:
    """Concatenate every rank's ``rows`` (n_r, D) in rank order on rank ``dst`` (None elsewhere)."""
    if not info.enabled:
        return rows
    device = comm_device(info)
    local = torch.from_numpy(np.ascontiguousarray(rows)).to(device)
    counts = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(info.world_size)]
    dist.all_gather(counts, torch.tensor([local.shape[0]], dtype=torch.int64, device=device))
    sizes = [int(c.item()) for c in counts]
    padded = torch.zeros((max(sizes), *local.shape[1:]), dtype=local.dtype, device=device)
    padded[: local.shape[0]] = local
    bucket = [torch.empty_like(padded) for _ in range(info.world_size)] if info.rank == dst else None
    dist.gather(padded, gather_list=bucket, dst=dst)
    if info.rank != dst:
        return None
    return np.concatenate([b[:s].cpu().numpy() for b, s in zip(bucket, sizes)], axis=0)


# -- rank-0 sections --------------------------------------------------------------------------------

def trainer_data_state(trainer) -> dict[str, Any]:
    """What a rank-0 section may change on a trainer besides the weights (see :meth:`Trainer.replace_data`)."""
    indices = trainer.source_indices
    return {"data_version": int(trainer.data_version), "total_epochs": int(trainer.total_epochs),
            "source_indices": None if indices is None else np.asarray(indices, dtype=np.int64),
            "schedule": asdict(trainer.schedule), "stop_reason": trainer.stop_reason}


def adopt_data_state(trainer, state: Mapping[str, Any], optimizer_rebuilt: bool) -> None:
    """Make a follower's trainer train on what rank 0's now trains on, with the same schedule.

    Only the trainer's public surface is used, so that this module never imports the trainer."""
    if int(state["data_version"]) != int(trainer.data_version):
        new = state["source_indices"]
        current = (np.asarray(trainer.source_indices, dtype=np.int64) if trainer.source_indices is not None
                   else np.arange(trainer.original_size, dtype=np.int64))
        if new is None:  # rank 0 went back to the whole original set: only possible from the original store
            raise NaviewerError("rank 0 replaced the training data with a set this rank cannot rebuild")
        position = {int(v): k for k, v in enumerate(current)}
        try:
            keep = np.array([position[int(v)] for v in new], dtype=np.int64)
        except KeyError:
            raise NaviewerError("rank 0's training subset is not a subset of this rank's") from None
        trainer.replace_data(trainer.store.subset(keep), reset_schedule=optimizer_rebuilt, source_indices=keep)
        trainer.data_version = int(state["data_version"])
    elif optimizer_rebuilt:
        trainer.rebuild_optimizer()
    trainer.total_epochs = int(state["total_epochs"])
    trainer.restore_schedule(state["schedule"])
    if state.get("stop_reason") and trainer.stop_reason is None:
        trainer.request_stop(state["stop_reason"])


class MainRankSection:
    """Runs a piece of work on rank 0 only and brings the other ranks' trainers to its result.

    ``services`` are collective steps the rank-0 work may ask for with :meth:`call` (name ->
    ``fn(trainer)``, run on every rank at that moment, e.g. a sharded embedding). The ranks come
    from ``trainer.dist``; in a single process everything runs inline. An exception on rank 0 is
    forwarded (a cancel stays a cancel), so the other ranks leave the section too instead of
    waiting for a message that never comes.
    """

    def __init__(self, services: Optional[Mapping[str, Callable[[Any], Any]]] = None) -> None:
        self.services = dict(services or {})
        self.shared: Any = None        # what rank 0's ``share`` returned last (on every rank)

    def call(self, trainer, name: str) -> Any:
        """From inside the rank-0 work: run service ``name`` on every rank; its rank-0 value."""
        if trainer.dist.enabled:
            broadcast_object(("call", name), trainer.dist)
        return self.services[name](trainer)

    def run(self, trainer, work: Callable[[Any], Any], share: Optional[Callable[[Any, Any], Any]] = None) -> Any:
        """``work(trainer)`` on rank 0; afterwards every rank has rank 0's data, schedule and weights,
        and ``self.shared`` = ``share(trainer, result)`` when not None (a small picklable summary).
        Returns the result on rank 0, None elsewhere."""
        info = trainer.dist
        if not info.enabled:
            value = work(trainer)
            shared = share(trainer, value) if share is not None else None
            if shared is not None:
                self.shared = shared
            return value
        if info.is_main:
            return self._lead(trainer, info, work, share)
        self._follow(trainer, info)
        return None

    def _lead(self, trainer, info: DistInfo, work, share) -> Any:
        before_data = int(trainer.data_version)
        before_opt = id(trainer.optimizer)
        before_weights = module_fingerprint(trainer.method)
        try:
            value = work(trainer)
            shared = share(trainer, value) if share is not None else None
        except BaseException as exc:
            kind = "cancel" if isinstance(exc, (JobCancelled, KeyboardInterrupt)) else "error"
            broadcast_object(("abort", kind, f"{type(exc).__name__}: {exc}"), info)
            raise
        weights = (int(trainer.data_version) != before_data
                   or not torch.equal(module_fingerprint(trainer.method), before_weights))
        message = {"state": trainer_data_state(trainer), "optimizer_rebuilt": id(trainer.optimizer) != before_opt,
                   "weights": bool(weights), "shared": shared}
        broadcast_object(("done", message), info)
        if weights:
            broadcast_module(trainer.method, info)
        if shared is not None:
            self.shared = shared
        return value

    def _follow(self, trainer, info: DistInfo) -> None:
        while True:
            message = broadcast_object(None, info)
            if message[0] == "call":
                self.services[message[1]](trainer)
            elif message[0] == "abort":
                if message[1] == "cancel":
                    raise JobCancelled(f"rank 0 stopped: {message[2]}")
                raise NaviewerError(f"rank 0 failed, so this rank stops too ({message[2]})")
            elif message[0] == "done":
                body = message[1]
                adopt_data_state(trainer, body["state"], body["optimizer_rebuilt"])
                if body["weights"]:
                    broadcast_module(trainer.method, info)
                if body["shared"] is not None:
                    self.shared = body["shared"]
                return
            else:
                raise NaviewerError(f"unexpected message from rank 0: {message[0]!r}")


class RankZeroHook:
    """A trainer hook whose ``after_epoch`` runs on rank 0 only (in a :class:`MainRankSection`);
    the other ranks follow. ``share(trainer, None)`` after each epoch: what to tell the others."""

    def __init__(self, inner: Any, section: MainRankSection,
                 share: Optional[Callable[[Any, Any], Any]] = None) -> None:
        self.inner = inner
        self.section = section
        self.share = share

    def after_epoch(self, trainer, epoch: int) -> None:
        self.section.run(trainer, lambda t: self.inner.after_epoch(t, epoch), self.share)
