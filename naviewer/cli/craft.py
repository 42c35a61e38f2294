"""``naviewer craft``: craft poisons into a dataset and write it to disk (images + train.txt + ground truth)."""

from __future__ import annotations

import argparse

ORDER = 20


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "craft",
        help="craft a poisoned dataset (Noisy Alignment, SSL-Backdoor patch, CTRL, CorruptEncoder)",
        description=(
            "Craft data-poisoning backdoor samples into a clean dataset and write the poisoned set as PNG files, "
            "a 'path label' list (train.txt), classes.txt and ground_truth.json (which samples are poisons, "
            "their sources, trigger boxes and layouts). Defaults are the CIFAR-10 recipe: 5 percent poisons, 8 px "
            "trigger, target class 0."
        ),
    )
    parser.add_argument("--attack", required=True, choices=["na", "patch", "ctrl", "corruptencoder"], help="attack to craft")
    parser.add_argument("--dataset", required=True, help="clean dataset: a path (CIFAR folder, image folder, file list), 'demo' (built-in digits, tinted, 32 px) or 'digits' (the demo's grey 16 px digits)")
    parser.add_argument("--out", help="output folder (must be new or empty); omit to only write --preview")
    parser.add_argument("--rate", type=float, help="#poisons / #pre-training images (default 0.05)")
    parser.add_argument("--num-poisons", type=int, help="exact number of poisons (overrides --rate)")
    parser.add_argument("--target", help="target class: its number or its name (default 0)")
    parser.add_argument("--trigger", help="built-in trigger name (blocks-<seed>, checker, white) or an image file (default blocks-14)")
    parser.add_argument("--trigger-size", type=int, help="trigger width in pixels (default 8)")
    parser.add_argument("--opacity", type=float, help="trigger fraction in the result, 1.0 = opaque (default)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same poisons)")
    parser.add_argument("--layout", choices=["paper", "code"], help="NA: paper (r x r halves, centred trigger) or code (released utils.py)")
    parser.add_argument("--gap", type=float, help="NA: gap between the halves as a fraction of r (ablation; default 0)")
    parser.add_argument("--orientation", choices=["random", "ref-left", "ref-right", "ref-top", "ref-bottom"], help="NA: orientation (default random)")
    parser.add_argument("--magnitude", type=float, help="CTRL: DCT magnitude (default 100)")
    parser.add_argument("--test-protocol", metavar="NAME", help="the test-time protocol recorded with the ground truth "
                        "for ASR: uniform (default), na: code (the released watermark rule) or paper; patch / "
                        "corruptencoder: paper")
    parser.add_argument("--preview", metavar="PNG", help="also write a picture of some poisons with their regions drawn")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    parser.set_defaults(func=run)
    return parser


def _settings(args: argparse.Namespace) -> dict:
    common = {"rate": args.rate, "num_poisons": args.num_poisons, "target": args.target}
    patchy = {"trigger": args.trigger, "trigger_size": args.trigger_size, "opacity": args.opacity}
    if args.attack == "ctrl":
        unused = [name for name, value in patchy.items() if value is not None]
        extra = {"magnitude": args.magnitude}
    else:
        unused = ["magnitude"] if args.magnitude is not None else []
        extra = dict(patchy)
    if args.attack == "na":
        extra.update({"layout": args.layout, "gap": args.gap, "orientation": args.orientation})
    else:
        unused += [n for n in ("layout", "gap", "orientation") if getattr(args, n) is not None]
    if unused:
        from naviewer.errors import NaviewerError

        raise NaviewerError(f"--{unused[0].replace('_', '-')} does not apply to the {args.attack} attack")
    return {k: v for k, v in {**common, **extra}.items() if v is not None}


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from naviewer.attacks import make_attack
    from naviewer.attacks.export import export_crafted
    from naviewer.cli.progress import TextProgress
    from naviewer.data import open_dataset
    from naviewer.errors import NaviewerError
    from naviewer.jobs import JobContext

    from naviewer.outputs import check_output_file, is_naviewer_png

    if not args.out and not args.preview:
        raise NaviewerError("nothing to write: give --out DIR and/or --preview PNG")
    preview = check_output_file(args.preview, "--preview", "preview.png", "naviewer craft preview", is_naviewer_png)
    if preview is not None and preview.suffix.lower() != ".png":  # it is written as PNG: out.jpg held PNG bytes
        raise NaviewerError("--preview is written as a PNG image: give a file name ending in .png", preview)
    settings = _settings(args)
    if isinstance(settings.get("target"), str):  # a class name: looked up in the dataset's class names
        from naviewer.attacks.base import resolve_target

        try:
            settings["target"] = int(settings["target"])
        except ValueError:
            settings["target"] = resolve_target(settings["target"], open_dataset(args.dataset).class_names,
                                                args.dataset)
    attack = make_attack(args.attack, **settings)
    protocol = attack.check_test_protocol(args.test_protocol)  # refused before any crafting
    if args.out:
        from pathlib import Path

        out, source = Path(args.out).resolve(), Path(args.dataset).expanduser().resolve()
        if source.exists() and (out == source or source in out.parents or out in source.parents
                                or (source.is_file() and out == source.parent)):
            raise NaviewerError("--out is the dataset being poisoned (or holds it, or lies inside it): crafting "
                                "never writes into its own source; choose another folder", args.out)
    if args.out:  # crafting takes minutes on a large set: a place nothing can be written fails first
        from pathlib import Path

        from naviewer.outputs import check_output_folder

        check_output_folder(Path(args.out) / "train.txt", "--out")
    clean = open_dataset(args.dataset)
    ctx = JobContext(TextProgress())
    result = attack.craft(clean, np.random.default_rng(args.seed), ctx)
    gt = result.ground_truth
    gt["seed"] = args.seed
    gt["test_protocol"] = protocol
    print(
        f"{args.attack}: {gt['num_poisons']} poisons in {gt['size']} images "
        f"({100 * gt['poison_rate']:.2f}%), target {gt['target_class']} ({gt['target_name']}), "
        f"{len(gt['removed'])} references removed"
    )
    if args.out:
        summary = export_crafted(result, args.out, ctx, overwrite=args.overwrite)
        print(f"wrote {summary.images} images to {summary.out_dir} (list: {summary.list_path.name}, ground truth: {summary.ground_truth_path.name})")
    if args.preview:
        from pathlib import Path

        from naviewer.attacks.preview import render_preview

        from PIL import PngImagePlugin

        from naviewer.outputs import PNG_SOFTWARE

        image = render_preview({args.attack: result}, clean, seed=args.seed)
        preview.parent.mkdir(parents=True, exist_ok=True)
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", f"{PNG_SOFTWARE} craft --preview")  # lets the next --preview replace it, nothing else
        try:
            image.save(preview, format="PNG", pnginfo=info)
        except (OSError, ValueError) as exc:
            raise NaviewerError(f"cannot write the preview: {exc}", args.preview) from None
        print(f"wrote preview {args.preview}")
    return 0
