"""Synthetic analysis sessions: a planted dense cluster among class blobs, with DIFT-like scores.

Used by the GUI tests, the ``naviewer bench gui`` benchmark and screenshots, and handy for trying the
analyst views without training anything. The scores follow the store's pass-score keys.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from naviewer.analysis.review import ReviewStore
from naviewer.analysis.session import AnalysisSession, EpochFlags


def planted_embeddings(
    labels: np.ndarray, poison: np.ndarray, rng: np.random.Generator, dim: int = 32, target: int = 0
) -> np.ndarray:
    """Class blobs on the unit sphere plus one tight pile of poisons between the target class and nowhere."""
    n_classes = int(labels.max(initial=0)) + 1
    centres = rng.normal(size=(n_classes, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    emb = centres[np.clip(labels, 0, None)] + rng.normal(scale=0.13, size=(len(labels), dim)).astype(np.float32)
    pile = rng.normal(size=dim).astype(np.float32)
    pile = 0.8 * pile / np.linalg.norm(pile) + 0.5 * centres[target]
    emb[poison] = pile + rng.normal(scale=0.025, size=(int(poison.sum()), dim)).astype(np.float32)
    return emb.astype(np.float32)


def dift_like_scores(
    emb: np.ndarray, labels: np.ndarray, rng: np.random.Generator, k: int = 10, n_candidates: Optional[int] = None
) -> dict[str, np.ndarray]:
    """Density (1 / k-th neighbour distance), rank, candidates, MinDist to anchors, a GMM split, flags."""
    n = len(emb)
    x = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    if n <= 20_000:
        kth = np.empty(n, np.float32)
        for s in range(0, n, 2048):
            d2 = np.maximum(2.0 - 2.0 * (x[s : s + 2048] @ x.T), 0)
            kth[s : s + 2048] = np.sqrt(np.partition(d2, k, axis=1)[:, k])
    else:  # large demo sets: distance to a random sample's k-th neighbour is enough for a picture
        ref = x[rng.choice(n, 2048, replace=False)]
        kth = np.empty(n, np.float32)
        for s in range(0, n, 8192):
            d2 = np.maximum(2.0 - 2.0 * (x[s : s + 8192] @ ref.T), 0)
            kth[s : s + 8192] = np.sqrt(np.partition(d2, 2, axis=1)[:, 2])
    density = 1.0 / np.maximum(kth, 1e-6)
    order = np.argsort(-density, kind="stable")
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    m = n_candidates or max(1, math.ceil(0.01 * n))
    candidate = rank < m

    anchors = []
    for c in np.unique(labels[labels >= 0]):
        pool = np.flatnonzero((labels == c) & ~candidate)
        anchors.append(x[rng.choice(pool, min(10, len(pool)), replace=False)])
    mindist = np.full(n, np.nan, np.float32)
    means = np.stack([np.linalg.norm(x[:, None, :] - a[None], axis=2).mean(axis=1) for a in anchors], axis=1) if n <= 50_000 else None
    if means is not None:
        mindist = means.min(axis=1).astype(np.float32)
    else:
        cand_ids = np.flatnonzero(candidate)
        mindist[cand_ids] = np.stack(
            [np.linalg.norm(x[cand_ids][:, None, :] - a[None], axis=2).mean(axis=1) for a in anchors], axis=1
        ).min(axis=1)

    posterior = np.full(n, np.nan, np.float32)
    flagged = np.zeros(n, bool)
    cand_ids = np.flatnonzero(candidate)
    values = mindist[cand_ids].astype(np.float64)
    if len(cand_ids) >= 4 and np.ptp(values) > 0:
        from sklearn.mixture import GaussianMixture

        gm = GaussianMixture(2, random_state=0).fit(values[:, None])
        hi = int(np.argmax(gm.means_.ravel()))
        post = gm.predict_proba(values[:, None])[:, hi]
        posterior[cand_ids] = post
        flagged[cand_ids[post > 0.5]] = True
    spread = np.zeros(n, bool)
    if flagged.any():  # "label spreading": the nearest unflagged neighbours of the flag centre
        centre = x[flagged].mean(axis=0)
        near = np.argsort(-(x @ centre))[: int(flagged.sum() * 1.1) + 2]
        spread[near[~flagged[near]]] = True
    final = flagged | spread
    return {
        "density": density.astype(np.float32), "rank": rank, "candidate": candidate, "mindist": mindist,
        "posterior": posterior, "flagged": final, "spread": spread, "cluster": np.full(n, -1, np.int64),
    }


def synthetic_images(labels: np.ndarray, poison: np.ndarray, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """Cheap (N, size, size, 3) thumbnails: a class colour with noise; poisons carry a checker trigger."""
    n_classes = int(labels.max(initial=0)) + 1
    palette = rng.integers(40, 220, size=(n_classes, 3))
    base = palette[np.clip(labels, 0, None)][:, None, None, :]
    noise = rng.integers(-30, 30, size=(len(labels), size, size, 1))
    images = np.clip(base + noise, 0, 255).astype(np.uint8)
    t = max(2, size // 4)
    o = (size - t) // 2
    checker = (np.indices((t, t)).sum(axis=0) % 2 * 255).astype(np.uint8)[..., None]
    images[poison, o : o + t, o : o + t, :] = checker
    return images


def make_demo_session(
    n: int = 2000,
    n_poison: int = 60,
    *,
    seed: int = 0,
    dim: int = 32,
    n_classes: int = 10,
    images: Any = "synthetic",
    labels: Optional[np.ndarray] = None,
    poison: Optional[np.ndarray] = None,
    store: Optional[ReviewStore] = None,
    reviewer: str = "tester",
    epochs: int = 8,
    class_names: Optional[list[str]] = None,
) -> AnalysisSession:
    """A session over ``n`` samples of which ``n_poison`` form a planted dense cluster (target class 0)."""
    rng = np.random.default_rng(seed)
    if labels is None:
        labels = rng.integers(0, n_classes, size=n).astype(np.int64)
    if poison is None:
        poison = np.zeros(n, bool)
        poison[rng.choice(n, n_poison, replace=False)] = True
        labels[poison] = rng.integers(1, n_classes, size=int(poison.sum()))  # shadows of other classes
    emb = planted_embeddings(labels, poison, rng, dim=dim)
    scores = dift_like_scores(emb, labels, rng, n_candidates=max(math.ceil(0.01 * n), int(2 * poison.sum())))
    if isinstance(images, str) and images == "synthetic":
        images = synthetic_images(labels, poison, rng)
    flagged_final = np.flatnonzero(scores["flagged"])
    history = []
    for e in range(epochs):
        frac = min(1.0, 0.25 + e / max(epochs - 1, 1))
        keep = flagged_final[rng.random(len(flagged_final)) < frac]
        history.append(EpochFlags(e, np.sort(keep)))
    truth = {"attack": "demo-planted", "poison_ids": np.flatnonzero(poison).tolist(), "target_class": 0}
    names = class_names or ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"][:n_classes]
    return AnalysisSession(
        scores, labels, names, images=images, embeddings=emb, store=store, reviewer=reviewer,
        source_keys=[f"demo/{i}" for i in range(n)], ground_truth=truth, history=history,
        settings={"k": 10, "q": 0.01, "method": "demo"},
    )
