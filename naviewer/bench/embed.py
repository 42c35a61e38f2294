"""``naviewer bench embed``: embedding extraction throughput vs the model's forward ceiling.

- **ceiling**: forward passes (eval, no grad) on ready normalised tensors;
- **naviewer**: ``extract_embeddings`` over the whole store (uint8 buckets -> device -> resize/normalise -> forward);
- **baseline**: a per-sample PIL ``Resize + ToTensor + Normalize`` DataLoader feeding the same forward.
Whole passes over ``--images`` images are timed round-robin (median of ``--steps``), the baseline in
process (no workers) so the three share the CPU budget and the load swings alike.
"""

from __future__ import annotations

import argparse

from naviewer.bench._ssl_common import add_common


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser("embed", help="embedding extraction images/s vs the forward ceiling", description=__doc__)
    add_common(parser)
    parser.add_argument("--images", type=int, default=1024, help="images per timed pass (default 1024)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import torch

    from naviewer.bench._ssl_common import PILEval, default_dataset, interleaved, load_store
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
    n = min(len(store), args.images)
    sub = store.subset(range(n))
    x_all = torch.randn(n, 3, args.image_size, args.image_size)

    def ceiling_pass() -> None:
        for start in range(0, n, bs):
            batch = x_all[start:start + bs].to(device)
            if channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode(), torch.autocast(device_type=device.type, enabled=device.type == "cuda"):
                model(batch)

    def ours_pass() -> None:
        extract_embeddings(model, sub, batch_size=bs, image_size=args.image_size)

    def loader_pass(workers: int):
        def run_pass() -> None:
            loader = torch.utils.data.DataLoader(PILEval(sub, args.image_size), batch_size=bs, num_workers=workers,
                                                 pin_memory=device.type == "cuda")
            with torch.inference_mode():
                for batch in loader:
                    batch = batch.to(device, non_blocking=True)
                    with torch.autocast(device_type=device.type, enabled=device.type == "cuda"):
                        model(batch.contiguous(memory_format=torch.channels_last) if channels_last else batch)
        return run_pass

    times = interleaved({"ceiling": ceiling_pass, "ours": ours_pass, "base": loader_pass(0)}, args.steps, device)
    t_ceiling, t_ours, t_base = times["ceiling"], times["ours"], times["base"]

    ceiling, ours, base = n / t_ceiling, n / t_ours, n / t_base
    print(f"bench embed: {args.arch} width {args.width}, {args.image_size}px, batch {bs}, {n} images from {spec}, "
          f"device {device}, {torch.get_num_threads()} threads; whole passes timed round-robin, median of {args.steps}")
    print(f"  ceiling  (forward on ready tensors):              {ceiling:9.1f} images/s")
    print(f"  naviewer (extract_embeddings from the store):     {ours:9.1f} images/s")
    print(f"  baseline (PIL per-sample DataLoader in process):  {base:9.1f} images/s")
    print(f"ratio naviewer/ceiling: {ours / ceiling:.2f}; naviewer/baseline: {ours / base:.2f}x")
    return 0
