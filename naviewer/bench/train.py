"""``naviewer bench train``: SSL training throughput, naviewer's pipeline vs a per-sample PIL DataLoader.

Same method, backbone and batch in the same run, images/s (samples; each gives two views):
- **ceiling**: the model's own forward+backward+step on ready tensors (no augmentation at all);
- **naviewer**: batched per-sample augmentation from the uint8 store on the device + the step;
- **baseline**: torchvision MoCo-v2 aug+ per image on PIL images through a DataLoader + the step.
The three are timed round-robin batch by batch (median per batch), the baseline DataLoader in process
(no workers: the same CPU budget, and no background prefetch that would steal the others' CPU), so
the load swings of a shared machine hit all alike; the augmentation alone is compared the same way.
With ``--workers N`` the baseline with N DataLoader workers is also timed in alternating blocks
(workers live only during their block), against naviewer in the same blocks.
"""

from __future__ import annotations

import argparse

from naviewer.catalogue import METHOD_NAMES

from naviewer.bench._ssl_common import add_common


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser("train", help="SSL training images/s vs a per-sample torchvision DataLoader", description=__doc__)
    add_common(parser)
    parser.add_argument("--method", default="simclr", choices=list(METHOD_NAMES), help="SSL method (default simclr)")
    parser.add_argument("--rounds", type=int, default=2, help="blocks per pipeline, alternating (default 2)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from naviewer.bench._ssl_common import (
        PILTwoViews,
        backbone_spec,
        blocks,
        clock_name,
        endless,
        interleaved,
        open_store,
        torchvision_aug_plus,
    )
    from naviewer.ssl.trainer import TrainConfig, build_trainer

    spec, store = open_store(args)
    cfg = TrainConfig(method=args.method, backbone=backbone_spec(args), augment_recipe="aug+",  # the baseline's
                      batch_size=args.batch_size, image_size=args.image_size, device=args.device, epochs=1,
                      warmup_epochs=0, num_threads=args.threads)
    trainer = build_trainer(cfg, store)
    device, bs = trainer.device, args.batch_size
    rng = np.random.default_rng(0)
    model, opt = trainer.model, trainer.optimizer

    def step(v1, v2) -> None:
        with torch.autocast(device_type=device.type, dtype=trainer.amp_dtype, enabled=trainer.use_amp):
            loss = model(v1, v2)
        opt.zero_grad(set_to_none=True)
        trainer.scaler.scale(loss).backward()
        trainer.scaler.step(opt)
        trainer.scaler.update()
        trainer.method.after_step(0.5)

    def batch_indices():
        return rng.choice(len(store), bs, replace=False)

    fixed = trainer.augment.two_views(store, batch_indices(), rng, device)
    transform = torchvision_aug_plus(args.image_size, trainer.augment.settings.kernel_size)
    dataset = PILTwoViews(store, transform)

    def loader_batches(workers: int):
        loader = torch.utils.data.DataLoader(dataset, batch_size=bs, shuffle=True, drop_last=True,
                                             num_workers=workers, pin_memory=device.type == "cuda",
                                             persistent_workers=workers > 0)  # no worker start-up at each epoch
        return endless(loader)

    def base_step_maker():
        batches = loader_batches(args.workers)

        def base_step() -> None:
            v1, v2 = next(batches)
            v1, v2 = v1.to(device, non_blocking=True), v2.to(device, non_blocking=True)
            if trainer.channels_last:
                v1, v2 = (v.contiguous(memory_format=torch.channels_last) for v in (v1, v2))
            step(v1, v2)

        return base_step

    def base_aug_maker():
        batches = loader_batches(0)
        return lambda: next(batches)

    base_inproc = base_aug_maker()

    def base_inproc_step() -> None:
        v1, v2 = base_inproc()
        step(v1.to(device), v2.to(device))

    aug = interleaved({
        "ours": lambda: trainer.augment.two_views(store, batch_indices(), rng, device),
        "base": base_inproc,
    }, 3 * args.steps, device)
    t_aug, t_base_aug = aug["ours"], aug["base"]
    full = interleaved({
        "ceiling": lambda: step(*fixed),
        "ours": lambda: step(*trainer.augment.two_views(store, batch_indices(), rng, device)),
        "base": base_inproc_step,
    }, args.steps, device)
    t_ceiling, t_ours, t_base = full["ceiling"], full["ours"], full["base"]
    t_workers = None
    if args.workers > 0:
        t_workers = blocks({"base": base_step_maker, "ours": lambda: (lambda: step(
            *trainer.augment.two_views(store, batch_indices(), rng, device)))}, args.rounds, args.steps, device)

    def ips(t: float) -> float:
        return bs / t

    print(f"bench train: {args.method}, {args.arch} width {args.width}, {args.image_size}px, batch {bs}, "
          f"{len(store)} images from {spec}, device {device} ({clock_name(device)} medians), {torch.get_num_threads()} threads, "
          f"{args.workers} DataLoader workers, {args.steps} timed steps")
    print(f"  ceiling   (forward+backward on ready tensors):      {ips(t_ceiling):9.1f} images/s")
    print(f"  naviewer  (batched augment + step):                 {ips(t_ours):9.1f} images/s")
    print(f"  baseline  (PIL per-sample, in process + step):       {ips(t_base):9.1f} images/s")
    print(f"  augmentation only: naviewer {ips(t_aug):9.1f} images/s, baseline {ips(t_base_aug):9.1f} images/s")
    print(f"ratio naviewer/baseline training: {t_base / t_ours:.2f}x; naviewer/ceiling: {t_ceiling / t_ours:.2f}; "
          f"augmentation naviewer/baseline: {t_base_aug / t_aug:.2f}x")
    from naviewer.bench._ssl_common import write_figures

    write_figures(args.json_out, {
        "bench": "train", "method": args.method, "arch": args.arch, "width": args.width, "image_size": args.image_size,
        "batch_size": bs, "device": str(device), "threads": torch.get_num_threads(), "amp": bool(trainer.use_amp),
        "channels_last": bool(trainer.channels_last), "dataset": spec, "images": len(store),
        "ceiling_ips": ips(t_ceiling), "naviewer_ips": ips(t_ours), "baseline_ips": ips(t_base),
        "augment_naviewer_ips": ips(t_aug), "augment_baseline_ips": ips(t_base_aug),
        "baseline_workers_ips": None if t_workers is None else ips(t_workers["base"]),
        "naviewer_blocks_ips": None if t_workers is None else ips(t_workers["ours"]), "workers": args.workers})
    if t_workers is not None:
        print(f"  block-timed, baseline DataLoader with {args.workers} workers + step: {ips(t_workers['base']):9.1f} "
              f"images/s vs naviewer {ips(t_workers['ours']):9.1f} images/s "
              f"(ratio {t_workers['base'] / t_workers['ours']:.2f}x; noisier: blocks see different load)")
    return 0
