"""``naviewer bench gui``: analyst-view repaint times against empty widgets (offscreen).

Map repaint at 50k and 200k points (and a 1M-point density image), selection overlay update and
hover hit-test; gallery first paint at 50k items and scroll repaint. ``--scale`` and ``--sort``: the
views at 1M-10M samples against the former gallery (a QListView handed 10,000-row windows). ``--stall``: the
longest GUI-thread stall while the analyst panel opens and while a sort is chosen, against the panel as it was
(every filter and sort on the GUI thread). The floor is an empty
PlotWidget / QListView of the same size measured in the same run. Goals (issue 7): map repaint
under 20 ms at 50k, gallery first paint under 100 ms.
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser("gui", help="analyst views: map/gallery repaint vs empty widgets", description=__doc__)
    parser.add_argument("--points", type=int, nargs="+", default=[50_000, 200_000], help="map sizes to measure")
    parser.add_argument("--image-points", type=int, default=1_000_000, help="size for the density-image mode (0 to skip)")
    parser.add_argument("--gallery", type=int, default=50_000, help="gallery items")
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement (median)")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    parser.add_argument("--scale", type=int, nargs="+", metavar="N",
                        help="instead: gallery, cluster table and map over a synthetic N-sample session (e.g. 1000000 "
                             "3000000 10000000), one process per N and per model, against the former gallery (a QListView "
                             "handed every row at once) and the first N")
    parser.add_argument("--sort", type=int, nargs="+", metavar="N",
                        help="instead: sorting the gallery by a score over all N samples (e.g. 1000000 10000000): the "
                             "sort key against the former lexsort, and the grid view against the former QListView "
                             "handed 10,000-row windows (sort + paint, End, how many rows the scroll bar reaches), "
                             "one process per N and per view")
    parser.add_argument("--stall", type=int, nargs="+", metavar="N",
                        help="instead: the longest GUI-thread stall (gap of a 10 ms timer) while the analyst panel opens "
                             "on an N-sample bench workspace and while a sort is chosen in its gallery, against the "
                             "panel as it was (everything on the GUI thread) and as it was before the views' open was "
                             "made cheap (the gallery's worker only), one process per N and per version")
    parser.add_argument("--workspace-dir", default=None,
                        help="with --stall: where the bench workspaces are (made there when missing; default: a "
                             "temporary folder, removed afterwards)")
    parser.add_argument("--crossover", type=int, nargs="+", metavar="N",
                        help="instead: the map's repaint as a scatter and as a density image at each size (where "
                             "the map should switch to the image)")
    parser.set_defaults(func=run)
    return parser


def _scale_child(n: int, old: bool, what: str = "measure_scale") -> dict:
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    code = (f"import json, os, sys; from naviewer.gui.analyst.benchmark import {what}; "
            f"print(json.dumps({what}(int(sys.argv[1]), sys.argv[2] == '1')), flush=True); os._exit(0)")
    done = subprocess.run([sys.executable, "-c", code, str(n), "1" if old else "0"], env=env, capture_output=True,
                          text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"bench gui child at {n} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def run_scale(sizes: list, as_json: bool) -> int:
    rows = []
    for n in sizes:
        new, old = _scale_child(n, False), _scale_child(n, True)
        rows.append({"new": new, "old": old})
        first = rows[0]["new"]
        print(f"N = {n:,}: synthetic session {new['session_s']:.1f} s ({new['clusters']:,} clusters); peak RSS "
              f"{new['peak_mb']:.0f} MB (old gallery model {old['peak_mb']:.0f} MB)")
        print(f"  gallery first paint {new['gallery_first_paint_s'] * 1000:7.0f} ms (old {old['gallery_first_paint_s'] * 1000:.0f}); "
              f"whole layout {new['gallery_layout_s'] * 1000:7.0f} ms over {new['gallery_rows_in_view']:,} rows "
              f"(old {old['gallery_layout_s'] * 1000:.0f} ms over {old['gallery_rows_in_view']:,}: "
              f"x{new['gallery_layout_s'] / max(old['gallery_layout_s'], 1e-9):.3f}); scroll to the end + repaint "
              f"{new['gallery_scroll_end_s'] * 1000:.0f} ms (old {old['gallery_scroll_end_s'] * 1000:.0f})")
        print(f"  cluster table first paint {new['clusters_first_paint_s'] * 1000:7.0f} ms ({new['cluster_rows']:,} rows "
              f"of {new['clusters']:,}); x{new['clusters_first_paint_s'] / first['clusters_first_paint_s']:.2f} of the first N's")
        print(f"  map [{new['map_mode']}] build {new['map_build_s'] * 1000:7.0f} ms, repaint {new['map_repaint_ms']:.1f} ms "
              f"(x{new['map_repaint_ms'] / first['map_repaint_ms']:.2f} of the first N's)", flush=True)
    if as_json:
        print(json.dumps(rows, indent=1))
    return 0


def stall_workspace(n: int, folder: str) -> str:
    """The bench workspace of ``naviewer bench workspace --scale`` (N file-list-shaped samples, one DIFT-like
    pass) under ``folder``/``n``/ws, registered when it is not there yet; its path."""
    from pathlib import Path

    path = Path(folder) / str(n)
    if not (path / "ws" / "naviewer.sqlite").is_file():
        from naviewer.bench.workspace import child

        path.mkdir(parents=True, exist_ok=True)
        child("register", int(n), str(path))
    return str(path / "ws")


def _stall_child(n: int, legacy: "bool | str", workspace: str) -> dict:
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    mode = legacy if isinstance(legacy, str) else ("1" if legacy else "0")
    code = ("import json, os, sys; from naviewer.gui.analyst.benchmark import measure_stall; "
            "print(json.dumps(measure_stall(int(sys.argv[1]), sys.argv[2], sys.argv[3])), flush=True); os._exit(0)")
    done = subprocess.run([sys.executable, "-c", code, str(n), mode, workspace], env=env,
                          capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"bench gui --stall child at {n} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def run_stall(sizes: list, folder: "str | None", as_json: bool) -> int:
    import shutil
    import tempfile

    scratch = folder or tempfile.mkdtemp(prefix="naviewer-bench-stall-")
    rows = []
    try:
        for n in sizes:
            workspace = stall_workspace(n, scratch)
            # same run, the old ones first: *old* the panel before the gallery's worker and before the views'
            # open was made cheap; *prev* with the gallery's worker but the former views and session read
            old = _stall_child(n, True, workspace)
            prev = _stall_child(n, "views", workspace)
            new = _stall_child(n, False, workspace)
            rows.append({"new": new, "prev": prev, "old": old})
            print(f"N = {n:,}: longest GUI-thread stall (gap of a 10 ms timer), new / prev / old (x new/prev, x new/old)")
            for what, label, wall in (("open", "open the analyst panel", "open_s"), ("sort", "choose a sort", "sort_s")):
                a, p, b = new[what + "_gaps"], prev[what + "_gaps"], old[what + "_gaps"]
                print(f"  {label:<24} {a['max_ms']:8.0f} / {p['max_ms']:8.0f} / {b['max_ms']:8.0f} ms "
                      f"(x{a['max_ms'] / max(p['max_ms'], 1e-9):.2f}, x{a['max_ms'] / max(b['max_ms'], 1e-9):.2f}); "
                      f"gaps over 100 ms {a['over_100ms']} / {p['over_100ms']} / {b['over_100ms']}; until done "
                      f"{new[wall]:6.2f} / {prev[wall]:6.2f} / {old[wall]:6.2f} s")
            print(f"  of the open: session {new['session_s']:.2f} / {prev['session_s']:.2f} / {old['session_s']:.2f} s, "
                  f"panel built and shown {new['panel_s']:.2f} / {prev['panel_s']:.2f} / {old['panel_s']:.2f} s; sorted "
                  f"right {new['sorted_ok']} / {prev['sorted_ok']} / {old['sorted_ok']}, highlighted sample kept "
                  f"{new['highlight_kept']} / {prev['highlight_kept']} / {old['highlight_kept']}; peak RSS "
                  f"{new['peak_mb']:.0f} / {prev['peak_mb']:.0f} / {old['peak_mb']:.0f} MB", flush=True)
    finally:
        if folder is None:
            shutil.rmtree(scratch, ignore_errors=True)
    if as_json:
        print(json.dumps(rows, indent=1))
    return 0


def run_sort(sizes: list, as_json: bool) -> int:
    rows = []
    for n in sizes:
        new, old = _scale_child(n, False, "measure_sort"), _scale_child(n, True, "measure_sort")
        rows.append({"new": new, "old": old})
        print(f"N = {n:,}: gallery sorted by a score, descending (a third of the samples without one: last)")
        for name, what in (("density", "already in suspicion order"), ("posterior", "random")):
            print(f"  sort key over all N, {name} ({what}): stable_order {new[name + '_stable_order_s']:6.2f} s, "
                  f"former lexsort {new[name + '_lexsort_s']:6.2f} s "
                  f"(x{new[name + '_stable_order_s'] / max(new[name + '_lexsort_s'], 1e-9):.2f}; same order: "
                  f"{new[name + '_same_order']})")
        print(f"  choose posterior, descending -> sorted grid painted: grid {new['sort_and_paint_s']:6.2f} s, former QListView "
              f"{old['sort_and_paint_s']:6.2f} s (x{new['sort_and_paint_s'] / max(old['sort_and_paint_s'], 1e-9):.2f})")
        print(f"  rows the scroll bar reaches: grid {new['rows_in_view']:,}, former {old['rows_in_view']:,} of {n:,}")
        print(f"  End + repaint: grid {new['end_and_paint_s'] * 1000:7.0f} ms -> row {new['end_row']:,} "
              f"(last of all: {new['end_reaches_last']}); former {old['end_and_paint_s'] * 1000:.0f} ms -> row "
              f"{old['end_row']:,} (last of all: {old['end_reaches_last']})")
        print(f"  scroll to the middle + repaint: grid {new['scroll_mid_and_paint_s'] * 1000:6.0f} ms, former "
              f"{old['scroll_mid_and_paint_s'] * 1000:.0f} ms; peak RSS grid {new['peak_mb']:.0f} MB, former "
              f"{old['peak_mb']:.0f} MB", flush=True)
    if as_json:
        print(json.dumps(rows, indent=1))
    return 0


def run(args: argparse.Namespace) -> int:
    from naviewer.gui.analyst.benchmark import format_results, map_crossover, run_benchmark

    if args.stall:
        return run_stall([int(n) for n in args.stall], args.workspace_dir, args.json)
    if args.sort:
        return run_sort([int(n) for n in args.sort], args.json)
    if args.scale:
        return run_scale([int(n) for n in args.scale], args.json)

    if args.crossover:
        rows = map_crossover(tuple(args.crossover), args.repeat)
        print("map repaint, 1200 x 860, median of", args.repeat)
        for r in rows:
            print(f"  {r['n']:>9,d} points: scatter {r['scatter_repaint_ms']:7.1f} ms, density image "
                  f"{r['image_repaint_ms']:7.1f} ms -> {r['faster']} faster")
        if args.json:
            print(json.dumps(rows, indent=1))
        return 0

    results = run_benchmark(tuple(args.points), args.gallery, args.repeat, args.image_points)
    print(format_results(results))
    if args.json:
        print(json.dumps(results, indent=1))
    return 0
