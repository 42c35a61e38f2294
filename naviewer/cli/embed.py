"""``naviewer embed``: write an encoder's features of every sample to a .npy file."""

from __future__ import annotations

import argparse

from naviewer.cli._sslargs import add_backbone_args, add_inference_args

ORDER = 32


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "embed",
        help="extract embeddings of a dataset with a trained encoder",
        description=(
            "Run the encoder of a checkpoint (naviewer run, torchvision state dict, or a MoCo/BYOL/SimSiam/SimCLR "
            "checkpoint with the usual prefixes) over every sample and write an (N, D) .npy (row i = sample i), "
            "memory-mappable, written under a temporary name and renamed when complete. Checkpoints are loaded "
            "as plain weights only (no code)."
        ),
    )
    parser.add_argument("--checkpoint", required=True, help="checkpoint file (e.g. RUN/checkpoints/last.pt)")
    parser.add_argument("--dataset", required=True, help="dataset path or 'demo'")
    parser.add_argument("--split", default="train", choices=["train", "test"], help="split for sources that have one")
    parser.add_argument("--out", required=True, help="output .npy file")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16"], help="stored dtype (default float32)")
    add_inference_args(parser)
    add_backbone_args(parser, defaults=False)
    parser.set_defaults(func=run_embed)
    return parser


def run_embed(args: argparse.Namespace) -> int:
    import numpy as np

    from naviewer.cli._sslargs import context, encoder_from_args, open_store
    from naviewer.ssl.device import resolve_device
    from naviewer.ssl.embed import extract_embeddings

    ctx = context()
    encoder = encoder_from_args(args)
    store = open_store(args.dataset, args.split, ctx)
    size = args.image_size or encoder.image_size or None
    out = extract_embeddings(encoder.backbone, store, device=resolve_device(args.device), batch_size=args.batch_size,
                             dtype=np.dtype(args.dtype), ctx=ctx, image_size=size, out_path=args.out)
    print(f"wrote {out.shape[0]} x {out.shape[1]} {out.dtype} embeddings to {args.out}")
    return 0
