"""Weighted kNN classifier on frozen features (InstDisc/CTRL monitor: k=200, T=0.1, cosine).

score_c(x) = sum over the k most similar bank features f_j of exp(cos(x, f_j) / T) * [y_j = c].
The bank is the *clean* labelled training set. Works in chunks so N x N never materialises.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from naviewer.errors import NaviewerError


def _as_tensor(x: "np.ndarray | torch.Tensor", device: torch.device) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    return t.to(device=device, dtype=torch.float32)


def knn_scores(
    bank_features: "np.ndarray | torch.Tensor",
    bank_labels: np.ndarray,
    query_features: "np.ndarray | torch.Tensor",
    num_classes: Optional[int] = None,
    k: int = 200,
    temperature: float = 0.1,
    exclude_self: bool = False,
    chunk: int = 1024,
    device: "torch.device | str | None" = None,
) -> np.ndarray:
    """(Q, C) vote scores. ``exclude_self`` (query set == bank) gives leave-one-out scores."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    labels = np.asarray(bank_labels, dtype=np.int64)
    keep = labels >= 0
    if not keep.any():
        raise NaviewerError("the kNN bank has no labelled samples")
    if exclude_self and not keep.all():
        raise NaviewerError("leave-one-out kNN needs every bank sample labelled")
    bank = F.normalize(_as_tensor(bank_features, device)[torch.from_numpy(keep).to(device)], dim=1)
    bank_y = torch.from_numpy(labels[keep]).to(device)
    queries = F.normalize(_as_tensor(query_features, device), dim=1)
    classes = int(num_classes if num_classes is not None else labels.max() + 1)
    kk = min(k, bank.shape[0] - (1 if exclude_self else 0))
    if kk < 1:
        raise NaviewerError("the kNN bank is too small")
    out = torch.empty(queries.shape[0], classes, dtype=torch.float32, device=device)
    for start in range(0, queries.shape[0], chunk):
        q = queries[start:start + chunk]
        sim = q @ bank.t()
        if exclude_self:
            rows = torch.arange(q.shape[0], device=device)
            sim[rows, rows + start] = float("-inf")
        top_sim, top_idx = sim.topk(kk, dim=1)
        weights = (top_sim / temperature).exp()
        scores = torch.zeros(q.shape[0], classes, device=device)
        scores.scatter_add_(1, bank_y[top_idx], weights)
        out[start:start + q.shape[0]] = scores
    return out.cpu().numpy()


def knn_predict(bank_features, bank_labels, query_features, num_classes=None, k: int = 200,
                temperature: float = 0.1, exclude_self: bool = False, chunk: int = 1024, device=None) -> np.ndarray:
    """Predicted class per query (argmax of :func:`knn_scores`)."""
    return knn_scores(bank_features, bank_labels, query_features, num_classes, k, temperature,
                      exclude_self, chunk, device).argmax(axis=1)


def knn_accuracy(bank_features, bank_labels, query_features, query_labels, num_classes=None, k: int = 200,
                 temperature: float = 0.1, exclude_self: bool = False, device=None) -> float:
    """Top-1 accuracy of the weighted kNN classifier on labelled queries (0..1)."""
    query_labels = np.asarray(query_labels)
    pred = knn_predict(bank_features, bank_labels, query_features, num_classes, k, temperature,
                       exclude_self, device=device)
    mask = query_labels >= 0
    return float((pred[mask] == query_labels[mask]).mean()) if mask.any() else float("nan")
