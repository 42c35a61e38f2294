"""Reading the attack's ground-truth record for *evaluation displays only* (never for detection).

The record is whatever ``attack.craft`` wrote (``ws.write_ground_truth``); its per-sample part may be
a list indexed by id, a dict keyed by id, or lists of poison ids. These helpers accept those shapes.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

_ID_LISTS = ("poison_ids", "poison_indices", "poisons", "poisoned")


def _per_sample(record: dict) -> Any:
    for key in ("samples", "per_sample", "sample"):
        if key in record:
            return record[key]
    return None


def truth_for(record: Optional[dict], i: int) -> Optional[dict]:
    """What the record says about sample ``i`` (kind, recipe, sources ...), or None when nothing."""
    if not record:
        return None
    per = _per_sample(record)
    entry: Any = None
    if isinstance(per, list) and 0 <= i < len(per):
        entry = per[i]
    elif isinstance(per, dict):
        entry = per.get(str(i), per.get(i))  # type: ignore[call-overload]
    if isinstance(entry, dict):
        return entry
    if isinstance(entry, str):
        return {"kind": entry}
    mask = poison_mask(record, i + 1)
    if mask is not None:
        info: dict[str, Any] = {"kind": "poison" if mask[i] else "clean"}
        if mask[i]:
            for key in ("attack", "recipe", "target_class", "trigger_box", "layout"):
                if key in record:
                    info[key] = record[key]
        return info
    return None


def poison_mask(record: Optional[dict], n: int) -> Optional[np.ndarray]:
    """Boolean poison mask over n samples, or None when the record does not say."""
    if not record:
        return None
    for key in _ID_LISTS:
        ids = record.get(key)
        if isinstance(ids, list) and all(isinstance(v, (int, np.integer)) for v in ids):
            mask = np.zeros(n, bool)
            ids_arr = np.asarray(ids, dtype=np.int64)
            mask[ids_arr[(ids_arr >= 0) & (ids_arr < n)]] = True
            return mask
    per = _per_sample(record)
    if isinstance(per, list):
        mask = np.zeros(n, bool)
        for i, entry in enumerate(per[:n]):
            kind = entry.get("kind") if isinstance(entry, dict) else entry
            mask[i] = kind == "poison"
        return mask
    if isinstance(per, dict):
        mask = np.zeros(n, bool)
        for key, entry in per.items():
            kind = entry.get("kind") if isinstance(entry, dict) else entry
            if kind == "poison" and 0 <= int(key) < n:
                mask[int(key)] = True
        return mask
    kinds = record.get("kind")
    if isinstance(kinds, list):
        return np.asarray([k == "poison" for k in kinds[:n]] + [False] * max(0, n - len(kinds)), bool)
    return None
