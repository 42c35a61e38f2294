"""``naviewer train``: self-supervised training (SimCLR, MoCo v2, BYOL, SimSiam) into a run directory."""

from __future__ import annotations

import argparse

from naviewer.catalogue import METHOD_NAMES, recipes_help

from naviewer.cli._sslargs import add_backbone_args, in_distributed_session
from naviewer.io import json_loads

ORDER = 30


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "train",
        help="train an SSL encoder (SimCLR, MoCo v2, BYOL, SimSiam) on a dataset",
        description=(
            "Train a self-supervised encoder with batched GPU-side MoCo-v2 augmentation. The run directory gets "
            "metrics.jsonl (one JSON record per step/epoch/event, followable by the GUI) and checkpoints/last.pt "
            "(+ epoch_XXXX.pt). Ctrl-C checkpoints; --resume continues with the same next-step loss. Multi-GPU: "
            "launch the same command with 'torchrun --nproc_per_node=N -m naviewer train ...'."
        ),
        epilog="example: naviewer train --dataset demo --method simclr --epochs 5 --arch resnet18 --width 16 "
               "--batch-size 128 --out runs/demo",
    )
    parser.add_argument("--dataset", required=True, help="training set: a path (CIFAR folder, image folder, file list, CSV), 'demo' or 'digits' (the built-in digits: tinted 32 px / the demo's grey 16 px)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory (metrics.jsonl, checkpoints/)")
    parser.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last.pt if it exists")
    parser.add_argument("--method", default="simclr", choices=list(METHOD_NAMES), help="SSL method (default simclr)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", dest="settings",
                        help="method setting, repeatable (e.g. temperature=0.2, queue_size=65536, tau_schedule=constant)")
    add_backbone_args(parser)
    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=int, help="epochs (default 200; with --resume: the new total)")
    opt.add_argument("--batch-size", type=int, default=256, help="global batch size (default 256)")
    opt.add_argument("--lr", type=float, help="base learning rate at batch 256, scaled linearly (default: the method's: "
                     "simclr 0.5, mocov2 0.06, byol 0.05, simsiam 0.1)")
    opt.add_argument("--wd", type=float, help="weight decay (default 1e-4)")
    opt.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd", help="optimiser (default sgd, momentum 0.9)")
    opt.add_argument("--warmup-epochs", type=float, default=10.0, help="linear warm-up before the cosine (default 10, capped at half the run)")
    aug = parser.add_argument_group("augmentation")
    aug.add_argument("--image-size", type=int, default=32, help="training crop size S (default 32)")
    aug.add_argument("--min-crop-scale", type=float, default=None,
                     help="RandomResizedCrop minimum area fraction (default: the recipe's, 0.08 or 0.2)")
    aug.add_argument("--augment-recipe", metavar="NAME", help="augmentation recipe (default: the method's paper "
                     "recipe): " + recipes_help())
    aug.add_argument("--no-blur", action="store_true", help="drop the Gaussian blur (CTRL's protocol)")
    run = parser.add_argument_group("run")
    run.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    run.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    run.add_argument("--sync-bn", action="store_true", help="synchronise BatchNorm across torchrun GPUs (SyncBN)")
    run.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    run.add_argument("--threads", type=int, help="CPU threads for torch")
    run.add_argument("--checkpoint-every", type=int, default=10, help="keep epoch_XXXX.pt every N epochs (last.pt is kept every epoch)")
    run.add_argument("--knn-dataset", help="labelled clean set for the kNN monitor (its train split is the bank)")
    run.add_argument("--knn-test-dataset", help="labelled queries for the kNN monitor (its test split); default: leave-one-out on the bank")
    run.add_argument("--knn-every", type=int, default=5, help="kNN monitor every N epochs (default 5)")
    run.add_argument("--max-steps-per-epoch", type=int, help="cap steps per epoch (quick trials)")
    run.add_argument("--log-every", type=int, default=10, help="steps between step records (default 10)")
    # what --resume keeps from the run: an option given here with another value than its default is refused
    parser.set_defaults(func=in_distributed_session(_train),
                        resume_defaults={dest: parser.get_default(dest) for dest in _KEPT_ON_RESUME})
    return parser


# option dest -> (the saved TrainConfig key, or "backbone.<field>"), for the options a resumed run keeps
_KEPT_ON_RESUME = {"method": "method", "arch": "backbone.arch", "width": "backbone.width",
                   "cifar_stem": "backbone.cifar_stem", "batch_size": "batch_size", "lr": "lr", "wd": "weight_decay",
                   "optimizer": "optimizer", "warmup_epochs": "warmup_epochs", "image_size": "image_size",
                   "augment_recipe": "augment_recipe", "seed": "seed"}


def _check_resume_options(args: argparse.Namespace, last) -> dict:  # noqa: ANN001
    """Refuse options that --resume would silently ignore (the run keeps its method, encoder and recipe);
    returns the loaded checkpoint, which the resume then reuses.

    Why: ``naviewer train --resume --method mocov2`` went on training SimCLR and said nothing."""
    from naviewer.errors import NaviewerError
    from naviewer.ssl.checkpoints import load_training_checkpoint

    state = load_training_checkpoint(last)
    saved = dict(state.get("config") or {})
    backbone = dict((state.get("method") or {}).get("backbone") or saved.get("backbone") or {})
    defaults = getattr(args, "resume_defaults", {})
    words = getattr(args, "given_words", None)
    typed = None if words is None else {str(w).split("=", 1)[0] for w in words if str(w).startswith("--")}
    differ = []
    for dest, key in _KEPT_ON_RESUME.items():
        given = getattr(args, dest, None)
        flag = "--" + dest.replace("_", "-")
        if typed is not None and flag not in typed and not (dest == "cifar_stem" and "--no-cifar-stem" in typed):
            continue  # not typed: nothing to ignore ("--arch resnet18", the default, on a resnet10 run was dropped)
        if typed is None and dest in defaults and given == defaults[dest]:
            continue  # not given (or given as its default): nothing to ignore
        was = backbone.get(key.split(".", 1)[1]) if key.startswith("backbone.") else saved.get(key)
        if given is not None and given != was:
            differ.append(f"--{dest.replace('_', '-')} {given} (the run: {'the default' if was is None else was})")
    if args.settings:
        differ.append("--set " + " ".join(args.settings) + " (the run keeps its method settings)")
    if args.min_crop_scale is not None or args.no_blur:
        differ.append("--min-crop-scale/--no-blur (the run keeps its augmentation)")
    if differ:
        raise NaviewerError("--resume continues the run with its own settings; these options differ from it and "
                            "would be ignored: " + "; ".join(differ) + ". Drop them, or train into a new --out", last)
    return state


def _train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from naviewer.cli._sslargs import context, is_main_process
    from naviewer.errors import NaviewerError

    ctx = context()
    run_dir = Path(args.out)
    last = run_dir / "checkpoints" / "last.pt"
    if last.exists() and not args.resume:
        raise NaviewerError("this run directory already holds a checkpoint: add --resume, or choose a new --out", run_dir)
    made = [folder for folder in (run_dir, run_dir / "checkpoints") if not folder.exists()]
    if is_main_process():
        _check_run_folder(run_dir)
        _refuse_out_inside_dataset(run_dir, args.dataset)
        _check_writable(run_dir)  # before minutes of loading: a read-only or file --out fails at once
    import contextlib

    try:
        return _train_in(args, ctx, run_dir, last)
    except BaseException:
        for folder in reversed(made):  # a failed start (a bad --set, an unreadable dataset) left an empty OUT/checkpoints
            with contextlib.suppress(OSError):
                if folder == run_dir and not (run_dir / "checkpoints" / "last.pt").exists():
                    (run_dir / TRAIN_LOCK).unlink(missing_ok=True)
                    (run_dir / DATA_RECORD).unlink(missing_ok=True)
                folder.rmdir()  # only when still empty
        raise


#: what a run trained on: the --dataset it was given and a fingerprint of its images, checked by --resume
DATA_RECORD = "train_data.json"


def _fingerprint(store) -> str:  # noqa: ANN001 - an ImageStore
    """The labels and 64 evenly spaced images of ``store``, hashed: another set of the same size differs here."""
    import hashlib

    import numpy as np

    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.asarray(store.labels, dtype=np.int64).tobytes())
    n = len(store)
    for i in sorted({int(x) for x in np.linspace(0, n - 1, num=min(n, 64))} if n else set()):
        digest.update(np.ascontiguousarray(store.image(i)).tobytes())
    return digest.hexdigest()


def _same_data_as_before(run_dir, store, dataset: str, resuming: bool) -> None:  # noqa: ANN001
    """A new run records what it trains on; a resumed one is refused on other data (``--resume --dataset
    crafted/train.txt``, a poisoned set of the same size, went on training on it without a word; a sweep)."""
    import json

    from naviewer.errors import NaviewerError
    from naviewer.io import atomic_write_json

    path = run_dir / DATA_RECORD
    now = {"dataset": str(dataset), "samples": len(store), "fingerprint": _fingerprint(store)}
    if resuming and path.is_file():
        try:
            before = json_loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            before = None
        if not isinstance(before, dict) or not isinstance(before.get("fingerprint"), str):
            # a damaged record turned the check off: the run resumed on other images, rc 0 (a bad-input probe,
            # session 32); it says so and how to go on without the check
            raise NaviewerError("the run's record of the data it began on is damaged, so --resume cannot check that "
                                f"--dataset {dataset} is that data: delete this file to resume without the check (the "
                                "data given now is recorded), or train into a new --out", path)
        if before.get("fingerprint") != now["fingerprint"]:
            raise NaviewerError(f"--resume goes on with the data the run began on ({before.get('dataset')}, "
                                f"{before.get('samples')} samples); --dataset {dataset} holds other images: give the "
                                "run's own dataset, or train into a new --out", path)
        return
    if resuming:  # a run from before the record, or one whose record was deleted: said, then recorded
        import warnings

        from naviewer.errors import WorkspaceWarning

        warnings.warn(f"{path}: no record of the data this run began on; --resume cannot check that --dataset "
                      f"{dataset} is that data, and records it now", WorkspaceWarning, stacklevel=2)
    atomic_write_json(path, now)


#: held in --out while a training writes there: two ``train --out R`` at once wrote one metrics.jsonl interleaved
#: (epochs 0 1 0 2 1 3 ...) and both saved checkpoints/last.pt, each having seen no checkpoint at its start (a sweep)
TRAIN_LOCK = ".naviewer-train.lock"


def _out_lock(run_dir):  # noqa: ANN001, ANN202
    from naviewer.io import held_alone

    return held_alone(run_dir / TRAIN_LOCK, "another process is training into this folder now: wait for it, or "
                      "choose another --out", where=run_dir)


def _train_in(args: argparse.Namespace, ctx, run_dir, last) -> int:  # noqa: ANN001
    from naviewer.cli._sslargs import is_main_process, open_store
    from naviewer.errors import NaviewerError
    from naviewer.ssl.methods import build_method

    if args.knn_test_dataset and not args.knn_dataset:  # ignored without a word, rc 0 (a bad-input probe, session 32)
        raise NaviewerError("--knn-test-dataset holds the kNN monitor's queries; it needs --knn-dataset, the labelled "
                            "bank they are compared with")
    resuming = args.resume and last.exists()
    if resuming:
        state = _check_resume_options(args, last)
        done = int(state.get("completed_epochs", 0) or 0)
        total = int(args.epochs or state.get("total_epochs") or (state.get("config") or {}).get("epochs") or 0)
        if done >= total:  # it trained nothing, said "done", and rewrote last.pt (a sweep)
            raise NaviewerError(f"the run has {done} epochs done already, {'as many as' if done == total else 'more than'} "
                                f"{'--epochs' if args.epochs else 'it was started for'} ({total}): nothing to resume; "
                                f"--epochs N above {done} trains it longer", last)
    else:
        config = _new_config(args)
        # the method and its settings are checked before the images are decoded: a typo in --set used to
        # cost the whole dataset's decode first
        build_method(config.method, backbone=config.backbone, **config.method_settings)
    store = open_store(args.dataset, "train", ctx)
    batch = int((state or {}).get("config", {}).get("batch_size") or 0) if resuming else int(config.batch_size)
    if 0 < len(store) < batch:  # said by the trainer too, without the dataset's name (a sweep)
        raise NaviewerError(f"the dataset ({len(store):,} images) is smaller than one batch of {batch:,}: lower "
                            "--batch-size", args.dataset)
    extra = {}
    if args.knn_dataset:
        extra["eval_store"] = open_store(args.knn_dataset, "train", ctx)
        if args.knn_test_dataset:
            from naviewer.data.names import check_class_numbering

            extra["eval_test_store"] = open_store(args.knn_test_dataset, "test", ctx)
            check_class_numbering(extra["eval_test_store"].class_names, extra["eval_store"].class_names,
                                  "kNN test set", "kNN bank (--knn-dataset)", args.knn_test_dataset)
    import contextlib

    # taken once the options and the data are checked (a refused resume leaves nothing behind), held to the end
    with _out_lock(run_dir) if is_main_process() else contextlib.nullcontext():
        return _fit(args, ctx, run_dir, last, resuming, store, extra, state if resuming else None,
                    None if resuming else config)


def _fit(args, ctx, run_dir, last, resuming, store, extra, state, config) -> int:  # noqa: ANN001
    from naviewer.cli._sslargs import is_main_process
    from naviewer.ssl.trainer import Trainer, build_trainer

    if last.exists() and not resuming:  # another process trained into it while this one loaded the images
        from naviewer.errors import NaviewerError

        raise NaviewerError("this run directory already holds a checkpoint: add --resume, or choose a new --out", run_dir)
    if is_main_process():
        _same_data_as_before(run_dir, store, args.dataset, resuming)
    if resuming:
        overrides = {"device": args.device}
        if args.threads:
            overrides["num_threads"] = args.threads
        if args.epochs:
            overrides["epochs"] = args.epochs
        trainer = Trainer.resume(run_dir, store, config_overrides=overrides, state=state, **extra)
        if is_main_process():
            print(f"resuming {run_dir} at epoch {trainer.completed_epochs + 1}, step {trainer.global_step}")
    else:
        trainer = build_trainer(config, store, run_dir, **extra)
    if is_main_process():
        print(f"training {trainer.method.name} ({trainer.method.backbone_config.arch}, width "
              f"{trainer.method.backbone_config.width}) on {len(store)} images, {trainer.steps_per_epoch} steps/epoch, "
              f"device {trainer.device}, world size {trainer.dist.world_size}")
    result = trainer.fit(ctx, resume=False)
    if is_main_process():
        print(f"done: {result['epochs']} epochs, {result['global_step']} steps, last loss {result['loss']:.4f}; "
              f"checkpoint {last}")
    return 0


def _new_config(args: argparse.Namespace):  # noqa: ANN202 - TrainConfig, imported late
    """The TrainConfig of a new run from the command line."""
    from naviewer.cli._sslargs import backbone_from_args, parse_settings
    from naviewer.ssl.trainer import TrainConfig

    augment = {} if args.min_crop_scale is None else {"scale": (args.min_crop_scale, 1.0)}
    if args.no_blur:
        augment["blur_p"] = 0.0
    return TrainConfig(
        method=args.method, method_settings=parse_settings(args.settings), backbone=backbone_from_args(args),
        epochs=args.epochs or 200, batch_size=args.batch_size, lr=args.lr, weight_decay=args.wd,
        optimizer=args.optimizer, warmup_epochs=args.warmup_epochs, image_size=args.image_size, augment=augment,
        augment_recipe=args.augment_recipe or "",
        device=args.device, amp=not args.no_amp, sync_bn=args.sync_bn, seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        knn_every=args.knn_every, log_every=args.log_every, num_threads=args.threads,
        max_steps_per_epoch=args.max_steps_per_epoch,
    )


#: what a training writes into --out: a folder holding only these (or any of them) is an earlier run
RUN_ENTRIES = ("checkpoints", "metrics.jsonl", DATA_RECORD, TRAIN_LOCK)


def _check_run_folder(run_dir) -> None:  # noqa: ANN001
    """--out is a new or empty folder, or an earlier run's: a training writes checkpoints/, metrics.jsonl and
    train_data.json into it. ``train --out DATASET`` exited 0 and its checkpoints/ became a class of that image
    folder, shifting every label a workspace had registered; ``--out WORKSPACE`` wrote into the workspace's root
    (a bad-input sweep, session 21)."""
    from naviewer.errors import NaviewerError

    if not run_dir.is_dir():
        return
    if (run_dir / "workspace.toml").exists():
        raise NaviewerError("--out is a workspace folder: a training writes checkpoints/ and metrics.jsonl into it. "
                            "Train a workspace with naviewer run WS, or give a new folder", run_dir)
    entries = [entry.name for entry in run_dir.iterdir()]
    if any(name in RUN_ENTRIES for name in entries):
        return  # an earlier run (resumed, or refused below for its checkpoint)
    others = sorted(name for name in entries if not name.startswith("."))
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3:,} more" if len(others) > 3 else "")
        raise NaviewerError(f"--out holds other files ({shown}): a training writes checkpoints/ and metrics.jsonl "
                            "into it (in a dataset folder checkpoints/ would become a class). Give a new or empty "
                            "folder", run_dir)


def _refuse_out_inside_dataset(run_dir, dataset) -> None:  # noqa: ANN001
    """--out inside the dataset's folder (a class folder's sub-folder) would put checkpoints and metrics among its
    images: read again, the dataset changes (``--out g/cat/run`` was accepted; ``naviewer new`` refuses it)."""
    from naviewer.data.sources import inside_dataset_folder
    from naviewer.errors import NaviewerError

    if inside_dataset_folder(run_dir, dataset):
        raise NaviewerError("--out is inside the dataset's folder: its checkpoints and metrics would become part of "
                            "the dataset. Put the run beside the dataset", run_dir)


def _check_writable(run_dir) -> None:  # noqa: ANN001
    """Create RUN_DIR/checkpoints/ (kept) and prove a file can be written there; a NaviewerError otherwise."""
    import os
    import tempfile

    from naviewer.errors import NaviewerError
    from naviewer.io import describe_os_error

    folder = run_dir / "checkpoints"
    if run_dir.exists() and not run_dir.is_dir():
        raise NaviewerError("--out exists and is a file, not a folder", run_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise NaviewerError(f"cannot write the run directory: {describe_os_error(exc)}", run_dir) from None
