"""``naviewer prune CHECKPOINT``: CLP (data-free channel-Lipschitzness pruning) of an encoder, as a new checkpoint."""

from __future__ import annotations

import argparse

from naviewer.cli._sslargs import add_backbone_args

ORDER = 67


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "prune",
        help="prune an encoder checkpoint with CLP (data-free channel-Lipschitzness pruning; B2's second step)",
        description=(
            "For every Conv2d -> BatchNorm2d pair of the backbone, bound each output channel's Lipschitz "
            "constant (largest singular value of its kernel times |gamma/sigma| of its BatchNorm) and switch off "
            "the channels above mean + U*std of their layer by zeroing their BatchNorm weight and bias (Zheng et "
            "al. 2022). No data is needed. The source is never changed: a new checkpoint is written (--out, "
            "default CHECKPOINT-clp.pt beside it) with the pruning report stored under 'clp'. Works on naviewer "
            "checkpoints (everything but the backbone is kept) and on foreign ResNet weights (written as an "
            "encoder-only naviewer checkpoint). Evaluate the result with naviewer eval --checkpoint."
        ),
        epilog="example: naviewer prune WS/checkpoints/b1/last.pt --u 3 --out b2.pt",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="encoder checkpoint (naviewer or foreign ResNet weights)")
    parser.add_argument("--out", help="new checkpoint (default: CHECKPOINT-clp.pt beside it; never overwritten)")
    parser.add_argument("--u", type=float, default=3.0,
                        help="threshold in standard deviations above the layer's mean bound (default 3, CLP's)")
    parser.add_argument("--layers", action="store_true", help="print every layer, not only the pruned ones")
    add_backbone_args(parser, defaults=False)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from naviewer.cli._sslargs import backbone_from_args
    from naviewer.defense.clp import prune_checkpoint

    if args.out is not None:  # before the pruning: a folder, a file on the way or a place nothing can be written
        import os

        from naviewer.errors import NaviewerError
        from naviewer.outputs import check_output_folder

        if os.path.isdir(args.out):
            raise NaviewerError("--out is a folder: give a file name such as encoder-clp.pt", args.out)
        check_output_folder(args.out, "--out")
    out, report = prune_checkpoint(args.checkpoint, args.out, args.u, backbone=backbone_from_args(args))
    for layer in report.layers:
        if layer.pruned or args.layers:
            shown = ", ".join(str(c) for c in layer.pruned_channels[:12])
            more = f" (+{layer.pruned - 12} more)" if layer.pruned > 12 else ""
            print(f"  {layer.bn:<28} {layer.pruned:>4} of {layer.channels:<4} pruned"
                  + (f": channels {shown}{more}" if layer.pruned else ""))
    for skipped in report.skipped:
        print(f"  skipped {skipped['bn']}: {skipped['reason']}")
    print(report.summary())
    print(f"checkpoint: {out}")
    return 0
