"""One DIFT detection epoch: density -> candidates -> MinDist (Eq. 6) -> 2-GMM split (+ guard).

docs/dift.md, kNN density to MinDist. Works on any (N, D) embedding array, so the same code serves the in-training hook
(once per epoch) and a post-hoc pass over a finished encoder's embeddings.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from naviewer.catalogue import SCREEN_DROP_WORDS
from naviewer.defense.anchor_screen import screen_anchors
from naviewer.defense.anchors import Anchors
from naviewer.defense.config import DiftConfig
from naviewer.defense.knn import KnnIndex, KnnResult, as_float32
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context


def anchor_spread(anchor_z: np.ndarray, anchor_labels: np.ndarray, agg: str = "mean") -> dict[int, float]:
    """Per class: the median over its anchors of the mean (``agg="median"``: median) distance to the
    class's OTHER anchors, i.e. the MinDist a typical known-clean member of that class has. Classes
    with one anchor get the median of the others' (1.0 when no class has two)."""
    anchor_z = np.atleast_2d(np.asarray(anchor_z, dtype=np.float64))
    anchor_labels = np.asarray(anchor_labels, dtype=np.int64).ravel()
    out: dict[int, float] = {}
    for cls in np.unique(anchor_labels):
        a = anchor_z[anchor_labels == cls]
        if len(a) < 2:
            continue
        sq = (a * a).sum(1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * a @ a.T, 0.0))
        np.fill_diagonal(d, 0.0)
        if agg == "median":
            others = d[~np.eye(len(a), dtype=bool)].reshape(len(a), len(a) - 1)
            value = float(np.median(np.median(others, axis=1)))
        else:
            value = float(np.median(d.sum(1) / (len(a) - 1)))
        if value > 0:
            out[int(cls)] = value
    fallback = float(np.median(list(out.values()))) if out else 1.0
    return {int(cls): out.get(int(cls), fallback) for cls in np.unique(anchor_labels)}


def min_dist(z: np.ndarray, anchor_z: np.ndarray, anchor_labels: np.ndarray,
             scale: Optional[dict[int, float]] = None, agg: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """MinDist (Eq. 6): for each row, the smallest over classes of the mean unsquared L2 distance
    to that class's anchors. Returns (mindist, class attaining it). Classes without anchors do
    not exist for this function, so they can never contribute a 0/NaN mean.

    ``scale`` (class -> spread, :func:`anchor_spread`) divides each class's mean first: "far from every
    class" measured in units of each class's own spread (the ``mindist_scale="anchor_spread"`` option).

    ``agg="median"`` takes each class's MEDIAN anchor distance instead of the mean (the
    ``mindist_agg`` option): a class whose anchors are partly poisons (under half of them) keeps
    its clean distance, which the mean does not (one poisoned anchor in ten pulls every poison's
    distance to that class down by a tenth of the gap)."""
    if agg not in ("mean", "median"):
        raise NaviewerError(f"MinDist aggregation must be mean or median, got {agg!r}")
    z = np.atleast_2d(np.asarray(z, dtype=np.float32))
    anchor_z = np.atleast_2d(np.asarray(anchor_z, dtype=np.float32))
    anchor_labels = np.asarray(anchor_labels, dtype=np.int64).ravel()
    if anchor_z.shape[0] == 0:
        raise NaviewerError("MinDist needs at least one anchor")
    if anchor_z.shape[0] != anchor_labels.size:
        raise NaviewerError("MinDist: anchor features and labels differ in length")
    classes, inverse = np.unique(anchor_labels, return_inverse=True)
    onehot = np.zeros((anchor_labels.size, classes.size), dtype=np.float64)
    onehot[np.arange(anchor_labels.size), inverse] = 1.0
    onehot /= onehot.sum(axis=0, keepdims=True)
    divisor = None
    if scale is not None:
        divisor = np.array([float(scale.get(int(c), 1.0)) for c in classes], dtype=np.float64)[None, :]
        if not np.all(divisor > 0):
            raise NaviewerError("MinDist: class scales must be > 0")
    a64 = anchor_z.astype(np.float64)
    a_sq = (a64 * a64).sum(1)
    out = np.empty(z.shape[0], dtype=np.float64)
    arg = np.empty(z.shape[0], dtype=np.int64)
    step = max(1, (1 << 22) // max(1, anchor_z.shape[0]))
    for start in range(0, z.shape[0], step):
        zz = z[start:start + step].astype(np.float64)
        d2 = (zz * zz).sum(1)[:, None] + a_sq[None, :] - 2.0 * zz @ a64.T
        dist = np.sqrt(np.maximum(d2, 0.0))
        if agg == "median":
            means = np.stack([np.median(dist[:, inverse == j], axis=1) for j in range(classes.size)], axis=1)
        else:
            means = dist @ onehot
        if divisor is not None:
            means = means / divisor
        best = means.argmin(axis=1)
        out[start:start + step] = means[np.arange(means.shape[0]), best]
        arg[start:start + step] = classes[best]
    return out, arg


def select_candidates(kth_distance: np.ndarray, n_candidates: int, exclude: Optional[np.ndarray] = None) -> np.ndarray:
    """The ``n_candidates`` ids with the smallest d_k, densest first, never one of ``exclude``."""
    order = np.argsort(kth_distance, kind="stable")
    if exclude is not None and len(exclude):
        keep = np.ones(kth_distance.size, dtype=bool)
        keep[np.asarray(exclude, dtype=np.int64)] = False
        order = order[keep[order]]
    return order[:n_candidates].astype(np.int64)


@dataclass
class GmmSplit:
    """How the candidates were split into poison (high MinDist) and benign."""

    selected: np.ndarray            # (m,) bool: taken out as poison
    posterior: np.ndarray           # (m,) posterior of the high-MinDist component (nan if no GMM)
    means: tuple[float, float] = (float("nan"), float("nan"))   # (lo, hi)
    stds: tuple[float, float] = (float("nan"), float("nan"))
    separation: float = float("nan")
    guard_fired: bool = False
    guard_decision: str = ""        # "", "all" (every candidate above the benign range is poison),
                                    # "none", or "rejected" (a separated split whose poison side lies
                                    # in the benign range)
    reference_p: float = float("nan")   # reference percentile used by the guard
    median: float = float("nan")

    def info(self) -> dict:
        return {"gmm_means": list(self.means), "gmm_stds": list(self.stds), "separation": self.separation,
                "guard_fired": self.guard_fired, "guard_decision": self.guard_decision,
                "reference_percentile_value": self.reference_p, "median_mindist": self.median}


def gmm_split(values: np.ndarray, config: DiftConfig, reference: Callable[[], np.ndarray]) -> GmmSplit:
    """2-component GMM on MinDist; the high-mean component is poison (docs/dift.md, MinDist and the GMM split).

    Guard: when the components are not separated (sep < guard_separation) the candidates are one
    population; compare their median with the ``guard_percentile`` of a benign reference
    (``reference()`` gives MinDist of random non-candidates): above -> all poison, else none.
    """
    from sklearn.mixture import GaussianMixture

    v = np.asarray(values, dtype=np.float64).ravel()
    m = v.size
    split = GmmSplit(selected=np.zeros(m, dtype=bool), posterior=np.full(m, np.nan))
    if m == 0:
        return split
    split.median = float(np.median(v))
    sep = 0.0
    if m >= 2 and np.ptp(v) > 0:
        gmm = GaussianMixture(n_components=2, covariance_type=config.gmm_covariance, n_init=config.gmm_n_init,
                              random_state=config.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gmm.fit(v[:, None])
        means = gmm.means_.ravel()
        cov = np.asarray(gmm.covariances_, dtype=np.float64)
        if config.gmm_covariance in ("full", "diag", "spherical"):
            var = cov.reshape(2, -1)[:, 0]
        else:  # tied: one shared covariance
            var = np.repeat(cov.ravel()[0], 2)
        stds = np.sqrt(np.maximum(var, 0.0))
        hi, lo = int(np.argmax(means)), int(np.argmin(means))
        if hi == lo:
            lo = 1 - hi
        split.posterior = gmm.predict_proba(v[:, None])[:, hi]
        split.selected = split.posterior > 0.5
        split.means = (float(means[lo]), float(means[hi]))
        split.stds = (float(stds[lo]), float(stds[hi]))
        sep = float(abs(means[hi] - means[lo]) / max(stds[hi], stds[lo], 1e-12))
    split.separation = sep
    if sep < config.guard_separation:
        # one population: all poison if it lies above the benign range, else none
        split.guard_fired = True
        ref = np.asarray(reference(), dtype=np.float64)
        if ref.size == 0:
            split.guard_decision = "none"
            split.selected = np.zeros(m, dtype=bool)
            return split
        split.reference_p = float(np.percentile(ref, config.guard_percentile))
        all_poison = split.median > split.reference_p
        split.guard_decision = "all" if all_poison else "none"
        split.selected = np.full(m, all_poison, dtype=bool)
    elif config.guard_check_split and split.selected.any():
        # [F] a clean set can still give two separated modes (classes of different spread); the
        # poison side must also lie above the benign range, as the guard requires of one population
        ref = np.asarray(reference(), dtype=np.float64)
        if ref.size:
            split.reference_p = float(np.percentile(ref, config.guard_percentile))
            if float(np.median(v[split.selected])) <= split.reference_p:
                split.guard_fired = True
                split.guard_decision = "rejected"
                split.selected = np.zeros(m, dtype=bool)
            elif split.means[0] > split.reference_p:
                # both modes above the benign range: the GMM split one poison population in two
                split.guard_fired = True
                split.guard_decision = "all"
                split.selected = v > split.reference_p
    return split


def guard_record(split: Any) -> Optional[dict]:
    """The guard's decision and the split's separation for a pass's summary, where the guard fired (else None): why
    a pass flagged nothing, said later by :func:`nothing_words`."""
    if split is None or not getattr(split, "guard_fired", False):
        return None
    separation = float(getattr(split, "separation", float("nan")))
    return {"decision": str(getattr(split, "guard_decision", "") or ""),
            "separation": separation if np.isfinite(separation) else None}


def nothing_words(summary: Any) -> str:
    """Why DIFT flagged nothing, from its pass's summary, for the window's header and the terminal: "no crowded group
    away from the anchors" was said of passes whose candidates did split off and whose guard rejected the split (a
    newcomer on their own patch poisons, session 32)."""
    guard = summary.get("guard") if isinstance(summary, dict) else None
    decision = guard.get("decision") if isinstance(guard, dict) else None
    separation = guard.get("separation") if isinstance(guard, dict) else None
    sep = f"{separation:.1f}" if isinstance(separation, (int, float)) else ""
    return (guard_words(decision, sep) or "no crowded group away from the anchors") + ", which is not a clean bill"


def guard_words(decision: Optional[str], separation: str = "") -> str:
    """Why the guard took nothing, for one detection (``separation`` "3.2") or a run's epochs ("2.4-3.1"); "" for a
    decision that took something. One wording for a pass and for a run that never stopped."""
    sep = f" (separation {separation})" if separation else ""
    if decision == "rejected":
        return (f"the candidates split in two{sep}, but the side farther from the trusted anchors (larger MinDist) "
                "lay within the clean samples' MinDist range, so the guard took nothing")
    if decision == "none":
        return f"the candidates formed one population{sep}, not above the clean samples' MinDist range, so the guard took nothing"
    return ""


def guard_message(split: GmmSplit, separated_at: float) -> str:
    """The log line of a fired guard, in words that fit its decision ("one population ... rejected" described a
    split that WAS separated, whose poison side lay in the benign range)."""
    decision = split.guard_decision or "none"
    if decision == "rejected":
        return (f"DIFT guard: the candidates split in two (sep={split.separation:.2f}), but the far side lies within "
                "the benign range of MinDist; decision: rejected (nothing taken)")
    if split.separation >= separated_at and decision == "all":  # separated, both modes above the benign range
        return (f"DIFT guard: both modes of the split (sep={split.separation:.2f}) lie above the benign range; "
                "decision: all above it")
    return f"DIFT guard: candidates form one population (sep={split.separation:.2f}); decision: {decision}"


@dataclass
class EpochDetection:
    """Everything one detection epoch found; arrays over candidates are densest-first."""

    n: int
    knn: KnnResult
    candidates: np.ndarray          # (m,) int64 ids
    mindist: np.ndarray             # (m,)
    nearest_class: np.ndarray       # (m,) class whose anchors are closest on average
    split: GmmSplit
    anchors: Anchors
    epoch: Optional[int] = None
    timings: dict[str, float] = field(default_factory=dict)
    features: Optional[np.ndarray] = field(default=None, repr=False)   # normalised, for label spreading
    index: Optional[KnnIndex] = field(default=None, repr=False)
    anchor_notes: list[str] = field(default_factory=list)   # anchors dropped by the untrusted-anchor screen
    mindist_agg: str = "mean"                                # how MinDist aggregated each class's anchors

    @property
    def selected(self) -> np.ndarray:
        """S_t: sorted ids of the candidates taken out as poison."""
        return np.sort(self.candidates[self.split.selected])

    @property
    def posterior(self) -> np.ndarray:
        return self.split.posterior

    @property
    def density(self) -> np.ndarray:
        return self.knn.density

    @property
    def rank(self) -> np.ndarray:
        return self.knn.rank

    def candidate_density(self) -> np.ndarray:
        return self.knn.density[self.candidates]

    def scores(self) -> dict[str, np.ndarray]:
        """Per-sample arrays (length N) in the workspace scores contract: density, rank, candidate,
        mindist and posterior (nan off the candidates)."""
        candidate = np.zeros(self.n, dtype=bool)
        candidate[self.candidates] = True
        mind = np.full(self.n, np.nan, dtype=np.float32)
        mind[self.candidates] = self.mindist
        post = np.full(self.n, np.nan, dtype=np.float32)
        post[self.candidates] = self.split.posterior
        return {"density": self.density, "rank": self.rank, "candidate": candidate, "mindist": mind,
                "posterior": post}

    def summary(self) -> dict:
        return {"epoch": self.epoch, "n": self.n, "candidates": int(self.candidates.size),
                "selected": int(self.split.selected.sum()), "knn_backend": self.knn.backend,
                "knn_recall": self.knn.recall, "timings": dict(self.timings), **self.anchor_info(), **self.split.info()}

    def anchor_info(self) -> dict:
        """How many anchors the detection measured against, trusted or not, how many the screen dropped."""
        return {"anchors": len(self.anchors), "anchors_trusted": bool(self.anchors.trusted),
                "anchors_dropped": len(self.anchor_notes), "mindist_agg": self.mindist_agg}


def detect_epoch(features: np.ndarray, anchors: Anchors, config: Optional[DiftConfig] = None,
                 ctx: Optional[JobContext] = None, epoch: Optional[int] = None,
                 keep_index: bool = True, sample_count: Optional[int] = None) -> EpochDetection:
    """Run one detection epoch on raw (N, D) embeddings; ``anchors`` are sample ids into them.

    ``sample_count``: only the first rows are dataset samples (trusted anchors from outside the set
    follow); the rows after them are never candidates, whatever the anchor screen drops."""
    config = (config or DiftConfig()).validate()
    ctx = ensure_context(ctx)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    z = as_float32(features, config.normalize)
    n = z.shape[0]
    anchors.check_range(n)
    if len(anchors) == 0:
        raise NaviewerError("DIFT needs anchors: give at least one labelled clean sample")
    if n <= config.k + len(anchors):
        raise NaviewerError(f"DIFT needs more than k + anchors = {config.k} + {len(anchors)} samples, got {n}: lower "
                            "k ([dift] k in workspace.toml, or --dift-set k=N) or the anchors a class")
    for message in anchors.warnings:
        ctx.event("warning", message=f"DIFT anchors: {message}")
    timings["prepare"] = time.perf_counter() - start

    start = time.perf_counter()
    index = KnnIndex(z, config, ctx)
    knn = index.all_neighbors(config.k, ctx)
    timings["knn"] = time.perf_counter() - start
    timings.update({f"knn_{key}": value for key, value in knn.timings.items()})
    ctx.check()

    screened: list[str] = []
    if not anchors.trusted and config.untrusted_anchors == "screen":
        screen = screen_anchors(z, anchors, knn, config, index=index, ctx=ctx, sample_count=sample_count)
        anchors, screened = screen.anchors, screen.notes
        if len(anchors) == 0:
            raise NaviewerError("every anchor drawn from the dataset's labels lies in the densest pile: give "
                                "trusted anchors (--anchors)")
        if screened:
            ctx.event("log", message=f"DIFT: {len(screened)} of {len(screen.anchors) + len(screened)} anchors drawn "
                                     f"from the dataset's labels were dropped on suspicion: {SCREEN_DROP_WORDS}")

    start = time.perf_counter()
    n_samples = n if sample_count is None else int(sample_count)
    never = anchors.indices if n_samples >= n else np.union1d(anchors.indices, np.arange(n_samples, n))
    m = min(config.n_candidates(n_samples), n - len(never))
    candidates = select_candidates(knn.kth_distance, m, exclude=never)
    anchor_z = z[anchors.indices]
    agg = config.mindist_agg if config.mindist_agg != "auto" else ("mean" if anchors.trusted else "median")
    scale = anchor_spread(anchor_z, anchors.labels, agg) if config.mindist_scale == "anchor_spread" else None
    mind, nearest = min_dist(z[candidates], anchor_z, anchors.labels, scale, agg)

    def reference() -> np.ndarray:
        rng = np.random.default_rng(config.seed)
        pool = np.ones(n, dtype=bool)
        pool[candidates] = False
        pool[never] = False
        ids = np.flatnonzero(pool)
        if ids.size > config.guard_reference_size:
            ids = rng.choice(ids, size=config.guard_reference_size, replace=False)
        return min_dist(z[ids], anchor_z, anchors.labels, scale, agg)[0] if ids.size else np.empty(0)

    split = gmm_split(mind, config, reference)
    timings["mindist_gmm"] = time.perf_counter() - start
    det = EpochDetection(n=n, knn=knn, candidates=candidates, mindist=mind, nearest_class=nearest, split=split,
                         anchors=anchors, epoch=epoch, timings=timings, features=z,
                         index=index if keep_index else None, anchor_notes=screened, mindist_agg=agg)
    if split.guard_fired:
        ctx.event("log", message=guard_message(split, config.guard_separation))
    return det
