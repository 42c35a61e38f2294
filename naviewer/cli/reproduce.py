"""``naviewer reproduce``: craft -> train (no defense) -> B1 -> B2 -> DIFT -> evaluate, as a results table."""

from __future__ import annotations

import argparse

from naviewer.catalogue import MATRIX_RESTARTS, METHOD_NAMES

ORDER = 80


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "reproduce",
        help="reproduce the DIFT evaluation on one attack and method (results table + JSON)",
        description=(
            "Craft an attack into a clean labelled dataset (DIFT anchors drawn first, never poisoned), train an SSL "
            "encoder with no defense, run B1 (DBSCAN filtering on its features, then retraining from scratch), B2 "
            "(B1's retrained encoder pruned with CLP, data-free channel-Lipschitzness pruning) and DIFT in the "
            "training loop (flags auto-accepted, Eq. 7 fine-tuning, restart), and evaluate each: kNN "
            "accuracy (k=200, T=0.1) and a linear probe (its last epoch) on the clean test set, ASR_nt and ASR_all with the "
            "attack's test trigger, accuracy and ASR drops against no defense (DIFT Table 2), detection "
            "precision/recall against the ground truth, time per stage. Writes OUT/results.md, OUT/results.json "
            "and the workspace OUT/workspace."
        ),
        epilog="example (CPU, minutes): naviewer reproduce --attack patch --method simclr --dataset "
               "cifar10-subset --epochs 10 --arch resnet10 --width 8 --image-size 16 --out repro/patch-simclr",
    )
    parser.add_argument("--attack", choices=["patch", "na", "ctrl", "corruptencoder"], help="the attack (required "
                        "without --matrix)")
    parser.add_argument("--method", default="simclr", choices=list(METHOD_NAMES))
    parser.add_argument("--dataset", help="clean labelled dataset with a test split (e.g. a CIFAR folder; required "
                        "without --matrix)")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs of every run (default 20)")
    parser.add_argument("--out", help="new output folder (required without --matrix)")
    parser.add_argument("--rate", type=float, help="poison rate (default 0.01, DIFT's 1%%; with --matrix 0.08, "
                        "the demo's)")
    parser.add_argument("--target", type=int, default=0, help="target class (default 0)")
    parser.add_argument("--attack-setting", action="append", metavar="KEY=VALUE", help="extra attack setting, repeatable")
    parser.add_argument("--seed", type=int, default=0)
    enc = parser.add_argument_group("encoder and training")
    enc.add_argument("--arch", default="resnet18", choices=["resnet10", "resnet18", "resnet34", "resnet50"])
    enc.add_argument("--width", type=int, default=64, help="first-stage channels (64 = standard; 8-32 for CPUs)")
    enc.add_argument("--image-size", type=int, default=32, help="training crop size (default 32)")
    enc.add_argument("--batch-size", type=int, default=256)
    enc.add_argument("--lr", type=float, help="base lr at batch 256 (default: the method's)")
    enc.add_argument("--warmup-epochs", type=float, default=10.0, help="warm-up epochs (capped at half the run)")
    enc.add_argument("--threads", type=int, help="torch CPU threads")
    enc.add_argument("--device", default="auto")
    det = parser.add_argument_group("DIFT")
    det.add_argument("--dift-start", type=int, help="first detection epoch, counted from 0 as in metrics.jsonl (10: detection from the 11th epoch on; default: min(10, max(5, 2%% of epochs)))")
    det.add_argument("--dift-set", action="append", metavar="KEY=VALUE", help="any DiftConfig setting, repeatable")
    det.add_argument("--baselines", default="dbscan", help="comma list of B1 filters (dbscan, optics); the first is retrained")
    det.add_argument("--clp-u", type=float, default=3.0,
                     help="B2: CLP prunes channels whose Lipschitz bound exceeds mean + U*std of their layer (default 3)")
    det.add_argument("--no-b2", action="store_true", help="skip B2 (CLP pruning of the B1 encoder)")
    parser.add_argument("--no-linear", action="store_true", help="skip the linear probe")
    parser.add_argument("--anchors", metavar="SPEC", help="DIFT's anchors (default: drawn from the clean set before "
                        "poisoning); 'labels' draws them from the poisoned set's labels, as an analyst without a "
                        "trusted set would; or a labelled trusted dataset")
    parser.add_argument("--test-protocol", metavar="NAME", help="the attack's test-time protocol for ASR: uniform "
                        "(default), or the authors' (na: code, paper; patch/corruptencoder: paper)")
    parser.add_argument("--no-floor", action="store_true", help="skip the no-poison floor run")
    mat = parser.add_argument_group(
        "the detection matrix (--matrix OUT): attacks x methods x seeds on the built-in 16 px digits with the demo's "
        "recipe; per cell the ASR before, DIFT in training and the ASR after removal, every post-hoc detector's "
        "AUROC and precision/recall, the no-poison floor. Resumable: run the same command again to go on")
    mat.add_argument("--matrix", metavar="OUT", help="run (or resume) the matrix into OUT (OUT/matrix.md, matrix.json)")
    mat.add_argument("--cells", metavar="LIST", help="comma list of ROW[:METHOD[:SEED[:THREADS]]] (rows: "
                     "na-paper, na-code, patch, ctrl, corruptencoder; default: the whole plan, most telling first)")
    mat.add_argument("--set", action="append", metavar="KEY=VALUE", dest="recipe_set",
                     help="a demo recipe setting for every cell (e.g. epochs=30), repeatable")
    mat.add_argument("--restarts", default="retrain", help="comma list of restarts after removal: retrain (re-"
                     "initialise, default), continue (the paper's: keep the fine-tuned weights), oracle (retrain with every "
                     "poison removed: what perfect recall would reach)")
    mat.add_argument("--retrains", type=int, default=1, metavar="N", help="retrains per cell (and oracle retrains, "
                     "with --restarts ...,oracle): the first as the run's own restart, the others fresh trainings of the "
                     "same kept set with the seed offset by 1000 each (one retrain's ASR moves by ~10 points). On a finished matrix "
                     "it adds the missing retrain (and oracle) draws to the done cells; default 1")
    mat.add_argument("--floors", type=int, default=1, metavar="N", help="draws of the no-poison floor per method, "
                     "seed and thread count: the first, then fresh trainings of the clean set with the seed offset by "
                     "1000 each; the goal compares the retrains' mean with the floors' mean. On a finished matrix it "
                     "adds the missing draws to the done cells; default 1")
    mat.add_argument("--detector", action="append", metavar="NAME", help="post-hoc detectors per cell (default: "
                     "kdist, lid, slof, dao, dbscan, crop_density, patchsearch), repeatable")
    mat.add_argument("--rescore", action="store_true", help="only score --detector again on the done cells' saved "
                     "encoders (no training)")
    # what a single reproduction reads and the matrix does not: given with --matrix, refused (--attack patch ran the
    # whole matrix, hours, as if it were not there; a bad-input sweep, session 26)
    single = [a for a in parser._actions if a.option_strings and a.dest not in MATRIX_DESTS and a.dest != "help"]
    parser.set_defaults(func=run, single_only={a.option_strings[0]: (a.dest, a.default) for a in single})
    return parser


def run(args: argparse.Namespace) -> int:
    import shlex
    import sys

    from naviewer.cli._sslargs import context, parse_settings
    from naviewer.workflows.reproduce import ReproduceConfig, reproduce

    if args.matrix:
        return run_matrix_cli(args)
    matrix_only = [flag for flag, given in (("--cells", args.cells), ("--set", args.recipe_set),
                                            ("--restarts", args.restarts != "retrain"), ("--retrains", args.retrains != 1),
                                            ("--floors", args.floors != 1),
                                            ("--detector", args.detector), ("--rescore", args.rescore)) if given]
    if matrix_only:  # ignored by a single reproduction, which crafted and trained anyway (a sweep)
        from naviewer.errors import NaviewerError

        raise NaviewerError(f"{', '.join(matrix_only)} belong{'s' if len(matrix_only) == 1 else ''} to the detection "
                            "matrix: add --matrix OUT, or leave them out")
    missing = [flag for flag, value in (("--attack", args.attack), ("--dataset", args.dataset), ("--out", args.out))
               if not value]
    if missing:
        from naviewer.errors import NaviewerError

        raise NaviewerError(f"naviewer reproduce needs {', '.join(missing)} (or --matrix OUT for the detection matrix)")
    attack_settings = {"rate": 0.01 if args.rate is None else args.rate, "target": args.target, **parse_settings(args.attack_setting, "--attack-setting")}
    train = {"backbone": {"arch": args.arch, "width": args.width, "cifar_stem": True}, "image_size": args.image_size,
             "batch_size": args.batch_size, "lr": args.lr, "warmup_epochs": args.warmup_epochs,
             "num_threads": args.threads}
    dift = parse_settings(args.dift_set, "--dift-set")
    dift["start_epoch"] = args.dift_start if args.dift_start is not None else dift.get("start_epoch")
    baselines = tuple(b.strip() for b in args.baselines.split(",") if b.strip())
    _check_options_first(dift, baselines, None if args.no_b2 else args.clp_u)
    _check_attack_and_anchors_first(args.attack, attack_settings, args.anchors)
    config = ReproduceConfig(dataset=args.dataset, attack=args.attack, attack_settings=attack_settings,
                             method=args.method, epochs=args.epochs, train=train, dift=dift, seed=args.seed,
                             baselines=baselines, clp_u=None if args.no_b2 else args.clp_u, linear=not args.no_linear, device=args.device,
                             anchors=args.anchors, test_protocol=args.test_protocol, floor=not args.no_floor,
                             command="naviewer " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    record = reproduce(config, args.out, context())
    from pathlib import Path

    print((Path(args.out) / "results.md").read_text(encoding="utf-8"))
    print(f"wrote {Path(args.out) / 'results.md'} and results.json ({record['total_s']:.0f} s)")
    return 0


def _check_options_first(dift: dict, baselines: tuple, clp_u) -> None:  # noqa: ANN001
    """The options a later stage reads, checked before any crafting or training: --dift-set bogus=1 was a TypeError
    traceback, and --baselines bogus / --clp-u nan were refused, only after the whole craft + train pipeline."""
    import math

    from naviewer.defense.config import DiftConfig
    from naviewer.errors import NaviewerError
    from naviewer.workflows.posthoc import BASELINES

    try:
        DiftConfig.from_dict({k: v for k, v in dift.items() if v is not None})
    except NaviewerError as exc:
        raise NaviewerError(f"--dift-set: {exc.message}") from None
    if not baselines:  # the first baseline is retrained: none left nothing to compare with
        raise NaviewerError(f"--baselines names no baseline; name one or more of {', '.join(BASELINES)} (comma-separated)")
    for method in baselines:
        if method not in BASELINES:
            raise NaviewerError(f"--baselines: unknown baseline {method!r}; choose from {', '.join(BASELINES)}")
    if clp_u is not None and not (math.isfinite(float(clp_u)) and float(clp_u) >= 0):
        raise NaviewerError(f"--clp-u must be a non-negative number, got {clp_u}")


def _check_attack_and_anchors_first(attack: str, settings: dict, anchors) -> None:  # noqa: ANN001
    """The attack's settings (its trigger file read) and the --anchors spec's form, before --out is made: a missing
    trigger file or a bad --anchors was found after the start, leaving --out holding only STOPPED.txt, which then
    refused the same command again (a bad-input probe, session 30). Ids against the data are checked where it is."""
    from naviewer.attacks import make_attack

    make_attack(attack, **settings)  # its settings checked and its trigger file read
    if anchors:
        from naviewer.workflows.anchor_sources import parse_anchor_spec

        parse_anchor_spec(anchors)


#: the options the detection matrix reads (every other one belongs to a single reproduction)
MATRIX_DESTS = frozenset({"matrix", "cells", "recipe_set", "restarts", "retrains", "floors", "detector", "rescore",
                          "rate", "device", "no_floor"})


def run_matrix_cli(args: argparse.Namespace) -> int:
    from pathlib import Path

    from naviewer.cli._sslargs import context, parse_settings
    from naviewer.errors import NaviewerError
    from naviewer.workflows.matrix import MATRIX_DETECTORS, Cell, MatrixConfig, default_plan, rescore, run_matrix

    from naviewer.cli._options import typed

    given = [flag for flag, (dest, default) in (getattr(args, "single_only", None) or {}).items()
             if getattr(args, dest, default) != default or typed(args, flag)]  # typed at its default too
    if given:
        raise NaviewerError(f"{', '.join(given)} belong{'s' if len(given) == 1 else ''} to a single reproduction, "
                            "not to --matrix OUT (the matrix's cells name their attacks and methods: --cells, and "
                            "--set KEY=VALUE for the recipe)")
    if Path(args.matrix).exists() and not Path(args.matrix).is_dir():  # it said "File exists", raw
        raise NaviewerError("--matrix names a file: give a folder (made if missing) for the matrix's cells", args.matrix)
    detectors = tuple(args.detector or MATRIX_DETECTORS)
    from naviewer.catalogue import DETECTOR_NAMES

    unknown = [d for d in detectors if d not in DETECTOR_NAMES]
    if unknown:
        raise NaviewerError(f"--detector: unknown detector(s) {', '.join(unknown)}; choose from {', '.join(DETECTOR_NAMES)}")
    if args.rescore:
        records = rescore(args.matrix, detectors, context())
    else:
        if args.cells is not None and not args.cells.strip():  # '' ran the whole plan, hours (a sweep, session 17)
            raise NaviewerError("--cells is empty: name the cells (ROW[:METHOD[:SEED[:THREADS]]], comma-separated), "
                                "or leave the option out for the whole plan")
        cells = ([Cell.parse(c) for c in args.cells.split(",") if c.strip()] if args.cells else default_plan())
        restarts = tuple(r.strip() for r in args.restarts.split(",") if r.strip())
        bad = [r for r in restarts if r not in MATRIX_RESTARTS]
        if bad or not restarts:
            raise NaviewerError(f"--restarts takes {', '.join(MATRIX_RESTARTS)} (any of them), got {args.restarts!r}")
        recipe = parse_settings(args.recipe_set, "--set")
        from naviewer.workflows.demo import DemoConfig

        DemoConfig.from_overrides(recipe)  # names a wrong key before hours of training
        if args.retrains < 1:
            raise NaviewerError(f"--retrains must be at least 1, got {args.retrains}")
        if args.floors < 1:
            raise NaviewerError(f"--floors must be at least 1, got {args.floors}")
        if args.floors > 1 and args.no_floor:
            raise NaviewerError("--floors and --no-floor contradict each other: leave one out")
        config = MatrixConfig(cells=cells, recipe=recipe, detectors=detectors, restarts=restarts,
                              rate=0.08 if args.rate is None else args.rate, device=args.device,
                              floor=not args.no_floor, retrains=args.retrains,
                              floors=args.floors)
        records = run_matrix(config, args.matrix, context())
    print((Path(args.matrix) / "matrix.md").read_text(encoding="utf-8"))
    print(f"{len(records)} cell(s) done; wrote {Path(args.matrix) / 'matrix.md'} and matrix.json")
    return 0
