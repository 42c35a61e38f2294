"""Argument helpers shared by the train/embed/eval commands (not a command itself)."""

from __future__ import annotations

import argparse
import functools
import json
import os
from typing import Any, Callable, Optional

from naviewer.io import json_loads


def in_distributed_session(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A command that may run under torchrun: every rank meets the others before the group goes
    (:func:`naviewer.ssl.distributed.distributed_session`; torch is imported only when it runs)."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        from naviewer.ssl.distributed import distributed_session

        with distributed_session():
            return command(args)

    return run


def parse_settings(pairs: Optional[list[str]], what: str = "--set") -> dict[str, Any]:
    """``["temperature=0.2", "symmetric=true"]`` -> dict; values parsed as JSON when they can be."""
    from naviewer.errors import NaviewerError

    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise NaviewerError(f"{what} expects KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        if not key.strip():  # "unknown setting(s):  (none ... is close)" named nothing
            raise NaviewerError(f"{what} {pair!r} has an empty KEY (KEY=VALUE, e.g. k=20)")
        try:
            out[key.strip().replace("-", "_")] = json_loads(value)
        except json.JSONDecodeError:
            out[key.strip().replace("-", "_")] = value
    return out


def add_backbone_args(parser: argparse.ArgumentParser, defaults: bool = True) -> None:
    group = parser.add_argument_group("encoder")
    group.add_argument("--arch", choices=["resnet10", "resnet18", "resnet34", "resnet50"],
                       default="resnet18" if defaults else None,
                       help="ResNet backbone" + (" (default resnet18)" if defaults else " (default: from the checkpoint)"))
    group.add_argument("--width", type=int, default=64 if defaults else None,
                       help="channels of the first stage; 64 = the standard network, 16 or 32 = narrow nets for CPUs")
    group.add_argument("--cifar-stem", action=argparse.BooleanOptionalAction, default=True if defaults else None,
                       help="3x3 stride-1 conv1 and no max-pool, for 32-64 px images (default on)")


def backbone_from_args(args: argparse.Namespace) -> Optional[dict[str, Any]]:
    values = {"arch": args.arch, "width": args.width, "cifar_stem": args.cifar_stem}
    if all(v is None for v in values.values()):
        return None
    return {k: v for k, v in values.items() if v is not None}


def add_inference_args(parser: argparse.ArgumentParser, batch_help: str = "batch size (default 256)") -> None:
    """``--batch-size``, ``--image-size`` and ``--device`` of the commands that run a trained encoder (embed, eval)."""
    parser.add_argument("--batch-size", type=int, default=256, help=batch_help)
    parser.add_argument("--image-size", type=int, help="input size (default: the checkpoint's training size, else 32)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")


def encoder_from_args(args: argparse.Namespace) -> Any:
    """The encoder of ``--checkpoint``, with ``add_backbone_args(defaults=False)``'s overrides (plain weights only)."""
    from naviewer.ssl.checkpoints import load_encoder

    return load_encoder(args.checkpoint, backbone_from_args(args))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def dift_epoch_text(values: dict[str, Any]) -> str:
    """DIFT's figures of an epoch in words: "dift_detected=24 dift_candidates=46" stood beside the pass's "DIFT
    flagged 172" with nothing to join them (a newcomer, session 31): the buffer is what label spreading starts from."""
    if "dift_detected" not in values:
        return ""
    text = (f"DIFT buffer {values['dift_detected']} of {values.get('dift_candidates', '?')} candidates"
            + (", steady" if values.get("dift_stable") else ""))
    if isinstance(values.get("dift_precision"), (int, float)) and isinstance(values.get("dift_recall"), (int, float)):
        text += f" (precision {100 * values['dift_precision']:.0f} %, recall {100 * values['dift_recall']:.0f} %)"
    return text


def dift_stop_text(values: dict[str, Any]) -> str:
    """The step from the buffer to the pass's flags, said once, where the epoch lines end."""
    return (f"DIFT's buffer held steady at {values.get('buffer', '?')} samples; label spreading from them (and the "
            f"trusted anchors) flags {values.get('flagged', '?')}")


class EpochLines:
    """Wraps TextProgress so that only epoch records are printed (step records stay in metrics.jsonl),
    each headed "epoch N of M:" (1-based, like every screen; the file keeps its 0-based ``epoch``)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.total_epochs: Optional[int] = None
        self._done = 0  # epochs whose steps are done (a restart comes in the hook before the epoch record)
        self._restart = 0  # the epochs before a restart inside the run (DIFT's, after the review)

    def progress(self, done: float, total: Optional[float], message: str) -> None:
        self.inner.progress(done, total, message)

    def metric(self, values: dict[str, Any]) -> None:
        from naviewer.cli.progress import epoch_text

        if values.get("kind") == "run_start" and values.get("total_epochs"):
            self.total_epochs = int(values["total_epochs"])
        elif values.get("kind") == "event" and values.get("event") == "restart" and values.get("remaining_epochs") is not None:
            # a restart inside the run sets a new budget; a resumed run (naviewer finetune) saw no epoch of its own
            # before it, so the record's own restart epoch counts (it read "epoch 40 of 89" still; session 32)
            start = values.get("restart_epoch")
            self._restart = int(start) if isinstance(start, int) and not isinstance(start, bool) else self._done
            self.total_epochs = self._restart + int(values["remaining_epochs"])
        if values.get("kind") in ("step", "epoch") and values.get("epoch") is not None:
            self._done = max(self._done, int(values["epoch"]) + 1)
        if values.get("kind") == "event" and values.get("event") == "dift_stop" and not values.get("noop"):
            self.inner.event("log", {"message": dift_stop_text(values)})
        if values.get("kind") == "epoch" and values.get("epoch") is not None:
            rest = {k: v for k, v in values.items() if k not in ("kind", "epoch") and not k.startswith("dift_")}
            epoch = int(values["epoch"])
            if self._restart and epoch >= self._restart and self.total_epochs:
                # counted as the progress line above it counts: "epoch 78 of 89" under "epoch 39 of 50 of the retrain"
                # read as a retrain 89 epochs long (a newcomer, session 31)
                head = (f"epoch {epoch + 1 - self._restart} of {self.total_epochs - self._restart} since the restart "
                        f"(the run's {epoch + 1}):")
            else:
                head = epoch_text(epoch, self.total_epochs) + ":"
            self.inner.metric_line(head, rest, dift_epoch_text(values))

    def event(self, kind: str, data: dict[str, Any]) -> None:
        self.inner.event(kind, data)


def context(quiet: bool = False):
    """A JobContext with a text progress bar on the main process (silent on other torchrun ranks)."""
    from naviewer.cli.progress import TextProgress
    from naviewer.jobs import JobContext

    return JobContext(EpochLines(TextProgress()) if is_main_process() and not quiet else None)


def open_store(spec: str, split: str, ctx) -> Any:
    """Open a dataset source and decode it into an ImageStore (with progress)."""
    from naviewer.data import open_dataset
    from naviewer.data.store import ImageStore

    return ImageStore.from_dataset(open_dataset(spec, split=split), ctx)


def open_streaming_store(spec: str, split: str, decode_mb: float) -> Any:
    """Open a dataset source for one pass over its images: decoded a chunk of ``decode_mb`` at a time
    (:class:`naviewer.data.store.LazyImageStore`), or its own array when it holds one in memory."""
    from naviewer.data import open_dataset
    from naviewer.data.store import streaming_store

    return streaming_store(open_dataset(spec, split=split), decode_mb)
