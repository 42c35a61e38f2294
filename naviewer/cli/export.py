"""``naviewer export WORKSPACE``: write the cleaned-dataset manifests (kept list, CSV, provenance)."""

from __future__ import annotations

import argparse

ORDER = 70


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "export",
        help="export the cleaned-dataset manifests (kept.txt, classes.txt, samples.csv, README.txt, provenance.json)",
        description=(
            "Write the manifests of a workspace: kept.txt ('path label' of every kept sample, absolute "
            "image paths for file-backed sources, source keys for CIFAR/demo; confirmed poisons are removed), "
            "classes.txt (line i = name of class i), samples.csv (every sample with scores, flags and review "
            "state), README.txt (what the entries are and how to rebuild the cleaned set, e.g. which CIFAR pickle "
            "row a key is) and provenance.json (dataset hash, settings, detection pass, decisions, counts, and "
            "the cleaned set as a dataset description for naviewer.workspace.export.open_kept_dataset). "
            "The files appear together or not at all."
        ),
    )
    parser.add_argument("workspace", metavar="WORKSPACE", help="workspace directory")
    parser.add_argument("--out", metavar="DIR", default=None, help="output folder: new, empty, or an earlier export (default: WORKSPACE/exports/<timestamp>)")
    parser.add_argument(
        "--drop-unreviewed-flags",
        action="store_true",
        help="also remove flagged samples nobody has reviewed yet (default: keep them)",
    )
    parser.add_argument("--pass", dest="pass_id", type=int, default=None,
                        help="the detection pass whose scores and flags samples.csv carries and whose undecided "
                             "flags --drop-unreviewed-flags removes (default: the latest, passing over the checks after a "
                             "retrain; naviewer review --pass names the same). Decisions belong to samples, not passes: every sample confirmed as a poison is "
                             "removed, on whichever pass it was confirmed")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export in --out")
    parser.add_argument("--unverified", action="store_true",
                        help="do not open the dataset to check that the images the manifest lists are still the ones "
                             "reviewed (by default every image is decoded and compared up to 200,000 samples; above, "
                             "a sample of them), for a workspace whose images are elsewhere")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from naviewer.cli.progress import TextProgress
    from naviewer.jobs import JobContext
    from naviewer.workspace import Workspace
    from naviewer.workspace.export import export_manifests

    if args.out and not args.overwrite:
        from pathlib import Path

        from naviewer.errors import NaviewerError
        from naviewer.workspace.export import PROVENANCE_NAME

        if (Path(args.out) / PROVENANCE_NAME).exists():
            raise NaviewerError("--out holds an earlier export: choose another folder, or --overwrite to replace it",
                                args.out)
    ctx = JobContext(TextProgress())
    with Workspace.open(args.workspace, read_only=True) as ws:  # an export only reads the workspace
        result = export_manifests(ws, args.out, ctx=ctx, drop_unreviewed_flags=args.drop_unreviewed_flags,
                                  verify=not args.unverified, pass_id=args.pass_id,
                                  replace=bool(args.overwrite or not args.out))  # checked again under its lock
    print(result.summary())
    return 0
