"""``naviewer bench gui``: analyst-view repaint times against empty widgets (offscreen).

Map repaint at 50k and 200k points (and a 1M-point density image), selection overlay update and
hover hit-test; gallery first paint at 50k items and scroll repaint. The floor is an empty
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
    parser.add_argument("--crossover", type=int, nargs="+", metavar="N",
                        help="instead: the map's repaint as a scatter and as a density image at each size (where "
                             "the map should switch to the image)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from naviewer.gui.analyst.benchmark import format_results, map_crossover, run_benchmark

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
