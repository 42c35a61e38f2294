"""``naviewer bench craft``: crafting throughput per attack against plain copying of the same images.

For each attack: craft with its defaults and materialise every image of the poisoned set (a copy
each), in images/s over the crafted set; the baseline copies every clean image in the same run.
Also: writing the NA set to disk (PNG + lists) against writing the clean images as PNG, and the
live layout probability (100k view pairs) against drawing the same crop boxes alone. Best of
``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Callable

ATTACKS = ("na", "patch", "ctrl", "corruptencoder")


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser("craft", help="crafting images/s per attack vs plain copying", description=__doc__)
    parser.add_argument("--dataset", default=None, help="clean dataset (default: $NAVIEWER_CIFAR10_SUBSET, the shared CIFAR subset, else demo)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is reported")
    parser.add_argument("--no-export", action="store_true", help="skip the write-to-disk measurement")
    parser.set_defaults(func=run)
    return parser


def _default_dataset() -> str:
    env = os.environ.get("NAVIEWER_CIFAR10_SUBSET")
    if env:
        return env
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-subset"
    return str(shared) if (shared / "cifar-10-batches-py").is_dir() else "demo"


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    import numpy as np
    from PIL import Image

    from naviewer.attacks import make_attack
    from naviewer.attacks.export import export_crafted
    from naviewer.attacks.layout import na_layout_probability
    from naviewer.data.crops import sample_crop_boxes
    from naviewer.data import open_dataset

    spec = args.dataset or _default_dataset()
    clean = open_dataset(spec)
    n = len(clean)
    for i in range(n):  # warm any lazy decoding so every measurement sees the same source
        clean.image(i)
    print(f"dataset: {spec} ({n} images, {clean.kind}); best of {args.repeat}")

    def copy_all() -> None:
        for i in range(n):
            np.array(clean.image(i), copy=True)

    base_t = _best(copy_all, args.repeat)
    base_rate = n / base_t
    print(f"{'baseline: copy every clean image':44s} {base_rate:12,.0f} images/s")
    results = {}
    for name in ATTACKS:
        attack = make_attack(name)
        holder = {}

        def craft_and_read() -> None:
            result = attack.craft(clean, np.random.default_rng(0))
            for i in range(len(result.dataset)):
                np.array(result.dataset.image(i), copy=True)
            holder["result"] = result

        t = _best(craft_and_read, args.repeat)
        result = holder["result"]
        size, poisons = len(result.dataset), int(result.poison_mask.sum())
        rate = size / t
        results[name] = result
        print(
            f"{'craft ' + name + f' ({poisons} poisons)':44s} {rate:12,.0f} images/s  "
            f"= {rate / base_rate:5.2f}x copy  ({poisons / t:,.0f} poisons/s, {t * 1000:.0f} ms)"
        )

    if not args.no_export:
        tmp = Path(tempfile.mkdtemp(prefix="naviewer-bench-craft-"))
        try:
            def write_clean() -> None:
                target = tmp / "clean"
                shutil.rmtree(target, ignore_errors=True)
                target.mkdir()
                for i in range(n):
                    Image.fromarray(np.asarray(clean.image(i))).save(target / f"{i:06d}.png", compress_level=1)

            def export_na() -> None:
                shutil.rmtree(tmp / "na", ignore_errors=True)
                export_crafted(results["na"], tmp / "na")

            tw = _best(write_clean, args.repeat)
            te = _best(export_na, args.repeat)
            print(f"{'baseline: write clean images as PNG':44s} {n / tw:12,.0f} images/s")
            size = len(results["na"].dataset)
            print(f"{'export na (PNG + train.txt + ground truth)':44s} {size / te:12,.0f} images/s  = {(size / te) / (n / tw):5.2f}x PNG write")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    pairs = 100_000
    rng = np.random.default_rng(0)
    ts = _best(lambda: sample_crop_boxes(32, 64, rng, n=2 * pairs), args.repeat)
    tp = _best(lambda: na_layout_probability(32, 8, pairs=pairs), args.repeat)
    print(f"{'baseline: draw 200k crop boxes':44s} {ts * 1000:12.1f} ms")
    print(f"{'NA layout probability, 100k view pairs':44s} {tp * 1000:12.1f} ms  = {tp / ts:5.2f}x sampler alone")
    return 0
