"""``naviewer new WORKSPACE --dataset SPEC [--attack ...]``: create a workspace (alias ``naviewer init``)."""

from __future__ import annotations

import argparse

from naviewer.workflows.anchor_sources import ANCHOR_SPEC_HELP

ORDER = 10


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "new",
        aliases=["init"],
        help="create a workspace from a dataset, or from a clean dataset plus a crafted attack",
        description=(
            "Create a workspace (workspace.toml, SQLite store, runs/, checkpoints/, embeddings/, exports/) over a "
            "dataset (CIFAR folder, image folder, 'path label' list, CSV manifest, or the built-in 'digits' / 'demo'). With --attack, the DIFT "
            "anchors (N per class, seeded) are drawn from the CLEAN set first and excluded from poisoning, the attack "
            "is crafted, the poisoned set is written into WORKSPACE/dataset/ (PNG + train.txt) and registered, and "
            "the ground truth is kept apart in WORKSPACE/ground_truth.json. The clean test split (if the source has "
            "one) is recorded for kNN accuracy and ASR."
        ),
        epilog="examples: naviewer new ws --dataset cifar10-subset | naviewer new ws --dataset cifar10-subset "
               "--attack patch --rate 0.01 --target 0",
    )
    parser.add_argument("workspace", metavar="WORKSPACE", help="new (or empty) directory")
    parser.add_argument("--dataset", required=True, help="dataset (a path; or the built-in digits: 'digits', grey 16 px as the demo trains on, or 'demo', tinted 32 px); with --attack: the CLEAN set")
    parser.add_argument("--test-dataset", help="clean labelled test set for evaluation (default: the source's test split)")
    parser.add_argument("--attack", choices=["na", "patch", "ctrl", "corruptencoder"], help="craft this attack into the dataset")
    parser.add_argument("--rate", type=float, help="poison rate (attack default otherwise)")
    parser.add_argument("--num-poisons", type=int, help="exact number of poisons (overrides --rate)")
    parser.add_argument("--target", help="target class: its number or its name (default 0)")
    parser.add_argument("--attack-setting", action="append", metavar="KEY=VALUE",
                        help="any other attack setting, repeatable (e.g. trigger_size=8, magnitude=100)")
    parser.add_argument("--anchors", metavar="SPEC", help=ANCHOR_SPEC_HELP + " (default: with --attack, the clean set "
                        "before poisoning; without, the dataset's labels, recorded as NOT trusted)")
    parser.add_argument("--anchors-per-class", type=int, default=10, help="DIFT anchors per class (default 10)")
    parser.add_argument("--test-protocol", metavar="NAME", help="with --attack: how ASR pastes the trigger on test "
                        "images: uniform (naviewer's default), code / paper where the attack's authors publish one "
                        "(na: code = the released watermark rule, 45-55 %% position, 80 %% opacity)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the anchors and the attack (default 0)")
    parser.add_argument("--dift-preset", choices=["naviewer", "paper"], default="naviewer",
                        help="the DIFT settings written into the workspace's [dift]: naviewer (default; the recipe "
                             "measured on the detection matrix: scaled MinDist, 3 %% candidates, label spreading "
                             "alpha 0.7, weak-reach rule with the anchor-reach guard, crop agreement and crop "
                             "outliers, closure, cluster reach) or paper (the DIFT paper's: Eq. 6 MinDist, 1 %% "
                             "candidates, alpha 0.2). --dift-set on detect and run changes single settings")
    parser.set_defaults(func=run)
    return parser


def _refuse_workspace_inside_its_dataset(workspace: str, dataset: "str | None") -> None:
    """``naviewer new --dataset D D/ws`` made the workspace folder a class of its own dataset (an empty one, then
    the workspace's own files once re-opened): refused before anything is made."""
    from pathlib import Path

    from naviewer.data.sources import inside_dataset_folder
    from naviewer.errors import NaviewerError

    if inside_dataset_folder(workspace, dataset):
        raise NaviewerError("the workspace would be inside its own dataset folder (it would become one of its classes): "
                            "put it beside the dataset, e.g. next to it", Path(workspace))


def _demo_recipe_note(args: argparse.Namespace, given: dict, recorded: dict) -> str:
    """On a built-in dataset, the attack settings ``naviewer demo`` crafts with that this workspace does not use.
    A newcomer's ``new --dataset demo --attack na`` made 67 poisons where the demo makes 113, and nothing said why."""
    from naviewer.data.sources import is_builtin
    from naviewer.workflows.demo import DemoConfig

    if not is_builtin(args.dataset):
        return ""
    try:
        demo = DemoConfig(attack=args.attack).attack_settings()
    except Exception:  # noqa: BLE001 - a note only; an attack the demo cannot take has no recipe to compare
        return ""
    if "num_poisons" in given:
        demo.pop("rate", None)
    differ = {k: v for k, v in demo.items() if k not in given and recorded.get(k) != v}
    if not differ:
        return ""
    shown = ", ".join(f"{k}={v}" for k, v in differ.items())
    flags = " ".join(f"--rate {v}" if k == "rate" else f"--attack-setting {k}={v}" for k, v in differ.items())
    digits = str(args.dataset).strip().lower() == "digits"  # the demo's own data; "demo" is the tinted 32 px set
    return (f"note: naviewer demo crafts {args.attack} on --dataset digits (grey, 16 px"
            + ("" if digits else "; this workspace's 'demo' is the tinted 32 px set") + f") with {shown}; this "
            f"workspace took the attack's defaults for {'them' if len(differ) > 1 else 'it'}. To craft as the demo "
            f"does: {'' if digits else 'use --dataset digits and '}add {flags}")


def run(args: argparse.Namespace) -> int:
    from naviewer.cli._sslargs import parse_settings
    from naviewer.cli.progress import TextProgress
    from naviewer.errors import NaviewerError
    from naviewer.jobs import JobContext
    from naviewer.workflows.anchor_sources import anchors_summary, load_anchor_set
    from naviewer.workflows.workspace_setup import create_attacked_workspace, create_workspace

    ctx = JobContext(TextProgress())
    _refuse_workspace_inside_its_dataset(args.workspace, args.dataset)
    if args.attack is None:
        given = [n for n in ("rate", "num_poisons", "target", "attack_setting", "test_protocol")
                 if getattr(args, n) is not None]
        if given:
            raise NaviewerError(f"--{given[0].replace('_', '-')} needs --attack")
        ws = create_workspace(args.workspace, args.dataset, anchors_per_class=args.anchors_per_class, seed=args.seed,
                              test_dataset=args.test_dataset, anchors=args.anchors, ctx=ctx,
                              dift_preset=args.dift_preset)
        what = f"{ws.store.sample_count():,} samples"
    else:
        settings = parse_settings(args.attack_setting, "--attack-setting")
        settings.update({k: v for k, v in (("rate", args.rate), ("num_poisons", args.num_poisons),
                                           ("target", args.target)) if v is not None})
        result = create_attacked_workspace(args.workspace, args.dataset, args.attack, settings, seed=args.seed,
                                           anchors_per_class=args.anchors_per_class, test_dataset=args.test_dataset,
                                           anchors=args.anchors, test_protocol=args.test_protocol, ctx=ctx,
                                           dift_preset=args.dift_preset)
        ws = result.workspace
        what = (f"{result.size:,} samples ({result.num_poisons} {args.attack} poisons, ground truth in "
                f"{ws.ground_truth_path.name})")
        print(f"{args.attack}: {result.poison_share()}")
        note = _demo_recipe_note(args, settings, (ws.config.get("attack") or {}).get("settings") or {})
        if note:
            print(note)
    try:
        evaluation = ws.config.get("evaluation", {})
        print(f"created workspace {ws.path}: {what}; test set for evaluation: "
              f"{'yes' if evaluation.get('test') else 'none'}")
        if ws.config.get("anchors"):
            described = load_anchor_set(ws, args.anchors_per_class, args.seed).describe()
            print(anchors_summary(described))
            for message in described.get("warnings") or []:  # "every one of class 0 is an anchor" went unsaid
                print(f"  note: {message}")
        protocol = (ws.config.get("attack") or {}).get("test_protocol")
        if protocol:
            print(f"ASR test-time protocol: {protocol}")
        print(f"next: naviewer run {args.workspace} --dift   (or naviewer detect {args.workspace} --checkpoint CKPT)")
        # run's defaults are the paper's GPU recipe: hours on a CPU, and nothing said so (a newcomer, session 34)
        print(f"      on a CPU, the demo's narrow recipe: naviewer run {args.workspace} --dift --arch resnet10 --width 16 "
              "--batch-size 128 --epochs 50 --augment-recipe aug+ --warmup-epochs 2")
    finally:
        ws.close()
    return 0
