"""Reproduce the DIFT evaluation end to end (docs/dift.md, Evaluation and Baselines) on one attack and one SSL method.

craft (anchors drawn first) -> train with no defense -> evaluate -> B1 (DBSCAN on the no-defense
encoder's features, then retrain from scratch on what it kept) -> evaluate -> B2 (B1's retrained
encoder pruned with CLP, data-free) -> evaluate -> train with DIFT in the loop
(auto-accepted flags, Eq. 7 fine-tuning, restart) -> evaluate. Every stage is timed.

Clean accuracy: weighted kNN (k=200, T=0.1, cosine, bank = the clean labelled training set) and a
linear probe (reported after its last epoch, none selected on the test set); ASR with the attack's
test-time trigger on the clean test set, both ASR_nt (non-target images predicted as the target)
and ASR_all (CTRL's definition, all images). Detection: precision
and recall of the DIFT buffer (before label spreading) and of the final set (after), of B1's flags,
and of a single post-hoc DIFT pass on the no-defense encoder.

Writes ``OUT/results.md`` (tables, with accuracy and ASR drops against no defense as in DIFT
Table 2) and ``OUT/results.json`` (the same numbers), the workspace in ``OUT/workspace`` (runs
``nodefense``, ``b1``, ``dift``; B2's pruned encoder is ``checkpoints/b2/last.pt``).
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class ReproduceConfig:
    dataset: str
    attack: str = "patch"
    attack_settings: dict = field(default_factory=dict)
    method: str = "simclr"
    epochs: int = 20
    train: dict = field(default_factory=dict)      # TrainConfig overrides (backbone, image_size, batch_size...)
    dift: dict = field(default_factory=dict)       # DiftConfig overrides
    seed: int = 0
    anchors_per_class: int = 10
    baselines: Sequence[str] = ("dbscan",)
    clp_u: Optional[float] = 3.0                   # B2's CLP threshold; None skips B2
    linear: bool = True
    device: str = "auto"
    command: str = ""
    anchors: Optional[str] = None                  # --anchors SPEC (None: the clean set before poisoning)
    test_protocol: Optional[str] = None            # the attack's test-time protocol of every ASR (None: uniform)
    floor: bool = True                             # also train the no-poison floor (same recipe, clean set)


def _evaluate(backbone, sets, image_size: int, linear: bool, device, ctx) -> dict:
    from naviewer.evaluation import evaluate_encoder

    test = sets.test if sets.test is not None else sets.train
    return evaluate_encoder(backbone, sets.train, test, sets.trigger_fn, sets.target, image_size=image_size,
                            device=device, k=200, temperature=0.1, linear=linear, ctx=ctx)


def _encoder(path: Path):
    from naviewer.ssl.checkpoints import load_encoder

    return load_encoder(path)


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100.0 * float(value):.1f}"


def _drop(before: Any, after: Any) -> str:
    """``before - after`` in percentage points, as DIFT's Table 2 reports drops."""
    if before is None or after is None:
        return "n/a"
    before, after = float(before), float(after)
    if math.isnan(before) or math.isnan(after):
        return "n/a"
    return f"{100.0 * (before - after):.1f}"


def _secs(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _check_before_crafting(config: ReproduceConfig) -> None:
    """What would fail only after the craft, the no-defense training and B1 (minutes to hours): a DIFT run that
    never detects, attack settings the attack refuses. Checked first (a sweep, session 17)."""
    from naviewer.attacks import make_attack
    from naviewer.defense.config import DiftConfig

    dift = DiftConfig(**{"seed": config.seed, **config.dift}).validate()
    start = dift.detection_start(int(config.epochs))
    if start >= int(config.epochs):
        raise NaviewerError(f"DIFT starts detecting at epoch {start + 1} but the runs have {config.epochs} "
                            f"epoch{'' if config.epochs == 1 else 's'}: it would never detect. Train for more epochs "
                            "(--epochs), or start DIFT earlier (--dift-start)")
    attack = make_attack(config.attack, **dict(config.attack_settings or {}))
    if config.test_protocol is not None:
        attack.test_trigger_fn(config.test_protocol)
    # the dataset, the target class, the anchors and the room DIFT needs: each failed only after OUT was made (after
    # the craft and the no-defense training, for the last), leaving a half-made OUT (a bad-input sweep, session 26)
    if config.anchors is not None:
        from naviewer.workflows.anchor_sources import parse_anchor_spec

        parse_anchor_spec(config.anchors)
    from naviewer.data import open_dataset

    dataset = open_dataset(config.dataset)
    names = list(getattr(dataset, "class_names", None) or [])
    target = (config.attack_settings or {}).get("target")
    if names and isinstance(target, int) and not 0 <= target < len(names):
        raise NaviewerError(f"--target {target} is not a class of this dataset ({len(names)} classes: 0-{len(names) - 1})",
                            config.dataset)
    drawn_inside = config.anchors is None or str(config.anchors).strip().lower() == "labels"  # else named / elsewhere
    anchors = int(config.anchors_per_class) * max(1, len(names)) if drawn_inside else 0
    if len(dataset) <= dift.k + anchors:
        raise NaviewerError(f"DIFT needs more than k + anchors = {dift.k} + {anchors} samples ({config.anchors_per_class} "
                            f"a class), the dataset has {len(dataset):,}: lower k (--dift-set k=N) or give a larger "
                            "dataset", config.dataset)


def reproduce(config: ReproduceConfig, out_dir: PathLike, ctx: Optional[JobContext] = None) -> dict:
    """Run every stage and write ``results.md`` / ``results.json`` into ``out_dir``; returns the record. A run that
    stops before its end leaves ``STOPPED.txt`` in ``out_dir`` saying where and why."""
    ctx = ensure_context(ctx)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        stopped = out / STOPPED_NOTE
        raise NaviewerError(("it holds a reproduction that stopped before its end (" + _first_line(stopped) + ")"
                             if stopped.is_file() else "output folder is not empty") + " (choose a new folder)", out)
    _check_before_crafting(config)
    out.mkdir(parents=True, exist_ok=True)
    where = {"stage": "setup"}
    try:
        return _reproduce_into(config, out, ctx, where)
    except BaseException as exc:  # a cancel, Ctrl-C or an error hours in: say in OUT what is there and why
        _note_stopped(out, where["stage"], exc)
        if isinstance(exc, NaviewerError):
            raise NaviewerError(f"{exc.message} [reproduce stopped at '{where['stage']}'; what it made is kept in "
                                f"{out} ({STOPPED_NOTE}); run again with a new --out]", exc.path) from None
        raise


STOPPED_NOTE = "STOPPED.txt"


def _first_line(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, UnicodeDecodeError, IndexError):
        return "see " + path.name


def _note_stopped(out: Path, stage: str, exc: BaseException) -> None:
    """``OUT/STOPPED.txt``: where the run stopped and why (a half-made OUT/workspace was left without a word)."""
    from naviewer.jobs import JobCancelled

    why = ("cancelled" if isinstance(exc, (JobCancelled, KeyboardInterrupt)) else
           exc.message if isinstance(exc, NaviewerError) else f"{type(exc).__name__}: {exc}")
    try:
        (out / STOPPED_NOTE).write_text(
            f"stopped at '{stage}': {why}\n\nThis folder holds what naviewer reproduce made before it stopped "
            "(workspace/ is a naviewer workspace: open it to look). results.md was not written. Run the command "
            "again with a new --out.\n", encoding="utf-8")
    except OSError:
        pass  # the original error says more than a note that cannot be written


def _reproduce_into(config: ReproduceConfig, out: Path, ctx: JobContext, where: dict) -> dict:
    import torch

    from naviewer.defense.config import DiftConfig
    from naviewer.ssl.device import resolve_device
    from naviewer.ssl.trainer import TrainConfig
    from naviewer.workflows.dift_training import train_with_dift
    from naviewer.workflows.posthoc import posthoc_detect
    from naviewer.workflows.workspace_setup import create_attacked_workspace, evaluation_sets

    device = resolve_device(config.device)
    threads = (config.train or {}).get("num_threads")
    if threads:  # set now, not at the first trainer: craft, B1 and the evaluations use it too, and the table says it
        torch.set_num_threads(int(threads))
    times: dict[str, float] = {}
    record: dict[str, Any] = {"config": {k: (list(v) if isinstance(v, tuple) else v)
                                         for k, v in config.__dict__.items()},
                              "machine": {"device": str(device), "torch": torch.__version__,
                                          "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                                          "platform": platform.platform()}}

    def stage(name: str):
        where["stage"] = name
        ctx.event("log", message=f"== {name}")
        return time.perf_counter()

    # 1. craft
    t = stage("craft")
    setup = create_attacked_workspace(out / "workspace", config.dataset, config.attack, config.attack_settings,
                                      seed=config.seed, anchors_per_class=config.anchors_per_class,
                                      anchors=config.anchors, test_protocol=config.test_protocol, ctx=ctx)
    ws = setup.workspace
    times["craft + workspace"] = time.perf_counter() - t
    try:
        gt = ws.read_ground_truth() or {}
        record["attack"] = {"name": config.attack, "num_poisons": setup.num_poisons, "size": setup.size,
                            "poison_rate": gt.get("poison_rate"), "target": gt.get("target_class"),
                            "settings": gt.get("settings")}
        sets = evaluation_sets(ws, ctx)
        if sets is None:
            raise NaviewerError("the clean dataset has no labels to evaluate with", config.dataset)
        # the attack papers' toolbox trains every method with MoCo v2's aug+ (set train.augment_recipe to change it)
        values = dict(method=config.method, epochs=config.epochs, seed=config.seed, device=config.device,
                      knn_every=0, checkpoint_every=0, augment_recipe="aug+")
        values.update(config.train)
        train_config = TrainConfig(**values)
        # the paper's DIFT as written: its restart never falls back to a retrain (restart_fallback, a naviewer
        # addition for the workspace flow), unless the settings ask for it
        dift_config = DiftConfig(**{"seed": config.seed, "restart_fallback": False, **config.dift}).validate()
        size = train_config.image_size
        results: dict[str, dict] = {}

        # 2. no defense
        t = stage("train: no defense")
        nodef = train_with_dift(ws, train_config, run="nodefense", dift=False, monitor=False, ctx=ctx)
        times["train: no defense"] = time.perf_counter() - t
        t = stage("evaluate: no defense")
        results["none"] = _evaluate(_encoder(nodef.checkpoint).backbone, sets, size, config.linear, device, ctx)
        times["evaluate: no defense"] = time.perf_counter() - t

        # the no-poison floor: the same recipe on the clean set, the same trigger
        if config.floor:
            from naviewer.workflows.floor import train_floor

            t = stage("train: no-poison floor (clean set)")
            floor = train_floor(ws, train_config, ctx)
            times["train: no-poison floor"] = time.perf_counter() - t
            results["floor"] = {"knn_acc": floor["knn_acc"], "knn_asr_nt": floor["asr"], "knn_asr_all": floor["asr_all"]}
        record["test_protocol"] = sets.protocol or "uniform"
        record["anchors"] = dict(ws.config.get("anchors") or {}, indices=None, labels=None, clean_ids=None)

        # 3. B1: DBSCAN (+ a post-hoc DIFT pass) on the no-defense encoder, then retrain from scratch
        t = stage("detect: post-hoc DIFT + B1 on the no-defense encoder")
        post = posthoc_detect(ws, nodef.checkpoint, config=dift_config, run="nodefense", tag="final",
                              baselines=tuple(config.baselines), image_size=size, device=device, ctx=ctx)
        times["detect: post-hoc DIFT + B1"] = time.perf_counter() - t
        record["posthoc_dift"] = post.summary
        record["b1_detection"] = post.baseline_metrics
        b1_method = config.baselines[0] if config.baselines else None
        if b1_method is not None:
            flagged = post.baselines[b1_method].flagged
            t = stage(f"train: B1 ({b1_method} filtering + retraining)")
            b1 = train_with_dift(ws, train_config, run="b1", dift=False, monitor=False, exclude=flagged, ctx=ctx)
            times["train: B1 retrain"] = time.perf_counter() - t
            t = stage("evaluate: B1")
            results["b1"] = _evaluate(_encoder(b1.checkpoint).backbone, sets, size, config.linear, device, ctx)
            results["b1"]["removed"] = int(flagged.size)
            times["evaluate: B1"] = time.perf_counter() - t

            # B2: B1's retrained encoder, pruned with CLP (no data), then evaluated the same way
            if config.clp_u is not None:
                from naviewer.defense.clp import prune_checkpoint

                t = stage(f"B2: CLP pruning (u={config.clp_u:g}) of the B1 encoder")
                b2_path, clp = prune_checkpoint(b1.checkpoint, ws.checkpoint_dir("b2") / "last.pt", config.clp_u,
                                                ctx=ctx)
                times["B2: CLP pruning"] = time.perf_counter() - t
                ctx.event("log", message=clp.summary())
                t = stage("evaluate: B2")
                results["b2"] = _evaluate(_encoder(b2_path).backbone, sets, size, config.linear, device, ctx)
                results["b2"]["removed"] = int(flagged.size)
                results["b2"]["pruned_channels"] = clp.pruned
                times["evaluate: B2"] = time.perf_counter() - t
                record["b2_clp"] = {**clp.to_dict(), "checkpoint": str(b2_path)}

        # 4. DIFT in the loop
        t = stage("train: DIFT (detect, fine-tune, restart)")
        dift = train_with_dift(ws, train_config, dift_config, run="dift", accept_all=True, monitor=False, ctx=ctx)
        times["train: DIFT (total)"] = time.perf_counter() - t
        if "detection" in dift.timings:
            times["  of which DIFT detection"] = dift.timings["detection"]
        if "finetune" in dift.timings:
            times["  of which DIFT fine-tuning"] = dift.timings["finetune"]
        t = stage("evaluate: DIFT")
        results["dift"] = _evaluate(_encoder(dift.checkpoint).backbone, sets, size, config.linear, device, ctx)
        results["dift"]["removed"] = int((dift.finetune or {}).get("removed", 0))
        times["evaluate: DIFT"] = time.perf_counter() - t
        record["dift"] = {"status": dift.status, "detection": dift.detection, "finetune": dift.finetune,
                          "pass_id": dift.pass_id, "per_epoch": dift_epoch_history(ws.path / "runs" / "dift")}
        record["results"] = results
        record["times_s"] = times
        record["total_s"] = sum(v for k, v in times.items() if not k.startswith("  "))
    finally:
        ws.close()
    (out / "results.json").write_text(json.dumps(record, indent=2, default=_json_default) + "\n", encoding="utf-8")
    (out / "results.md").write_text(results_markdown(record), encoding="utf-8")
    return record


def dift_epoch_history(run_dir: Path) -> list[dict]:
    """``dift_*`` values of every detection epoch of a run (from its metrics.jsonl)."""
    from naviewer.workspace import read_metrics

    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    records, _ = read_metrics(path)
    return [{k: r[k] for k in ("epoch", "dift_detected", "dift_candidates", "dift_precision", "dift_recall") if k in r}
            for r in records if r.get("kind") == "epoch" and "dift_detected" in r]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def results_markdown(record: dict) -> str:
    """The tables of a reproduction record (``results.md``)."""
    cfg = record["config"]
    attack = record.get("attack", {})
    res = record.get("results", {})
    lines = [f"### {cfg['attack']} / {cfg['method']}, {cfg['epochs']} epochs, {Path(str(cfg['dataset'])).name}", ""]
    if cfg.get("command"):
        lines += ["```", cfg["command"], "```", ""]
    lines += [f"Poisons: {attack.get('num_poisons')} of {attack.get('size')} training images "
              f"({_pct(attack.get('poison_rate'))}%), target class {attack.get('target')}. "
              f"Device: {record['machine']['device']}, torch threads {record['machine']['threads']}.", ""]
    lines += ["| defense | kNN ACC (%) | linear ACC (%) | kNN ASR_nt (%) | kNN ASR_all (%) | linear ASR_nt (%) | "
              "linear ASR_all (%) | removed |", "|---|---|---|---|---|---|---|---|"]
    names = {"none": "no defense", "b1": "B1 (DBSCAN filter + retrain)", "b2": "B2 (B1 + CLP pruning)",
             "dift": "DIFT", "floor": "no-poison floor (same recipe, clean set)"}
    for key in ("none", "b1", "b2", "dift", "floor"):
        r = res.get(key)
        if r is None:
            continue
        lines.append(f"| {names[key]} | {_pct(r.get('knn_acc'))} | {_pct(r.get('linear_acc'))} | "
                     f"{_pct(r.get('knn_asr_nt'))} | {_pct(r.get('knn_asr_all'))} | {_pct(r.get('linear_asr_nt'))} | "
                     f"{_pct(r.get('linear_asr_all'))} | {r.get('removed', 0)} |")
    lines += ["", f"ASR uses the attack's {record.get('test_protocol') or 'uniform'} test-time protocol"
              + ("; read every ASR against the no-poison floor's." if "floor" in res else
                 "; no floor was measured (naviewer run WORKSPACE --floor).")]
    anchors = record.get("anchors") or {}
    if anchors:
        lines += ["", f"DIFT's anchors: {anchors.get('source')}"
                  + ("" if anchors.get("trusted", True) else " - NOT trusted (drawn from the suspect set's labels)") + "."]
    clp = record.get("b2_clp")
    if clp:
        layers = clp.get("layers") or []
        lines += ["", f"B2: CLP (u={clp.get('u'):g}) zeroed {clp.get('pruned')} of {clp.get('channels')} BatchNorm "
                      f"channels in {sum(1 for layer in layers if layer.get('pruned'))} of {len(layers)} layers of the "
                      "B1 encoder (data-free)."]
    base = res.get("none")
    others = [key for key in ("b1", "b2", "dift") if key in res]
    if base and others:
        lines += ["", "Drops against no defense, in points (DIFT Table 2's Acc Drop / ASR Drop; kNN classifier):", "",
                  "| defense | ACC (%) | ACC drop | ASR_nt (%) | ASR_nt drop | ASR_all (%) | ASR_all drop |",
                  "|---|---|---|---|---|---|---|"]
        for key in others:
            r = res[key]
            lines.append(f"| {names[key]} | {_pct(r.get('knn_acc'))} | {_drop(base.get('knn_acc'), r.get('knn_acc'))} | "
                         f"{_pct(r.get('knn_asr_nt'))} | {_drop(base.get('knn_asr_nt'), r.get('knn_asr_nt'))} | "
                         f"{_pct(r.get('knn_asr_all'))} | {_drop(base.get('knn_asr_all'), r.get('knn_asr_all'))} |")
    lines += ["", "Detection against the ground truth:", "",
              "| detector | flagged | precision (%) | recall (%) |", "|---|---|---|---|"]
    det = (record.get("dift") or {}).get("detection") or {}
    status = (record.get("dift") or {}).get("status")
    if det:
        lines.append(f"| DIFT in training: buffer B (before label spreading) | {det.get('buffer_count', det.get('buffer'))} | "
                     f"{_pct(det.get('buffer_precision'))} | {_pct(det.get('buffer_recall'))} |")
        lines.append(f"| DIFT in training: final (after label spreading) | {det.get('final_count', det.get('flagged'))} | "
                     f"{_pct(det.get('final_precision'))} | {_pct(det.get('final_recall'))} |")
    else:
        history = (record.get("dift") or {}).get("per_epoch") or []
        counts = ", ".join(str(h.get("dift_detected")) for h in history)
        lines.append(f"| DIFT in training: buffer never stable, no label spreading or fine-tuning (size of B per detection "
                     f"epoch: {counts or 'none'}) | 0 | n/a | n/a |")
    post = record.get("posthoc_dift") or {}
    if post:
        lines.append(f"| DIFT post-hoc on the no-defense encoder: candidates (densest {post.get('candidates')}) | "
                     f"{post.get('candidates_count', post.get('candidates'))} | {_pct(post.get('candidates_precision'))} | "
                     f"{_pct(post.get('candidates_recall'))} |")
        lines.append(f"| DIFT post-hoc on the no-defense encoder: final (one pass + label spreading) | {post.get('final_count', post.get('flagged'))} | "
                     f"{_pct(post.get('final_precision'))} | {_pct(post.get('final_recall'))} |")
    for method, m in (record.get("b1_detection") or {}).items():
        lines.append(f"| B1 {method} on the no-defense encoder | {m.get('flagged')} | {_pct(m.get('precision'))} | "
                     f"{_pct(m.get('recall'))} |")
    lines += ["", "Time per stage:", "", "| stage | seconds |", "|---|---|"]
    for name, value in (record.get("times_s") or {}).items():
        lines.append(f"| {name} | {_secs(value)} |")
    lines.append(f"| total | {_secs(record.get('total_s'))} |")
    ft = (record.get("dift") or {}).get("finetune") or {}
    if ft:
        info = ft.get("finetune") or {}
        lines += ["", f"DIFT fine-tuning: {ft.get('removed')} confirmed samples removed, {info.get('steps', 0)} Eq. 7 "
                      f"steps, restart with {ft.get('remaining_epochs')} epochs left."]
    return "\n".join(lines) + "\n"
