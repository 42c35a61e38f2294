"""``naviewer demo``: one command, built-in data, no questions: poisons -> DIFT flags -> review."""

from __future__ import annotations

import argparse
import time

ORDER = 1


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "demo",
        help="the whole workflow on built-in digits: craft poisons, train with DIFT, review the flags",
        description=(
            "Create a workspace from the built-in digits (scikit-learn ships them: no download), craft Noisy "
            "Alignment poisons into it (the ground truth is kept apart), and train a small SimCLR encoder with "
            "DIFT in the loop on the best device there is. When DIFT's flag buffer is stable the flags are saved "
            "as a detection pass and training pauses for your review: the window opens the analyst views, and "
            "'Fine-tune' there removes the confirmed poisons and finishes training. With --no-gui the run stops "
            "at the review (review with 'naviewer review WS', resume with 'naviewer finetune WS')."
        ),
        epilog="example: naviewer demo --no-gui --epochs 20",
    )
    parser.add_argument("--workspace", metavar="PATH", help="where to create the workspace "
                        "(default: a fresh ./naviewer-demo-<date-time> folder)")
    parser.add_argument("--no-gui", action="store_true", help="no window: run to the flags and print what was found")
    parser.add_argument("--epochs", type=int, help="training epochs (default 50)")
    parser.add_argument("--device", help="cuda, mps, cpu or auto (default auto)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", dest="settings",
                        help="any other demo setting (naviewer.workflows.demo.DemoConfig), e.g. width=8, rate=0.1")
    parser.add_argument("--json", action="store_true", help="(--no-gui) print the outcome as JSON")
    parser.set_defaults(func=run)
    return parser


def _config(args: argparse.Namespace):
    from naviewer.cli._sslargs import parse_settings
    from naviewer.workflows.demo import demo_config_from_args

    values = dict(parse_settings(args.settings))
    # the options given win over --set; one not given leaves --set's value (--set epochs=-1 was dropped for the default)
    values.update({k: v for k, v in {"epochs": args.epochs, "device": args.device, "threads": args.threads}.items()
                   if v is not None})
    return demo_config_from_args(values)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    from pathlib import Path

    from naviewer.workflows.demo import default_workspace_path

    config = _config(args)
    from naviewer.ssl.device import resolve_device

    resolve_device(config.device)  # an unknown or absent device is said now: it was after the workspace was crafted
    path = Path(args.workspace).expanduser() if args.workspace else default_workspace_path()
    print(f"naviewer demo: workspace {path.absolute()}", flush=True)
    if not args.no_gui and not _has_display():
        print("naviewer demo: no display found (DISPLAY/WAYLAND_DISPLAY unset): running without the window, "
              "as with --no-gui", flush=True)
        args.no_gui = True
    if not args.no_gui:
        from naviewer.system_libs import xcb_problem

        problem = xcb_problem()
        if problem is not None:
            print(f"{problem}\nnaviewer demo: running without the window, as with --no-gui", flush=True)
            args.no_gui = True
    if not args.no_gui:
        from naviewer.gui.demo import run_demo_gui

        return run_demo_gui(path, config, started=started)
    return _headless(path, config, args, started)


def _has_display() -> bool:
    """False on a Linux box without X11/Wayland (Qt would abort there), unless a Qt platform is forced."""
    import os
    import sys

    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _say_reached(workspace, pass_id) -> None:
    """The flags the trusted anchors reach as clean samples, counted before the review (a pointer: look first)."""
    from naviewer.analysis.reach import REACHED_LIMIT, reached_in_pass, reached_text
    from naviewer.workspace import Workspace

    if pass_id is None:
        return
    from naviewer.workflows.trigger_check import trigger_check_of

    with Workspace.open(workspace, read_only=True) as ws:
        check = trigger_check_of(ws, int(pass_id))
        # one reach: the check's where it ran ("46 flags above 0.7" beside "55 of the 56 above 0.5"; the box, review
        # and finetune said one already, the demo did not: session 32)
        found = (reached_in_pass(ws, int(pass_id), check.reach_limit) if check is not None
                 else reached_in_pass(ws, int(pass_id)))
    if found is not None and len(found[0]):
        print("note: " + reached_text(len(found[0]), limit=check.reach_limit if check is not None else REACHED_LIMIT))
    if check is not None:  # what `finetune --accept-all` will leave unconfirmed, said before it is run
        from naviewer.workflows.trigger_check import accept_all_words

        print("  " + accept_all_words(check, workspace, ahead=True))


def _headless(path, config, args: argparse.Namespace, started: float) -> int:
    import json

    from naviewer.cli._sslargs import context
    from naviewer.workflows.demo import run_demo

    out = run_demo(path, config, context(), started=started)
    if args.json:
        print(json.dumps(out.to_dict(), indent=2, default=str))
        return 0
    for line in out.summary_lines():
        print(line)
    if out.status == "awaiting_review":
        _say_reached(out.workspace, out.pass_id)
        print(f"review the flags:  naviewer review {out.workspace}   (or File > Open workspace in the window)\n"
              f"then resume:       naviewer finetune {out.workspace}")
    return 0
