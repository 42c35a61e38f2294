"""The no-poison floor: the same encoder recipe trained on the clean set, measured with the same trigger.

An ASR means little alone: on 16 px digits an 8 px trigger covers a quarter of the image, so a
triggered "3" can look like a "0" to an encoder that never saw a poison (ASR 17-29 % on the demo).
The floor is that number for this workspace's recipe: the clean training set of ``[evaluation]``
(the set before naviewer crafted the attack), the same TrainConfig, the attack's test trigger with
the workspace's test-time protocol. It is recorded as ``[floor]`` and shown beside every ASR.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context

FLOOR_RUN = "floor"


def read_floor(ws) -> Optional[dict]:
    """``[floor]`` of the workspace (None when it was never measured)."""
    section = ws.config.get("floor") or {}
    return dict(section) if section.get("asr") is not None else None


def floor_text(floor: Optional[dict]) -> str:
    """"floor 21.3 % (code)" for tables and terminals, or how to measure it."""
    if not floor:
        return "floor not measured (naviewer run WORKSPACE --floor)"
    return f"floor {100 * float(floor['asr']):.1f} % ({floor.get('protocol') or 'uniform'})"


def train_floor(ws, train_config, ctx: Optional[JobContext] = None, run: str = FLOOR_RUN) -> dict:
    """Train ``train_config`` on the workspace's clean training set and record the floor (returned)."""
    from naviewer.ssl.trainer import build_trainer
    from naviewer.workflows.workspace_setup import evaluate_on_sets, evaluation_sets

    ctx = ensure_context(ctx)
    sets = evaluation_sets(ws, ctx)
    if sets is None or sets.trigger_fn is None or sets.target is None:
        raise NaviewerError("the no-poison floor needs a workspace made with --attack (a clean set and a trigger to "
                            "measure with)", ws.config_path)
    resume = (ws.checkpoint_dir(run) / "last.pt").exists()
    if resume and run not in unfinished_floors(ws):
        raise NaviewerError(f"run {run!r} already exists: the floor was trained; choose another --run", ws.checkpoint_dir(run))
    if resume:  # a floor cut short (cancelled, the window closed): trained on from its checkpoint, not begun again
        ctx.event("log", message=f"resuming the no-poison floor {run!r} from its last checkpoint")
    start = time.perf_counter()
    kwargs: dict[str, Any] = {"eval_store": sets.train}
    if sets.test is not None:
        kwargs["eval_test_store"] = sets.test
    trainer = build_trainer(train_config, sets.train, ws.run_dir(run), checkpoint_dir=ws.checkpoint_dir(run), **kwargs)
    ws.store.add_run(run, "floor", {"train": train_config.to_dict()})
    trainer.fit(ctx, resume=resume)
    result = evaluate_on_sets(trainer.method.backbone, sets, train_config.image_size, None, ctx, train_as_test=True)
    floor = {"asr": result["asr"], "asr_all": result["asr_all"], "knn_acc": result["knn_acc"],
             "protocol": sets.protocol or "uniform", "run": run,
             "method": train_config.method, "epochs": int(train_config.epochs),
             "augment_recipe": train_config.augment_recipe, "image_size": int(train_config.image_size),
             "seconds": time.perf_counter() - start}
    ws.update_config("floor", floor)
    ws.store.add_run(run, "floor", {"train": train_config.to_dict(), "measured": floor})  # finished: not resumed
    ctx.event("log", message=f"no-poison floor: ASR {100 * floor['asr']:.1f} % ({floor['protocol']}), kNN accuracy "
                             f"{100 * floor['knn_acc']:.1f} %")
    return floor


def unfinished_floors(ws) -> list[str]:
    """Floor runs with a checkpoint whose floor was never recorded (cut short while training or measuring): what
    Measure the floor goes on with (a cut-short floor was left behind and the next began again as floor-2)."""
    recorded = (ws.config.get("floor") or {}).get("run")
    return [r["name"] for r in ws.store.runs() if r.get("kind") == "floor" and r["name"] != recorded
            and isinstance((r.get("config") or {}).get("train"), dict) and "measured" not in r["config"]
            and (ws.path / "checkpoints" / r["name"] / "last.pt").is_file()]


def floor_recipe(ws) -> tuple[Any, str]:
    """(the TrainConfig, a free run name) of a floor for what the workspace trained: the recipe of its latest
    training run (not a floor), so the floor is the same training on the clean set; for the window's Run ▸ Measure
    the no-poison floor (it was the command line's alone). A NaviewerError when nothing was trained yet."""
    from naviewer.ssl.trainer import TrainConfig

    runs = [r for r in ws.store.runs() if r.get("kind") != "floor"
            and isinstance((r.get("config") or {}).get("train"), dict)]
    if not runs:
        raise NaviewerError("the no-poison floor trains the workspace's recipe on the clean set: train a run first "
                            "(Run ▸ Train…, or naviewer run)", ws.config_path)
    cut_short = unfinished_floors(ws)
    if cut_short:  # the newest floor cut short, with its own recipe: trained on to its end
        newest = max((r for r in ws.store.runs() if r["name"] in cut_short), key=lambda r: r.get("created") or 0)
        return TrainConfig.from_saved(newest["config"]["train"]), newest["name"]
    latest = max(runs, key=lambda r: r.get("created") or 0)
    config = TrainConfig.from_saved(latest["config"]["train"])
    taken = {r["name"] for r in ws.store.runs()}
    name = next(n for n in (FLOOR_RUN, *(f"{FLOOR_RUN}-{i}" for i in range(2, 10_000)))
                if n not in taken and not (ws.path / "checkpoints" / n / "last.pt").exists())
    return config, name

