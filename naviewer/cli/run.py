"""``naviewer run WORKSPACE --dift [--accept-all]``: SSL training on a workspace with DIFT in the loop."""

from __future__ import annotations

import argparse

from naviewer.catalogue import METHOD_NAMES, recipes_help
from naviewer.workflows.anchor_sources import ANCHOR_SPEC_HELP
from naviewer.cli._sslargs import add_backbone_args, in_distributed_session

ORDER = 31


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "run",
        help="train an SSL encoder on a workspace, with DIFT detection, review gate, fine-tuning and restart",
        description=(
            "Train on the workspace's dataset into WORKSPACE/runs/RUN (metrics.jsonl, followable by the GUI) and "
            "WORKSPACE/checkpoints/RUN. With --dift, from the detection start epoch on every epoch's embeddings go "
            "through DIFT until the flag buffer is stable; the flags are saved as a detection pass. With "
            "--accept-all they are confirmed at once; otherwise the run checkpoints and stops so that you can "
            "review them (naviewer review WORKSPACE, or the GUI) and resume with 'naviewer finetune WORKSPACE', "
            "which fine-tunes the encoder on the CONFIRMED samples (Eq. 7), removes them and finishes training "
            "from the initial learning rate over the remaining epochs. kNN accuracy and ASR (when the workspace "
            "was crafted with an attack) are monitored every --knn-every epochs."
        ),
        epilog="examples: naviewer run ws --dift (the paper's recipe, for a GPU); on a CPU, the demo's: naviewer run ws "
               "--dift --arch resnet10 --width 16 --batch-size 128 --epochs 50 --augment-recipe aug+ --warmup-epochs 2",
    )
    parser.add_argument("workspace", metavar="WORKSPACE")
    parser.add_argument("--run", "--run-name", dest="run", default=None, help="run name (default: dift, or train without --dift); spell it --run-name under torchrun")
    parser.add_argument("--dift", action="store_true", help="DIFT in the training loop")
    parser.add_argument("--floor", action="store_true", help="train the same recipe on the CLEAN set of a workspace "
                        "made with --attack and record its ASR as the no-poison floor shown beside every ASR")
    parser.add_argument("--accept-all", action="store_true", help="confirm DIFT's flags without a review (the paper's protocol)")
    parser.add_argument("--resume", action="store_true", help="go on with a run that stopped while training (Ctrl-C, "
                        "a crash, a closed window; also the window's plain Train) from its checkpoint, with its own "
                        "settings (--run names it; only --device, --threads and --no-monitor apply)")
    parser.add_argument("--leave-out-confirmed", action="store_true",
                        help="train without DIFT on every sample the review has not confirmed as a poison (the "
                        "samples confirmed now are left out from the start): a retrain on the decisions of a post-hoc "
                        "review, without exporting first; with --attack workspaces the monitor's ASR says whether "
                        "the backdoor still forms")
    parser.add_argument("--method", default="simclr", choices=list(METHOD_NAMES))
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", dest="settings", help="method setting, repeatable")
    add_backbone_args(parser)
    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=int, default=200, help="default 200 (the paper's; sized for a GPU)")
    opt.add_argument("--batch-size", type=int, default=256, help="default 256")
    opt.add_argument("--lr", type=float, help="base lr at batch 256 (default: the method's)")
    opt.add_argument("--wd", type=float, help="weight decay (default: the method's)")
    opt.add_argument("--warmup-epochs", type=float, default=10.0, help="default 10")
    opt.add_argument("--image-size", type=int, default=32, help="training crop size in px (default 32)")
    opt.add_argument("--augment-recipe", metavar="NAME", help="augmentation recipe (default: the method's paper "
                     "recipe): " + recipes_help())
    opt.add_argument("--no-blur", action="store_true", help="drop the Gaussian blur (CTRL's protocol)")
    d = parser.add_argument_group("DIFT")
    d.add_argument("--dift-start", type=int, help="first detection epoch, counted from 0 as in metrics.jsonl (10: detection from the 11th epoch on; default: the spec's 10, or 2%% rule when unset)")
    d.add_argument("--anchors", metavar="SPEC", help="replace the workspace's DIFT anchors first: " + ANCHOR_SPEC_HELP)
    d.add_argument("--anchors-per-class", type=int, default=10, help="anchors a class drawn from a trusted dataset or the labels (default 10)")
    d.add_argument("--dift-set", action="append", metavar="KEY=VALUE", help="DiftConfig setting, repeatable (e.g. k=20)")
    r = parser.add_argument_group("run")
    r.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:N, mps")
    r.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's own, every core)")
    r.add_argument("--seed", type=int, default=0, help="default 0")
    r.add_argument("--knn-every", type=int, default=5, help="kNN accuracy / ASR monitor every N epochs (0: last only)")
    r.add_argument("--no-monitor", action="store_true", help="no kNN / ASR monitor")
    r.add_argument("--checkpoint-every", type=int, default=10, help="epochs between checkpoints (default 10)")
    r.add_argument("--max-steps-per-epoch", type=int, help="cut each epoch short (for a quick try)")
    parser.set_defaults(func=in_distributed_session(_run))
    return parser


def _run(args: argparse.Namespace) -> int:
    from naviewer.cli._sslargs import is_main_process, backbone_from_args, context, parse_settings
    from naviewer.defense.config import DiftConfig
    from naviewer.ssl.trainer import TrainConfig
    from naviewer.errors import NaviewerError
    from naviewer.workflows.anchor_sources import anchors_kept_on_failure, anchors_summary, set_workspace_anchors
    from naviewer.workflows.dift_training import train_with_dift
    from naviewer.workspace import Workspace

    ctx = context()
    augment = {"blur_p": 0.0} if args.no_blur else {}
    config = TrainConfig(method=args.method, method_settings=parse_settings(args.settings), backbone=backbone_from_args(args),
                         epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.wd,
                         warmup_epochs=args.warmup_epochs, image_size=args.image_size, augment=augment,
                         augment_recipe=args.augment_recipe or "",
                         device=args.device, seed=args.seed, checkpoint_every=args.checkpoint_every,
                         knn_every=args.knn_every, num_threads=args.threads,
                         max_steps_per_epoch=args.max_steps_per_epoch)
    if config.method_settings:  # checked before anything of the run is made: a refusal after its registration left a
        from naviewer.ssl.methods import method_class  # ghost run (folders, lock, a runs row; a probe, session 28)

        method_class(config.method).make_settings(config.method_settings)
    run_name = args.run or ("dift" if args.dift else "train")
    from naviewer.workspace.workspace import check_name

    check_name("run", run_name)  # before any path is built from it (300 characters: "File name too long")
    with Workspace.open(args.workspace) as ws:
        if args.resume:
            return _resume(args, ws, ctx)
        lone = [flag for flag, given in (("--accept-all", args.accept_all), ("--dift-start", args.dift_start is not None),
                                         ("--dift-set", bool(args.dift_set)), ("--anchors", args.anchors is not None))
                if given]
        if lone and not args.dift:  # accepted and ignored: a plain training ran (a sweep, session 18)
            raise NaviewerError(f"{', '.join(lone)} {'is' if len(lone) == 1 else 'are'} DIFT's: add --dift, or leave "
                                f"{'it' if len(lone) == 1 else 'them'} out")
        dift = None
        if args.dift:
            overrides = parse_settings(args.dift_set, "--dift-set")
            overrides["review"] = DiftConfig.review  # the default: train_with_dift decides the review (--accept-all)
            if args.dift_start is not None:
                overrides["start_epoch"] = args.dift_start
            from naviewer.cli._options import refuse_ignored_anchor_count, typed

            refuse_ignored_anchor_count(overrides, ws, args.anchors, typed(args, "--anchors-per-class"))
            dift = DiftConfig.from_workspace(ws, overrides)
        if args.floor:
            if args.dift:
                raise NaviewerError("--floor trains without DIFT (on the clean set): drop --dift")
            if args.leave_out_confirmed:  # the floor branch trains the clean set: the flag was ignored
                raise NaviewerError("--floor trains on the clean set the attack was crafted into: "
                                    "--leave-out-confirmed does not apply to it")
            from naviewer.workflows.floor import train_floor

            floor = train_floor(ws, config, ctx, run=args.run or "floor")
            print(f"no-poison floor: ASR {100 * floor['asr']:.1f} % (test-time protocol {floor['protocol']}), "
                  f"kNN accuracy {100 * floor['knn_acc']:.1f} %; recorded in workspace.toml [floor]")
            return 0
        if args.anchors is not None:
            if not args.dift:
                raise NaviewerError("--anchors needs --dift (anchors are DIFT's)")
        exclude = None
        if args.leave_out_confirmed:
            if args.dift:
                raise NaviewerError("--leave-out-confirmed trains without DIFT (on the samples the review keeps): drop "
                                    "--dift")
            from naviewer.workspace.runs import confirmed_ids

            exclude = confirmed_ids(ws)
            if not len(exclude):
                raise NaviewerError("no sample is confirmed as a poison: --leave-out-confirmed would leave nothing out "
                                    "(review a detection pass first: naviewer review WORKSPACE, or the window)",
                                    ws.path)
            if is_main_process():
                print(f"leaving out the {len(exclude):,} samples confirmed as poisons; training on the other "
                      f"{ws.store.sample_count() - len(exclude):,}")
        # a run that fails before its first checkpoint (too few samples for k + anchors) leaves the anchors it found;
        # one stopped later keeps the new ones, which its resume needs
        trained = lambda: (ws.path / "checkpoints" / run_name / "last.pt").exists()  # noqa: E731
        existed = trained()  # (refused at once: a run of that name is there already)
        with anchors_kept_on_failure(ws, keep=lambda: is_main_process() and (existed or not trained())):
            if args.anchors is not None and is_main_process():
                set_workspace_anchors(ws, args.anchors, args.anchors_per_class, args.seed, ctx)
            if dift is not None and not existed:  # (a run of that name is refused first, with what to do about it)
                from naviewer.workflows.posthoc import check_dift_size

                check_dift_size(ws, dift)  # before the epochs, not at the first detection after them
            out = train_with_dift(ws, config, dift, run=run_name, accept_all=args.accept_all,
                                  monitor=not args.no_monitor, dift=args.dift, exclude=exclude, ctx=ctx)
        if not is_main_process():  # torchrun: rank 0 speaks for the run
            return 0
        if out.anchors:
            print(anchors_summary(out.anchors))
        _report(out, args.workspace, config.epochs, dift, dift_on=bool(args.dift))
        if args.accept_all and dift is not None:  # the demo's recipe looks again on the retrained encoder
            from naviewer.cli.finetune import say_check_after_retrain

            say_check_after_retrain(ws, out, dift, args.device, ctx)
        if exclude is not None and out.status not in ("awaiting_review",):
            from naviewer.workflows.leave_out import leave_out_comparison, leave_out_lines

            print("\n".join(leave_out_lines(leave_out_comparison(ws, run_name, len(exclude)))))
    return 0


def _report(out, workspace: str, total_epochs=None, dift=None, dift_on: bool = False) -> None:
    """What a run (a fresh one, or one resumed) ended with, and the next command."""
    if out.status == "awaiting_review":
        of = f" of {total_epochs}" if total_epochs is not None else ""
        then = f"   ({_resume_says(dift)})" if dift is not None else ""
        print(f"DIFT flagged {out.detection['flagged']} samples (detection pass {out.pass_id}); training stopped "
              f"after epoch {out.fit['epochs']}{of} (checkpointed).\n"
              f"Review the flags:   naviewer review {workspace}   (or in the GUI)\n"
              f"then resume:        naviewer finetune {workspace}{then}")
        return
    if out.status == "noop":
        print("DIFT flagged nothing (no crowded group away from the anchors, which is not a clean bill); training "
              "finished on the whole dataset")
    elif out.finetune and out.finetune.get("restart_mode") == "retrain":
        print(f"DIFT: {out.finetune.get('removed', 0)} confirmed samples removed; the re-initialised encoder "
              f"was retrained on the rest")
        if ((out.finetune.get("finetune") or {}).get("fallback")) == "retrain":  # said as finetune says it
            from naviewer.defense.mitigate import FALLBACK_WORDS

            print(f"  {FALLBACK_WORDS}")
    elif out.finetune:
        print(f"DIFT: {out.finetune.get('removed', 0)} confirmed samples fine-tuned away and removed; training "
              f"finished on the rest")
    elif dift_on and out.pass_id is None:
        # a run whose flags never held still ended on "done: 50 epochs" alone, after 21 detection epochs (an outside
        # test, session 29): a backdoor that has barely formed leaves no crowded group, and a patch detector may see it
        # why, as the window says it: "its flags never held still" was said of a run whose guard took nothing at
        # every epoch (a newcomer, session 32)
        why = getattr(out, "note", "") or ("its flags never held still through the detection epochs, which is not a "
                                           "clean bill (a backdoor that has barely formed leaves no crowded group)")
        print(f"DIFT flagged nothing: {why}. Look at the final encoder another way: naviewer detect {workspace} "
              f"--checkpoint {out.checkpoint} --detector patchsearch --detector kdist")
    print(f"done: {out.fit.get('epochs')} epochs; checkpoint {out.checkpoint}")


def _resume(args: argparse.Namespace, ws, ctx) -> int:
    """``naviewer run WS --resume``: the interrupted run goes on with its own settings."""
    from naviewer.cli import build_parser
    from naviewer.cli._sslargs import is_main_process
    from naviewer.errors import NaviewerError
    from naviewer.workflows.dift_training import resume_stopped_run

    defaults = vars(build_parser().parse_args(["run", args.workspace]))
    allowed = {"workspace", "run", "resume", "device", "threads", "no_monitor", "func", "command"}
    changed = sorted(k for k, v in vars(args).items() if k not in allowed and k in defaults and v != defaults[k])
    if changed:  # --accept-all, --epochs ... were dropped without a word (a review)
        named = ", ".join("--" + k.replace("_", "-") for k in changed)
        raise NaviewerError(f"--resume goes on with the run's own settings; {named} cannot change them (only "
                            "--device, --threads and --no-monitor apply): drop them, or train a new run")
    overrides = {"device": None if args.device == "auto" else args.device, "num_threads": args.threads}
    done = resume_stopped_run(ws, args.run, monitor=not args.no_monitor, ctx=ctx, config_overrides=overrides)
    if is_main_process():
        if done.plain:  # the window's plain Train, stopped before its end
            print(f"done: {done.fit.get('epochs')} epochs; checkpoint {done.fit['checkpoint']}")
        else:
            _report(done.outcome, args.workspace)
        from naviewer.workflows.leave_out import leave_out_comparison, leave_out_lines, samples_left_out

        left = samples_left_out(ws, done.run, plain_only=True)
        if left and (done.plain or str(getattr(done.outcome, "status", "")) == "finished"):
            print("\n".join(leave_out_lines(leave_out_comparison(ws, done.run, left))))  # as a fresh one is read
    return 0


def _resume_says(dift) -> str:
    """What ``naviewer finetune`` will do after the review, in this run's recipe."""
    if getattr(dift, "restart_mode", "continue") == "retrain":
        return "removes the confirmed samples and retrains the encoder from scratch on the rest"
    return "fine-tunes on the confirmed samples, removes them and finishes training"
