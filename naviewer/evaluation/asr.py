"""Attack success rate, both definitions (docs/dift.md, Evaluation).

- ``asr_nt`` (toolbox / CorruptEncoder / Saha FP): triggered test images whose TRUE label is not the
  target, predicted as the target / their number.
- ``asr_all`` (CTRL): all triggered test images, target class included, predicted as the target.
- ``backdoor_acc``: accuracy on the triggered images against their true labels.
"""

from __future__ import annotations

import numpy as np


def attack_success_rates(pred_triggered: np.ndarray, true_labels: np.ndarray, target: int) -> dict[str, float]:
    pred = np.asarray(pred_triggered)
    true = np.asarray(true_labels)
    if pred.shape != true.shape:
        raise ValueError("predictions and labels differ in length")
    hit = pred == target
    non_target = true != target
    return {
        "asr_nt": float(hit[non_target].mean()) if non_target.any() else float("nan"),
        "asr_all": float(hit.mean()) if len(hit) else float("nan"),
        "backdoor_acc": float((pred == true).mean()) if len(hit) else float("nan"),
    }


def accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    pred, labels = np.asarray(pred), np.asarray(labels)
    mask = labels >= 0
    return float((pred[mask] == labels[mask]).mean()) if mask.any() else float("nan")
