"""``naviewer bench embed``: embedding extraction throughput vs the model's forward ceiling.

- **ceiling**: forward passes (eval, no grad) on ready normalised tensors;
- **naviewer**: ``extract_embeddings`` over the whole store (uint8 buckets -> device -> resize/normalise -> forward);
- **baseline**: a per-sample PIL ``Resize + ToTensor + Normalize`` DataLoader feeding the same forward.
"""

from __future__ import annotations

import argparse

from naviewer.bench._ssl_common import add_common


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser("embed", help="embedding extraction images/s vs the forward ceiling", description=__doc__)
    add_common(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import time

    import torch

    from naviewer.bench._ssl_common import PILEval, default_dataset, load_store, timed
    from naviewer.ssl.backbones import build_backbone
    from naviewer.ssl.device import resolve_device
    from naviewer.ssl.embed import extract_embeddings

    if args.threads:
        torch.set_num_threads(args.threads)
    spec = args.dataset or default_dataset()
    store = load_store(spec)
    device = resolve_device(args.device)
    model = build_backbone({"arch": args.arch, "width": args.width, "cifar_stem": not args.no_cifar_stem}).to(device)
    model.eval()
    channels_last = device.type == "cuda"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    bs = args.batch_size
    x = torch.randn(bs, 3, args.image_size, args.image_size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def forward() -> None:
        with torch.inference_mode(), torch.autocast(device_type=device.type, enabled=device.type == "cuda"):
            model(x)

    t_ceiling = timed(forward, args.steps, device)
    extract_embeddings(model, store.subset(range(min(len(store), bs))), batch_size=bs, image_size=args.image_size)
    start = time.perf_counter()
    extract_embeddings(model, store, batch_size=bs, image_size=args.image_size)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t_ours = time.perf_counter() - start

    loader = torch.utils.data.DataLoader(PILEval(store, args.image_size), batch_size=bs, num_workers=args.workers,
                                         pin_memory=device.type == "cuda")
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in loader:
            batch = batch.to(device, non_blocking=True)
            with torch.autocast(device_type=device.type, enabled=device.type == "cuda"):
                model(batch.contiguous(memory_format=torch.channels_last) if channels_last else batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t_base = time.perf_counter() - start

    n = len(store)
    ceiling = bs / t_ceiling
    ours, base = n / t_ours, n / t_base
    print(f"bench embed: {args.arch} width {args.width}, {args.image_size}px, batch {bs}, {n} images from {spec}, "
          f"device {device}, {torch.get_num_threads()} threads, {args.workers} DataLoader workers")
    print(f"  ceiling  (forward on ready tensors):        {ceiling:9.1f} images/s")
    print(f"  naviewer (extract_embeddings, whole store): {ours:9.1f} images/s")
    print(f"  baseline (PIL per-sample DataLoader + fwd): {base:9.1f} images/s")
    print(f"ratio naviewer/ceiling: {ours / ceiling:.2f}; naviewer/baseline: {ours / base:.2f}x")
    return 0
