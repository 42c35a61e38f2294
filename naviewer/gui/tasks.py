"""The job functions the window starts: thin calls into the core, run in worker threads.

Each function takes a :class:`~naviewer.jobs.JobContext` and returns a small summary the window
keeps (paths and counts, never a live workspace: its SQLite connection belongs to the thread that
opened it). Core modules are imported inside the functions so that the window starts without them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext

if TYPE_CHECKING:  # pragma: no cover
    from naviewer.gui.jobs import JobFunction
    from naviewer.gui.main_window import MainWindow


def _runs_with_metrics(workspace: Path) -> list[str]:
    """Run directories of a workspace that hold a metrics.jsonl, oldest first."""
    runs = workspace / "runs"
    if not runs.is_dir():
        return []
    found = [p for p in runs.iterdir() if (p / "metrics.jsonl").is_file()]
    found.sort(key=lambda p: (p / "metrics.jsonl").stat().st_mtime)
    return [str(p) for p in found]


def workspace_summary(path: Path, ctx: JobContext) -> dict[str, Any]:
    from naviewer.workspace import Workspace

    ctx.progress(0, 1, "opening workspace")
    ws = Workspace.open(path)
    try:
        summary = {"path": str(ws.path), "samples": ws.store.sample_count(), "runs": _runs_with_metrics(ws.path)}
    finally:
        ws.close()
    ctx.progress(1, 1, "opening workspace")
    return summary


def create_workspace(path: Path, dataset: "Optional[Path | str]", ctx: JobContext, *, anchors_per_class: int = 10,
                     seed: int = 0, test_dataset: "Optional[Path | str]" = None) -> dict[str, Any]:
    """``naviewer new WS --dataset D``: the same workflow, so the window never records less than the CLI.

    The DIFT anchors (``[anchors]``) and the evaluation sets (``[evaluation]``, with the source's
    clean test split when it has one) are recorded by
    :func:`naviewer.workflows.workspace_setup.create_workspace`. The dataset is passed as a spec
    (a path string, like the CLI) so that the workflow can find the source's test split.
    """
    from naviewer.workflows.workspace_setup import create_workspace as create

    if dataset is None:
        raise NaviewerError("Open a dataset first: a workspace is created over a dataset "
                            "(as `naviewer new WORKSPACE --dataset DATASET`).", path)
    ctx.progress(0, None, "creating workspace")
    ws = create(path, str(dataset), anchors_per_class=anchors_per_class, seed=seed,
                test_dataset=None if test_dataset is None else str(test_dataset), ctx=ctx)
    try:
        anchors = ws.config.get("anchors") or {}
        evaluation = ws.config.get("evaluation") or {}
        return {"path": str(ws.path), "samples": ws.store.sample_count(), "runs": [],
                "anchors": len(anchors.get("indices") or []), "test_set": bool(evaluation.get("test"))}
    finally:
        ws.close()


def dataset_summary(path: Path, ctx: JobContext) -> dict[str, Any]:
    from naviewer.data import open_dataset

    ctx.progress(0, None, "opening dataset")
    dataset = open_dataset(path)
    description = dataset.describe() if hasattr(dataset, "describe") else {}
    return {"samples": len(dataset), "classes": len(dataset.class_names), "kind": str(description.get("kind", ""))}


def check_checkpoint(path: Path, ctx: JobContext) -> dict[str, Any]:
    """Load a checkpoint safely (weights only) to tell the user early if it is not one."""
    if not path.is_file():
        raise NaviewerError("no such checkpoint file", path)
    ctx.progress(0, None, "reading checkpoint")
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any load failure is a bad file from the user's view
        raise NaviewerError(f"not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})", path) from exc
    tensors = 0
    stack = [state]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, torch.Tensor):
            tensors += 1
    if tensors == 0:
        raise NaviewerError("the checkpoint holds no tensors", path)
    return {"tensors": tensors}


def export_workspace(path: Path, out_dir: Optional[Path], ctx: JobContext) -> str:
    from naviewer.workspace import Workspace
    from naviewer.workspace.export import export_manifests

    ws = Workspace.open(path)
    try:
        result = export_manifests(ws, out_dir, ctx=ctx)
    finally:
        ws.close()
    return str(result.out_dir)


def training_threads() -> int:
    """torch threads for a job: all cores but one, so the GUI thread always has a core."""
    return max(1, (os.cpu_count() or 2) - 1)


def run_name(settings: dict[str, Any]) -> str:
    return f"{settings.get('method', 'run')}-{time.strftime('%Y%m%d-%H%M%S')}"


def default_training_job(settings: dict[str, Any], window: "MainWindow") -> "tuple[JobFunction, Optional[Path]]":
    """Train with the SSL engine (``naviewer.ssl.train``) on the open workspace or dataset.

    Raises NaviewerError (shown to the user, nothing started) when nothing is open to train on.
    """
    workspace, dataset_path = window.workspace_path, window.dataset_path
    if workspace is None and dataset_path is None:
        raise NaviewerError("Open a workspace or a dataset first: training needs images to train on.")
    name = run_name(settings)
    run_dir = (workspace / "runs" / name) if workspace is not None else None

    def job(ctx: JobContext) -> Any:
        from naviewer.gui.training import run_training

        return run_training(settings, ctx, workspace=workspace, dataset_path=dataset_path, run_name=name)

    return job, run_dir


def posthoc_detect(path: Path, checkpoint: Path, ctx: JobContext, *, run: str = "posthoc",
                   device: str = "auto") -> dict[str, Any]:
    """``naviewer detect WS --checkpoint C``: the same workflow and the same settings as the CLI
    (the workspace's ``[dift]``), so a pass made here is the pass the CLI would have made."""
    from naviewer.defense.config import DiftConfig
    from naviewer.ssl.device import resolve_device
    from naviewer.workflows.posthoc import posthoc_detect as detect
    from naviewer.workspace import Workspace

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise NaviewerError("no such checkpoint file", checkpoint)
    with Workspace.open(path) as ws:
        config = DiftConfig.from_dict(ws.config.get("dift") or {})
        out = detect(ws, checkpoint, config=config, run=run, device=resolve_device(device), ctx=ctx)
        return {"pass_id": out.pass_id, "run": out.run, "tag": out.tag, "summary": dict(out.summary),
                "embeddings": str(out.embeddings_path), "checkpoint": str(checkpoint)}


def finetune_posthoc(path: Path, checkpoint: "Optional[Path | str]", ctx: JobContext) -> dict[str, Any]:
    """``naviewer finetune WS [--checkpoint C]`` on a post-hoc pass: Eq. 7 on the confirmed flags,
    a new checkpoint; returns what the fine-tune gate shows (before / after / confirmed)."""
    from naviewer.workflows.posthoc import finetune_posthoc as finetune
    from naviewer.workspace import Workspace

    with Workspace.open(path) as ws:
        out = finetune(ws, checkpoint, ctx=ctx)
        return {"before": dict(out.before), "after": dict(out.after), "confirmed": out.confirmed,
                "checkpoint": str(out.checkpoint), "run": out.run, "outcome": out.to_dict()}
