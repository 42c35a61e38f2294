"""``naviewer anchors WORKSPACE [SPEC]``: show DIFT's anchors, or replace them with a trusted set."""

from __future__ import annotations

import argparse
import sys

from naviewer.workflows.anchor_sources import ANCHOR_SPEC_HELP

ORDER = 12


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "anchors",
        help="show the workspace's DIFT anchors (where they came from, per class) or replace them",
        description=("DIFT measures every candidate against a few known-clean labelled samples per class (its "
                     "anchors). Anchors drawn from the dataset's own labels are NOT trusted: an attack labels its "
                     "poisons as the target class. Without SPEC this shows the anchors; with SPEC it replaces them "
                     "(checked now: every class of the data needs an anchor)."),
        epilog="examples: naviewer anchors ws | naviewer anchors ws trusted/clean.txt | naviewer anchors ws ids:@ids.txt",
    )
    parser.add_argument("workspace", metavar="WORKSPACE")
    parser.add_argument("spec", metavar="SPEC", nargs="?", help=ANCHOR_SPEC_HELP)
    parser.add_argument("--per-class", type=int, default=10, help="anchors a class drawn from a dataset or the labels "
                        "(default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from naviewer.cli.progress import TextProgress
    from naviewer.jobs import JobContext
    from naviewer.workflows.anchor_sources import anchors_summary, load_anchor_set, set_workspace_anchors
    from naviewer.workspace import Workspace

    ctx = JobContext(TextProgress())
    if args.spec is None and (args.per_class != 10 or args.seed != 0):  # silently ignored before (a sweep)
        from naviewer.errors import NaviewerError

        raise NaviewerError("--per-class and --seed apply to the anchors a SPEC draws (naviewer anchors WORKSPACE "
                            "labels --per-class N); without a SPEC the workspace's anchors are only shown")
    with Workspace.open(args.workspace) as ws:
        if args.spec is not None:
            before = dict(ws.config.get("anchors") or {})
            set_workspace_anchors(ws, args.spec, args.per_class, args.seed, ctx)
            from naviewer.interrupts import note_saved

            # a Ctrl-C now said "cancelled" over anchors already recorded (a bad-input probe, session 30)
            note_saved(f"the new anchors ({args.spec}) are recorded in {ws.config_path.name}")
            _warn_running_dift(ws, before)
        anchor_set = load_anchor_set(ws, args.per_class, args.seed, ctx)
        described = anchor_set.describe()
        print(anchors_summary(described))
        names = ws.class_names
        for cls, count in sorted(described["per_class"].items()):
            name = names[cls] if 0 <= cls < len(names) else str(cls)
            print(f"  class {cls} ({name}): {count}")
        for message in described["warnings"]:
            print(f"  note: {message}")
        if args.spec is not None:
            print("recorded in workspace.toml [anchors]; the next naviewer run --dift / detect uses them")
    return 0


def _warn_running_dift(ws, before: dict) -> None:
    """Replacing the anchors while a DIFT run trains said nothing; after a crash its resume then refused ("the anchors
    were replaced since the run started: put them back") without saying what they were (a probe, session 28)."""
    from naviewer.workspace.runs import being_trained

    runs = [r["name"] for r in ws.store.runs() if (r.get("config") or {}).get("dift") and being_trained(ws, r["name"])]
    if not runs:
        return
    was = before.get("source") or before.get("kind") or "the earlier anchors"
    print(f"note: run {runs[0]!r} trains with DIFT now, with the anchors it started with ({was}); it keeps them, but "
          "a resume after a stop refuses the new ones: to resume it, set those back first (naviewer anchors WORKSPACE "
          "SPEC)", file=sys.stderr)
