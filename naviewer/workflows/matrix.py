"""The detection matrix: attacks x SSL methods x seeds on the built-in digits, every detector per cell.

One **cell** = one attack row, one method, one seed, one thread count, trained with the demo's recipe
(:class:`~naviewer.workflows.demo.DemoConfig`: 16 px digits, ResNet-10 width 16, 50 epochs, DIFT in the
loop from epoch 30 with the anchors drawn from the clean set before poisoning). Per cell:

1. craft the attack into a fresh workspace (``cells/<key>/workspace``);
2. train with DIFT in the loop until its flags are stable (the run stops for review, as in the demo;
   when DIFT never stabilises the run trains to the end, which is then the no-defense run);
3. **before**: kNN accuracy and the ASR of every test-time protocol of the attack on that encoder
   (the detection epoch's, or the last when DIFT never acted);
4. **detectors**: every registered post-hoc detector on that encoder's embeddings (AUROC, flags,
   precision/recall against the ground truth), DIFT's own post-hoc pass included;
5. **after**: every in-training flag confirmed (as ``--accept-all``), Eq. 7 fine-tuning and the
   restart of the recipe (``retrain``: re-initialise and train the whole budget on the kept
   samples); optionally the paper's ``continue`` restart from a copy taken before step 5;
6. **floor**: the same recipe trained on the clean set (once per method, seed and thread count,
   ``floors/<key>.pt``), measured with this cell's trigger and protocols; ``floors`` > 1 adds fresh
   trainings of it (seed + 1000 x r, ``floors/<key>-r<r>.pt``), since one floor draw is as noisy as one retrain.

Each cell writes ``cells/<key>/cell.json`` when it is done; the matrix skips done cells and restarts
unfinished ones from scratch, so an interrupted run resumes where it stopped. ``matrix.md`` and
``matrix.json`` are rewritten after every cell. Detectors can be re-scored on the saved encoders
without training again (:func:`rescore`).
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

from naviewer.errors import NaviewerError
from naviewer.io import json_loads
from naviewer.jobs import JobContext, ensure_context

PathLike = Union[str, "os.PathLike[str]"]
CELL_FILE = "cell.json"
SCHEMA = 1


@dataclass(frozen=True)
class AttackRow:
    """One row of the matrix: an attack, its settings beyond rate/target, the protocol its ASR headlines."""

    attack: str
    settings: dict
    protocol: str
    note: str


#: The issue's rows. Trigger 8 px (half a 16 px digit tile) where the attack has a patch trigger.
ATTACK_ROWS: dict[str, AttackRow] = {
    "na-paper": AttackRow("na", {"layout": "paper", "trigger_size": 8}, "paper",
                          "Noisy Alignment, the paper's layout (2r x r, opaque trigger at the shadow's centre)"),
    "na-code": AttackRow("na", {"layout": "code", "opacity": 0.8, "trigger_size": 8}, "code",
                         "Noisy Alignment as the released code crafts it (45-55 % placement, 80 % opacity)"),
    "patch": AttackRow("patch", {"trigger_size": 8}, "paper", "SSL-Backdoor patch (Saha et al.)"),
    "ctrl": AttackRow("ctrl", {}, "paper", "CTRL frequency-domain trigger"),
    "corruptencoder": AttackRow("corruptencoder", {"trigger_size": 8}, "paper", "CorruptEncoder composites"),
}
MATRIX_METHODS = ("simclr", "mocov2", "byol", "simsiam")
#: post-hoc detectors scored in every cell (DIFT's own post-hoc pass is always added)
MATRIX_DETECTORS = ("kdist", "lid", "slof", "dao", "dbscan", "crop_density", "patchsearch")


@dataclass(frozen=True)
class Cell:
    row: str
    method: str = "simclr"
    seed: int = 0
    threads: int = 2

    @property
    def key(self) -> str:
        return f"{self.row}-{self.method}-s{self.seed}-t{self.threads}"

    @property
    def floor_key(self) -> str:
        return f"{self.method}-s{self.seed}-t{self.threads}"

    @classmethod
    def parse(cls, text: str) -> "Cell":
        """``ROW[:METHOD[:SEED[:THREADS]]]``, e.g. ``na-code:simclr:1``."""
        parts = text.strip().split(":")
        if len(parts) > 4:  # a fifth part was ignored (a sweep, session 17)
            raise NaviewerError(f"bad matrix cell {text!r}: write ROW[:METHOD[:SEED[:THREADS]]]")
        if not parts[0] or parts[0] not in ATTACK_ROWS:
            raise NaviewerError(f"unknown matrix row {parts[0]!r}; choose from {', '.join(ATTACK_ROWS)}")
        try:
            method = parts[1] if len(parts) > 1 and parts[1] else "simclr"
            seed = int(parts[2]) if len(parts) > 2 and parts[2] else 0
            threads = int(parts[3]) if len(parts) > 3 and parts[3] else 2
        except ValueError:
            raise NaviewerError(f"bad matrix cell {text!r}: write ROW[:METHOD[:SEED[:THREADS]]]") from None
        if method not in MATRIX_METHODS:
            raise NaviewerError(f"unknown method {method!r} in cell {text!r}; choose from {', '.join(MATRIX_METHODS)}")
        if threads < 1:
            raise NaviewerError(f"threads must be >= 1 in cell {text!r}")
        if not 0 <= seed < 2**32:  # -1 ended in numpy's traceback after the cell's folder was made (a sweep)
            raise NaviewerError(f"seed must be 0 .. {2**32 - 1} in cell {text!r}")
        return cls(parts[0], method, seed, threads)


def default_plan() -> list[Cell]:
    """The issue's cells, most telling first (a partial run still answers the main question):
    every attack under SimCLR (seed 0), the two NA rows on seeds 1-2, the demo's row on one thread
    (the demo must hold at 1 and 2 threads), then the other methods."""
    rows = ["na-code", "na-paper"] + [r for r in ATTACK_ROWS if not r.startswith("na-")]
    cells = [Cell(r) for r in rows]
    cells += [Cell(r, "simclr", s) for s in (1, 2) for r in ("na-code", "na-paper")]
    cells += [Cell("na-paper", "simclr", s, 1) for s in (0, 1, 2)]
    cells += [Cell(r, m) for m in MATRIX_METHODS[1:] for r in rows]
    return cells


@dataclass
class MatrixConfig:
    cells: Sequence[Cell] = field(default_factory=default_plan)
    recipe: dict = field(default_factory=dict)              # DemoConfig overrides (epochs, width, ...)
    detectors: Sequence[str] = MATRIX_DETECTORS
    restarts: Sequence[str] = ("retrain",)                  # add "continue" for the paper's restart too, "oracle"
                                                            # for the retrain with every poison removed
    floor: bool = True
    rate: float = 0.08
    device: str = "auto"
    #: retrains (and oracle retrains) per cell: one retrain's ASR moves by about 10 points from one training
    #: to the next, the size of the "within 10 points of the floor" criterion; the repeats are fresh
    #: trainings of the same kept set, the seed offset by 1000 x r (after: ``retrain_repeats``). Raising it on a
    #: finished matrix adds the missing retrain (and oracle) draws to its done cells
    retrains: int = 1
    #: draws of the no-poison floor per floor key (the first is the floor, the others fresh trainings of the same
    #: clean set with the seed offset by 1000 x r); the goal compares the retrains' mean to the floors' mean.
    #: Raising it on a finished matrix adds the missing draws to its done cells (no other training)
    floors: int = 1


# -- one cell --------------------------------------------------------------------------------------

def _demo_config(cell: Cell, config: MatrixConfig):
    from naviewer.workflows.demo import DemoConfig

    from naviewer.workflows.demo import DEMO_DIFT_SETTINGS

    row = ATTACK_ROWS[cell.row]
    values = {"na_references": None,  # the matrix crafts with the row's settings (one NA reference a poison), and
              # its records say so; --set na_references / attack_extra change it
              **dict(config.recipe), "method": cell.method, "seed": cell.seed, "threads": cell.threads,
              "attack": row.attack, "test_protocol": row.protocol, "rate": config.rate, "device": config.device}
    # a recipe's dift_settings add to the demo's (its restart, label spreading reach), not replace them
    values["dift_settings"] = {**DEMO_DIFT_SETTINGS, **dict(config.recipe.get("dift_settings") or {})}
    return DemoConfig.from_overrides(values)


def _create_workspace(path: Path, cell: Cell, demo, ctx: JobContext):
    from naviewer.workflows.workspace_setup import create_attacked_workspace

    row = ATTACK_ROWS[cell.row]
    settings = {"rate": float(demo.rate), "target": int(demo.target), **row.settings}
    if "trigger_size" in settings:
        settings["trigger_size"] = int(demo.trigger_size)  # the recipe's (8 px by default, half a digit tile)
    if row.attack == "na" and demo.na_references is not None:
        settings["num_references"] = int(demo.na_references)
    settings.update(demo.attack_extra)  # --set attack_extra={...}: the row's attack with other settings
    setup = create_attacked_workspace(path, demo.dataset_spec(), row.attack, settings, seed=cell.seed,
                                      test_dataset=demo.dataset_spec(), test_protocol=row.protocol, ctx=ctx)
    setup.workspace.update_config("demo", {k: v for k, v in asdict(demo).items() if v is not None})
    setup.workspace.update_config("matrix", {"cell": cell.key, "row": cell.row})
    return setup


class _Evaluator:
    """kNN accuracy and ASR under every test-time protocol of the cell's attack (sets loaded once)."""

    def __init__(self, ws, ctx: JobContext, device) -> None:
        from naviewer.attacks import make_attack
        from naviewer.workflows.workspace_setup import evaluation_sets

        self.sets = evaluation_sets(ws, ctx)
        if self.sets is None:
            raise NaviewerError("the matrix cell's workspace has no evaluation sets", ws.config_path)
        recipe = ws.config.get("attack") or {}
        self.attack = make_attack(recipe["name"], **dict(recipe.get("settings") or {}))
        self.ws, self.ctx, self.device = ws, ctx, device

    def __call__(self, checkpoint: Path) -> dict:
        from naviewer.ssl.checkpoints import load_encoder
        from naviewer.workflows.workspace_setup import evaluate_on_sets

        encoder = load_encoder(checkpoint)
        out: dict[str, Any] = {"asr": {}, "asr_all": {}}
        for protocol in self.attack.test_protocols:
            sets = replace(self.sets, trigger_fn=self.attack.test_trigger_fn(protocol), protocol=protocol)
            result = evaluate_on_sets(encoder.backbone, sets, encoder.image_size, self.device, self.ctx,
                                      train_as_test=True)
            out["knn_acc"] = result.get("knn_acc")
            out["asr"][protocol] = result.get("asr")
            out["asr_all"][protocol] = result.get("asr_all")
        return out


def score_detectors(ws, checkpoint: Path, demo, detectors: Sequence[str], device, ctx: JobContext) -> dict:
    """Every detector's figures on ``checkpoint``'s embeddings of the cell's workspace (plus DIFT post-hoc)."""
    from naviewer.evaluation.detection import auroc, detection_metrics
    from naviewer.workflows.posthoc import posthoc_detect
    from naviewer.workflows.workspace_setup import ground_truth_mask

    config = demo.dift_config()
    post = posthoc_detect(ws, checkpoint, config=config, run="matrix-posthoc", device=device, ctx=ctx,
                          detectors=tuple(detectors))
    out = {name: {k: v for k, v in m.items() if k != "threshold"} for name, m in post.detector_metrics.items()}
    truth = ground_truth_mask(ws)
    result = post.result
    if truth is not None and result is not None:
        density = -np.log(np.maximum(result.detection.knn.kth_distance[:truth.size].astype(np.float64), 1e-12))
        flags = np.asarray(result.final_ids, dtype=np.int64)
        d = detection_metrics(flags, truth)
        high = auroc(density, truth)
        out["dift-posthoc"] = {"flagged": int(flags.size), "auroc": high,
                               "auroc_reversed": None if high is None else 1.0 - high,
                               "precision": d.precision, "recall": d.recall}
    return out


def _floor(cell: Cell, ws, demo, out_dir: Path, evaluator: _Evaluator, ctx: JobContext) -> dict:
    """The no-poison floor of the cell's recipe (trained once per floor key) under the cell's protocols."""
    from naviewer.workflows.floor import train_floor

    path = out_dir / "floors" / f"{cell.floor_key}.pt"
    if not path.is_file():
        ctx.event("log", message=f"== no-poison floor {cell.floor_key} (the same recipe on the clean set)")
        train_floor(ws, demo.train_config(), ctx)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        shutil.copyfile(ws.checkpoint_dir("floor") / "last.pt", tmp)
        os.replace(tmp, path)
    return {**evaluator(path), "checkpoint": str(path.relative_to(out_dir))}


def _floor_repeat(cell: Cell, demo, out_dir: Path, evaluator: _Evaluator, ctx: JobContext, repeat: int) -> dict:
    """Draw ``repeat`` (>= 1) of the cell's floor: the recipe trained afresh on the clean set, its seed offset by
    1000 x ``repeat`` (``floors/<key>-r<repeat>.pt``, shared by the cells of one floor key)."""
    import dataclasses

    from naviewer.ssl.trainer import build_trainer

    base = demo.train_config()
    config = dataclasses.replace(base, seed=int(base.seed) + 1000 * int(repeat))
    path = out_dir / "floors" / f"{cell.floor_key}-r{int(repeat)}.pt"
    if not path.is_file():
        ws = evaluator.ws
        name = f"floor-r{int(repeat)}"
        ctx.event("log", message=f"== no-poison floor {cell.floor_key}, draw {repeat + 1} (seed {config.seed})")
        if (ws.path / "runs" / name).exists():  # cut short before: begun again (its checkpoint may be half a training)
            shutil.rmtree(ws.path / "runs" / name)
            shutil.rmtree(ws.checkpoint_dir(name), ignore_errors=True)
        trainer = build_trainer(config, evaluator.sets.train, ws.run_dir(name), checkpoint_dir=ws.checkpoint_dir(name))
        trainer.fit(ctx)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        shutil.copyfile(ws.checkpoint_dir(name) / "last.pt", tmp)
        os.replace(tmp, path)
    return {**evaluator(path), "checkpoint": str(path.relative_to(out_dir)), "seed": int(config.seed)}


def _floor_draws(cell: Cell, record: dict, demo, out_dir: Path, evaluator: _Evaluator, ctx: JobContext,
                 floors: int, saved: Optional[Any] = None) -> None:
    """Add the floor draws ``record`` lacks up to ``floors`` (``record["floor_repeats"]``); ``saved()`` after each
    (a top-up writes the record, so an interruption resumes at the next draw)."""
    repeats = record.setdefault("floor_repeats", [])
    for repeat in range(len(repeats) + 1, max(1, int(floors))):
        ctx.check()
        repeats.append(_floor_repeat(cell, demo, out_dir, evaluator, ctx, repeat))
        if saved is not None:
            saved()
    if not repeats:
        del record["floor_repeats"]


def _removal(ws, pass_id: int) -> np.ndarray:
    """What the cell's retrain removes: the DIFT pass's flags less those its trigger check cleared (as accept-all
    confirms them)."""
    from naviewer.workflows.trigger_check import cleared_flags

    removed = np.asarray(ws.store.pass_scores(int(pass_id)).get("flagged", []), dtype=bool).copy()
    removed[cleared_flags(ws, int(pass_id))] = False
    return removed


def run_cell(cell: Cell, config: MatrixConfig, out_dir: Path, ctx: Optional[JobContext] = None) -> dict:
    """Run one cell from scratch and write ``cells/<key>/cell.json`` (returned)."""
    import torch

    from naviewer.ssl.device import resolve_device
    from naviewer.workflows.demo import RUN, detection_quality, train_until_flags
    from naviewer.workflows.dift_training import resume_after_review
    from naviewer.workflows.trigger_check import cleared_flags, trigger_check_of
    from naviewer.workspace.runs import confirm_flags, read_state

    ctx = ensure_context(ctx)
    cell_dir = out_dir / "cells" / cell.key
    torch.set_num_threads(int(cell.threads))
    demo = _demo_config(cell, config)
    device = resolve_device(config.device)
    times: dict[str, float] = {}
    record: dict[str, Any] = {"schema": SCHEMA, "cell": asdict(cell), "key": cell.key, "status": "running",
                              "row": asdict(ATTACK_ROWS[cell.row]), "recipe": asdict(demo)}
    ws = _trained_workspace(cell_dir)
    if ws is None:  # nothing reusable: the cell starts from scratch
        if cell_dir.exists():
            shutil.rmtree(cell_dir)
        cell_dir.mkdir(parents=True)
        t = time.perf_counter()
        setup = _create_workspace(cell_dir / "workspace", cell, demo, ctx)
        ws = setup.workspace
        times["craft"] = time.perf_counter() - t
    else:
        record["resumed"] = "after training (the run had stopped for review)"
        ctx.event("log", message=f"== {cell.key}: training was done before; going on from its review stop")
    try:
        from naviewer.workflows.workspace_setup import ground_truth_mask

        truth = ground_truth_mask(ws)
        record["poisons"], record["size"] = int(0 if truth is None else truth.sum()), int(ws.store.sample_count())
        evaluator = _Evaluator(ws, ctx, device)
        if "resumed" not in record:
            ctx.event("log", message=f"== {cell.key}: train with DIFT until its flags are stable")
            t = time.perf_counter()
            outcome = train_until_flags(ws, demo, ctx)
            times["train until flags"] = time.perf_counter() - t
            status, pass_id = outcome.status, outcome.pass_id
        state = read_state(ws, RUN) or {}
        if "resumed" in record:
            status, pass_id = str(state.get("status")), state.get("pass_id")
        dift: dict[str, Any] = {"status": status, "pass_id": pass_id, "epoch": state.get("epoch")}
        if pass_id is not None:
            dift.update(detection_quality(ws, int(pass_id)))
            check = trigger_check_of(ws, int(pass_id))
            if check is not None:  # what accept-all leaves unconfirmed (and, against the truth, what that is)
                dift["trigger_check"] = {"patchsearch_pass": check.patchsearch_pass, "reached": check.reached,
                                         "share": check.share, "cleared": int(check.cleared.size),
                                         **({"cleared_poisons": int(truth[check.cleared].sum())}
                                            if truth is not None else {})}
        record["dift"] = dift
        checkpoint = ws.checkpoint_dir(RUN) / "last.pt"
        t = time.perf_counter()
        record["before"] = evaluator(checkpoint)
        keep = cell_dir / "detection-epoch.pt"  # the encoder the detectors score (rescore reads it)
        shutil.copyfile(checkpoint, keep)
        times["evaluate before"] = time.perf_counter() - t
        t = time.perf_counter()
        record["detectors"] = score_detectors(ws, checkpoint, demo, config.detectors, device, ctx)
        times["detectors"] = time.perf_counter() - t
        record["after"] = {}
        if status == "awaiting_review" and pass_id is not None:
            if "continue" in config.restarts:
                ws.close()
                shutil.copytree(cell_dir / "workspace", cell_dir / "workspace-continue")
                ws = _open(cell_dir / "workspace")
            confirm_flags(ws, int(pass_id), leave=cleared_flags(ws, int(pass_id)))  # as accept-all does
            if "retrain" in config.restarts:
                t = time.perf_counter()
                done = resume_after_review(ws, RUN, monitor=False, dift_overrides={"restart_mode": "retrain"},
                                           ctx=ctx)
                times["remove + retrain"] = time.perf_counter() - t
                record["after"]["retrain"] = {**evaluator(done.checkpoint),
                                              "removed": int((done.finetune or {}).get("removed", 0))}
            flagged = _removal(ws, int(pass_id))  # the retrain's removal, drawn again below
            second = None  # accept-all's second round (the recipe's check after the retrain), drawn as the first
            if "retrain" in config.restarts and demo.dift_config().check_after_retrain:
                t = time.perf_counter()
                record["after"]["check"], second = _check_after_first_retrain(ws, flagged, truth, device, ctx)
                if second is not None:
                    record["after"]["second"] = _kept_retrain(ws, second, demo, evaluator, ctx, "second-0", 0)
                times["check after the retrain"] = time.perf_counter() - t
            oracle = None if truth is None else np.asarray(truth, dtype=bool) | flagged  # every poison out
            if "oracle" in config.restarts and oracle is not None:
                t = time.perf_counter()
                record["after"]["oracle"] = _oracle_retrain(ws, oracle, demo, evaluator, ctx)
                times["oracle retrain"] = time.perf_counter() - t
            for repeat in range(1, max(1, int(config.retrains))):
                t = time.perf_counter()
                if "retrain" in config.restarts:
                    record["after"].setdefault("retrain_repeats", []).append(
                        _kept_retrain(ws, flagged, demo, evaluator, ctx, f"retrain-{repeat}", repeat))
                if "oracle" in config.restarts and oracle is not None:
                    record["after"].setdefault("oracle_repeats", []).append(
                        _kept_retrain(ws, oracle, demo, evaluator, ctx, f"oracle-{repeat}", repeat))
                if second is not None:
                    record["after"].setdefault("second_repeats", []).append(
                        _kept_retrain(ws, second, demo, evaluator, ctx, f"second-{repeat}", repeat))
                times[f"repeat {repeat}"] = time.perf_counter() - t
            if "continue" in config.restarts:
                other = _open(cell_dir / "workspace-continue")
                try:
                    confirm_flags(other, int(pass_id), leave=cleared_flags(other, int(pass_id)))
                    t = time.perf_counter()
                    done = resume_after_review(other, RUN, monitor=False,
                                               dift_overrides={"restart_mode": "continue", "restart_fallback": False},
                                               ctx=ctx)
                    times["fine-tune + paper restart"] = time.perf_counter() - t
                    record["after"]["continue"] = {**evaluator(done.checkpoint),
                                                   "removed": int((done.finetune or {}).get("removed", 0))}
                finally:
                    other.close()
        if config.floor:
            t = time.perf_counter()
            record["floor"] = _floor(cell, ws, demo, out_dir, evaluator, ctx)
            _floor_draws(cell, record, demo, out_dir, evaluator, ctx, config.floors)
            times["floor"] = time.perf_counter() - t
    finally:
        ws.close()
    record["times_s"] = times
    record["machine"] = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
                         "cpus": os.cpu_count(), "platform": platform.platform()}
    record["status"] = "done"
    record["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    from naviewer.io import atomic_write_json

    atomic_write_json(cell_dir / CELL_FILE, record)
    return record


def _check_after_first_retrain(ws, removed: np.ndarray, truth: Optional[np.ndarray], device,
                               ctx: JobContext) -> tuple[dict, Optional[np.ndarray]]:
    """Accept-all's check after the retrain (:mod:`naviewer.workflows.check_after_retrain`) on the cell's first retrain:
    its record (the PatchSearch pass, what it flagged, the ids it added and how many are poisons) and the second
    removal (``removed`` and the added ids), or None when it added nothing (then the first removal's draws are the
    recipe's)."""
    from naviewer.workflows.check_after_retrain import check_after_retrain
    from naviewer.workflows.demo import RUN

    ctx.event("log", message="== the check after the retrain: PatchSearch on the retrained encoder")
    try:
        check = check_after_retrain(ws, RUN, ctx=ctx, device=device, retrain=False)
    except NaviewerError as exc:  # the cell keeps its first removal's draws (its most expensive part): said in it
        ctx.event("warning", message=f"the check after the retrain failed: {exc}")
        return {"error": str(exc)}, None
    added = np.asarray(check.added, dtype=np.int64)
    record = {"pass_id": check.pass_id, "flagged": check.flagged, "added": added.tolist(),
              **({"added_poisons": int(np.asarray(truth, bool)[added].sum())} if truth is not None else {})}
    if not added.size:
        return record, None
    second = removed.copy()
    second[added] = True
    return record, second


def _oracle_retrain(ws, removed: np.ndarray, demo, evaluator: "_Evaluator", ctx: JobContext) -> dict:
    """The retrain with EVERY poison removed (plus the clean samples DIFT flagged: ``removed``): the ASR removal
    could reach with perfect recall. Above the floor it says the gap is the retraining (the attack also took
    clean images out of the set), not missed poisons."""
    ctx.event("log", message=f"== oracle retrain: every poison and DIFT's clean flags removed ({int(removed.sum())})")
    return _train_kept(ws, removed, demo.train_config(), "oracle", evaluator, ctx)


def _kept_retrain(ws, removed: np.ndarray, demo, evaluator: "_Evaluator", ctx: JobContext, name: str,
                  repeat: int) -> dict:
    """A fresh training of the recipe on the samples ``removed`` leaves (seed + 1000 x ``repeat``): one more
    draw of the retrain's ASR for the same removal, so a cell's verdict is not one training's noise."""
    import dataclasses

    base = demo.train_config()
    config = dataclasses.replace(base, seed=int(base.seed) + 1000 * int(repeat))
    ctx.event("log", message=f"== {name}: a fresh training without the {int(removed.sum())} removed (seed {config.seed})")
    return {**_train_kept(ws, removed, config, name, evaluator, ctx), "seed": int(config.seed)}


def _train_kept(ws, removed: np.ndarray, train_config, name: str, evaluator: "_Evaluator", ctx: JobContext) -> dict:
    """Train ``train_config`` from scratch on the workspace samples not ``removed`` (run and checkpoints
    under ``name``) and evaluate its last checkpoint."""
    from naviewer.data.base import SubsetDataset
    from naviewer.data.store import ImageStore
    from naviewer.ssl.trainer import build_trainer

    if (ws.path / "runs" / name).exists():  # a draw cut short before: begun again, as the floor draws are
        shutil.rmtree(ws.path / "runs" / name)
        shutil.rmtree(ws.checkpoint_dir(name), ignore_errors=True)
    store = ImageStore.from_dataset(SubsetDataset(ws.dataset(), np.flatnonzero(~removed)), ctx)
    trainer = build_trainer(train_config, store, ws.run_dir(name), checkpoint_dir=ws.checkpoint_dir(name))
    trainer.fit(ctx)
    return {**evaluator(ws.checkpoint_dir(name) / "last.pt"), "removed": int(removed.sum())}


def _trained_workspace(cell_dir: Path):
    """The cell's open workspace when its training stage finished before (the run stopped for review,
    or ran to the end without flags) and nothing after it started; else None (start from scratch)."""
    from naviewer.workflows.demo import RUN
    from naviewer.workspace.runs import read_state

    if not (cell_dir / "workspace" / "workspace.toml").is_file():
        return None  # never made, or cut off while it was made: start over
    try:
        ws = _open(cell_dir / "workspace")
    except NaviewerError as exc:  # e.g. still open in another process: never delete it from under that one
        raise NaviewerError(f"matrix cell {cell_dir.name}: its workspace cannot be opened ({exc}); close what holds "
                            "it, or delete the folder to run the cell again", cell_dir) from None
    state = read_state(ws, RUN) or {}
    ready = ((state.get("status") == "awaiting_review" and state.get("pass_id") is not None)
             or (state.get("status") == "finished" and state.get("pass_id") is None))
    if ready and (ws.checkpoint_dir(RUN) / "last.pt").is_file() and not (cell_dir / "workspace-continue").exists():
        return ws
    ws.close()
    return None


def _open(path: Path):
    from naviewer.workspace import Workspace

    return Workspace.open(path)


# -- the whole matrix ------------------------------------------------------------------------------

def read_cells(out_dir: PathLike) -> list[dict]:
    """Every finished cell record under ``out_dir`` (sorted by key)."""
    records = []
    for path in sorted((Path(out_dir) / "cells").glob(f"*/{CELL_FILE}")):
        try:
            value = json_loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("status") == "done":
            records.append(value)
    return records


def run_matrix(config: MatrixConfig, out_dir: PathLike, ctx: Optional[JobContext] = None) -> list[dict]:
    """Every cell of ``config`` not yet done (resumable); ``matrix.md``/``matrix.json`` after each."""
    ctx = ensure_context(ctx)
    out = Path(out_dir)
    if out.is_dir() and any(out.iterdir()) and not ((out / "cells").is_dir() or (out / "matrix.json").is_file()):
        # an unrelated folder took the matrix's cells beside its own files (a sweep, session 17)
        raise NaviewerError("this folder holds other files and no matrix (no cells/, no matrix.json): give a new "
                            "folder, or the one a matrix ran in to go on with it", out)
    out.mkdir(parents=True, exist_ok=True)
    _check_attack_settings(config)  # before hours of cells: --set attack_extra must suit every planned row's attack
    done = {r["key"] for r in read_cells(out)}
    if (config.floor and int(config.floors) > 1) or int(config.retrains) > 1:
        _add_draws(config, out, done, ctx)
    todo = [c for c in config.cells if c.key not in done]
    total = len(config.cells)
    for i, cell in enumerate(todo):
        ctx.check()
        ctx.progress(total - len(todo) + i, total, f"matrix cell {cell.key}")
        ctx.event("log", message=f"=== matrix cell {total - len(todo) + i + 1}/{total}: {cell.key}")
        run_cell(cell, config, out, ctx)
        write_tables(out, config.cells)
    write_tables(out, config.cells)
    ctx.progress(total, total, "matrix done")
    return read_cells(out)


def _add_draws(config: MatrixConfig, out: Path, done: set, ctx: JobContext) -> None:
    """Give the planned cells done before with fewer floor, retrain or oracle draws than ``config.floors`` /
    ``config.retrains`` the missing ones (their own recipe, their workspace's trigger, the removal their review
    recorded): ``--floors 6 --retrains 6`` on a finished matrix trains those draws alone. Each cell's record is
    written after every draw, so an interrupted top-up resumes at the next draw. A cell whose removal can no longer
    be drawn again is passed over (its floors still drawn) and named at the end: it stopped the other cells before."""
    from naviewer.io import atomic_write_json

    passed_over: list[str] = []
    for cell in config.cells:
        path = out / "cells" / cell.key / CELL_FILE
        if cell.key not in done:
            continue
        record = json_loads(path.read_text(encoding="utf-8"))
        floors = config.floor and record.get("floor") is not None and \
            1 + len(record.get("floor_repeats") or []) < int(config.floors)
        after = record.get("after") or {}
        kinds = [kind for kind in ("retrain", "oracle", "second")
                 if (kind in config.restarts or kind == "second") and after.get(kind) is not None
                 and 1 + len(after.get(f"{kind}_repeats") or []) < int(config.retrains)]
        if not (floors or kinds):
            continue
        ctx.event("log", message=f"=== matrix cell {cell.key}: draws up to {int(config.floors)} floors, "
                                 f"{int(config.retrains)} {' and '.join(kinds) or 'retrain'}s")
        try:
            _draw_cell(config, cell, record, kinds, floors, out, ctx)
        except NaviewerError as exc:  # (the removal's own words name the cell; a floor's or an open's do not)
            passed_over.append(exc.message if cell.key in exc.message else f"matrix cell {cell.key}: {exc.message}")
            ctx.event("log", message=f"=== matrix cell {cell.key}: passed over: {exc.message}")
        atomic_write_json(path, record)
        write_tables(out, config.cells)
    if passed_over:
        raise NaviewerError("matrix: the other cells got their draws; not these: " + "; ".join(passed_over))


def _draw_cell(config: MatrixConfig, cell: Cell, record: dict, kinds: list[str], floors: bool, out: Path,
               ctx: JobContext) -> None:
    """The missing draws of one done cell: ``kinds`` (retrain, oracle, second) up to ``config.retrains``, then the floors
    when ``floors``; its record written after each draw."""
    from naviewer.io import atomic_write_json
    from naviewer.ssl.device import resolve_device
    from naviewer.workflows.demo import DemoConfig
    from naviewer.workflows.workspace_setup import ground_truth_mask

    path = out / "cells" / cell.key / CELL_FILE
    after = record["after"]
    ws = _open(out / "cells" / cell.key / "workspace")
    try:
        import torch

        torch.set_num_threads(int(cell.threads))
        demo = DemoConfig.from_overrides(dict(record.get("recipe") or {}))  # the cell's recipe, not today's
        evaluator = _Evaluator(ws, ctx, resolve_device(config.device))
        problem = None
        if kinds:
            try:
                removed = _recorded_removal(ws, record)
            except NaviewerError as exc:  # its floors are still drawn; the cell is named at the end
                problem, kinds = exc, []
        for kind in kinds:
            if kind == "oracle":
                truth = ground_truth_mask(ws)
                if truth is None:
                    continue
                removal = removed | np.asarray(truth, dtype=bool)  # every poison out, as the cell's oracle
            elif kind == "second":  # the first removal and what the check after the retrain added
                removal = removed.copy()
                removal[np.asarray((after.get("check") or {}).get("added") or [], dtype=np.int64)] = True
            else:
                removal = removed
            repeats = after.setdefault(f"{kind}_repeats", [])
            for repeat in range(len(repeats) + 1, int(config.retrains)):
                ctx.check()
                repeats.append(_kept_retrain(ws, removal, demo, evaluator, ctx, f"{kind}-{repeat}", repeat))
                atomic_write_json(path, record)
        if floors:
            _floor_draws(cell, record, demo, out, evaluator, ctx, config.floors,
                         saved=lambda: atomic_write_json(path, record))
        if problem is not None:
            raise problem
    finally:
        ws.close()


def _recorded_removal(ws, record: dict) -> np.ndarray:
    """The samples a done cell's retrain removed (:func:`_removal` of its DIFT pass), checked against the count the
    record holds."""
    pass_id = (record.get("dift") or {}).get("pass_id")
    if pass_id is None:
        raise NaviewerError(f"matrix cell {record.get('key')}: its record names no DIFT pass, so its removal "
                            "cannot be drawn again")
    removed = _removal(ws, int(pass_id))
    expected = (record.get("after") or {}).get("retrain", {}).get("removed")
    if expected is not None and int(removed.sum()) != int(expected):
        raise NaviewerError(f"matrix cell {record.get('key')}: its pass now flags {int(removed.sum())} to remove "
                            f"where its retrain removed {int(expected)}; run the cell again rather than add draws")
    return removed


def _check_attack_settings(config: MatrixConfig) -> None:
    """Every planned row's attack made with its settings and ``--set attack_extra`` (a NaviewerError naming the row):
    attack_extra={"num_references": 36} trained the NA cells for hours and then failed at the first patch cell."""
    from naviewer.attacks import make_attack

    extra = dict((config.recipe or {}).get("attack_extra") or {})
    for name in dict.fromkeys(cell.row for cell in config.cells):
        row = ATTACK_ROWS[name]
        try:
            make_attack(row.attack, **{"rate": float(config.rate), "target": 0, **row.settings, **extra})
        except NaviewerError as exc:
            raise NaviewerError(f"matrix row {name}: {exc.message} (--set attack_extra applies to every planned "
                                "row; choose the cells with --cells)") from None


def rescore(out_dir: PathLike, detectors: Sequence[str], ctx: Optional[JobContext] = None) -> list[dict]:
    """Score ``detectors`` again on every done cell's detection-epoch encoder (no training); updates the cells."""
    from naviewer.io import atomic_write_json
    from naviewer.ssl.device import resolve_device
    from naviewer.workflows.demo import DemoConfig

    ctx = ensure_context(ctx)
    out = Path(out_dir)
    records = read_cells(out)
    for i, record in enumerate(records):
        ctx.progress(i, len(records), f"rescoring {record['key']}")
        cell_dir = out / "cells" / record["key"]
        ws = _open(cell_dir / "workspace")
        try:
            demo = DemoConfig.from_overrides(record["recipe"])
            scores = score_detectors(ws, cell_dir / "detection-epoch.pt", demo, detectors,
                                     resolve_device(demo.device), ctx)
        finally:
            ws.close()
        record["detectors"] = {**record.get("detectors", {}), **scores}
        atomic_write_json(cell_dir / CELL_FILE, record)
    write_tables(out, [Cell(**r["cell"]) for r in records])
    return read_cells(out)


# -- tables ----------------------------------------------------------------------------------------

def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100.0 * float(value):.0f}"


def _asr_draws(first: Optional[dict], repeats: Optional[list], protocol: str) -> list[float]:
    """The ASR of a retrain and of its repeats (fresh trainings of the same kept set), where measured."""
    values = [r.get("asr", {}).get(protocol) for r in [first or {}] + list(repeats or []) if r]
    return [float(v) for v in values if v is not None]


def _with_repeats(first: dict, repeats: Optional[list], protocol: str) -> str:
    """One retrain's ASR, or with repeats every draw and their mean: "22 / 31 / 27 (mean 27)"."""
    values = _asr_draws(first, repeats, protocol)
    if len(values) <= 1:
        return _pct(first.get("asr", {}).get(protocol))
    return " / ".join(_pct(v) for v in values) + f" (mean {_pct(float(np.mean(values)))})"


def _auc(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):.2f}"


#: the issue's goal, per cell where the backdoor forms (ASR before >= 50 % and >= 2x the floor)
GOAL_BACKDOOR_ASR, GOAL_BACKDOOR_FACTOR = 0.5, 2.0
GOAL_DETECTOR_RECALL, GOAL_DETECTOR_PRECISION = 0.9, 0.8
GOAL_DIFT_RECALL, GOAL_ASR_MARGIN = 0.8, 0.10


def _mean_asr(first: Optional[dict], repeats: Optional[list], protocol: str) -> Optional[float]:
    values = _asr_draws(first, repeats, protocol)
    return float(np.mean(values)) if values else None


def goal_verdict(record: dict) -> tuple[str, list[str]]:
    """Whether a cell meets the issue's goal, and why not: ``("met" | "missed" | "n/a", reasons)``.

    The goal applies where the backdoor forms (ASR before >= 50 % and >= 2x the floor, the row's own
    protocol): the best single post-hoc detector flags >= 90 % of the poisons at >= 80 % precision (at its
    own threshold: AUROC alone does not say where an analyst would cut), DIFT in training reaches recall
    >= 80 %, and the ASR after removal (mean of the retrain draws) is within 10 points of the floor (mean of its
    draws; with the recipe's check after the retrain, that of its second removal when it added any). The
    reasons are what the table prints, so a missed cell says which part missed and by how much."""
    protocol = (record.get("row") or {}).get("protocol", "paper")
    before = ((record.get("before") or {}).get("asr") or {}).get(protocol)
    floor = _mean_asr(record.get("floor"), record.get("floor_repeats"), protocol)
    if before is None or floor is None:
        return "n/a", ["no " + ("floor" if before is not None else "ASR before") + " measured"]
    if before < GOAL_BACKDOOR_ASR or before < GOAL_BACKDOOR_FACTOR * floor:
        return "n/a", [f"no backdoor formed (ASR {_pct(before)} %, floor {_pct(floor)} %)"]
    reasons: list[str] = []
    met = [name for name, m in (record.get("detectors") or {}).items()
           if m and (m.get("recall") or 0) >= GOAL_DETECTOR_RECALL and (m.get("precision") or 0) >= GOAL_DETECTOR_PRECISION]
    if not met:
        best = max(((name, m) for name, m in (record.get("detectors") or {}).items() if m),
                   key=lambda item: (item[1].get("recall") or 0) * (item[1].get("precision") or 0), default=None)
        reasons.append("no post-hoc detector at R >= 90 % and P >= 80 %" + (
            "" if best is None else f" (best {best[0]}: P {_pct(best[1].get('precision'))} / R {_pct(best[1].get('recall'))} %)"))
    dift = record.get("dift") or {}
    if dift.get("pass_id") is None:
        reasons.append("DIFT in training never stable")
    elif (dift.get("recall") or 0) < GOAL_DIFT_RECALL:
        reasons.append(f"DIFT in training recall {_pct(dift.get('recall'))} %")
    after = record.get("after") or {}
    final = "second" if after.get("second") else "retrain"  # with the check after the retrain, its removal
    asr_after = _mean_asr(after.get(final), after.get(f"{final}_repeats"), protocol)
    if asr_after is None:
        reasons.append("no retrain after removal")
    elif asr_after - floor > GOAL_ASR_MARGIN:
        oracle = _mean_asr(after.get("oracle"), after.get("oracle_repeats"), protocol)
        why = ("" if oracle is None else
               f"; the oracle retrain (every poison out) {'also ' if oracle - floor > GOAL_ASR_MARGIN else ''}"
               f"scored {_pct(oracle)} %")
        said = "after the check's second removal" if final == "second" else "after"
        reasons.append(f"ASR {said} {_pct(asr_after)} % is {100 * (asr_after - floor):.0f} points above the floor{why}")
    return ("missed" if reasons else "met"), reasons


def _goal_cell(record: dict) -> str:
    verdict, reasons = goal_verdict(record)
    return verdict if not reasons else f"{verdict}: " + "; ".join(reasons)


def _check_cell(after: dict) -> str:
    """What the check after the retrain added: "3 (3)", "0", or "-" where it did not run."""
    check = after.get("check")
    if not isinstance(check, dict):
        return "-"
    added = len(check.get("added") or [])
    return f"{added}" + (f" ({check['added_poisons']})" if added and "added_poisons" in check else "")


def _second_cell(after: dict, protocol: str) -> str:
    """The second removal's draws; "= first" where the check added nothing (the first removal is the recipe's)."""
    if after.get("second"):
        return _with_repeats(after["second"], after.get("second_repeats"), protocol)
    return "= first" if isinstance(after.get("check"), dict) else "-"


def matrix_markdown(records: Iterable[dict], planned: Sequence[Cell] = ()) -> str:
    """The two tables of ``matrix.md``: what the attack did and DIFT in training; every detector."""
    records = list(records)
    by_key = {r["key"]: r for r in records}
    order = [c.key for c in planned if c.key in by_key] + sorted(k for k in by_key if k not in {c.key for c in planned})
    lines = ["| attack | method | seed | thr | poisons | ASR before | floor | DIFT flags (P / R %) | at epoch | "
             "ASR after retrain | check after it: adds (poisons) | ASR after the second retrain | ASR after paper restart | "
             "ASR after oracle retrain | kNN acc before / after | goal |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key in order:
        r = by_key[key]
        c, protocol = r["cell"], r["row"]["protocol"]
        dift = r.get("dift") or {}
        after = r.get("after") or {}
        flags = (f"{dift.get('flagged', 0)} ({_pct(dift.get('precision'))} / {_pct(dift.get('recall'))})"
                 if dift.get("pass_id") is not None else "never stable")
        epoch = "-" if dift.get("epoch") is None else str(int(dift["epoch"]) + 1)
        retrain, paper, oracle = after.get("retrain") or {}, after.get("continue") or {}, after.get("oracle") or {}
        lines.append(
            f"| {c['row']} ({protocol}) | {c['method']} | {c['seed']} | {c['threads']} | {r.get('poisons')} | "
            f"{_pct((r.get('before') or {}).get('asr', {}).get(protocol))} | "
            f"{_with_repeats(r.get('floor') or {}, r.get('floor_repeats'), protocol)} | {flags} | {epoch} | "
            f"{_with_repeats(retrain, after.get('retrain_repeats'), protocol)} | {_check_cell(after)} | "
            f"{_second_cell(after, protocol)} | "
            f"{_pct(paper.get('asr', {}).get(protocol))} | "
            f"{_with_repeats(oracle, after.get('oracle_repeats'), protocol)} | "
            f"{_pct((r.get('before') or {}).get('knn_acc'))} / {_pct(retrain.get('knn_acc'))} | {_goal_cell(r)} |")
    names: list[str] = []
    for r in records:
        for name in (r.get("detectors") or {}):
            if name not in names:
                names.append(name)
    lines += ["", "Post-hoc detectors on the same encoder: AUROC (flagged, precision / recall %):", "",
              "| cell | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key in order:
        det = by_key[key].get("detectors") or {}
        cells = []
        for name in names:
            m = det.get(name)
            cells.append("-" if not m else f"{_auc(m.get('auroc'))} ({m.get('flagged')}, {_pct(m.get('precision'))} / "
                                           f"{_pct(m.get('recall'))})")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(out_dir: Path, planned: Sequence[Cell] = ()) -> None:
    from naviewer.io import atomic_write_json

    records = read_cells(out_dir)
    done = {r["key"] for r in records}
    missing = [c.key for c in planned if c.key not in done]
    text = matrix_markdown(records, planned)
    if missing:
        text += f"\nNot yet run: {', '.join(missing)}.\n"
    (Path(out_dir) / "matrix.md").write_text(text, encoding="utf-8")
    atomic_write_json(Path(out_dir) / "matrix.json", {"schema": SCHEMA, "cells": records, "missing": missing})
