"""Detection metrics of a flagged set against ground truth (docs/dift.md, Evaluation).

TPR = recall = |F ∩ P*| / |P*|, FPR = |F \\ P*| / (N - |P*|), precision = |F ∩ P*| / |F|, F1.
Ground truth is read only here (evaluation), never by detection. Undefined ratios are NaN, not 0,
so an empty flag set is not reported as "precision 0". ``flagged`` may be a bool mask or sample
ids; the result also reads like a dict (``m["tpr"]``, ``m["fp"]``...) for scripted use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

import numpy as np

from naviewer.errors import NaviewerError


@dataclass
class DetectionMetrics:
    n: int
    n_poison: int
    n_flagged: int
    true_positives: int
    false_positives: int
    precision: float
    recall: float
    fpr: float
    f1: float

    @property
    def tpr(self) -> float:
        return self.recall

    _ALIASES = {"tpr": "recall", "tp": "true_positives", "fp": "false_positives", "flagged": "n_flagged",
                "poisons": "n_poison"}

    def __getitem__(self, key: str) -> Any:
        return getattr(self, self._ALIASES.get(key, key))

    def to_dict(self, prefix: str = "") -> dict:
        values = asdict(self)
        values["tpr"] = self.recall
        return {f"{prefix}{key}": value for key, value in values.items()}


def _as_mask(values: np.ndarray, n: int, what: str) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype == bool:
        if values.shape != (n,):
            raise NaviewerError(f"{what}: boolean mask of length {values.size}, expected {n}")
        return values
    ids = values.astype(np.int64).ravel()
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise NaviewerError(f"{what}: sample id outside 0..{n - 1}")
    mask = np.zeros(n, dtype=bool)
    mask[ids] = True
    return mask


def detection_metrics(flagged: np.ndarray, poison: np.ndarray, n: Optional[int] = None) -> DetectionMetrics:
    """Metrics of ``flagged`` (ids or bool mask) against ``poison`` (bool mask, or ids with ``n``)."""
    poison = np.asarray(poison)
    if poison.dtype != bool and n is None:
        raise NaviewerError("detection metrics: give n when the poisons are ids")
    n = int(poison.size if poison.dtype == bool else n)
    truth = _as_mask(poison, n, "ground truth")
    flag = _as_mask(flagged, n, "flagged set")
    tp = int((flag & truth).sum())
    fp = int((flag & ~truth).sum())
    n_flag, n_poison = int(flag.sum()), int(truth.sum())
    precision = tp / n_flag if n_flag else float("nan")
    recall = tp / n_poison if n_poison else float("nan")
    fpr = fp / (n - n_poison) if n > n_poison else float("nan")
    if n_flag and n_poison:
        f1 = 2 * precision * recall / (precision + recall) if (precision + recall) > 0 else 0.0
    else:
        f1 = float("nan")
    return DetectionMetrics(n=n, n_poison=n_poison, n_flagged=n_flag, true_positives=tp, false_positives=fp,
                            precision=float(precision), recall=float(recall), fpr=float(fpr), f1=float(f1))


def before_after_spreading(buffer_ids: np.ndarray, final_ids: np.ndarray, poison: np.ndarray) -> dict:
    """DIFT Fig. 5: the metrics of B (before label spreading) and of the final set (after)."""
    return {"before": detection_metrics(buffer_ids, poison).to_dict(),
            "after": detection_metrics(final_ids, poison).to_dict()}


def auroc(score: np.ndarray, poison: np.ndarray) -> Optional[float]:
    """Area under the ROC curve of ``score`` (higher = more suspicious) against the poison mask: the
    probability that a random poison outscores a random clean sample (ties count half; NaN scores
    rank lowest). None when either class is empty."""
    s = np.asarray(score, dtype=np.float64).ravel()
    y = np.asarray(poison, dtype=bool).ravel()
    if s.size != y.size:
        raise NaviewerError(f"score has {s.size} samples, the ground truth {y.size}")
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return None
    s = np.where(np.isfinite(s), s, -np.inf)
    from scipy.stats import rankdata

    ranks = rankdata(s)  # average ranks: ties count half
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))
