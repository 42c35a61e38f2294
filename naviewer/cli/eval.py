"""``naviewer eval``: clean accuracy (kNN + linear probe) and attack success rate of an encoder."""

from __future__ import annotations

import argparse

from naviewer.cli._sslargs import add_backbone_args, add_inference_args

ORDER = 34


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "eval",
        help="evaluate an encoder: kNN / linear-probe accuracy and backdoor ASR",
        description=(
            "Evaluate a frozen encoder. Clean accuracy by weighted kNN (k=200, T=0.1, cosine; bank = the clean "
            "labelled train set) and by the toolbox linear probe (L2-norm + standardise + linear, SGD 0.01, 40 "
            "epochs; the last epoch is reported, none is selected on the test set). With --attack, the attack's test trigger is pasted on every test image and ASR is reported "
            "both ways: asr_nt (non-target images predicted as the target) and asr_all (CTRL: all images)."
        ),
        epilog="example: naviewer eval --checkpoint runs/a/checkpoints/last.pt --train-dataset cifar10 "
               "--test-dataset cifar10 --attack patch --target 0. Your own trigger (a patch found in the data): "
               "--attack patch --attack-setting trigger=PATCH.png --attack-setting trigger_size=6 --target 3 pastes "
               "that image, 6 px wide, at random places on the test images",
    )
    parser.add_argument("--checkpoint", required=True, help="checkpoint file")
    parser.add_argument("--train-dataset", required=True, help="clean labelled set for the kNN bank / probe (train split)")
    parser.add_argument("--test-dataset", required=True, help="labelled test set (its test split where it has one)")
    parser.add_argument("--attack", choices=["na", "patch", "ctrl", "corruptencoder"], help="measure ASR with this attack's test trigger")
    parser.add_argument("--attack-setting", action="append", metavar="KEY=VALUE", help="attack setting, repeatable (e.g. trigger_size=8)")
    parser.add_argument("--target", help="target class: its number or its name (default: the attack's, 0)")
    parser.add_argument("--knn-k", type=int, default=200, help="kNN neighbours (default 200)")
    parser.add_argument("--knn-t", type=float, default=0.1, help="kNN temperature (default 0.1)")
    parser.add_argument("--no-linear", action="store_true", help="skip the linear probe")
    parser.add_argument("--linear-epochs", type=int, default=40, help="linear probe epochs (default 40)")
    add_inference_args(parser, batch_help="embedding batch size")
    parser.add_argument("--seed", type=int, default=0, help="seed for trigger placement")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    add_backbone_args(parser, defaults=False)
    parser.set_defaults(func=run_eval)
    return parser


def run_eval(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from naviewer.cli._sslargs import context, encoder_from_args, open_store, parse_settings
    from naviewer.evaluation import LinearProbeSettings, evaluate_encoder
    from naviewer.ssl.device import resolve_device

    from naviewer.outputs import check_json_output

    json_path = check_json_output(args.json, "--json", "eval")  # before the encoder runs: never over another's file
    if not args.attack and (args.target is not None or args.attack_setting):
        from naviewer.errors import NaviewerError

        # accepted and ignored: no ASR was measured (a sweep, session 18); naviewer new refuses the same
        raise NaviewerError(f"{'--target' if args.target is not None else '--attack-setting'} sets the attack the ASR "
                            "is measured with: add --attack NAME, or leave it out")
    ctx = context()
    encoder = encoder_from_args(args)
    train = open_store(args.train_dataset, "train", ctx)
    test = open_store(args.test_dataset, "test", ctx)
    from naviewer.data.names import check_class_numbering
    from naviewer.errors import NaviewerError

    check_class_numbering(test.class_names, train.class_names, "test set", "training set", args.test_dataset)
    for store, which, path in ((train, "training set", args.train_dataset), (test, "test set", args.test_dataset)):
        if (store.labels < 0).all():  # "needs labelled train and test datasets" named neither (a sweep)
            raise NaviewerError(f"the {which} has no class labels: kNN accuracy and ASR need labelled images", path)
    from naviewer.attacks.base import resolve_target

    trigger_fn, target = None, resolve_target(args.target, test.class_names, args.test_dataset)
    if args.attack:
        from naviewer.attacks import make_attack

        settings = parse_settings(args.attack_setting, "--attack-setting")
        if target is not None:
            settings["target"] = target
        attack = make_attack(args.attack, **settings)  # (its trigger file read as it is made)
        trigger_fn, target = attack.apply_test_trigger, attack.target_class
    if target is not None and not 0 <= int(target) < len(test.class_names):
        raise NaviewerError(f"target class {target} does not exist: the test set has {len(test.class_names)} classes "
                            f"(0-{len(test.class_names) - 1})", args.test_dataset)
    if trigger_fn is not None and target is not None and not (test.labels[test.labels >= 0] != int(target)).any():
        import sys

        print(f"note: every labelled test image is of the target class {target}: asr_nt (non-target images sent to "
              "the target) has nothing to measure and reads n/a; asr_all is measured", file=sys.stderr)
    import sys

    if args.knn_k > len(train):  # 100,000 on 1,437 images: every image voted, and nothing said so (a sweep)
        print(f"note: --knn-k {args.knn_k} is more than the {len(train):,} training images: every one of them votes "
              f"(k = {len(train):,})", file=sys.stderr)
    if args.knn_t < 1e-3:  # 1e-30 printed "temperature 0.0000" and an accuracy of 0.16 against 0.78
        print(f"note: --knn-t {args.knn_t:g} makes the nearest neighbour's vote the only one that counts (the "
              "usual temperature is 0.07-0.1)", file=sys.stderr)
    result = evaluate_encoder(
        encoder.backbone, train, test, trigger_fn, target, image_size=args.image_size or encoder.image_size,
        device=resolve_device(args.device), k=args.knn_k, temperature=args.knn_t, linear=not args.no_linear,
        linear_settings=LinearProbeSettings(epochs=args.linear_epochs), batch_size=args.batch_size, seed=args.seed,
        ctx=ctx,
    )
    result.update({"checkpoint": str(args.checkpoint), "attack": args.attack})
    import math

    for key, value in result.items():
        if isinstance(value, float):
            print(f"{key:>22}: " + ("n/a" if math.isnan(value) else f"{value:.4f}"))
    if args.json:  # a rate with nothing to measure is null (NaN is not JSON)
        result = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in result.items()}
        from naviewer.outputs import stamp

        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(stamp(result, "eval"), indent=2))
    return 0
