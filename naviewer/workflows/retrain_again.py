"""Retrain again on the decisions as they are now, after the run's remove-and-retrain was done.

The review does not end with the retrain: an analyst who rejects a flag or confirms another afterwards had no way
to train on the changed decisions from the window (the Fine-tune tab said "export, then train on kept.txt"; a
newcomer, session 18). This trains the run's own recipe afresh, without DIFT, on the samples the review keeps now
(a new run ``<run>-again-<k>``), measures it as the first retrain was measured (the last epoch's kNN accuracy and
ASR from its monitor, the confirmed samples' density in its embeddings), and writes the same
``finetune_result.json`` in its folder, with the first retrain's "before" (the encoder DIFT flagged with).
"""

from __future__ import annotations

import time
from typing import Any, Optional

from naviewer.errors import NaviewerError
from naviewer.io import json_loads
from naviewer.jobs import JobContext, ensure_context

#: the store's run kind of a retrain on changed decisions (its config names the run it follows)
AGAIN_KIND = "retrain-again"
RESULT_FILE = "finetune_result.json"


def again_runs(ws, run: str) -> list[dict]:
    """The retrains again of ``run``, oldest first."""
    found = [r for r in ws.store.runs() if r.get("kind") == AGAIN_KIND and (r.get("config") or {}).get("from") == run]
    return sorted(found, key=lambda r: r.get("created") or 0)


def _read_result(ws, name: str) -> Optional[dict]:
    try:
        result = json_loads((ws.path / "runs" / name / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def earlier_results(ws, run: str, before: str) -> list[dict]:
    """What the retrains of ``run`` before the retrain again ``before`` measured, oldest first (the first retrain,
    then each earlier retrain again): ``{"run", "after", "confirmed", "first"}``. A retrain again's table replaced the first
    retrain's (40.4 % against 21.3 % ASR on a newcomer's run, session 30), so the window lists them under it."""
    out = []
    for name in [run, *(r["name"] for r in again_runs(ws, run))]:
        if name == before:
            break
        result = _read_result(ws, name)
        if result is None and name == run:  # a command-line retrain writes no record: its monitor's figures, if any
            result = _command_line_result(ws, run)
            result = result if result is not None and result["after"] else None
        if result is not None and isinstance(result.get("after"), dict):
            out.append({"run": name, "after": dict(result["after"]), "confirmed": result.get("confirmed"),
                        "first": name == run})
    return out


def finished_retrain(ws, run: str) -> Optional[dict]:
    """The run state's record (its ``finetune``) of a finished remove-and-retrain (a retrain, or the paper restart's
    fallback to one), or None: all a command-line retrain leaves, where the window writes ``finetune_result.json``."""
    from naviewer.workspace.runs import FinetuneOutcome, read_state

    state = read_state(ws, run) or {}
    finetune = state.get("finetune")
    if state.get("status") == "finished" and isinstance(finetune, dict) \
            and FinetuneOutcome.from_dict(finetune).kind == "retrain":
        return finetune
    return None


def _command_line_result(ws, run: str) -> Optional[dict]:
    """The first retrain's record when ``naviewer finetune --accept-all`` did it (no ``finetune_result.json``): the
    kNN accuracy and ASR its monitor measured at the review ("before") and after it ("after"; not the poisoned
    encoder's under --no-monitor), how many it removed, and its :func:`finished_retrain` record. The window's table
    of a retrain again had nothing to compare with (session 35)."""
    from naviewer.workflows.finetune_record import review_before_after

    finetune = finished_retrain(ws, run)
    if finetune is None:
        return None
    before, after = review_before_after(ws.run_dir(run) / "metrics.jsonl")
    removed = finetune.get("removed")
    return {"before": before, "after": after, "finetune": finetune,
            "confirmed": removed if isinstance(removed, int) and not isinstance(removed, bool) else None}


def latest_again_result(ws, run: str) -> Optional[dict]:
    """The newest finished retrain again of ``run`` (its ``finetune_result.json`` with ``again`` naming it, and
    ``earlier``: :func:`earlier_results`), or None."""
    for record in reversed(again_runs(ws, run)):
        result = _read_result(ws, record["name"])
        if result is not None:
            return {**result, "kind": "retrain", "again": record["name"],
                    "earlier": earlier_results(ws, run, record["name"])}
    return None


def _first_result(ws, run: str) -> dict:
    """The first retrain's record: the window's ``finetune_result.json``, else (``naviewer finetune --accept-all`` and
    the matrix write none) the run's state's record of a finished retrain, its "before" the monitor's figures at the
    review. The window's
    Fine-tune tab said "Done earlier: removed 109 ... retrained" from that state and offered Retrain again, which then
    failed with "no finished remove-and-retrain" (session 34)."""
    path = ws.path / "runs" / run / RESULT_FILE
    try:
        record = json_loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        found = _command_line_result(ws, run)
        if found is not None:
            return {"before": found["before"], "finetune": found["finetune"]}
        raise NaviewerError(f"run {run!r} has no finished remove-and-retrain to train again after: remove and retrain "
                            "first (the Fine-tune tab, or naviewer finetune)", path) from None
    except (OSError, ValueError) as exc:
        raise NaviewerError(f"cannot read the first retrain's record ({exc})", path) from None
    if not isinstance(record, dict):
        raise NaviewerError("the first retrain's record is not a JSON object", path)
    return record


def _recipe(ws, run: str, first: dict):
    """The run's TrainConfig with the first retrain's epoch budget (its ``remaining_epochs``: retrain_epochs, or
    the run's epochs), so the two retrains differ only in the samples they leave out."""
    import dataclasses

    from naviewer.ssl.trainer import TrainConfig

    record = next((r for r in ws.store.runs() if r.get("name") == run), None)
    train = ((record or {}).get("config") or {}).get("train")
    if not isinstance(train, dict):
        raise NaviewerError(f"run {run!r} has no training recipe recorded to train again with", ws.path)
    config = TrainConfig.from_saved(train)
    epochs = (first.get("finetune") or {}).get("remaining_epochs") if isinstance(first.get("finetune"), dict) else None
    if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0:
        config = dataclasses.replace(config, epochs=int(epochs))
    return config


def next_again_name(ws, run: str) -> str:
    taken = {r["name"] for r in ws.store.runs()}
    return next(name for name in (f"{run}-again-{k}" for k in range(1, 100_000))
                if name not in taken and not (ws.path / "runs" / name).exists()
                and not (ws.path / "checkpoints" / name).exists())


def retrain_on_decisions(ws, run: str, ctx: Optional[JobContext] = None, device: Optional[str] = None,
                         name: Optional[str] = None) -> dict[str, Any]:
    """Train ``run``'s recipe from scratch on every sample not confirmed as a poison now (a new run, named in the
    result's ``again``) and return the before/after record the Fine-tune tab shows (also the new run's
    ``finetune_result.json``). Cancelled, the new run is an interrupted run: Run ▸ Resume interrupted run (or
    ``naviewer run WS --resume``) finishes it, on the same samples, and writes its record then. ``name``: the new
    run's (default :func:`next_again_name`; the window names it first, so its monitor can follow the folder)."""
    import dataclasses

    from naviewer.io import atomic_write_json
    from naviewer.workflows.dift_training import train_with_dift
    from naviewer.workflows.finetune_record import FINETUNE_BEFORE, REVIEW_TAG, cluster_density, complete_finetune_result
    from naviewer.workspace.runs import confirmed_ids

    ctx = ensure_context(ctx)
    first = _first_result(ws, run)
    confirmed = confirmed_ids(ws)
    if confirmed.size == 0:
        raise NaviewerError("no sample is confirmed as a poison now: there is nothing to remove", ws.path)
    config = _recipe(ws, run, first)
    if device:
        config = dataclasses.replace(config, device=device)
    before = dict(first.get("before") or {})
    try:  # the samples confirmed now (not those of the first retrain) in the encoder DIFT flagged with
        review = ws.load_embeddings(run, REVIEW_TAG, mmap=False)
        density = cluster_density(review, confirmed) if len(review) == ws.store.sample_count() else None
        if density is not None:
            before["confirmed_density"] = density
    except (NaviewerError, OSError):
        pass
    if name is None:
        name = next_again_name(ws, run)
    elif any(r["name"] == name for r in ws.store.runs()) or (ws.path / "checkpoints" / name).exists():
        raise NaviewerError(f"run {name!r} exists already: a retrain again is a new run", ws.path / "runs" / name)
    # the table's "before", kept until the run ends (in one go, or resumed after a cancel)
    atomic_write_json(ws.run_dir(name) / FINETUNE_BEFORE, {"before": before, "confirmed": confirmed.tolist(),
                                                           "started": time.time()})
    ctx.event("log", message=f"retraining {run}'s recipe from scratch without the {confirmed.size:,} samples "
                             f"confirmed now (run {name})")
    train_with_dift(ws, config, dift=False, monitor=True, run=name, exclude=confirmed, ctx=ctx, run_kind=AGAIN_KIND,
                    record_extra={"from": run})
    record = complete_finetune_result(ws, name, ctx, device)
    if record is None:  # pragma: no cover - the run just finished and its "before" was just written
        raise NaviewerError("the retrain finished but its before/after record could not be written", ws.path)
    return {**record, "kind": "retrain", "again": name, "earlier": earlier_results(ws, run, name)}
