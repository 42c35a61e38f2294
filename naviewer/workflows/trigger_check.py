"""The trigger check (docs/dift.md, The trigger check): PatchSearch on the encoder DIFT flagged with, run when the
trusted anchors reach some of DIFT's flags as clean samples, and the flags it clears for accept-all.

Why: on the demo's recipe one run in six (seed 0, two threads) took 59 clean "0"s out with the poisons, which kept
its retrain 18 points above the no-poison floor; the anchors reach those "0"s as clean, but no reach threshold
parts them from the poisons alone (results.md, session 21). A clean image carries no trigger: PatchSearch finds a
trigger in the poisons and none in those "0"s. Together (:func:`naviewer.analysis.reach.trigger_check_clears`) the
two cleared 55 of the 59 and no poison on session 28's six runs and session 27's matrix cells; that run's kept set
retrained to within a point of its floor.

What it changes: ``naviewer finetune --accept-all`` (and an accept-all run) leaves the cleared flags unconfirmed, and
says so; a review by hand is unchanged (the window points at them, it decides nothing). It costs one PatchSearch
(minutes on a CPU), paid only when some flag is reached above the limit; ``trigger_check_reach = 0`` turns it off.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from naviewer.analysis.reach import (
    CHECK_RECORD_KEY,
    TRIGGER_CHECK_COVERAGE,
    check_record,
    reached_flags,
    trigger_check_clears,
)
from naviewer.jobs import JobContext, ensure_context

#: where a DIFT pass records its check (its settings), and which PatchSearch pass made it
RECORD_KEY = CHECK_RECORD_KEY


@dataclass
class TriggerCheck:
    """What the check found on one DIFT pass."""

    dift_pass: int
    patchsearch_pass: int
    reach_limit: float
    coverage: float            # the share of the flags PatchSearch must flag too for the check to clear any
    share: float               # the share it flagged
    reached: int               # flags reached above the limit
    cleared: np.ndarray        # the flags it clears (workspace ids)

    def words(self) -> str:
        """One line for the terminal and the log."""
        head = (f"trigger check (PatchSearch pass {self.patchsearch_pass} on the same encoder, which flags "
                f"{self.share:.0%} of the flags): ")
        if self.share < self.coverage:
            return head + (f"it finds a trigger in fewer than {self.coverage:.0%} of the flags, so finding none in the "
                           f"{self.reached:,} flags the anchors reach as clean says nothing; every flag stays")
        if not self.cleared.size:
            return head + (f"it finds a trigger in every one of the {self.reached:,} flags the trusted anchors reach "
                           f"as clean (above {self.reach_limit:g}); every flag stays")
        return head + (f"{self.cleared.size:,} of the {self.reached:,} flags the trusted anchors reach as clean "
                       f"(above {self.reach_limit:g}) carry no trigger it can find")


def id_ranges(ids: np.ndarray) -> str:
    """``3,17,40-45``: sample ids as ``naviewer review --confirm`` reads them."""
    ids = np.unique(np.asarray(ids, dtype=np.int64))
    parts, start = [], None
    for i, value in enumerate(ids):
        if start is None:
            start = value
        if i + 1 == ids.size or ids[i + 1] != value + 1:
            parts.append(str(start) if start == value else f"{start}-{value}")
            start = None
    return ",".join(parts)


def accept_all_words(check: TriggerCheck, workspace: Any, ahead: bool = False, retrained: bool = False,
                     step: str = "retrain") -> str:
    """What accept-all does with the cleared flags, and the one way to take them out anyway, in one phrasing
    wherever it is said (the demo, finetune and review said it three ways; a newcomer, session 31): ``ahead`` (before
    any accept-all, as ``naviewer demo`` says it) confirming them is enough; after accept-all acted, or after a
    retrain or fine-tune (``retrained``; ``step`` names it), a training without the confirmed samples follows."""
    if not check.cleared.size:
        return check.words()
    ids = id_ranges(check.cleared)
    decide = f"--confirm removes them, --reject keeps them: naviewer review {workspace} --confirm {ids}"
    then = "" if ahead else f", then naviewer run {workspace} --leave-out-confirmed trains without them"
    where = (f"the {step} kept them in its training set" if retrained
             else "accept-all leaves them unconfirmed, in the training set")
    return check.words() + f": {where} ({decide}{then})"


def reached_for_check(scores: dict, summary: dict, reach_limit: float) -> np.ndarray:
    """The flags the check would look at: reached above ``reach_limit`` on a pass with trusted anchors (the check
    is off, an empty array, at a limit of 0 or on anchors drawn from the labels, which may "reach" poisons)."""
    if not reach_limit or summary.get("anchors_trusted") is not True or summary.get("noop"):
        return np.zeros(0, np.int64)
    return reached_flags(scores, reach_limit)


def run_trigger_check(ws: Any, result: Any, *, backbone: Any, store: Any, image_size: Optional[int], device: Any,
                      reach_limit: float, run: str, epoch: int, truth: Optional[np.ndarray] = None,
                      ctx: Optional[JobContext] = None) -> Optional[int]:
    """PatchSearch on ``backbone`` (a copy: the training's own weights, gradients and random state are left as
    they were) over ``store``, saved as a pass of ``run`` at ``epoch``, when the unsaved DIFT ``result`` has flags
    reached above ``reach_limit``; its id is recorded in ``result.settings`` (so DIFT's pass, saved after it, stays
    the workspace's latest). None when the check did not run (said in the log)."""
    import torch

    from naviewer.ssl.embed import extract_embeddings
    from naviewer.workflows.detector_passes import run_detectors

    ctx = ensure_context(ctx)
    scores = {**result.scores(), **result.extra_scores()}
    reached = reached_for_check(scores, result.summary(), reach_limit)
    if not reached.size:
        return None
    if len(store) != ws.store.sample_count():
        ctx.event("log", message="trigger check skipped: the training set is not the workspace's whole set")
        return None
    ctx.event("log", message=f"trigger check: the trusted anchors reach {reached.size:,} of DIFT's flags as clean "
                             f"samples; looking for a trigger in every image with PatchSearch")
    numpy_state = np.random.get_state()
    encoder = copy.deepcopy(backbone).eval()
    on_cuda = device is not None and torch.device(device).type == "cuda"
    # the CPU's generator and the training GPU's own, no other (fork_rng on every visible GPU would start them all)
    index = torch.device(device).index if on_cuda else None
    devices = [index if index is not None else torch.cuda.current_device()] if on_cuda else []
    try:
        with torch.random.fork_rng(devices=devices, device_type="cuda"):
            features = extract_embeddings(encoder, store, device=device, image_size=image_size, ctx=ctx,
                                          message="trigger check: embedding the training set")
            passes, _ = run_detectors(
                ws, features, ["patchsearch"], run=run, epoch=epoch, truth=truth, ctx=ctx, encoder=encoder,
                images=store, image_size=image_size, device=device,
                record_extra={RECORD_KEY: {"of": f"DIFT's flags of run {run} at epoch {epoch + 1}",
                                           "reach_limit": float(reach_limit)}})
    finally:
        np.random.set_state(numpy_state)
    patch_pass = int(passes["patchsearch"])
    result.settings[RECORD_KEY] = {"patchsearch_pass": patch_pass, "reach_limit": float(reach_limit),
                                   "coverage": TRIGGER_CHECK_COVERAGE}
    return patch_pass


def trigger_check_of(ws: Any, pass_id: int) -> Optional[TriggerCheck]:
    """The check recorded with DIFT pass ``pass_id`` and what it clears; None without one (or where its
    PatchSearch pass is gone or unreadable: then nothing is cleared)."""
    info = ws.store.pass_info(int(pass_id))
    recorded = check_record((info or {}).get("settings"))
    if recorded is None:
        return None
    patch_pass, limit, coverage = recorded
    patch_info = ws.store.pass_info(patch_pass)
    if patch_info is None or patch_info.get("method") != "patchsearch":
        return None
    try:
        scores = ws.store.pass_scores(int(pass_id))
        flagged = np.asarray(scores["flagged"], bool)
        reach = np.asarray(scores["anchor_reach"], np.float64)
        patch = np.asarray(ws.store.pass_scores(patch_pass)["flagged"], bool)
    except (KeyError, TypeError, ValueError):
        return None
    cleared, share = trigger_check_clears(flagged, reach, patch, float(limit), float(coverage))
    reached = int(reached_flags({"flagged": flagged, "anchor_reach": reach}, float(limit)).size)
    return TriggerCheck(int(pass_id), patch_pass, float(limit), float(coverage), share, reached, cleared)


def cleared_flags(ws: Any, pass_id: int) -> np.ndarray:
    """The flags of DIFT pass ``pass_id`` its trigger check clears (empty without a check): what accept-all leaves."""
    check = trigger_check_of(ws, pass_id)
    return check.cleared if check is not None else np.zeros(0, np.int64)
