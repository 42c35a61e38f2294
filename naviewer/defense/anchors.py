"""Anchors: a few known-clean labelled samples per class (DIFT Eq. 6 needs them).

Draw them *before* poisoning from the clean split (CTRL poisons the first target-class
indices; on CIFAR-100 it can take the whole class) and keep them out of the poison budget. A class
with too few anchors is reported, never silently averaged: a class with 0 anchors simply does not
take part in MinDist (its mean would be 0/NaN and would win the min).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from naviewer.errors import NaviewerError


#: trusted anchors a class that the demo recipe was measured with; fewer widen what label spreading flags
ADVISED_ANCHORS_PER_CLASS = 10


#: a class with fewer trusted anchors than this leaves DIFT's "no poison" unjudged (few_anchors_notice)
UNJUDGED_BELOW = 3


#: the next step when a pass flags nothing (a newcomer saw 70 pasted patches plainly and DIFT flag none, with no word
#: on what to try; session 19): what DIFT sees, and which detectors see what it does not
NOTHING_FLAGGED_ADVICE = (
    "DIFT flagged nothing. It finds poisons that crowd together away from every class's anchors; a pasted patch or "
    "a faint trigger may not crowd. Try other detectors (Run > Detect..., or naviewer detect --detector NAME): "
    "patchsearch for a pasted patch, crop_density for two-image composites; or train longer (a weak encoder crowds "
    "nothing).")


def few_anchors_notice(anchors: "Anchors", advised: int = ADVISED_ANCHORS_PER_CLASS) -> Optional[str]:
    """A sentence for the analyst when some class has fewer than ``advised`` anchors, else None.

    Why: label spreading stops where the anchors' label wins, so with few anchors the poison label runs
    further into clean data. Replaying eleven stored review stops with 3 anchors a class instead of 10, the
    demo recipe's precision fell from 80-100 % to 42-100 % (1 a class: 33-100 %), recall unchanged
    (docs/results.md, session 8). Holding the benign mass at 10 a class (``anchor_mass_per_class``) narrowed
    that to 52-100 % (1 a class: 82-100 % on 9 of 11, but 50 % recall on 2; docs/dift.md, Few anchors), so
    the advice stays."""
    counts = anchors.counts()
    if not counts:
        return None
    short = {c: n for c, n in counts.items() if n < advised}
    if not short:
        return None
    fewest = min(short.values())
    kind = "trusted anchors" if getattr(anchors, "trusted", True) else "anchors"  # "trusted" of untrusted ones read
    head = (f"{len(short)} of {len(counts)} classes have fewer than {advised} {kind} (the fewest: "  # as a contradiction
            f"{fewest}). ")
    if fewest < UNJUDGED_BELOW:
        # measured: with 1 anchor a class the poisons' MinDist sat at the 24th-74th percentile of the clean
        # samples' and post-hoc DIFT flagged nothing on 3 of 3 draws (docs/results.md, Few anchors post-hoc)
        return head + ("With so few, MinDist cannot tell poisons from clean samples, so a verdict of no poison "
                       "means nothing: run detectors that need no anchors beside it (crop_density, kdist: Detect…) "
                       "and add trusted anchors (Workspace > Anchors).")
    return head + ("Label spreading stops where the anchors' label wins, so with few anchors it flags further into "
                   "clean data: expect more clean samples among the flags. MinDist is noisier too, so a verdict of "
                   "no poison is weaker. Add trusted anchors where you can (Workspace > Anchors).")


@dataclass
class Anchors:
    """Anchor sample ids (into the training set) with their class labels."""

    indices: np.ndarray                 # (n,) int64 sample ids
    labels: np.ndarray                  # (n,) int64 class of each anchor
    warnings: list[str] = field(default_factory=list)
    trusted: bool = True                # False: drawn from the suspect set's own labels (may hold poisons)

    def __post_init__(self) -> None:
        self.indices = np.asarray(self.indices, dtype=np.int64).ravel()
        self.labels = np.asarray(self.labels, dtype=np.int64).ravel()
        if self.indices.shape != self.labels.shape:
            raise NaviewerError(f"anchors: {self.indices.size} ids but {self.labels.size} labels")
        if len(np.unique(self.indices)) != self.indices.size:
            raise NaviewerError("anchors: the same sample is listed twice")
        if self.indices.size and self.indices.min() < 0:
            raise NaviewerError("anchors: negative sample id")
        if self.labels.size and self.labels.min() < 0:
            raise NaviewerError("anchors: every anchor needs a class label (got an unlabeled one)")

    def __len__(self) -> int:
        return int(self.indices.size)

    @property
    def classes(self) -> np.ndarray:
        return np.unique(self.labels)

    def counts(self) -> dict[int, int]:
        classes, counts = np.unique(self.labels, return_counts=True)
        return {int(c): int(n) for c, n in zip(classes, counts)}

    def check_range(self, n_samples: int) -> None:
        if self.indices.size and self.indices.max() >= n_samples:
            raise NaviewerError(f"anchor id {int(self.indices.max())} is outside the {n_samples} samples")

    def to_dict(self) -> dict:
        return {"indices": self.indices.tolist(), "labels": self.labels.tolist(), "warnings": list(self.warnings),
                "trusted": bool(self.trusted)}

    @classmethod
    def from_dict(cls, data: dict) -> "Anchors":
        return cls(np.asarray(data["indices"]), np.asarray(data["labels"]), list(data.get("warnings", [])),
                   bool(data.get("trusted", True)))

    def subset(self, keep: np.ndarray) -> "Anchors":
        """The anchors at positions ``keep`` (bool mask or positions), same trust and warnings."""
        keep = np.asarray(keep)
        return Anchors(self.indices[keep], self.labels[keep], list(self.warnings), self.trusted)


def append_external(features: np.ndarray, anchors: Optional[Anchors], external_features: np.ndarray,
                    external_labels: np.ndarray) -> tuple[np.ndarray, Anchors]:
    """Trusted anchors from outside the training set join the embedding array at its end.

    Returns (features with the external rows appended, anchors whose ids point at those rows plus
    any in-set ``anchors``). Detection then sees them like in-set anchors (never candidates, benign
    labels for label spreading); the caller keeps only the first ``len(features)`` rows of every
    per-sample result."""
    features = np.asanyarray(features)  # a memmap stays one (np.asarray would drop the subclass)
    external_features = np.asarray(external_features, dtype=features.dtype)
    external_labels = np.asarray(external_labels, dtype=np.int64).ravel()
    if external_features.ndim != 2 or external_features.shape[0] != external_labels.size:
        raise NaviewerError(f"external anchors: {external_features.shape[0]} embeddings for "
                            f"{external_labels.size} labels")
    if external_features.shape[1] != features.shape[1]:
        raise NaviewerError(f"external anchors are embedded in {external_features.shape[1]} dimensions, the "
                            f"training set in {features.shape[1]}")
    n = features.shape[0]
    ids = n + np.arange(external_labels.size, dtype=np.int64)
    labels = external_labels
    warnings: list[str] = []
    trusted = True
    if anchors is not None and len(anchors):
        ids = np.concatenate([anchors.indices, ids])
        labels = np.concatenate([anchors.labels, external_labels])
        warnings, trusted = list(anchors.warnings), anchors.trusted
    return _appended(features, external_features), Anchors(ids, labels, warnings, trusted)


def _appended(features: np.ndarray, extra: np.ndarray, memory_mb: int = 512) -> np.ndarray:
    """``features`` with ``extra`` rows after them. Memory-mapped features give a memory-mapped float32 result
    written ``memory_mb`` at a time (an unlinked scratch file), since np.concatenate of a 10M x 128 map is
    a 5 GB copy in RAM; in-memory features are concatenated."""
    from naviewer.defense.knn import chunk_rows, is_mapped, release_pages, scratch_array

    if not is_mapped(features):
        return np.concatenate([features, extra], axis=0)
    n, d = features.shape
    out = scratch_array((n + extra.shape[0], d))
    step = chunk_rows(memory_mb, d * 8)
    for start in range(0, n, step):
        stop = min(start + step, n)
        out[start:stop] = features[start:stop]
        release_pages(features)
        release_pages(out)
    out[n:] = extra
    return out


def draw_anchors(labels: np.ndarray, per_class: int = 10, seed: int = 0,
                 candidates: Optional[np.ndarray] = None, classes: Optional[Sequence[int]] = None,
                 strict: bool = False) -> Anchors:
    """Draw ``per_class`` anchors per class with a seed from the clean samples ``candidates``.

    ``labels`` are the (clean, pre-poisoning) labels of the whole set; ``candidates`` restricts the
    draw (e.g. to samples an attack will not touch); ``classes`` lists the classes that must be
    covered (default: every label present). A class with fewer than ``per_class`` clean samples
    gets what it has and a warning; with none, a warning too (or a NaviewerError when ``strict``).
    """
    labels = np.asarray(labels, dtype=np.int64).ravel()
    if per_class < 1:
        raise NaviewerError(f"anchors per class must be >= 1, got {per_class}")
    pool = np.arange(labels.size, dtype=np.int64) if candidates is None else np.asarray(candidates, dtype=np.int64)
    pool = pool[labels[pool] >= 0]
    wanted = np.unique(labels[labels >= 0]) if classes is None else np.asarray(sorted(set(int(c) for c in classes)))
    if wanted.size == 0:
        raise NaviewerError("anchors: the dataset has no labelled samples to draw anchors from")
    rng = np.random.default_rng(seed)
    chosen_ids, chosen_labels, warnings = [], [], []
    for cls in wanted:
        members = pool[labels[pool] == cls]
        if members.size < per_class:
            message = (f"class {int(cls)} has {members.size} clean samples for {per_class} anchors"
                       + ("; it takes no part in MinDist" if members.size == 0 else
                          ": every one of them is an anchor, so none of that class is left for DIFT to check"))
            if strict:
                raise NaviewerError("anchors: " + message)
            warnings.append(message)
        take = rng.choice(members, size=min(per_class, members.size), replace=False) if members.size else members
        chosen_ids.append(np.sort(take))
        chosen_labels.append(np.full(take.size, cls, dtype=np.int64))
    ids = np.concatenate(chosen_ids)
    if ids.size == 0:
        raise NaviewerError("anchors: no class has a clean sample to use as an anchor")
    return Anchors(ids, np.concatenate(chosen_labels), warnings)


def user_anchors(indices: Sequence[int], labels: np.ndarray, per_class: int = 10,
                 classes: Optional[Sequence[int]] = None) -> Anchors:
    """Anchors the analyst picked: ``labels`` are the dataset labels; thin classes are warned about."""
    indices = np.asarray(indices, dtype=np.int64).ravel()
    labels = np.asarray(labels, dtype=np.int64).ravel()
    if indices.size and (indices.min() < 0 or indices.max() >= labels.size):
        raise NaviewerError(f"anchor ids must lie in 0..{labels.size - 1}")
    anchor_labels = labels[indices]
    if (anchor_labels < 0).any():
        raise NaviewerError("anchors: a chosen anchor has no class label")
    anchors = Anchors(indices, anchor_labels)
    counts = anchors.counts()
    wanted = sorted(counts) if classes is None else sorted(set(int(c) for c in classes))
    for cls in wanted:
        have = counts.get(cls, 0)
        if have < per_class:
            anchors.warnings.append(f"class {cls} has {have} anchors (wanted {per_class})"
                                    + ("; it takes no part in MinDist" if have == 0 else ""))
    return anchors
