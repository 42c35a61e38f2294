"""Flags the trusted anchors reach as clean samples: a pointer for the review, and with PatchSearch a rule.

On 30 stored DIFT passes (results.md, "The clean flags sample by sample", session 21) a flag's own relative
anchor reach ranked the clean flags above the poisons at AUROC 0.946-1.000 (poisons' median 0.00-0.02, clean
flags' 0.49-1.34), but no threshold parted them: above 0.7 it took back 434 clean samples and 28 poisons. So DIFT
takes nothing back by the reach alone; the analyst is shown these flags first, to look at before confirming (a clean
"0" beside the composites carries no trigger). Shown only when the pass ran on trusted anchors: anchors drawn from
the labels may be poisons themselves, and then they "reach" poisons. The reach and PatchSearch's flags together are
the trigger check's rule (:func:`trigger_check_clears`, session 31), which only accept-all applies: it leaves the
flags it clears unconfirmed; a review by hand decides them.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

#: a flag whose relative anchor reach is above this is pointed out (session 21: poisons' median 0.00-0.02)
REACHED_LIMIT = 0.7


def reached_flags(scores: Mapping[str, Any], limit: float = REACHED_LIMIT) -> np.ndarray:
    """Ids of the flagged samples whose own anchor reach is above ``limit`` (empty without either score)."""
    flagged, reach = scores.get("flagged"), scores.get("anchor_reach")
    if flagged is None or reach is None:
        return np.zeros(0, np.int64)
    flagged = np.asarray(flagged).astype(bool)
    reach = np.asarray(reach, dtype=np.float64)
    if reach.shape != flagged.shape:
        return np.zeros(0, np.int64)
    with np.errstate(invalid="ignore"):
        return np.flatnonzero(flagged & np.isfinite(reach) & (reach > limit)).astype(np.int64)


def pass_anchors_trusted(settings: Optional[Mapping[str, Any]]) -> bool:
    """Whether a detection pass recorded that it ran on trusted anchors."""
    summary = (settings or {}).get("summary")
    return isinstance(summary, Mapping) and summary.get("anchors_trusted") is True


def reached_text(count: int, undecided: Optional[int] = None, limit: float = REACHED_LIMIT) -> str:
    """The words for ``count`` such flags (``undecided`` of them not decided yet)."""
    them = "it" if count == 1 else "them"
    left = "" if undecided is None else (
        (f" {undecided:,} of them {'awaits' if undecided == 1 else 'await'} a decision." if undecided
         else " All of them are decided."))
    # "poisons measured 0.00-0.02" was the digits' figure: on the CIFAR cell (session 24) flagged poisons read up to
    # 0.55-0.81 (90th percentile) and most flags above 0.7 were poisons, so the words promise a look, not a verdict
    return (f"{count:,} flag{'s' if count != 1 else ''} the trusted anchors reach as clean samples (anchor reach above "
            f"{limit:g}, where crafted poisons seldom sit, though some do): look at {them} before confirming: a clean "
            f"image pulled in with the poisons carries no trigger, a poison does.{left}")


def reached_in_pass(ws: Any, pass_id: int, limit: float = REACHED_LIMIT) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """(the flags of a stored pass the trusted anchors reach as clean samples, above ``limit``, those of them awaiting
    a decision), or None when the pass did not run on trusted anchors."""
    record = ws.store.pass_info(int(pass_id))
    if record is None or not pass_anchors_trusted(record.get("settings")):
        return None
    reached = reached_flags(ws.store.pass_scores(int(pass_id)), limit)
    states = ws.store.review_states()[reached] if len(reached) else np.zeros(0, dtype=object)
    return reached, reached[np.isin(states, ("unreviewed", "later"))]


def other_passes_with_flags(store: Any, pass_id: Optional[int]) -> list[tuple[int, str, int]]:
    """(id, method, flags) of the workspace's other detection passes that flagged samples, newest first: what a pass
    of nothing points to ("try patchsearch" stood under a DIFT pass whose own Detect job had flagged 134 with it)."""
    found = []
    for row in reversed(store.passes()):
        settings = row.get("settings") if isinstance(row.get("settings"), dict) else {}
        inner = settings.get("summary") if isinstance(settings.get("summary"), dict) else {}
        flagged = settings.get("flagged", inner.get("flagged"))
        if row["id"] != pass_id and isinstance(flagged, (int, float)) and not isinstance(flagged, bool) \
                and flagged > 0 and not inner.get("noop"):
            found.append((int(row["id"]), str(row["method"]), int(flagged)))
    return found


def refused_reason(settings: Any) -> str:
    """Why a detector's rule flagged nothing it would have flagged (PatchSearch's classifier calling too many samples
    poisoned), from the pass's threshold record; "" when it did not refuse."""
    if not isinstance(settings, Mapping):
        return ""
    summary = settings.get("summary")
    for record in (settings.get("threshold"), summary.get("threshold") if isinstance(summary, Mapping) else None):
        if isinstance(record, Mapping) and isinstance(record.get("refused"), str):
            return record["refused"]
    return ""


def latest_patchsearch(store: Any, n: int) -> Optional[tuple[int, np.ndarray]]:
    """(pass id, flags) of the workspace's newest PatchSearch pass over its ``n`` samples, or None. Beside the anchors'
    reach it is a second signal: a clean image carries no trigger. Over 30 stored DIFT passes, taking back the flags
    reached above 0.7 in which PatchSearch found no trigger would have taken 688 clean samples and 8 poisons, the reach
    alone 688 and 28 (results.md, session 22), so here it is shown, not applied (the trigger check's rule, below,
    reads a PatchSearch pass of the same encoder, its flags, and applies only where they cover DIFT's)."""
    for row in reversed(store.passes()):
        if row.get("method") != "patchsearch":
            continue
        if refused_reason(row.get("settings")):  # its rule flagged nothing on purpose: it found no trigger anywhere,
            continue                              # which says nothing of these flags ("none in N" read as evidence)
        try:
            scores = store.pass_scores(int(row["id"]))
            # the classifier's word on each image alone where the pass keeps it (its flags average each image with
            # its neighbours, so a clean image among poisons is flagged there: session 25)
            flagged = np.asarray(scores.get("trigger_found", scores.get("flagged")), dtype=bool)
        except Exception:  # noqa: BLE001 - a pointer only: an unreadable pass is passed over
            continue
        if flagged.shape == (n,):
            return int(row["id"]), flagged
    return None


def patchsearch_text(reached: np.ndarray, found: Optional[tuple[int, np.ndarray]]) -> str:
    """How many of the ``reached`` flags PatchSearch found a trigger in ("" without a PatchSearch pass)."""
    if found is None or not len(reached):
        return ""
    pass_id, flagged = found
    with_trigger = int(flagged[reached].sum())
    return (f" PatchSearch (pass {pass_id}) finds a trigger in {with_trigger:,} of them, none in "
            f"{len(reached) - with_trigger:,}.")


def untriggered(reached: np.ndarray, found: Optional[tuple[int, np.ndarray]],
                pending: Optional[np.ndarray] = None) -> np.ndarray:
    """The ``reached`` flags in which the PatchSearch pass ``found`` finds no trigger (empty without one): the two
    signals together (clean by the anchors, no trigger by PatchSearch), offered as a selection to look at and
    decide, never decided for the analyst. ``pending`` (a mask over all samples): only those awaiting a decision,
    so one key on the selection never re-decides a flag the analyst decided already."""
    if found is None or not len(reached):
        return np.zeros(0, np.int64)
    ids = np.asarray(reached, dtype=np.int64)[~found[1][reached]]
    return ids[np.asarray(pending, dtype=bool)[ids]] if pending is not None else ids


def crop_flags_note(summary: Optional[Mapping[str, Any]]) -> str:
    """Beside the warning that the anchors do not separate their classes (MinDist cannot tell "far from every
    class"): how many flags the crop rules added (crop agreement, crop outliers), which rank by how an image's crops
    cluster, not by MinDist; "" without that warning or such flags. The CIFAR cell's pass (390 flags at 89 / 99 %,
    178 from the crop rules) sat under "the flags may mean nothing". Other warnings (a collapsed encoder) concern
    the crop scores too, so the note is not shown under them."""
    if not isinstance(summary, Mapping):
        return ""
    warnings = summary.get("warnings") or []
    if not any("do not separate their classes" in str(w) for w in warnings):
        return ""
    spread = summary.get("spread")
    if not isinstance(spread, Mapping):
        return ""
    counts = [spread.get(key) for key in ("crop_added", "crop_outliers_added")]
    crop = sum(int(c) for c in counts if isinstance(c, int) and not isinstance(c, bool) and c > 0)
    total = summary.get("flagged")
    if not crop or not isinstance(total, int) or isinstance(total, bool):
        return ""
    # one line at 1280 px: the box above the gallery left it one row of tiles with two
    return (f"{crop:,} of the {total:,} flags came from the crop rules, which rank by how an image's crops cluster, "
            "not by MinDist.")


# -- the trigger check: the two signals as a rule, for accept-all -------------------------------------------

#: a flag reached above this (its own relative anchor reach) is looked at by the trigger check (session 28's replay)
TRIGGER_CHECK_REACH = 0.5
#: the check holds back nothing unless PatchSearch flags at least this share of DIFT's flags: where it finds no
#: trigger in most of them (a blended or frequency trigger), "no trigger here" says nothing of one flag
TRIGGER_CHECK_COVERAGE = 0.5


def trigger_check_clears(flagged: np.ndarray, reach: np.ndarray, patch_flagged: np.ndarray,
                         reach_limit: float = TRIGGER_CHECK_REACH,
                         coverage: float = TRIGGER_CHECK_COVERAGE) -> tuple[np.ndarray, float]:
    """(ids of the flags the trigger check clears, the share of the flags PatchSearch flags too).

    Cleared: a flag the trusted anchors reach as a clean sample (reach above ``reach_limit``) in which PatchSearch
    finds no trigger, when PatchSearch flags at least ``coverage`` of all the flags. Replayed on session 28's six demo
    runs and the eight matrix cells of session 27 with a PatchSearch pass (results.md): it cleared 55 flags, all clean
    "0"s of one run (of its 59), and no poison anywhere. ``patch_flagged`` are PatchSearch's flags (each image's
    log-odds averaged with its neighbours'), not its classifier's word on each image alone: a poison among poisons is
    flagged there even where the classifier alone misses its trigger (9 poisons reached above 0.5 on one run)."""
    flagged = np.asarray(flagged).astype(bool)
    reach = np.asarray(reach, dtype=np.float64)
    patch = np.asarray(patch_flagged).astype(bool)
    if not (flagged.shape == reach.shape == patch.shape) or not flagged.any():
        return np.zeros(0, np.int64), 0.0
    share = float(np.count_nonzero(flagged & patch)) / float(np.count_nonzero(flagged))
    if share < coverage:
        return np.zeros(0, np.int64), share
    with np.errstate(invalid="ignore"):
        cleared = flagged & np.isfinite(reach) & (reach > reach_limit) & ~patch
    return np.flatnonzero(cleared).astype(np.int64), share


#: where a DIFT pass's settings record its trigger check (naviewer.workflows.trigger_check writes it)
CHECK_RECORD_KEY = "trigger_check"


def check_record(settings: Any) -> Optional[tuple[int, float, float]]:
    """(PatchSearch pass id, reach limit, coverage) of the trigger check a pass's ``settings`` record, or None
    without one or with a damaged one: the one reading of that record (accept-all, the window, the report)."""
    record = settings.get(CHECK_RECORD_KEY) if isinstance(settings, Mapping) else None
    if not isinstance(record, Mapping):
        return None
    patch_pass, limit = record.get("patchsearch_pass"), record.get("reach_limit")
    coverage = record.get("coverage", TRIGGER_CHECK_COVERAGE)
    if (not isinstance(patch_pass, int) or isinstance(patch_pass, bool)
            or not isinstance(limit, (int, float)) or isinstance(limit, bool)
            or not isinstance(coverage, (int, float)) or isinstance(coverage, bool)):
        return None
    return int(patch_pass), float(limit), float(coverage)
