"""Trusted-anchors study (issue 12): train the encoders the anchor rules are measured on.

``python tools/anchor_study.py train --root DIR --seeds 0 1 2`` crafts Noisy Alignment in the public
code's protocol (``layout=code``, ``opacity=0.8``, 8 %) into the demo digits, trains the demo recipe
(SimCLR, ResNet-10 width 16, 16 px, 50 epochs) without any defense, and trains the same recipe on
the clean digits (the no-poison floor). Resumable: a finished run (its ``last.pt``) is skipped.
``evaluate`` lives in the same file and reads what ``train`` left.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

NA_CODE = {"layout": "code", "opacity": 0.8}


def demo_config(seed: int, threads: int):
    from naviewer.workflows.demo import DemoConfig

    return DemoConfig(seed=seed, threads=threads, attack_extra=dict(NA_CODE))


def attacked(root: Path, seed: int, threads: int):
    from naviewer.workflows.workspace_setup import create_attacked_workspace
    from naviewer.workspace import Workspace

    cfg = demo_config(seed, threads)
    path = root / f"na-code-s{seed}"
    if (path / "workspace.toml").is_file():
        return Workspace.open(path), cfg
    setup = create_attacked_workspace(path, cfg.dataset_spec(), "na", cfg.attack_settings(), seed=seed,
                                      test_dataset=cfg.dataset_spec())
    return setup.workspace, cfg


def floor(root: Path, seed: int, threads: int):
    """The clean digits with the same attack recipe recorded (for the test-time trigger), no poison."""
    from naviewer.attacks import make_attack
    from naviewer.workflows.workspace_setup import create_workspace
    from naviewer.workspace import Workspace

    cfg = demo_config(seed, threads)
    path = root / f"floor-s{seed}"
    if (path / "workspace.toml").is_file():
        return Workspace.open(path), cfg
    ws = create_workspace(path, cfg.dataset_spec(), seed=seed, test_dataset=cfg.dataset_spec())
    attack = make_attack("na", **cfg.attack_settings())
    ws.update_config("attack", {"name": "na", "settings": attack.settings_json(), "seed": seed,
                                "target_class": attack.target_class, "num_poisons": 0, "poison_rate": 0.0})
    return ws, cfg


def train(args: argparse.Namespace) -> None:
    from naviewer.workflows.dift_training import train_with_dift

    for seed in args.seeds:
        for make in (attacked, floor) if args.which == "both" else ((attacked,) if args.which == "attacked" else (floor,)):
            ws, cfg = make(args.root, seed, args.threads)
            try:
                if (ws.checkpoint_dir("plain") / "last.pt").is_file():
                    print(f"{ws.path.name}: done already", flush=True)
                    continue
                start = time.time()
                out = train_with_dift(ws, cfg.train_config(), dift=False, run="plain", monitor=True)
                print(f"{ws.path.name}: trained in {time.time() - start:.0f} s, {out.fit.get('epochs')} epochs",
                      flush=True)
            finally:
                ws.close()


CONDITIONS = {
    # name: (--anchors spec or None for the clean-before-poisoning anchors, DIFT overrides)
    "labels-as-is": ("labels", {"untrusted_anchors": "as-is", "mindist_agg": "mean"}),
    "labels-screened": ("labels", {}),
    "trusted": (None, {}),
}


def dift(args: argparse.Namespace) -> None:
    """DIFT in training per anchor condition (accept-all, the demo's remove-and-retrain)."""
    from naviewer.workflows.dift_training import train_with_dift
    from naviewer.workflows.workspace_setup import create_attacked_workspace
    from naviewer.workspace import Workspace

    for seed in args.seeds:
        for name in args.conditions:
            spec, overrides = CONDITIONS[name]
            cfg = demo_config(seed, args.threads)
            path = args.root / f"dift-{name}-s{seed}"
            if (path / "runs" / "dift" / "dift_state.json").is_file() and \
                    json.loads((path / "runs" / "dift" / "dift_state.json").read_text()).get("status") in ("finished", "noop"):
                print(f"{path.name}: done already", flush=True)
                continue
            if path.exists():
                import shutil

                shutil.rmtree(path)
            setup = create_attacked_workspace(path, cfg.dataset_spec(), "na", cfg.attack_settings(), seed=seed,
                                              test_dataset=cfg.dataset_spec(), anchors=spec, test_protocol="code")
            ws = setup.workspace
            try:
                config = cfg.dift_config()
                import dataclasses

                config = dataclasses.replace(config, **overrides)
                start = time.time()
                out = train_with_dift(ws, cfg.train_config(), config, run="dift", accept_all=True)
                print(f"{path.name}: {out.status} in {time.time() - start:.0f} s; detection {out.detection}", flush=True)
            finally:
                ws.close()


def clean_dift(args: argparse.Namespace) -> None:
    """False flags: DIFT in training on the CLEAN digits with label-drawn (screened) anchors."""
    from naviewer.attacks import make_attack
    from naviewer.workflows.dift_training import train_with_dift
    from naviewer.workflows.workspace_setup import create_workspace

    for seed in args.seeds:
        cfg = demo_config(seed, args.threads)
        path = args.root / f"clean-screened-s{seed}"
        if path.exists():
            import shutil

            shutil.rmtree(path)
        ws = create_workspace(path, cfg.dataset_spec(), seed=seed, test_dataset=cfg.dataset_spec())
        try:
            attack = make_attack("na", **cfg.attack_settings())
            ws.update_config("attack", {"name": "na", "settings": attack.settings_json(), "seed": seed,
                                        "test_protocol": "code", "target_class": 0, "num_poisons": 0})
            start = time.time()
            out = train_with_dift(ws, cfg.train_config(), cfg.dift_config(), run="dift", accept_all=True)
            flagged = (out.detection or {}).get("flagged", 0)
            print(json.dumps({"seed": seed, "status": out.status, "flagged": flagged,
                              "seconds": round(time.time() - start)}), flush=True)
        finally:
            ws.close()


def _asr(checkpoint: Path, ws, protocols) -> dict:
    from naviewer.attacks import make_attack
    from naviewer.evaluation.encoder import evaluate_encoder
    from naviewer.ssl.checkpoints import load_encoder
    from naviewer.workflows.workspace_setup import evaluation_sets

    sets = evaluation_sets(ws)
    recipe = ws.config["attack"]
    attack = make_attack(recipe["name"], **recipe["settings"])
    encoder = load_encoder(checkpoint)
    out = {}
    for protocol in protocols:
        res = evaluate_encoder(encoder.backbone, sets.train, sets.test, attack.test_trigger_fn(protocol),
                               attack.target_class, image_size=encoder.image_size, k=200, linear=False)
        out[protocol] = {"knn_acc": float(res["knn_acc"]), "asr": float(res["knn_asr_nt"])}
    return out


def evaluate(args: argparse.Namespace) -> None:
    """ASR (public code protocol and naviewer's uniform one) and detection figures per seed and condition."""
    from naviewer.attacks.base import poison_mask
    from naviewer.workspace import Workspace

    protocols = ("code", "uniform")
    rows = []
    for seed in args.seeds:
        row = {"seed": seed}
        for label, path in (("no_defense", args.root / f"na-code-s{seed}"), ("floor", args.root / f"floor-s{seed}")):
            with Workspace.open(path) as ws:
                row[label] = _asr(ws.checkpoint_dir("plain") / "last.pt", ws, protocols)
        for name in CONDITIONS:
            path = args.root / f"dift-{name}-s{seed}"
            if not (path / "workspace.toml").is_file():
                continue
            with Workspace.open(path) as ws:
                state = json.loads((path / "runs" / "dift" / "dift_state.json").read_text())
                det = state.get("detection") or {}
                truth = poison_mask(ws.read_ground_truth())
                anchors = ws.config["anchors"]
                poisoned = int(truth[np.asarray(anchors.get("indices") or [], dtype=np.int64)].sum())
                row[name] = {"status": state.get("status"), "flagged": det.get("flagged", 0),
                             "precision": det.get("final_precision"), "recall": det.get("final_recall"),
                             "epoch": state.get("epoch"), "poisoned_anchors": poisoned,
                             "anchors_dropped": det.get("anchors_dropped"),
                             "after": _asr(ws.checkpoint_dir("dift") / "last.pt", ws, protocols)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    (args.root / "anchor_study.json").write_text(json.dumps(rows, indent=1))


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def table(args: argparse.Namespace) -> None:
    """The markdown table of docs/results.md from anchor_study.json."""
    rows = json.loads((args.root / "anchor_study.json").read_text())
    names = {"labels-as-is": "(a) drawn from the labels, used as is (Eq. 6 mean)",
             "labels-screened": "(b) drawn from the labels, screened (naviewer's rule)",
             "trusted": "(c) trusted (clean set before poisoning)"}
    print("| seed | anchors | poisoned anchors (class 0) | dropped by the screen | flagged | precision (%) | recall (%) | "
          "ASR code before → after (%) | floor code (%) | ASR uniform before → after (%) | floor uniform (%) | "
          "kNN acc after (%) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        before, floor = row["no_defense"], row["floor"]
        for key, label in names.items():
            r = row.get(key)
            if r is None:
                continue
            after = r["after"]
            print(f"| {row['seed']} | {label} | {r['poisoned_anchors']} | {r.get('anchors_dropped') or 0} | "
                  f"{r['flagged']} | {_pct(r['precision'])} | {_pct(r['recall'])} | "
                  f"{_pct(before['code']['asr'])} → {_pct(after['code']['asr'])} | {_pct(floor['code']['asr'])} | "
                  f"{_pct(before['uniform']['asr'])} → {_pct(after['uniform']['asr'])} | {_pct(floor['uniform']['asr'])} | "
                  f"{_pct(after['code']['knn_acc'])} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("train")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--which", choices=["both", "attacked", "floor"], default="both")
    p.set_defaults(func=train)
    p = sub.add_parser("dift")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    p.set_defaults(func=dift)
    p = sub.add_parser("clean")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=clean_dift)
    p = sub.add_parser("evaluate")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.set_defaults(func=evaluate)
    p = sub.add_parser("table")
    p.add_argument("--root", type=Path, required=True)
    p.set_defaults(func=table)
    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
