"""``naviewer finetune WORKSPACE``: after a DIFT review, fine-tune on the confirmed flags.

Two ways in: a DIFT training run that stopped for review is resumed (fine-tune, remove, finish
training); or, after ``naviewer detect WORKSPACE --checkpoint C`` and a review, the finished encoder C
is fine-tuned post hoc and written as a new checkpoint, with before/after numbers.
"""

from __future__ import annotations

import argparse
import os
from typing import Optional

from naviewer.cli._sslargs import in_distributed_session

ORDER = 66


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "finetune",
        help="after a DIFT review: fine-tune on the confirmed flags (resume a DIFT run, or a post-hoc encoder)",
        description=(
            "Only the samples whose review state is 'confirmed' are used; the encoder is fine-tuned on them (DIFT "
            "Eq. 7, one augmented view per image at the encoder's training size, BatchNorm statistics frozen). "
            "(1) A DIFT run that stopped for a review (naviewer run WORKSPACE --dift) is resumed: the momentum "
            "branch is synced, the confirmed samples are removed from the training set and training restarts from "
            "the initial learning rate over the remaining epochs; rejected flags stay in the training set. "
            "(2) Post hoc: with --checkpoint (or, when no run waits for a review, the checkpoint recorded by the "
            "last naviewer detect), that finished encoder is fine-tuned and written as a new checkpoint (--out, "
            "default WORKSPACE/checkpoints/RUN/TAG-finetuned.pt); the confirmed cluster's density and, when the "
            "workspace has evaluation sets, kNN accuracy and ASR are reported before and after. --accept-all "
            "first confirms every flag of the pass that nobody rejected, but those the run's trigger check clears "
            "(trigger_check_reach, the demo's recipe: flags the trusted anchors reach as clean in which PatchSearch "
            "finds no trigger; they are named, with the naviewer review line that confirms them). With check_after_retrain "
            "on (the demo's recipe), accept-all then looks again on the retrained encoder: PatchSearch over every "
            "image, its flags among the kept samples confirmed too, and the recipe retrained again without them (a "
            "new run RUN-again-K; nothing flagged among the kept samples: no second training)."
        ),
    )
    parser.add_argument("workspace", metavar="WORKSPACE")
    parser.add_argument("--run", "--run-name", dest="run", help="the DIFT run to resume (default: the one waiting for a review); spell it --run-name under torchrun")
    parser.add_argument("--checkpoint", help="post hoc: the encoder to fine-tune (default: the one naviewer detect "
                                             "recorded, when no run waits for a review)")
    parser.add_argument("--out", help="post hoc: where to write the fine-tuned checkpoint")
    parser.add_argument("--accept-all", action="store_true", help="confirm every unrejected flag first (but those the trigger check clears; said)")
    parser.add_argument("--device", help="override the device (of the run, or for the post-hoc fine-tuning)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--dift-set", action="append", metavar="KEY=VALUE",
                        help="DIFT fine-tuning setting, repeatable (e.g. base_lr=0.01, ft_max_steps=50)")
    parser.add_argument("--no-monitor", action="store_true", help="no kNN / ASR monitor or evaluation")
    parser.set_defaults(func=in_distributed_session(_run))
    return parser


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _posthoc(ws, args, dift_overrides: dict, ctx) -> int:
    from naviewer.defense.config import DiftConfig
    from naviewer.workspace.runs import confirm_flags
    from naviewer.workflows.posthoc import finetune_posthoc

    if args.out is not None and os.path.lexists(args.out):  # before anything is decided or trained
        from naviewer.errors import NaviewerError

        raise NaviewerError(("--out is a folder: give a file name such as encoder-finetuned.pt" if os.path.isdir(args.out)
                             else "--out exists already: the fine-tuned checkpoint is written to a new file, never "
                             "over one (it could be the encoder being fine-tuned, or an earlier result)"), args.out)
    if args.out is not None:
        from naviewer.outputs import check_output_folder

        check_output_folder(args.out, "--out")
    if args.accept_all:
        pass_id = ws.store.latest_pass_id("dift")
        if pass_id is not None:
            refuse_nothing_to_accept(ws, pass_id)
            say_reached_before_accepting(ws, pass_id)
            from naviewer.workflows.trigger_check import accept_all_words, trigger_check_of

            check = trigger_check_of(ws, pass_id)
            if check is not None:  # said as the run's own accept-all says it
                print(accept_all_words(check, ws.path))
            confirm_flags(ws, pass_id, leave=check.cleared if check is not None else ())
    config = DiftConfig.from_workspace(ws, dift_overrides)
    if args.threads:
        import torch

        torch.set_num_threads(int(args.threads))
    out = finetune_posthoc(ws, args.checkpoint, config=config, ctx=ctx, out=args.out, device=args.device,
                           evaluate=not args.no_monitor)
    ft = out.finetune
    print(f"fine-tuned {out.source} on {out.confirmed} confirmed samples ({ft.get('steps', 0)} steps"
          + (", stopped early: the cluster is gone" if ft.get("stopped_early") and int(ft.get("steps") or 0) else "")
          + ")")  # (0 steps: the line below says why; "the cluster is gone" over it read as a contradiction)
    from naviewer.workflows.posthoc import finetune_unchanged_reason

    unchanged = finetune_unchanged_reason(ft, out.before)
    if unchanged:
        print(f"  {unchanged}")
    if ft.get("diverged"):
        print(f"  WARNING: diverged at step {ft.get('diverged_step')} ({ft.get('divergence')}); "
              f"kept the {ft.get('restored')} weights")
    keys = [k for k in ("confirmed_density", "cluster_spread", "reference_spread", "knn_acc", "asr", "asr_all")
            if k in out.before or k in out.after]
    width = max(len(k) for k in keys)
    print(f"  {'':{width}}  {'before':>10}  {'after':>10}")
    for key in keys:
        print(f"  {key:{width}}  {_fmt(out.before.get(key)):>10}  {_fmt(out.after.get(key)):>10}")
    if "asr" in out.before or "asr" in out.after:
        from naviewer.workflows.floor import floor_text, read_floor

        print(f"  asr is ASR_nt with the {out.protocol or 'uniform'} test-time protocol; {floor_text(read_floor(ws))}")
    print(f"checkpoint: {out.checkpoint}")
    return 0


def refuse_nothing_to_accept(ws, pass_id: Optional[int]) -> None:
    """--accept-all on a pass with nothing to accept said "confirm flags first (naviewer review, or the GUI)", which
    missed the cause (a bad-input probe, session 30): the pass flagged nothing, or every flag was rejected; other
    passes with flags are named. Nothing is confirmed or trained before."""
    import numpy as np

    from naviewer.analysis.reach import other_passes_with_flags
    from naviewer.analysis.review import STATE_CODE
    from naviewer.errors import NaviewerError

    if pass_id is None or ws.store.pass_info(int(pass_id)) is None:  # a damaged run record is said where it is read
        return
    flagged = ws.store.pass_array(int(pass_id), "flagged")
    flags = np.flatnonzero(np.asarray(flagged, bool)) if flagged is not None else np.zeros(0, np.int64)
    codes = ws.store.review_codes()
    confirmed = int(np.count_nonzero(codes == STATE_CODE["confirmed"]))
    if confirmed >= 2 or (flags.size and np.count_nonzero(codes[flags] != STATE_CODE["rejected"])):
        return  # something is (or will be) confirmed: the usual checks follow
    others = other_passes_with_flags(ws.store, pass_id)
    elsewhere = (f"; pass {others[0][0]} ({others[0][1]}) has {others[0][2]:,} flags: naviewer review WORKSPACE --pass "
                 f"{others[0][0]} --confirm-cluster N (or the GUI), then finetune without --accept-all") if others else ""
    why = (f"detection pass {pass_id} flagged nothing" if not flags.size
           else f"every one of the {flags.size:,} flags of detection pass {pass_id} was rejected")
    raise NaviewerError(f"--accept-all has nothing to accept: {why}{elsewhere}", ws.path)


def say_reached_before_accepting(ws, pass_id: int) -> None:
    """--accept-all confirms flags the trusted anchors reach as clean samples too: said, with where to look (the
    clean "0"s taken out with the poisons were what kept the demo's misses above the floor; results.md)."""
    import numpy as np

    from naviewer.analysis.reach import REACHED_LIMIT, reached_in_pass
    from naviewer.workflows.trigger_check import trigger_check_of

    check = trigger_check_of(ws, pass_id)  # with one, its reach; the ones it cleared are left unconfirmed (said then)
    limit = check.reach_limit if check is not None else REACHED_LIMIT
    found = reached_in_pass(ws, pass_id, limit)
    pending = found[1] if found is not None else np.zeros(0, np.int64)
    pending = pending[~np.isin(pending, check.cleared)] if check is not None else pending
    if len(pending):
        print(f"note: --accept-all confirms {len(pending):,} flag{'s' if len(pending) != 1 else ''} the trusted anchors "
              f"reach as clean samples (anchor reach above {limit:g}); naviewer review {ws.path} lists them, and "
              "--reject IDS there keeps the clean ones in the training set")


def _refuse_detection_settings(overrides: dict) -> None:
    """A detection setting given to finetune changes nothing (no detection runs after the review): said, not
    ignored. Unknown names are left to DiftConfig, which lists the known ones."""
    from dataclasses import fields

    from naviewer.defense.config import DiftConfig, finetune_setting_names
    from naviewer.errors import NaviewerError

    known = {f.name for f in fields(DiftConfig)}
    unused = sorted(k for k in overrides if k in known and k not in finetune_setting_names())
    if unused:
        raise NaviewerError(
            f"--dift-set {', '.join(unused)}: {'a detection setting' if len(unused) == 1 else 'detection settings'}, "
            "and fine-tuning runs no detection (it works on the confirmed flags), so it would change nothing. "
            "finetune reads ft_*, base_lr, restart_mode, retrain_epochs, seed, num_threads, normalize and k; to detect "
            "with other settings, run naviewer detect --dift-set ... and review that pass")


def _run(args: argparse.Namespace) -> int:
    from naviewer.cli._sslargs import is_main_process, context, parse_settings
    from naviewer.cli.progress import count
    from naviewer.workflows.dift_training import resume_after_review
    from naviewer.workspace.runs import pending_review_runs
    from naviewer.workspace import Workspace

    ctx = context()
    dift_overrides = parse_settings(args.dift_set, "--dift-set")
    _refuse_detection_settings(dift_overrides)
    if args.run is not None:  # checked as run / detect / review check it, before a path is built from it
        from naviewer.workspace.workspace import check_name

        check_name("run", args.run)
    with Workspace.open(args.workspace) as ws:
        from naviewer.defense.config import DiftConfig

        # the settings checked before anything is decided: a refused --dift-set restart_fallback=no had confirmed
        # every flag first (accept-all), unsaid and under another reviewer's name (a bad-input probe, session 29)
        DiftConfig.from_workspace(ws, dift_overrides).validate()
        posthoc = args.checkpoint is not None or args.out is not None
        if not posthoc and args.run is None and not pending_review_runs(ws):
            posthoc = any(r["kind"] == "posthoc" for r in ws.store.runs())
        if posthoc:
            if args.run is not None:
                from naviewer.errors import NaviewerError

                raise NaviewerError("--run resumes a DIFT training run; it does not go with --checkpoint/--out")
            return _posthoc(ws, args, dift_overrides, ctx)
        overrides = {}
        if args.device:
            overrides["device"] = args.device
        if args.threads:
            overrides["num_threads"] = args.threads
        if args.accept_all:
            from naviewer.workspace.runs import read_state

            runs = [args.run] if args.run is not None else pending_review_runs(ws)
            state = read_state(ws, runs[0]) if len(runs) == 1 else None
            pass_id = state.pass_id if state is not None else None
            if isinstance(pass_id, int) and not isinstance(pass_id, bool):  # (a damaged one is said just below)
                refuse_nothing_to_accept(ws, pass_id)
                say_reached_before_accepting(ws, pass_id)
        out = resume_after_review(ws, args.run, accept_all=args.accept_all, monitor=not args.no_monitor,
                                  config_overrides=overrides or None, dift_overrides=dift_overrides, ctx=ctx)
        if not is_main_process():  # torchrun: rank 0 speaks for the run
            return 0
        ft = out.finetune or {}
        info = ft.get("finetune") or {}
        if ft.get("restart_mode") == "retrain" and info.get("fallback"):
            from naviewer.defense.mitigate import FALLBACK_WORDS

            print(f"removed {ft.get('removed', 0)} confirmed samples and retrained the re-initialised encoder for "
                  f"{count(ft.get('remaining_epochs', 0), 'epoch')} on the rest; checkpoint {out.checkpoint}\n"
                  f"  {FALLBACK_WORDS}")
        elif ft.get("restart_mode") == "retrain":
            print(f"removed {ft.get('removed', 0)} confirmed samples and retrained the re-initialised encoder for "
                  f"{count(ft.get('remaining_epochs', 0), 'epoch')} on the rest (a retrain: no fine-tuning step first); "
                  f"checkpoint {out.checkpoint}")
        else:
            print(f"fine-tuned on {ft.get('removed', 0)} confirmed samples ({count(info.get('steps', 0), 'step')}), "
                  f"removed them, trained {count(ft.get('remaining_epochs', 0), 'more epoch')}; checkpoint {out.checkpoint}")
        if info.get("diverged"):
            print(f"  WARNING: fine-tuning diverged at step {info.get('diverged_step')} ({info.get('divergence')}); "
                  f"kept the {info.get('restored')} weights")
        say_before_after(ws, out.run)
        if args.accept_all:
            say_check_after_retrain(ws, out, DiftConfig.from_workspace(ws, dift_overrides), args.device, ctx)
    return 0


def say_check_after_retrain(ws, out, config, device: Optional[str], ctx) -> None:
    """Accept-all's second round when the workspace's ``check_after_retrain`` is on (the demo's recipe): PatchSearch on
    the retrained encoder, its flags among the kept samples confirmed, the recipe trained again without them
    (:mod:`naviewer.workflows.check_after_retrain`); said, with the second retrain's figures against the first's."""
    if not config.check_after_retrain or getattr(out, "status", None) != "finished" or not out.finetune:
        return  # (nothing was removed: a run that flagged nothing, or one waiting for its review)
    if out.finetune.get("restart_mode") != "retrain":
        print("  check_after_retrain is on, but it follows a remove-and-retrain and this run fine-tuned and went on "
              "(restart_mode=continue): skipped")
        return
    from naviewer.errors import NaviewerError
    from naviewer.workflows.check_after_retrain import check_after_retrain
    from naviewer.workflows.finetune_record import before_after_text, review_before_after
    from naviewer.workflows.floor import floor_text, read_floor

    first = review_before_after(ws.run_dir(out.run) / "metrics.jsonl")[1]  # measured after the review, or nothing
    try:
        check = check_after_retrain(ws, out.run, ctx=ctx, device=device)
    except NaviewerError as exc:  # the first retrain is done and stands: said, not a failed command
        print(f"WARNING - the check after the retrain did not run to the end: {exc}; the first retrain stands "
              f"(checkpoint {ws.checkpoint_dir(out.run) / 'last.pt'})")
        return
    if check.again:  # (what it found and did was said in its log as it went)
        figures = before_after_text(first, check.again.get("after"))
        if figures:
            print(f"  first retrain -> second: {figures}; no-poison {floor_text(read_floor(ws))}")
        print(f"checkpoint: {ws.checkpoint_dir(check.again['again']) / 'last.pt'}")


def say_before_after(ws, run: str) -> None:
    """kNN accuracy and ASR at the review and at the end, from the run's metrics: the terminal said only "removed
    117 confirmed samples ... checkpoint", the ASR after in the last epoch line and the one before 50 lines up."""
    from naviewer.workflows.finetune_record import before_after_text, review_before_after
    from naviewer.workflows.floor import floor_text, read_floor

    before, after = review_before_after(ws.run_dir(run) / "metrics.jsonl")
    figures = before_after_text(before, after)
    if figures:
        floor = f"; no-poison {floor_text(read_floor(ws))}" if "asr" in before and "asr" in after else ""
        print("  " + figures + floor)
