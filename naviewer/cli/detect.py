"""``naviewer detect WORKSPACE --checkpoint CKPT``: a post-hoc DIFT pass (and B1 baselines) for review."""

from __future__ import annotations

import argparse

from naviewer.catalogue import DETECTOR_NAMES
from naviewer.workflows.anchor_sources import ANCHOR_SPEC_HELP
from naviewer.cli._sslargs import add_backbone_args

ORDER = 60


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "detect",
        help="post-hoc DIFT detection on a workspace with a trained encoder (flags for review)",
        description=(
            "Embed every workspace sample with the checkpoint's backbone (saved to WORKSPACE/embeddings/RUN/TAG.npy), "
            "run one DIFT pass (kNN density, MinDist to the anchors, GMM split, label spreading) and store it as a "
            "detection pass to review (naviewer review, or the GUI). --baselines adds DBSCAN and OPTICS (B1) as "
            "passes of their own. Checkpoints load as plain weights only."
        ),
    )
    parser.add_argument("workspace", metavar="WORKSPACE")
    parser.add_argument("--checkpoint", required=True, help="encoder checkpoint (naviewer run or a foreign SSL layout)")
    parser.add_argument("--run", default="posthoc", help="run name for the embeddings and the pass (default posthoc)")
    parser.add_argument("--tag", help="embeddings tag (default: the checkpoint's file name)")
    parser.add_argument("--baselines", nargs="?", const="dbscan,optics", default=None,
                        help="also run B1 filters (default when given: dbscan,optics)")
    parser.add_argument("--detector", action="append", metavar="NAME", default=[],
                        help="another detector to run beside DIFT, each saved as its own pass, repeatable: "
                             + ", ".join(d for d in DETECTOR_NAMES if d != "dift")
                             + " (crop_density: how densely an image's best crop sits among other images' crops; "
                             "patchsearch: image windows that, pasted on other images, pull them into the image's "
                             "cluster, then a poison classifier; patch triggers)")
    parser.add_argument("--detector-set", action="append", metavar="NAME:KEY=VALUE",
                        help="a detector setting, repeatable (e.g. lid:k=32, kdist:direction=sparse)")
    parser.add_argument("--view", choices=["squash", "center", "first", "second"], default="squash",
                        help="what of a non-square image is embedded: squash (the whole image resized, the toolbox's "
                             "eval; default), center (the largest centred square), first / second (each half along "
                             "the longer side: a composite's two source images); recorded with the pass")
    parser.add_argument("--embeddings", metavar="FILE",
                        help="the checkpoint's features of every workspace sample, computed already (an (N, D) .npy, "
                             "row i = sample i; e.g. naviewer embed --shard-size under torchrun, across processes and "
                             "GPUs): checked (shape, rows, finite values, and up to 32 samples embedded here against their rows) and taken into the workspace instead of "
                             "embedding again; the checkpoint still embeds the trusted anchors and runs the checks")
    parser.add_argument("--image-size", type=int, help="input size (default: the checkpoint's training size)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--anchors", metavar="SPEC", help="replace the workspace's DIFT anchors first: " + ANCHOR_SPEC_HELP)
    parser.add_argument("--anchors-per-class", type=int, default=10, help="anchors a class drawn from a trusted dataset or the labels (default 10)")
    parser.add_argument("--dift-set", action="append", metavar="KEY=VALUE",
                        help="DIFT setting, repeatable (default: the workspace's [dift], else the spec's)")
    add_backbone_args(parser, defaults=False)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from naviewer.cli._sslargs import backbone_from_args, context, parse_settings
    from naviewer.defense.dift import nothing_words
    from naviewer.defense.config import DiftConfig
    from naviewer.ssl.device import resolve_device
    from naviewer.errors import NaviewerError
    from naviewer.workflows.anchor_sources import anchors_kept_on_failure, anchors_summary, set_workspace_anchors
    from naviewer.cli._options import refuse_ignored_anchor_count, typed
    from naviewer.workflows.posthoc import posthoc_detect
    from naviewer.workspace import Workspace

    ctx = context()
    with Workspace.open(args.workspace) as ws:
        overrides = parse_settings(args.dift_set, "--dift-set")
        refuse_ignored_anchor_count(overrides, ws, args.anchors, typed(args, "--anchors-per-class"))
        config = DiftConfig.from_workspace(ws, overrides)
        # every option is checked before anything is written: --baselines bogus was refused only after the DIFT
        # pass had been saved (and --anchors had replaced the workspace's anchors)
        from naviewer.defense.detectors import detector_names
        from naviewer.workflows.posthoc import BASELINES

        baselines = tuple(b.strip() for b in (args.baselines or "").split(",") if b.strip())
        if args.baselines is not None and not baselines:  # --baselines '' ran none, silently (a sweep)
            raise NaviewerError(f"--baselines {args.baselines!r} names no baseline: write --baselines alone for "
                                f"{', '.join(BASELINES)}, or name them (comma-separated)")
        for method in baselines:
            if method not in BASELINES:
                raise NaviewerError(f"--baselines: unknown baseline {method!r}; choose from {', '.join(BASELINES)}")
        detector_settings: dict = {}
        for item in args.detector_set or []:
            name, sep, setting = item.partition(":")
            if not sep:
                raise NaviewerError(f"--detector-set must be NAME:KEY=VALUE, got {item!r}")
            new = parse_settings([setting], "--detector-set")
            given = detector_settings.setdefault(name, {})
            twice = sorted(set(new) & set(given))
            if twice and any(new[k] != given[k] for k in twice):  # the last one won without a word (a sweep)
                raise NaviewerError(f"--detector-set {name}:{twice[0]}= is given twice with different values "
                                    f"({given[twice[0]]!r}, {new[twice[0]]!r}): give it once")
            given.update(new)
        unknown = sorted(set(args.detector) - set(detector_names()))
        if unknown:
            raise NaviewerError(f"--detector: unknown detector {unknown[0]!r}; choose from {', '.join(detector_names())}")
        unused = sorted(set(detector_settings) - set(args.detector))
        if unused:  # set for a detector that does not run: silently ignored before (a sweep)
            raise NaviewerError(f"--detector-set {unused[0]}:... sets a detector that does not run: add --detector "
                                f"{unused[0]}" + ("" if unused[0] in detector_names() else
                                                  f" (known: {', '.join(detector_names())})"))
        both = sorted(set(baselines) & set(args.detector))
        if both:  # two identical passes to review (a bad-input probe, session 30)
            raise NaviewerError(f"{both[0]} is named by both --baselines and --detector: name it once (--detector "
                                f"{both[0]} takes --detector-set {both[0]}:KEY=VALUE)")
        from naviewer.defense.detectors import make_detector

        for name in args.detector:  # its settings, before the checkpoint is read and the images embedded
            make_detector(name, **detector_settings.get(name, {}))
        with anchors_kept_on_failure(ws):  # a detection that fails leaves the anchors it found
            if args.anchors is not None:
                set_workspace_anchors(ws, args.anchors, args.anchors_per_class, config.seed, ctx)
            out = posthoc_detect(ws, args.checkpoint, backbone=backbone_from_args(args), config=config, run=args.run,
                                 tag=args.tag, baselines=baselines, image_size=args.image_size,
                                 device=resolve_device(args.device), ctx=ctx, detectors=args.detector,
                                 detector_settings=detector_settings, view=args.view, embeddings=args.embeddings)
        s = out.summary
        if out.anchors:
            print(anchors_summary(out.anchors))
        for message in out.warnings:
            print(f"WARNING - {message}")
        print(f"DIFT pass {out.pass_id}: {s['flagged']} flagged ({s['buffer']} before label spreading, "
              f"{s['candidates']} candidates) in {s['clusters']} cluster{'' if s['clusters'] == 1 else 's'}"
              + (f" - {nothing_words(s)}"
                 + (" (and read the warnings above: the verdict may mean nothing)"
                                           if out.warnings else "")
               + ("; on untrusted anchors this is no clean bill" if out.anchors and not out.anchors.get("trusted")
                  else "") if s.get("noop") else ""))
        if "final_precision" in s:
            print(f"  vs ground truth: precision {s['final_precision']:.3f}, recall {s['final_recall']:.3f}")
        for method, pid in out.baseline_passes.items():
            m = out.baseline_metrics[method]
            extra = f", precision {m['precision']:.3f}, recall {m['recall']:.3f}" if "precision" in m else ""
            print(f"{method} pass {pid}: {m['flagged']} flagged{extra}")
        for name, pid in out.detector_passes.items():
            m = out.detector_metrics[name]
            extra = (f", AUROC {m['auroc']:.3f}, precision {m['precision']:.3f}, "
                     f"recall {m['recall']:.3f}" if m.get("auroc") is not None else "")
            from naviewer.defense.detectors.base import rule_words

            # "16 flagged (top_fraction)" read as a verdict; it is a ranking's top 1 %, whatever the attack's share (an
            # outside test, session 29: recall capped near 15 % at 7 % poisons)
            said = rule_words(m["threshold"])
            print(f"{name} pass {pid}: {m['flagged']} flagged ({said}){extra}")
        print(f"embeddings: {out.embeddings_path}")
        flagged_elsewhere = any(int(out.detector_metrics[n].get("flagged") or 0) for n in out.detector_passes)
        if int(s["flagged"]) or flagged_elsewhere or out.baseline_passes:
            print(f"next: naviewer review {args.workspace}, then naviewer finetune {args.workspace} "
                  "(fine-tunes this encoder on the confirmed flags)")
        else:  # "review, then finetune" after a pass of nothing read as a step to take (session 20)
            from naviewer.defense.anchors import NOTHING_FLAGGED_ADVICE

            print("next: nothing to review. " + NOTHING_FLAGGED_ADVICE.split(". ", 1)[1])
    return 0
