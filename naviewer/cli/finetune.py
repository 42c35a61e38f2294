"""``naviewer finetune WORKSPACE``: after a DIFT review, fine-tune on the confirmed flags and finish training."""

from __future__ import annotations

import argparse

ORDER = 66


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "finetune",
        help="resume a DIFT run after review: fine-tune on confirmed flags, remove them, finish training",
        description=(
            "Resume the workspace's DIFT run that stopped for a review (naviewer run WORKSPACE --dift). Only the "
            "samples whose review state is 'confirmed' are used: the encoder is fine-tuned on them (Eq. 7, one "
            "augmented view per image), the momentum branch is synced, they are removed from the training set and "
            "training restarts from the initial learning rate over the remaining epochs. Rejected flags stay in "
            "the training set. --accept-all first confirms every flag of the pass that nobody rejected."
        ),
    )
    parser.add_argument("workspace", metavar="WORKSPACE")
    parser.add_argument("--run", help="the run to resume (default: the one waiting for a review)")
    parser.add_argument("--accept-all", action="store_true", help="confirm every unrejected flag first")
    parser.add_argument("--device", help="override the device of the run")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--dift-set", action="append", metavar="KEY=VALUE",
                        help="DIFT fine-tuning setting, repeatable (e.g. base_lr=0.01, ft_max_steps=50)")
    parser.add_argument("--no-monitor", action="store_true", help="no kNN / ASR monitor")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from naviewer.cli._sslargs import context, parse_settings
    from naviewer.workflows.dift_training import resume_after_review
    from naviewer.workspace import Workspace

    ctx = context()
    overrides = {}
    if args.device:
        overrides["device"] = args.device
    if args.threads:
        overrides["num_threads"] = args.threads
    with Workspace.open(args.workspace) as ws:
        out = resume_after_review(ws, args.run, accept_all=args.accept_all, monitor=not args.no_monitor,
                                  config_overrides=overrides or None,
                                  dift_overrides=parse_settings(args.dift_set, "--dift-set"), ctx=ctx)
        ft = out.finetune or {}
        info = ft.get("finetune") or {}
        print(f"fine-tuned on {ft.get('removed', 0)} confirmed samples ({info.get('steps', 0)} steps), removed them, "
              f"trained {ft.get('remaining_epochs', 0)} more epochs; checkpoint {out.checkpoint}")
    return 0
