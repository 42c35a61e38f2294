"""Shared pieces of the training/embedding benchmarks (not a benchmark itself)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator


def default_dataset() -> str:
    env = os.environ.get("NAVIEWER_CIFAR10_SUBSET")
    if env:
        return env
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-subset"
    return str(shared) if (shared / "cifar-10-batches-py").is_dir() else "demo"


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default=None, help="dataset (default: $NAVIEWER_CIFAR10_SUBSET, the shared CIFAR subset, else demo)")
    parser.add_argument("--arch", default="resnet18", choices=["resnet10", "resnet18", "resnet34", "resnet50"], help="backbone (default resnet18)")
    parser.add_argument("--width", type=int, default=16, help="backbone width (default 16: a CPU-sized ResNet; 64 on a GPU)")
    parser.add_argument("--no-cifar-stem", action="store_true", help="use the ImageNet stem")
    parser.add_argument("--image-size", type=int, default=32, help="network input size (default 32)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default 128)")
    parser.add_argument("--steps", type=int, default=5, help="timed batches per measurement (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the per-sample baseline (default 2)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the figures to this JSON file")


def write_figures(path: "str | None", figures: dict) -> None:
    """``--json``: the bench's figures as one JSON object (what tools/gpu_check.py collects)."""
    if path:
        import json

        from naviewer.outputs import stamp

        Path(path).write_text(json.dumps(stamp(figures, "bench"), indent=2, default=str) + "\n", encoding="utf-8")


def load_store(spec: str):
    from naviewer.data import open_dataset
    from naviewer.data.store import ImageStore

    return ImageStore.from_dataset(open_dataset(spec))


def open_store(args: argparse.Namespace) -> tuple[str, Any]:
    """(dataset spec, ImageStore) for a bench run: applies ``--threads`` first, then loads ``--dataset``
    (or :func:`default_dataset`), the opening every SSL bench shares."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    spec = args.dataset or default_dataset()
    return spec, load_store(spec)


def backbone_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The backbone settings from :func:`add_common`'s ``--arch``, ``--width`` and ``--no-cifar-stem``."""
    return {"arch": args.arch, "width": args.width, "cifar_stem": not args.no_cifar_stem}


def clock_name(device) -> str:
    """Which clock :func:`interleaved` used on ``device``, for the report line."""
    return "CPU-time" if device.type == "cpu" else "wall-clock"


def _sync(device) -> None:
    """Wait for queued GPU work, so that a timer measures it (nothing to wait for on the CPU)."""
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def endless(loader: Iterable[Any]) -> Iterator[Any]:
    """The loader's batches forever, each one loaded afresh.

    ``itertools.cycle`` keeps the first pass and replays it: past one epoch of a small dataset a
    DataLoader baseline then timed no loading at all (seen on a GPU: "PIL augmentation" at 67M
    images/s and a training baseline at the model's ceiling)."""
    while True:
        yield from loader


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int, device) -> dict[str, float]:
    """Median seconds per call of each function, timed round-robin (one call of each per round, after
    one warm-up call each), so that the load swings of a shared machine hit all of them alike.

    On the CPU the clock is this process's CPU time (all threads), which other jobs on a shared
    machine disturb far less than wall time; on a GPU it is wall time (the device is the cost).
    """
    import statistics

    clock = time.perf_counter if device.type != "cpu" else time.process_time

    for fn in fns.values():
        fn()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(max(1, rounds)):
        for name, fn in fns.items():
            start = clock()
            fn()
            _sync(device)
            times[name].append(clock() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def blocks(makers: dict[str, Callable[[], Callable[[], Any]]], rounds: int, steps: int, device) -> dict[str, float]:
    """Median seconds per call of each pipeline, timed in blocks: per round and pipeline, ``maker()``
    builds a fresh callable (e.g. a DataLoader iterator whose workers start now and stop after the
    block, so that they never steal the CPU from another pipeline's block), one warm-up call, then
    ``steps`` timed calls. Rounds alternate the pipelines so slow load swings hit all of them."""
    import statistics

    times: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(max(1, rounds)):
        for name, maker in makers.items():
            fn = maker()
            fn()
            _sync(device)
            for _ in range(max(1, steps)):
                start = time.perf_counter()
                fn()
                _sync(device)
                times[name].append(time.perf_counter() - start)
            del fn
    return {name: statistics.median(values) for name, values in times.items()}


def torchvision_aug_plus(size: int, kernel: int):
    """The per-sample PIL pipeline of the research toolboxes (MoCo-v2 aug+), for the baseline."""
    from torchvision import transforms as T

    from naviewer.ssl.augment import CIFAR_MEAN, CIFAR_STD

    return T.Compose([
        T.RandomResizedCrop(size, scale=(0.2, 1.0)),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([T.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=0.5),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize(CIFAR_MEAN, CIFAR_STD),
    ])


class PILTwoViews:
    """torch Dataset: a store's images as PIL, two independently augmented views each."""

    def __init__(self, store, transform) -> None:
        self.store = store
        self.transform = transform

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, index: int):
        from PIL import Image

        image = Image.fromarray(self.store.image(index))
        return self.transform(image), self.transform(image)


class PILEval:
    """torch Dataset: Resize((S, S)) + ToTensor + Normalize per image (the toolbox eval transform)."""

    def __init__(self, store, size: int) -> None:
        from torchvision import transforms as T

        from naviewer.ssl.augment import CIFAR_MEAN, CIFAR_STD

        self.store = store
        self.transform = T.Compose([T.Resize((size, size)), T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)])

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, index: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.store.image(index)))
