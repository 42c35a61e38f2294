"""``naviewer bench embed``: embedding extraction throughput vs the model's forward ceiling.

- **ceiling**: forward passes (eval, no grad) on ready normalised tensors;
- **naviewer**: ``extract_embeddings`` over the whole store (uint8 buckets -> device -> resize/normalise -> forward);
- **baseline**: a per-sample PIL ``Resize + ToTensor + Normalize`` DataLoader feeding the same forward.
Batches of the first ``--images`` images are timed round-robin (one batch of each pipeline per round,
medians), the baseline DataLoader in process (no workers), so the three share the CPU budget and the
load swings of a shared machine alike. naviewer's figure includes one ``extract_embeddings`` call per batch.
"""

from __future__ import annotations

import argparse

from naviewer.bench._ssl_common import add_common


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser("embed", help="embedding extraction images/s vs the forward ceiling", description=__doc__)
    add_common(parser)
    parser.add_argument("--images", type=int, default=1024, help="images cycled through (default 1024)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import itertools

    import torch

    from naviewer.bench._ssl_common import PILEval, backbone_spec, clock_name, endless, interleaved, open_store
    from naviewer.ssl.backbones import build_backbone
    from naviewer.ssl.device import resolve_device
    from naviewer.ssl.embed import extract_embeddings

    spec, store = open_store(args)
    device = resolve_device(args.device)
    model = build_backbone(backbone_spec(args)).to(device)
    model.eval()
    channels_last = device.type == "cuda"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    bs = args.batch_size
    n = min(len(store), args.images)
    if bs > n:  # no whole batch to time: the round-robin ran out of chunks (a StopIteration traceback)
        from naviewer.errors import NaviewerError

        raise NaviewerError(f"--batch-size {bs} is more than the {n:,} images timed (--images {args.images}, "
                            f"the dataset has {len(store):,}): lower --batch-size or give more images")
    chunks = [store.subset(range(start, min(start + bs, n))) for start in range(0, n - bs + 1, bs)]
    x = torch.randn(bs, 3, args.image_size, args.image_size)
    loader = torch.utils.data.DataLoader(PILEval(store.subset(range(n)), args.image_size), batch_size=bs,
                                         drop_last=True, pin_memory=device.type == "cuda")
    batches = endless(loader)  # each batch decoded afresh, not the first pass replayed
    chunk_iter = itertools.cycle(chunks)

    def forward(batch: torch.Tensor) -> None:
        batch = batch.to(device, non_blocking=True)
        if channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast(device_type=device.type, enabled=device.type == "cuda"):
            model(batch)

    times = interleaved({
        "ceiling": lambda: forward(x),
        "ours": lambda: extract_embeddings(model, next(chunk_iter), batch_size=bs, image_size=args.image_size),
        "base": lambda: forward(next(batches)),
    }, args.steps * len(chunks), device)
    t_ceiling, t_ours, t_base = (times[k] / bs for k in ("ceiling", "ours", "base"))

    ceiling, ours, base = 1 / t_ceiling, 1 / t_ours, 1 / t_base
    print(f"bench embed: {args.arch} width {args.width}, {args.image_size}px, batch {bs}, {n} images from {spec}, "
          f"device {device} ({clock_name(device)} medians), {torch.get_num_threads()} threads; batches timed round-robin, median of {args.steps * len(chunks)}")
    print(f"  ceiling  (forward on ready tensors):              {ceiling:9.1f} images/s")
    print(f"  naviewer (extract_embeddings from the store):     {ours:9.1f} images/s")
    print(f"  baseline (PIL per-sample DataLoader in process):  {base:9.1f} images/s")
    print(f"ratio naviewer/ceiling: {ours / ceiling:.2f}; naviewer/baseline: {ours / base:.2f}x")
    from naviewer.bench._ssl_common import write_figures

    write_figures(args.json_out, {"bench": "embed", "arch": args.arch, "width": args.width, "image_size": args.image_size,
                                  "batch_size": bs, "device": str(device), "threads": torch.get_num_threads(),
                                  "dataset": spec, "images": n, "ceiling_ips": ceiling, "naviewer_ips": ours,
                                  "baseline_ips": base})
    return 0
