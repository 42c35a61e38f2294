"""``naviewer bench NAME``: the project's benchmarks, each against a baseline measured in the same run.

Each benchmark is a module of ``naviewer.bench`` exposing ``register(subparsers)``; they print
ratios against a named baseline so the figures hold on a noisy machine.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil

ORDER = 90


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "bench",
        help="measure performance against a baseline run in the same process",
        description="Benchmarks print their figures and the ratio to a baseline measured in the same run.",
    )
    benches = parser.add_subparsers(dest="bench", metavar="BENCHMARK", required=True)
    import naviewer.bench as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"naviewer.bench.{info.name}")
        if hasattr(module, "register"):
            module.register(benches)
    for bench in benches.choices.values():
        run = bench.get_default("func")
        if run is not None:
            bench.set_defaults(func=_checking_json(run))
    return parser


def _checking_json(run):
    """A bench's ``--json FILE`` checked before it measures anything: a new file, or one a bench wrote (``bench detect
    --json WS/workspace.toml`` overwrote the workspace's file); ``--resume`` reads an earlier one as it is."""
    import functools

    @functools.wraps(run)
    def checked(args: argparse.Namespace) -> int:
        from naviewer.outputs import check_json_output

        from naviewer.outputs import has_rows

        dest = "json_out" if getattr(args, "json_out", None) is not None else "json"
        value = getattr(args, dest, None)
        if isinstance(value, str):  # (bench export / gui: --json is a flag that prints)
            resume = bool(getattr(args, "resume", False)) and bool(getattr(args, "scale", ""))
            path = check_json_output(value, "--json", "bench", also=has_rows if resume else None)
            path.parent.mkdir(parents=True, exist_ok=True)
            setattr(args, dest, str(path))  # '~/x.json' checked in the home folder is written there too
        return run(args)

    return checked
