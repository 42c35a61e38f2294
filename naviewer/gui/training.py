"""The default training job: the Train dialog's settings handed to the SSL engine's Trainer.

Runs entirely in the worker thread (torch is imported here, never on the GUI thread). It does
what the CLI does: open the dataset (from the workspace or a dataset path), decode it into an
``ImageStore``, build ``TrainConfig`` + ``build_trainer`` and ``fit(ctx)``; the trainer writes
``RUN/metrics.jsonl`` and checkpoints and reports the same records through ``ctx.metric``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext

RUNS_DIR_ENV = "NAVIEWER_RUNS_DIR"


def runs_root() -> Path:
    """Where runs go when no workspace is open: $NAVIEWER_RUNS_DIR, else ~/naviewer-runs."""
    return Path(os.environ.get(RUNS_DIR_ENV) or Path.home() / "naviewer-runs")


def run_training(
    settings: dict[str, Any],
    ctx: JobContext,
    workspace: Optional[Path] = None,
    dataset_path: Optional[Path] = None,
    run_name: str = "run",
) -> dict[str, Any]:
    """Train with dialog ``settings`` (method, augment_recipe, epochs, batch_size, lr, device); returns fit()'s summary."""
    try:
        from naviewer.data.store import ImageStore
        from naviewer.ssl.trainer import TrainConfig, build_trainer
    except ImportError as exc:
        raise NaviewerError(f"the training engine is not available in this installation ({exc})") from exc

    ctx.progress(0, None, "loading images")
    checkpoint_dir = None
    if workspace is not None:
        from naviewer.workspace import Workspace

        ws = Workspace.open(workspace)
        try:
            dataset = ws.dataset()
            run_dir = ws.run_dir(run_name)
            checkpoint_dir = ws.checkpoint_dir(run_name)
        finally:
            ws.close()
    elif dataset_path is not None:
        from naviewer.data import open_dataset

        dataset = open_dataset(dataset_path)
        run_dir = runs_root() / run_name
    else:
        raise NaviewerError("nothing to train on: open a workspace or a dataset first")
    store = ImageStore.from_dataset(dataset, ctx=ctx)
    ctx.check()
    config = TrainConfig.from_dict(train_config_values(settings))
    labelled = bool((store.labels >= 0).any())
    trainer = build_trainer(config, store, run_dir, eval_store=store if labelled else None,
                            checkpoint_dir=checkpoint_dir)
    return trainer.fit(ctx)


def train_config_values(settings: dict[str, Any]) -> dict[str, Any]:
    """Dialog settings -> ``TrainConfig`` fields (lr None: the method's own default)."""
    values: dict[str, Any] = {
        "method": settings["method"],
        "epochs": int(settings["epochs"]),
        "batch_size": int(settings["batch_size"]),
        "lr": None if settings.get("lr") is None else float(settings["lr"]),
        "device": settings.get("device", "auto"),
        "augment_recipe": str(settings.get("augment_recipe") or ""),  # "": the method's paper recipe
    }
    for key in ("backbone", "image_size", "max_steps_per_epoch", "log_every", "knn_every", "num_threads", "seed"):
        if key in settings:  # advanced keys a script or the demo may pass through
            values[key] = settings[key]
    return values
