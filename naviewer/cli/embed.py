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
    parser.add_argument("--dataset", required=True, help="dataset path, 'demo' or 'digits' (the built-in digits: tinted 32 px / the demo's grey 16 px)")
    parser.add_argument("--split", default="train", choices=["train", "test"], help="split for sources that have one")
    parser.add_argument("--out", required=True, help="output .npy file (an existing one is replaced only when it is an "
                        "earlier embedding of the same shape that naviewer embed wrote: OUT.source.json beside it "
                        "records the encoder and dataset)")
    parser.add_argument("--dtype", default=None, choices=["float32", "float16"],
                        help="stored dtype (default float32; float16 with --shard-size or under torchrun)")
    parser.add_argument("--shard-size", type=int, default=None, metavar="ROWS",
                        help="extract in shards of ROWS samples, resumable (run the same command again after a stop); "
                             "under torchrun (e.g. torchrun --nproc_per_node 4 -m naviewer embed ...) every process "
                             "takes its own shards, one GPU each, and writes into the same memory-mapped file "
                             "(default with torchrun: 65536)")
    parser.add_argument("--decode-mb", type=float, default=512, metavar="MB",
                        help="decoded images held at once (default 512): images are decoded a chunk at a time, so "
                             "memory is bounded by this, not by the dataset's size (an in-memory source such as "
                             "CIFAR or the demo is read as it is)")
    add_inference_args(parser)
    add_backbone_args(parser, defaults=False)
    parser.set_defaults(func=run_embed)
    return parser


def run_embed(args: argparse.Namespace) -> int:
    import numpy as np

    from naviewer.cli._sslargs import context, encoder_from_args, open_streaming_store
    from naviewer.ssl.device import resolve_device
    from naviewer.ssl.embed import extract_embeddings

    ctx = context()
    _check_out(args.out)  # before the encoder runs: a read-only, missing or folder --out fails at once
    from naviewer.ssl.distributed import env_world_size

    sharded = args.shard_size is not None or env_world_size() > 1
    if args.shard_size is not None and args.shard_size < 1:
        from naviewer.errors import NaviewerError

        raise NaviewerError(f"--shard-size must be >= 1, got {args.shard_size}")
    if not args.decode_mb > 0:  # NaN too
        from naviewer.errors import NaviewerError

        raise NaviewerError(f"--decode-mb must be > 0, got {args.decode_mb}")
    from naviewer.data.sources import has_split

    if not has_split(args.dataset, args.split):
        from naviewer.errors import NaviewerError

        raise NaviewerError(f"--split {args.split}: this source has no {args.split} split of its own (only a "
                            "CIFAR folder, the demo, a folder of train/test folders or a crafted set's "
                            f"{args.split}.txt have one); embed it without --split", args.dataset)
    dtype = np.dtype(args.dtype or ("float16" if sharded else "float32"))
    if sharded:
        return _run_sharded(args, dtype, ctx)
    encoder = encoder_from_args(args)
    store = open_streaming_store(args.dataset, args.split, args.decode_mb)
    _check_replaced(args.out, (len(store), int(encoder.config.feature_dim)))
    _check_space(args.out, len(store) * encoder.config.feature_dim * dtype.itemsize)
    size = args.image_size or encoder.image_size or None
    args.dtype = dtype.name
    from pathlib import Path

    from naviewer.ssl.sharded import record_source

    out = extract_embeddings(encoder.backbone, store, device=resolve_device(args.device), batch_size=args.batch_size,
                             dtype=np.dtype(args.dtype), ctx=ctx, image_size=size, out_path=args.out)
    record_source(Path(args.out), encoder.backbone, store.labels, rows=out.shape[0], dim=out.shape[1], dtype=out.dtype,
                  image_size=size)
    print(f"wrote {out.shape[0]} x {out.shape[1]} {out.dtype} embeddings to {args.out}")
    return 0


def _run_sharded(args: argparse.Namespace, dtype, ctx) -> int:
    """Shards of --shard-size rows; under torchrun each rank its own (its GPU: cuda:LOCAL_RANK)."""
    import os
    from pathlib import Path

    from naviewer.cli._sslargs import encoder_from_args, open_streaming_store
    from naviewer.ssl.device import resolve_device
    from naviewer.ssl.distributed import distributed_session, init_distributed
    from naviewer.ssl.sharded import partial_path, sharded_embeddings

    device = resolve_device(args.device)
    if device.type == "cuda" and os.environ.get("LOCAL_RANK") is not None and args.device in ("auto", "cuda"):
        import torch

        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    info = init_distributed(device.type)
    with distributed_session():
        encoder = encoder_from_args(args)
        store = open_streaming_store(args.dataset, args.split, args.decode_mb)
        if info.is_main and not partial_path(Path(args.out)).is_file():
            _check_replaced(args.out, (len(store), int(encoder.config.feature_dim)))
            _check_space(args.out, len(store) * encoder.config.feature_dim * dtype.itemsize)
        size = args.image_size or encoder.image_size or None
        out = sharded_embeddings(encoder.backbone, store, args.out, shard_size=args.shard_size or 65536, dtype=dtype,
                                 device=device, batch_size=args.batch_size, image_size=size, ctx=ctx)
    if info.is_main:
        print(f"wrote {out.shape[0]} x {out.shape[1]} {out.dtype} embeddings to {args.out} "
              f"({info.world_size} process{'es' if info.world_size > 1 else ''})")
    return 0


def _check_replaced(out: str, shape: tuple[int, int]) -> None:
    """An existing --out .npy is replaced only when it is an array of this run's shape (N samples x D features, an
    earlier embedding of the same set and encoder): ``embed --out mine.npy`` replaced someone's own array (a sweep,
    session 21). Read from the header only."""
    from pathlib import Path

    import numpy as np

    from naviewer.errors import NaviewerError

    path = Path(out)
    if not path.is_file():
        return
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)
            found = tuple(read(handle)[0])
    except (OSError, ValueError) as exc:
        raise NaviewerError(f"--out exists and is not a NumPy array file ({exc}): naviewer replaces only an earlier "
                            "embedding of the same shape; choose another file name", path) from None
    if found != tuple(shape):
        raise NaviewerError(f"--out exists and holds a {' x '.join(map(str, found)) or 'scalar'} array, not this "
                            f"encoder's {shape[0]:,} x {shape[1]} embeddings of this dataset: naviewer replaces only "
                            "an earlier embedding of the same shape; choose another file name", path)
    import os

    from naviewer.ssl.sharded import read_source_record, source_path

    import stat

    # its mode, not os.access (which says yes to root): replaced by a rename, it came back writable (a probe, session 29)
    if not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise NaviewerError("--out exists and is read-only: naviewer does not replace a file you protected; choose "
                            "another file name, or make it writable", path)
    # its record must be this very file's (size and time): a garbage or stale record vouched for a user's array
    if read_source_record(path) is None:  # a same-shape array of the user's own (a read-through, session 28)
        raise NaviewerError(f"--out exists and holds a {shape[0]:,} x {shape[1]} array that naviewer embed did not "
                            f"write (no {source_path(path).name} beside it): naviewer replaces only its own earlier "
                            "embedding; choose another file name, or delete this one to write it here", path)


def _check_out(out: str) -> None:
    """--out must be a file name in a folder this process can write."""
    from pathlib import Path

    from naviewer.errors import NaviewerError

    path = Path(out)
    if path.is_dir():
        raise NaviewerError("--out is a folder; give a file name such as embeddings.npy", path)
    if path.exists() and path.suffix.lower() != ".npy":  # an earlier .npy is replaced; any other file never
        raise NaviewerError("--out exists and is not a .npy file: embeddings are written to a .npy, never over "
                            "another kind of file", path)
    if path.suffix.lower() != ".npy":  # e.txt held a binary array that detect --embeddings e.txt then refused
        raise NaviewerError(f"--out must end in .npy (the embeddings are a NumPy array file): give a name such as "
                            f"{path.with_suffix('.npy').name}", path)
    folder = path.parent
    if not folder.is_dir():
        raise NaviewerError("the folder of --out does not exist" if not folder.exists() else
                            "the folder of --out is a file, not a folder", folder)
    from naviewer.outputs import check_can_create_in

    check_can_create_in(folder, "--out", where=path)


def _check_space(out: str, needed: int) -> None:
    """Refuse before computing when the array cannot fit: it is written through a memory map, and a memory
    map on a full disk ends the process with SIGBUS instead of an error. Stale temporaries go first."""
    import shutil
    from pathlib import Path

    from naviewer.errors import NaviewerError
    from naviewer.ssl.checkpoints import cleanup_checkpoint_temps

    folder = Path(out).parent
    cleanup_checkpoint_temps(folder)  # `.<name>.<pid>.tmp` of an embed that was killed
    free = shutil.disk_usage(folder).free
    margin = 1 << 20
    if free < needed + margin:
        from naviewer.io import byte_size

        raise NaviewerError(f"not enough free space for the embeddings: they need {byte_size(needed)} and "
                            f"{byte_size(margin)} to spare, the disk has {byte_size(free)} free", Path(out))
