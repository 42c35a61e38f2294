"""Is there anything to judge? Checks on embeddings and anchors before any "no poison detected".

A collapsed encoder (every image on one point), an untrained one, or anchors that do not tell the
classes apart make DIFT's verdict meaningless: density is flat, MinDist is noise, and "nothing
flagged" reads like "clean". These checks say so first. NaN or infinite embeddings are refused
outright (they cannot be ranked); finite ones are only warned about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from naviewer.errors import NaviewerError

#: the first principal direction holding more than this share of the variance: a collapsed encoder
COLLAPSE_SHARE = 0.99
#: anchors whose nearest class mean is their own for fewer than this share (but above the warning's bar) separate
#: their classes only partly: the verdict holds, read wider (:func:`partly_separated_notice`). Measured (session 23):
#: the demo's encoder 87 % (kNN 96 %); a newcomer's CIFAR-subset encoders at kNN 52-57 %, on which DIFT found none
#: of 60 pasted patches, 50-60 % with their own trusted anchors (40-43 % warned already)
PARTLY_SEPARATED = 0.75
#: rows checked at most (a seeded subsample keeps the checks cheap at any N)
SAMPLE = 5000
#: a pass flagging more than this share of the samples is warned about: attacks in the literature poison 0.5-10 %
#: (naviewer's own recipes 1-10 %); crop_density flagged 166 of a newcomer's 300 clean images (55 %) with no word,
#: one cluster a single "Confirm cluster" would have dropped (session 27)
FLAG_RATE_LIMIT = 0.2


@dataclass
class SanityReport:
    """Warnings to show before a verdict, and the figures behind them."""

    warnings: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)

    def extend(self, other: "SanityReport") -> "SanityReport":
        self.warnings.extend(other.warnings)
        self.figures.update(other.figures)
        return self


def require_finite(features: np.ndarray, path=None) -> None:
    """Refuse embeddings holding NaN or infinite values (they cannot be ranked or clustered)."""
    features = np.asarray(features)
    step = max(1, (1 << 22) // max(1, features.shape[-1] if features.ndim else 1))
    for start in range(0, len(features), step):
        block = features[start:start + step]
        if not np.isfinite(block).all():
            row = start + int(np.argwhere(~np.isfinite(block))[0][0])
            raise NaviewerError(f"embeddings contain NaN or infinite values (first in row {row}): the encoder or the "
                                "file is broken; nothing can be judged on them", path)


def _sample(features: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    n = len(features)
    ids = np.arange(n) if n <= SAMPLE else np.sort(np.random.default_rng(seed).choice(n, SAMPLE, replace=False))
    return np.asarray(features[ids], dtype=np.float64), ids


def embedding_report(features: np.ndarray, path=None) -> SanityReport:
    """Warnings for degenerate embeddings: all equal, all zero, or (nearly) one-dimensional."""
    require_finite(features, path)
    report = SanityReport()
    x, _ = _sample(features)
    if x.shape[0] < 2:
        return report
    scale = float(np.abs(x).max())
    report.figures["max_abs"] = scale
    if scale == 0.0:
        report.warnings.append("every embedding is zero: the encoder is collapsed (or the file is empty of "
                               "information); DIFT's verdict means nothing here")
        return report
    x = x / scale  # overflow-free at any scale (1e30 embeddings happen)
    norms = np.linalg.norm(x, axis=1)
    zero = float(np.mean(norms < 1e-12))
    report.figures["zero_rows"] = zero
    if zero > 0.5:
        report.warnings.append(f"{zero:.0%} of the embeddings are zero: the encoder is collapsed")
        return report
    z = x / np.maximum(norms[:, None], 1e-12)
    centred = z - z.mean(axis=0)
    spread = float(np.sqrt((centred ** 2).sum(axis=1).mean()))
    report.figures["spread"] = spread
    if spread < 1e-4:
        report.warnings.append("every embedding points the same way (spread {:.1e} on the unit sphere): the encoder is "
                               "collapsed; DIFT's verdict means nothing here".format(spread))
        return report
    sv = np.linalg.svd(centred, compute_uv=False)
    share = float(sv[0] ** 2 / max((sv ** 2).sum(), 1e-300))
    report.figures["top_direction_share"] = share
    if share > COLLAPSE_SHARE:
        report.warnings.append(f"the embeddings are nearly one-dimensional ({share:.1%} of the variance along one "
                               "direction): the encoder has (partly) collapsed")
    return report


def knn_label_agreement(features: np.ndarray, labels: np.ndarray, k: int = 10, seed: int = 0) -> Optional[float]:
    """Leave-one-out kNN (cosine, majority of k) accuracy of the dataset's labels on a subsample:
    how well the embedding separates the classes. None without two labelled classes."""
    labels = np.asarray(labels, dtype=np.int64)
    x, ids = _sample(features, seed)
    y = labels[ids]
    keep = y >= 0
    x, y = x[keep], y[keep]
    if np.unique(y).size < 2 or len(y) <= k:
        return None
    x = x / np.maximum(np.abs(x).max(), 1e-300)
    z = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sims = z @ z.T
    np.fill_diagonal(sims, -np.inf)
    nearest = np.argpartition(-sims, k, axis=1)[:, :k]
    votes = y[nearest]
    classes = np.unique(y)
    counts = (votes[:, :, None] == classes[None, None, :]).sum(axis=1)
    predicted = classes[counts.argmax(axis=1)]
    return float(np.mean(predicted == y))


def encoder_report(features: np.ndarray, labels: np.ndarray,
                   random_features: "Optional[np.ndarray] | Sequence[np.ndarray]" = None,
                   margin: float = 0.02) -> SanityReport:
    """Warn when the encoder separates the dataset's classes no better than a random initialisation
    of the same network (``random_features``: one array, or several draws, compared with their mean).

    Why several: on a small set one draw's agreement swings by 10 points; one draw equal to the trained
    encoder's by chance read "49.4 % vs 49.4 %", like the encoder compared with itself (a newcomer, session 30)."""
    report = SanityReport()
    trained = knn_label_agreement(features, labels)
    if trained is None:
        return report
    report.figures["knn_label_agreement"] = trained
    if random_features is None:
        return report
    draws = [random_features] if isinstance(random_features, np.ndarray) else list(random_features)
    values = [v for v in (knn_label_agreement(f, labels) for f in draws) if v is not None]
    if not values:
        return report
    baseline = float(np.mean(values))
    report.figures["knn_label_agreement_random_init"] = baseline
    report.figures["knn_label_agreement_random_draws"] = values
    if trained <= baseline + margin:
        said = (f"{baseline:.1%}" if len(values) == 1 else
                f"{baseline:.1%} on average over {len(values)} random initialisations, {min(values):.1%}-{max(values):.1%}")
        report.warnings.append(f"the encoder separates the classes no better than a random initialisation of the "
                               f"same network (kNN label agreement {trained:.1%} vs {said}): it may be "
                               "untrained or the wrong checkpoint; a 'no poison' verdict on it means little")
    return report


def anchor_report(anchor_features: np.ndarray, anchor_labels: np.ndarray) -> SanityReport:
    """Warn when the anchors do not separate their classes: each anchor's nearest class mean (leave
    one out) should be its own class; near chance, MinDist cannot mean "far from every class"."""
    report = SanityReport()
    labels = np.asarray(anchor_labels, dtype=np.int64)
    # leave-one-out needs a second anchor in the class: with one anchor a class every anchor's own class is
    # empty, the score was 0 % and the warning fired whatever the encoder (a newcomer's 1-anchor-a-class run)
    classes, counts = np.unique(labels, return_counts=True)
    keep = np.isin(labels, classes[counts >= 2])
    labels = labels[keep]
    classes = np.unique(labels)
    if classes.size < 2 or len(labels) < 3:
        return report
    x = np.asarray(anchor_features, dtype=np.float64)[keep]
    x = x / np.maximum(np.abs(x).max(), 1e-300)
    z = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sums = np.stack([z[labels == c].sum(axis=0) for c in classes])
    counts = np.array([(labels == c).sum() for c in classes], dtype=np.float64)
    correct = 0
    for i, label in enumerate(labels):
        own = int(np.searchsorted(classes, label))
        means = sums.copy()
        n = counts.copy()
        means[own] -= z[i]
        n[own] -= 1
        valid = n > 0
        means[valid] /= n[valid, None]
        dist = np.where(valid, np.linalg.norm(means - z[i], axis=1), np.inf)
        correct += int(np.argmin(dist) == own)
    accuracy = correct / len(labels)
    chance = 1.0 / classes.size
    report.figures["anchor_separation"] = accuracy
    report.figures["anchor_chance"] = chance
    if accuracy < max(0.5, 2 * chance):
        report.warnings.append(f"the anchors do not separate their classes (each anchor's nearest class mean is its "
                               f"own for {accuracy:.0%}; chance {chance:.0%}): MinDist cannot tell 'far from every "
                               "class'; check the anchors and the encoder")
    return report


def partly_separated_notice(report: SanityReport) -> Optional[str]:
    """Advice (not a warning) when the anchors separate their classes above the warning's bar but below
    :data:`PARTLY_SEPARATED`: a weak encoder whose "no poison" is weak (the pipeline adds it to a pass of nothing,
    beside the next steps of ``NOTHING_FLAGGED_ADVICE``). Before, at 54 % kNN the warning went
    silent and the pass read "no poison detected" over 60 pasted patches (a newcomer, session 22)."""
    accuracy = report.figures.get("anchor_separation")
    if report.warnings or accuracy is None or accuracy >= PARTLY_SEPARATED:
        return None
    chance = report.figures.get("anchor_chance")
    return (f"The anchors separate their classes only partly (each anchor's nearest class mean is its own for "
            f"{accuracy:.0%}" + (f"; chance {chance:.0%}" if chance is not None else "") + "): the encoder is weak, "
            "and a weak encoder crowds few poisons, so few or no flags here are weak evidence of no poison.")


def flag_rate_warning(detector: str, flagged: int, n: int) -> Optional[str]:
    """A warning for a pass that flags more than :data:`FLAG_RATE_LIMIT` of the samples, or None: far more than a
    poisoning attack plants, so its cut does not part this dataset and its flags are no list to confirm."""
    if n <= 0 or flagged <= FLAG_RATE_LIMIT * n:
        return None
    return (f"{detector} flagged {flagged:,} of {n:,} samples ({flagged / n:.0%}): far more than a poisoning attack "
            f"plants (a few percent; more than {FLAG_RATE_LIMIT:.0%} is not plausible), so its cut does not part "
            "this dataset: read its score as a ranking, not its flags as a list to confirm")

