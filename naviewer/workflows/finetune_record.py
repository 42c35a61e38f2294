"""The record of a fine-tune / remove-and-retrain started from the window (or the demo): before and after.

``finetune_result.json`` in the run's folder is what the Fine-tune tab's table shows. Its "before" half is taken
when the step starts (``finetune_before.json``) and the "after" half when the run finishes, by whichever call
finishes it: the step itself, or a resume after a cancel (:func:`complete_finetune_result`). Kept apart from the
demo workflow and the DIFT run so both can use it without importing each other.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from naviewer.errors import NaviewerError
from naviewer.io import json_loads
from naviewer.jobs import JobContext, ensure_context

#: the embeddings tags of the detection-epoch encoder (before) and of the finished one (after)
REVIEW_TAG = "review"
FINAL_TAG = "final"


def embed_checkpoint(ws, checkpoint: Path, ctx: Optional[JobContext] = None, device: Optional[str] = None) -> np.ndarray:
    """Eval-mode features of every workspace sample from a training checkpoint, at its training size."""
    from naviewer.data.store import ImageStore
    from naviewer.ssl.checkpoints import load_encoder
    from naviewer.ssl.device import resolve_device
    from naviewer.ssl.embed import extract_embeddings

    if not Path(checkpoint).is_file():
        raise NaviewerError("no checkpoint to embed with", checkpoint)
    encoder = load_encoder(checkpoint)
    store = ImageStore.from_dataset(ws.checked_dataset(), ctx)
    dev = resolve_device(device or "auto")
    return extract_embeddings(encoder.backbone, store, device=dev, image_size=encoder.image_size, ctx=ctx,
                              message="embedding the workspace")


def review_before_after(metrics: Path) -> tuple[dict[str, float], dict[str, float]]:
    """(kNN accuracy and ASR last measured before the run's latest review was acted on, those measured after it):
    what ``naviewer finetune`` reports at its end; ({}, {}) where the run records no review, and no "after" where
    nothing was measured since (a retrain under ``--no-monitor`` read as "100 % -> 100 %"). Damaged lines are
    skipped (:func:`naviewer.workspace.metrics.read_metrics`)."""
    from naviewer.workspace.metrics import read_metrics

    try:
        records, _ = read_metrics(metrics)
    except (OSError, ValueError):
        return {}, {}

    def when(record: dict) -> Optional[float]:
        value = record.get("time")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    done = None
    for record in records:
        if record.get("kind") == "event" and record.get("event") == "review_done" and when(record) is not None:
            done = when(record)
    if done is None:
        return {}, {}
    before: dict[str, float] = {}
    after: dict[str, float] = {}
    for record in records:
        stamp = when(record)
        if record.get("kind") != "epoch" or stamp is None:
            continue
        for key in ("knn_acc", "asr"):
            value = record.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                (before if stamp <= done else after)[key] = float(value)
    return before, after


def before_after_text(before: Any, after: Any) -> str:
    """"kNN accuracy 92.5 % -> 94.4 %, ASR 100.0 % -> 4.3 %": the figures both halves hold, "" where none."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return ""

    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))

    return ", ".join(f"{name} {100 * before[key]:.1f} % -> {100 * after[key]:.1f} %"
                     for key, name in (("knn_acc", "kNN accuracy"), ("asr", "ASR"))
                     if number(before.get(key)) and number(after.get(key)))


def result_line(result: Any, pass_id: Optional[int] = None) -> str:
    """What the last fine-tune / retrain of a pass's run did, in one line for ``naviewer review`` (it went on
    saying the flags "await a decision" after the retrain, with no word of it; a newcomer, session 31); "" where
    nothing was done. ``pass_id``: the pass shown, named when the step acted on another pass's decisions."""
    if not isinstance(result, dict) or not result.get("kind"):
        return ""
    step = {"retrain": "remove and retrain", "posthoc": "post-hoc fine-tune"}.get(result["kind"], "fine-tune")
    if result.get("again"):
        step = f"retrain again (run {result['again']})"
    confirmed = result.get("confirmed")
    without = (f" without the {confirmed:,} confirmed" if isinstance(confirmed, int) and not isinstance(confirmed, bool)
               and confirmed else "")
    record = result.get("finetune") if isinstance(result.get("finetune"), dict) else {}
    on = record.get("pass_id")
    of_pass = (f" on pass {on}'s decisions" if isinstance(on, int) and pass_id is not None and on != pass_id else "")
    if result.get("interrupted"):
        return f"the last {step}{without}{of_pass} stopped before its end (naviewer run WORKSPACE --resume goes on)"
    figures = before_after_text(result.get("before"), result.get("after"))
    if "ASR" in figures:
        from naviewer.workflows.floor import floor_text

        floor = result.get("floor") if isinstance(result.get("floor"), dict) and "asr" in result["floor"] else None
        figures += f"; no-poison {floor_text(floor)}"
    return f"the last {step}{without}{of_pass} is done" + (f": {figures}" if figures else "")


def last_metrics(metrics: Path, upto: Optional[float] = None) -> dict[str, float]:
    """Latest knn_acc / asr of the epoch records (before ``upto`` unix time when given); damaged lines skipped."""
    from naviewer.workspace.metrics import read_metrics

    out: dict[str, float] = {}
    try:
        records, _ = read_metrics(metrics)
    except (OSError, ValueError):
        return out
    for record in records:
        stamp = record.get("time", 0)
        if record.get("kind") != "epoch" or (upto is not None and (not isinstance(stamp, (int, float))
                                                                   or isinstance(stamp, bool) or stamp > upto)):
            continue
        for key in ("knn_acc", "asr"):
            value = record.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = float(value)
    return out


def cluster_density(features: np.ndarray, ids: np.ndarray, k: int = 10) -> Optional[float]:
    """Mean kNN density (1 / distance to the k-th cosine neighbour) of ``ids`` among all samples."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size == 0 or len(features) <= k:
        return None
    x = np.asarray(features, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sims = x[ids] @ x.T
    sims[np.arange(ids.size), ids] = -np.inf  # not its own neighbour
    kth = -np.partition(-sims, k - 1, axis=1)[:, k - 1]
    dist = np.sqrt(np.maximum(2.0 - 2.0 * kth, 1e-12))
    return float(np.mean(1.0 / dist))


#: the "before" half of ``finetune_result.json``, written when the fine-tune / retrain starts
FINETUNE_BEFORE = "finetune_before.json"


def complete_finetune_result(ws, run: str, ctx: Optional[JobContext] = None,
                             device: Optional[str] = None) -> Optional[dict[str, Any]]:
    """``finetune_result.json`` of a run whose window-started fine-tune / retrain has ended: the "before" its start
    recorded, the "after" measured now (the run's last metrics, the final encoder's embeddings and the confirmed
    samples' density in them). None when the run is not finished or no such start was recorded. Called when the
    retrain ends, in one go or after a cancel and a resume."""
    from naviewer.io import atomic_write_json
    from naviewer.workflows.floor import read_floor
    from naviewer.workspace.runs import read_state

    ctx = ensure_context(ctx)
    path = ws.path / "runs" / run / FINETUNE_BEFORE
    state = read_state(ws, run) or {}
    if not path.is_file() or state.get("status") != "finished":
        return None
    try:
        started = json_loads(path.read_text(encoding="utf-8"))
        before, confirmed = dict(started["before"]), np.asarray(started["confirmed"], dtype=np.int64)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NaviewerError(f"cannot read the fine-tune's start record ({exc})", path) from None
    checkpoint = ws.checkpoint_dir(run) / "last.pt"
    after = last_metrics(ws.path / "runs" / run / "metrics.jsonl")
    final = embed_checkpoint(ws, checkpoint, ctx, device)
    ws.save_embeddings(run, FINAL_TAG, final.astype(np.float32))
    density = cluster_density(final, confirmed)
    if density is not None:
        after["confirmed_density"] = density
    record = {"before": before, "after": after, "confirmed": int(confirmed.size), "finetune": state.get("finetune"),
              "checkpoint": str(checkpoint), "seconds": time.time() - float(started.get("started") or time.time()),
              "embeddings": {"run": run, "before": REVIEW_TAG if "confirmed_density" in before else None,
                             "after": FINAL_TAG},
              "protocol": (ws.config.get("attack") or {}).get("test_protocol") or "uniform", "floor": read_floor(ws)}
    atomic_write_json(ws.run_dir(run) / "finetune_result.json", record)
    path.unlink(missing_ok=True)
    return record
