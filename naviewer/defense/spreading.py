"""Label spreading from the buffer to the whole poison cluster (docs/dift.md, Label spreading).

scikit-learn's ``LabelSpreading`` with the RBF kernel builds a dense N x N float64 affinity (20 GB at
N = 50k), so it never runs on all samples here. Two ways that scale:

* ``pool`` (spec default): P = B ∪ A ∪ kNN_100(B) ∪ 2,000 random points, capped at 20k by neighbour
  rank. With gamma = 20 on unit vectors a point at squared distance >= 1 from every seed has affinity
  <= e^-20, so points outside P could not become poison anyway. Small pools run sklearn's own dense
  RBF LabelSpreading (the paper's setting); pools above ``dense_max`` use a sparse RBF kNN graph.
* ``graph``: a sparse kNN graph over all N (the density pass already has every sample's neighbours),
  RBF-weighted (or 0/1), symmetrised. Memory O(N k), so it runs on 1.28M points.

The sparse graph is handed to sklearn's LabelSpreading as a callable kernel, so the spreading
algorithm itself stays sklearn's. Label mapping (docs/dift.md): poison 1, anchor 0, unknown -1; a point
with no affinity to any label then falls to class 0 (benign).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import scipy.sparse as sp

from naviewer.defense.config import DiftConfig
from naviewer.defense.knn import KnnIndex, KnnResult
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context

POISON, BENIGN, UNKNOWN = 1, 0, -1


#: a pass's arrays of the samples each rule after label spreading added (weak reach, crop agreement, crop outliers,
#: closure): beside spreading's own argmax, which the pass's ``spread`` marks
LATER_RULE_KEYS = ("soft", "crop", "crop_outliers", "closure")


@dataclass
class SpreadResult:
    """The final detected set and how it was obtained."""

    flagged: np.ndarray            # sorted ids labelled poison after spreading (anchors never)
    pool: np.ndarray               # ids spreading ran on (all ids in graph mode)
    poison_probability: np.ndarray  # (len(pool),) normalised label distribution of class 1
    mode: str                      # pool-dense | pool-graph | graph | none
    n_iter: int
    seconds: float
    soft: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))     # ids the soft rule added
    closure: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # ids the closure added after
    crop: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))     # ids crop agreement added
    # ids whose crop score alone stood out (crop_outlier_z): spreading never reached them
    crop_outliers: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    crop_score: Optional[np.ndarray] = None  # the crop_density score crop agreement read (N,), when it ran
    reach: Optional[np.ndarray] = None       # anchor reach / the median sample's (N,), when the guard ran
    guarded: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # ids the guard kept out
    # ids of the flagged clusters the cluster-reach rule took back (spreading's own flags; cluster_reach_limit)
    reach_dropped: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    benign_weight: float = 1.0               # the factor on the anchors' label mass (benign_weight())

    def info(self) -> dict:
        return {"spread_mode": self.mode, "pool_size": int(self.pool.size), "spread_iterations": int(self.n_iter),
                "spread_seconds": float(self.seconds), "spread_flagged": int(self.flagged.size),
                "soft_added": int(self.soft.size), "closure_added": int(self.closure.size),
                "crop_added": int(self.crop.size), "crop_outliers_added": int(self.crop_outliers.size),
                "reach_guarded": int(self.guarded.size),
                "reach_dropped": int(self.reach_dropped.size),
                "benign_weight": float(self.benign_weight)}

    def probability_of_all(self, n: int) -> np.ndarray:
        """The poison probability of every sample (0 outside the pool: spreading never reached it)."""
        out = np.zeros(n, dtype=np.float32)
        if self.pool.size == self.poison_probability.size:
            out[self.pool] = self.poison_probability
        return out


def spreading_labels(n: int, buffer_ids: np.ndarray, anchor_ids: np.ndarray) -> np.ndarray:
    """sklearn labels for n points: buffer 1, anchors 0 (anchors win a clash), others -1 (unlabeled)."""
    y = np.full(n, UNKNOWN, dtype=np.int64)
    y[np.asarray(buffer_ids, dtype=np.int64)] = POISON
    y[np.asarray(anchor_ids, dtype=np.int64)] = BENIGN
    return y


def sparse_affinity(neighbors: np.ndarray, distances: np.ndarray, n: int, gamma: float = 20.0,
                    weight: str = "rbf") -> sp.csr_matrix:
    """Symmetric sparse affinity from kNN lists (row i -> neighbors[i]); no self loops.

    ``rbf``: exp(-gamma d^2), the paper's kernel restricted to kNN edges; ``connectivity``: 1.
    Entries with negative ids (missing neighbours) are dropped.
    """
    neighbors = np.asarray(neighbors, dtype=np.int64)
    rows = np.repeat(np.arange(neighbors.shape[0], dtype=np.int64), neighbors.shape[1])
    cols = neighbors.ravel()
    d = np.asarray(distances, dtype=np.float64).ravel()
    keep = (cols >= 0) & (cols != rows)
    rows, cols, d = rows[keep], cols[keep], d[keep]
    data = np.exp(-gamma * d * d) if weight == "rbf" else np.ones_like(d)
    w = sp.csr_matrix((data, (rows, cols)), shape=(n, n))
    w = w.maximum(w.T).tocsr()
    w.eliminate_zeros()
    return w


def _fit_label_spreading(x_or_graph, y: np.ndarray, config: DiftConfig, dense: bool):
    """sklearn LabelSpreading on dense features (RBF) or on a precomputed sparse affinity."""
    from sklearn.semi_supervised import LabelSpreading

    if (y == BENIGN).sum() == 0:
        raise NaviewerError("label spreading needs at least one anchor (benign label)")
    if dense:
        model = LabelSpreading(kernel="rbf", gamma=config.ls_gamma, alpha=config.ls_alpha,
                               max_iter=config.ls_max_iter, tol=config.ls_tol)
        x = x_or_graph
    else:
        graph = x_or_graph
        model = LabelSpreading(kernel=lambda a, b: graph, alpha=config.ls_alpha, max_iter=config.ls_max_iter,
                               tol=config.ls_tol)
        # the kernel ignores X; sklearn only needs an (n, 1) array to validate and count samples
        x = np.zeros((graph.shape[0], 1), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter is expected on large N
        model.fit(x, y)
    classes = list(model.classes_)
    prob = (model.label_distributions_[:, classes.index(POISON)] if POISON in classes
            else np.zeros(y.size))
    return model.transduction_.astype(np.int64), prob.astype(np.float32), int(model.n_iter_)


def build_pool(index: KnnIndex, buffer_ids: np.ndarray, anchor_ids: np.ndarray, config: DiftConfig,
               ctx: Optional[JobContext] = None) -> np.ndarray:
    """P = B ∪ A ∪ kNN_K(B) ∪ R, at most ``pool_cap`` ids; neighbours of smallest rank are kept first."""
    n = index.n
    base = np.union1d(np.asarray(buffer_ids, dtype=np.int64), np.asarray(anchor_ids, dtype=np.int64))
    rng = np.random.default_rng(config.seed)
    rest = np.setdiff1d(np.arange(n, dtype=np.int64), base, assume_unique=True)
    n_random = min(config.pool_random, rest.size, max(0, config.pool_cap - base.size))
    random_ids = rng.choice(rest, size=n_random, replace=False) if n_random else np.empty(0, dtype=np.int64)
    chosen = np.union1d(base, random_ids)
    room = config.pool_cap - chosen.size
    if config.pool_neighbors > 0 and len(buffer_ids) and room > 0:
        k = min(config.pool_neighbors, n - 1)
        neighbors, _ = index.neighbors_of(buffer_ids, k, ctx)
        by_rank = neighbors.T.ravel()            # every buffer point's 1st neighbour, then 2nd, ...
        _, first = np.unique(by_rank, return_index=True)
        ordered = by_rank[np.sort(first)]
        ordered = ordered[~np.isin(ordered, chosen)]
        chosen = np.union1d(chosen, ordered[:room])
    return chosen


def _graph_for(index: KnnIndex, config: DiftConfig, knn: Optional[KnnResult], ctx: JobContext) -> sp.csr_matrix:
    k = min(config.graph_neighbors, index.n - 1)
    if knn is not None and knn.k >= k and knn.neighbors.shape[0] == index.n:
        neighbors, distances = knn.neighbors[:, :k], knn.distances[:, :k]
    else:
        result = index.all_neighbors(k, ctx)
        neighbors, distances = result.neighbors, result.distances
    return sparse_affinity(neighbors, distances, index.n, config.ls_gamma, config.graph_weight)


def benign_weight(anchor_labels: Optional[np.ndarray], per_class: float, anchors: Optional[int] = None) -> float:
    """The factor on the anchors' label mass: ``per_class`` x classes / anchors, at least 1 (1 without labels).

    Why: spreading is linear in its seed matrix, so its argmax compares the poison label's mass, one unit
    a buffer sample, with the benign one, one unit an anchor. With 1-3 anchors a class the buffer
    outweighed them and the poison label ran into clean data far from every anchor (docs/dift.md, Few
    anchors); with ``per_class`` or more anchors a class nothing changes. ``anchors``: the number of
    distinct anchors (default: one a label)."""
    if anchor_labels is None or per_class <= 0:
        return 1.0
    labels = np.asarray(anchor_labels).ravel()
    count = labels.size if anchors is None else int(anchors)
    if labels.size == 0 or count <= 0:
        return 1.0
    return max(1.0, float(per_class) * np.unique(labels).size / count)


def reweighted_probability(probability: np.ndarray, weight: float) -> np.ndarray:
    """The poison share after the benign column of spreading's answer is multiplied by ``weight``."""
    p = np.asarray(probability, dtype=np.float64)
    if weight == 1.0:
        return p.astype(np.float32)
    out = p / np.maximum(p + weight * (1.0 - p), 1e-300)
    return np.where(p > 0, out, 0.0).astype(np.float32)


def label_spread(features: np.ndarray, buffer_ids: np.ndarray, anchor_ids: np.ndarray,
                 config: Optional[DiftConfig] = None, index: Optional[KnnIndex] = None,
                 knn: Optional[KnnResult] = None, ctx: Optional[JobContext] = None,
                 anchor_labels: Optional[np.ndarray] = None) -> SpreadResult:
    """Spread the buffer's poison label (``config.spread_mode``); ``features`` must be L2-normalised.

    ``index`` (the epoch's kNN index) and ``knn`` (its all-sample answer) are reused when given.
    ``anchor_labels`` (the class of each of ``anchor_ids``) let the benign label weigh as
    ``config.anchor_mass_per_class`` anchors a class when there are fewer (:func:`benign_weight`).
    """
    config = (config or DiftConfig()).validate()
    ctx = ensure_context(ctx)
    start = time.perf_counter()
    buffer_ids = np.unique(np.asarray(buffer_ids, dtype=np.int64))
    anchor_ids = np.unique(np.asarray(anchor_ids, dtype=np.int64))
    n = features.shape[0]
    if config.spread_mode == "none" or buffer_ids.size == 0:
        flagged = np.setdiff1d(buffer_ids, anchor_ids)
        return SpreadResult(flagged, buffer_ids, np.ones(buffer_ids.size, dtype=np.float32), "none", 0,
                            time.perf_counter() - start)
    if anchor_ids.size == 0:
        raise NaviewerError("label spreading needs anchors (known clean samples)")
    ctx.progress(0, 1, "label spreading")
    if config.spread_mode == "graph":
        index = index if index is not None else KnnIndex(features, config, ctx)
        graph = _graph_for(index, config, knn, ctx)
        ctx.check()
        y = spreading_labels(n, buffer_ids, anchor_ids)
        labels, prob, n_iter = _fit_label_spreading(graph, y, config, dense=False)
        pool, mode = np.arange(n, dtype=np.int64), "graph"
    else:
        index = index if index is not None else KnnIndex(features, config, ctx)
        pool = build_pool(index, buffer_ids, anchor_ids, config, ctx)
        ctx.check()
        y = spreading_labels(n, buffer_ids, anchor_ids)[pool]
        x = features[pool]
        if pool.size <= config.dense_max:
            labels, prob, n_iter = _fit_label_spreading(x, y, config, dense=True)
            mode = "pool-dense"
        else:
            sub = KnnIndex(x, config, ctx)
            graph = _graph_for(sub, config, None, ctx)
            labels, prob, n_iter = _fit_label_spreading(graph, y, config, dense=False)
            mode = "pool-graph"
    weight = benign_weight(anchor_labels, config.anchor_mass_per_class, anchor_ids.size)
    if weight != 1.0:  # the argmax of the reweighted answer: poison where its share is above a half
        prob = reweighted_probability(prob, weight)
        labels = np.where(prob > 0.5, POISON, BENIGN)
    flagged = np.setdiff1d(pool[labels == POISON], anchor_ids)
    ctx.progress(1, 1, "label spreading")
    return SpreadResult(flagged=flagged, pool=pool, poison_probability=prob, mode=mode, n_iter=n_iter,
                        seconds=time.perf_counter() - start, benign_weight=weight)


def neighbourhood_closure(flagged: np.ndarray, neighbors: np.ndarray, votes: float, exclude: np.ndarray,
                          rounds: int = 10) -> np.ndarray:
    """Ids added to ``flagged`` because at least ``votes`` of their kNN row is flagged, to a fixed point.

    Why: label spreading's RBF kernel decays with distance, so in a cluster it seeded from its dense
    side it can stop short of poisons whose whole neighbourhood it did flag (docs/dift.md, Closure).
    A vote of at least a half cannot creep through a benign region: every added sample is mostly
    surrounded by flagged ones. ``exclude`` (the anchors) are never added; negative ids (missing
    neighbours) count as not flagged. Returns the sorted added ids (empty when ``votes`` is 0).
    """
    neighbors = np.asarray(neighbors, dtype=np.int64)
    n, k = neighbors.shape
    if votes <= 0 or k == 0 or np.asarray(flagged).size == 0:
        return np.empty(0, dtype=np.int64)
    need = _votes_needed(votes, k)
    start = np.zeros(n, dtype=bool)
    start[np.asarray(flagged, dtype=np.int64)] = True
    mark = start.copy()
    blocked = np.zeros(n, dtype=bool)
    blocked[np.asarray(exclude, dtype=np.int64)] = True
    for _ in range(max(1, int(rounds))):
        new = (_neighbours_in(mark, neighbors) >= need) & ~mark & ~blocked
        if not new.any():
            break
        mark |= new
    return np.flatnonzero(mark & ~start).astype(np.int64)


def weakly_reached_cluster(probability: np.ndarray, neighbors: np.ndarray, threshold: float, votes: float,
                           exclude: np.ndarray) -> np.ndarray:
    """Ids with poison probability above ``threshold`` whose kNN row is at least ``votes`` above it too.

    Why: spreading's argmax keeps only samples closer (in graph steps) to the buffer than to an anchor.
    A second poison cluster that the buffer reaches only through a few edges gets a low probability,
    shared by all its members; the benign samples that spreading reaches as weakly are scattered
    along the flagged cluster's border, among unreached neighbours (docs/dift.md). ``exclude`` (the
    anchors) never count as reached; negative ids (missing neighbours) count as not reached.
    """
    probability = np.asarray(probability, dtype=np.float64)
    neighbors = np.asarray(neighbors, dtype=np.int64)
    n, k = neighbors.shape
    if threshold <= 0 or k == 0:
        return np.empty(0, dtype=np.int64)
    reached = probability[:n] > threshold
    reached[np.asarray(exclude, dtype=np.int64)] = False
    return np.flatnonzero(reached & (_neighbours_in(reached, neighbors) >= _votes_needed(votes, k))).astype(np.int64)


def crop_agreement(probability: np.ndarray, crop_score: np.ndarray, flagged: np.ndarray, threshold: float,
                   window: float, exclude: np.ndarray) -> np.ndarray:
    """Ids not yet flagged that spreading reached (probability above ``threshold``) AND that the crop-aware
    score (``crop_density``: higher = an image's best crop sits more densely among other images' crops)
    ranks within the first ``window`` x |flagged| samples.

    Why: a loose group of composites whose whole-image embeddings sit half among clean samples gets a low
    spreading probability that clean samples at the flagged cluster's border share, and neither rule that
    votes on neighbourhoods reaches it; but their trigger crops still cluster with the other poisons' crops.
    Each signal alone is weak here (clean samples reach the same probabilities; the crop score's own top
    holds clean images on some runs); a sample needs both (docs/dift.md, Crop agreement). The window
    scales with what spreading flagged, so it needs no guess of the poison count. ``exclude`` (the
    anchors) are never added; NaN crop scores rank last. Returns sorted ids.
    """
    probability = np.asarray(probability, dtype=np.float64)
    score = np.asarray(crop_score, dtype=np.float64)
    flagged = np.asarray(flagged, dtype=np.int64)
    n = min(probability.size, score.size)
    if window <= 0 or flagged.size == 0 or n == 0:
        return np.empty(0, dtype=np.int64)
    add = _crop_window(score[:n], flagged, window) & (probability[:n] > threshold)
    return _not_flagged_nor_excluded(add, flagged, exclude)


def _crop_window(score: np.ndarray, flagged: np.ndarray, window: float) -> np.ndarray:
    """The ``window`` x |flagged| samples of highest crop score (NaN never), as a mask: the crop rules' window
    scales with what was flagged so far, so it needs no guess of the poison count."""
    score = np.asarray(score, dtype=np.float64)
    finite = np.isfinite(score)
    top = np.zeros(score.size, dtype=bool)
    count = min(score.size, int(np.ceil(window * flagged.size)))
    top[np.argsort(-np.where(finite, score, -np.inf), kind="stable")[:count]] = True
    return top & finite


def _not_flagged_nor_excluded(add: np.ndarray, flagged: np.ndarray, exclude: np.ndarray) -> np.ndarray:
    """Sorted ids of ``add`` less the flagged ones and ``exclude`` (the anchors: never added)."""
    add = add.copy()
    add[flagged[flagged < add.size]] = False
    exclude = np.asarray(exclude, dtype=np.int64)
    add[exclude[exclude < add.size]] = False
    return np.flatnonzero(add).astype(np.int64)


def crop_outliers(crop_score: np.ndarray, flagged: np.ndarray, window: float, z: float,
                  exclude: np.ndarray) -> np.ndarray:
    """Ids not yet flagged whose crop score stands out from every sample's by more than ``z`` robust standard
    deviations (median + z x 1.4826 x MAD of the finite scores) AND that rank within the first ``window`` x
    |flagged|, whatever spreading gave them.

    Why: crop agreement asks spreading to have reached a sample too, and on the real-image CIFAR cell (session
    24) 107 of 354 poisons had probability 0, while their crop scores sat far above the clean images' (median
    2.23 against the clean 99th percentile 1.45; the score's AUROC 0.9997). Over 67 stored passes on the digits
    no sample, poison or clean, stood out by 4 or more, so the bar adds only what the crop score alone is sure
    of (docs/dift.md, Crop outliers). The pipeline runs it after the closure, which would grow from these isolated
    samples into clean neighbours. A score of no spread (MAD 0) marks nothing. Returns sorted ids."""
    from naviewer.defense.detectors.base import threshold

    score = np.asarray(crop_score, dtype=np.float64)
    flagged = np.asarray(flagged, dtype=np.int64)
    if window <= 0 or z <= 0 or flagged.size == 0 or np.isfinite(score).sum() < 3:
        return np.empty(0, dtype=np.int64)
    standing_out, _rule = threshold(score, "robust_z", z=z)  # the detectors' robust z: MAD 0 marks nothing
    return _not_flagged_nor_excluded(_crop_window(score, flagged, window) & standing_out, flagged, exclude)


def _votes_needed(votes: float, k: int) -> int:
    """How many of k neighbours a fraction ``votes`` asks for (0.7 of 10 -> 7, not 8 by float error)."""
    return int(np.ceil(votes * k - 1e-9))


def _neighbours_in(mask: np.ndarray, neighbors: np.ndarray) -> np.ndarray:
    """Per row of ``neighbors``, how many ids are in ``mask``; negative ids (missing neighbours) are not."""
    return np.where(neighbors < 0, False, mask[np.maximum(neighbors, 0)]).sum(axis=1)


def anchor_reach(neighbors: np.ndarray, distances: np.ndarray, anchor_ids: np.ndarray, alpha: float,
                 gamma: float = 20.0, weight: str = "rbf", tol: float = 1e-7, max_iter: int = 300) -> np.ndarray:
    """How strongly the trusted anchors' label reaches each sample: label spreading of the anchors alone
    (Zhou et al.'s F = (1 - alpha) (I - alpha S)^-1 y, iterated) on the symmetric RBF kNN graph of the
    pass's neighbours. Returns (N,) float64; 0 where no path leads from an anchor.

    Why: poisons are crafted off the clean manifold, so the anchors (known clean samples of every class)
    reach them least (the flagged poisons of the matrix cells sat at the 2nd-4th percentile). A clean
    group that the poison label also reaches, like a class whose images a composite attack pastes, is
    reached by its own anchors like any other sample (docs/dift.md, Anchor reach).
    """
    neighbors = np.asarray(neighbors, dtype=np.int64)
    seed = np.zeros(neighbors.shape[0], dtype=np.float64)
    seed[np.asarray(anchor_ids, dtype=np.int64)] = 1.0 - alpha
    return _spread_columns(_spread_matrix(neighbors, distances, gamma, weight), seed, alpha, tol, max_iter)


def _spread_matrix(neighbors: np.ndarray, distances: np.ndarray, gamma: float, weight: str) -> sp.csr_matrix:
    """S = D^-1/2 W D^-1/2 of the symmetric kNN affinity (zero-degree rows left at zero)."""
    neighbors = np.asarray(neighbors, dtype=np.int64)
    n = neighbors.shape[0]
    w = sparse_affinity(neighbors, distances, n, gamma, weight)
    degree = np.asarray(w.sum(axis=1)).ravel()
    scale = sp.diags(1.0 / np.sqrt(np.where(degree > 0, degree, 1.0)))
    return (scale @ w @ scale).tocsr()


def _spread_columns(s: sp.csr_matrix, seed: np.ndarray, alpha: float, tol: float, max_iter: int,
                    ctx: Optional[JobContext] = None) -> np.ndarray:
    """Iterate F <- alpha S F + seed to its fixed point, every column converged ((N,) or (N, b)), in the seed's
    dtype (its smallest normal number the floor of the relative tolerance, so an unreached column stops)."""
    f = seed.copy()
    floor = np.finfo(seed.dtype).tiny
    for _ in range(max_iter):
        if ctx is not None:
            ctx.check()
        g = alpha * (s @ f) + seed
        done = bool((np.abs(g - f).max(axis=0) <= tol * np.maximum(g.max(axis=0), floor)).all())
        f = g
        if done:
            break
    return f


#: the per-class reach spreads every class's anchors alone; above this many classes the guard reads the joint
#: reach instead (measured at 100k samples: 10 classes 4x the joint reach's time, 100 classes 130x)
REACH_MAX_CLASSES = 64
#: a class whose own region (the samples its column is strongest on) is smaller than this is measured on its
#: strongest N / classes samples instead (a column with no region was dropped, its reach lost)
MIN_REGION = 5
#: the per-class reach's working memory (its column blocks) is kept under this many bytes
REACH_MEMORY_BYTES = 2 * 2**30


def anchor_reach_by_class(neighbors: np.ndarray, distances: np.ndarray, anchor_ids: np.ndarray,
                          anchor_labels: np.ndarray, alpha: float, gamma: float = 20.0, weight: str = "rbf",
                          exclude: Optional[np.ndarray] = None, block: int = 32, tol: float = 1e-6,
                          max_iter: int = 300, ctx: Optional[JobContext] = None) -> np.ndarray:
    """The anchors' reach with each class measured in its own units: each class's anchors are spread
    alone (one column a class), a column is divided by its median over the class's own region (the
    samples whose strongest column it is, less the anchors and ``exclude``: what spreading already
    flagged), and a sample's reach is the sum of its columns. (N,) float64, about 1 for a typical sample
    of any class; 0 where no path leads from an anchor.

    Why: :func:`anchor_reach` spreads every anchor as one label, so a class with many samples and the
    same 10 anchors is reached less per sample, and a clean class 2-5x the others' size fell under the
    guard's limit (docs/results.md, "The guard's class-size caveat"). Measured in each class's own
    typical reach, a clean sample of a large class reads about 1 again, while poisons, reached weakly by
    every class, stay low. ``exclude`` keeps spreading's flags (the poisons, mostly) out of the medians,
    so a poison cluster next to its target class does not lower that class's unit.

    Cost: one spread a class (float32 columns, ``block`` at a time, fewer when N x block would pass
    :data:`REACH_MEMORY_BYTES`; two passes when the classes need more than one block: the regions need
    every column's maximum first). The caller decides above how many classes it is worth it
    (:data:`REACH_MAX_CLASSES`). ``ctx`` is checked for cancel every iteration and told the progress.
    """
    neighbors = np.asarray(neighbors, dtype=np.int64)
    n = neighbors.shape[0]
    anchor_ids = np.asarray(anchor_ids, dtype=np.int64)
    anchor_labels = np.asarray(anchor_labels)
    classes = np.unique(anchor_labels)
    if n == 0 or classes.size == 0:
        return np.zeros(n, dtype=np.float64)
    s = _spread_matrix(neighbors, distances, gamma, weight).astype(np.float32)
    width = max(1, min(int(block), REACH_MEMORY_BYTES // max(1, n * 4 * 4)))  # about four N x width arrays live
    blocks = [classes[i:i + width] for i in range(0, classes.size, width)]
    steps = len(blocks) * (1 if len(blocks) == 1 else 2)
    done = 0

    def columns(part: np.ndarray) -> np.ndarray:
        nonlocal done
        if ctx is not None:
            ctx.progress(done, steps, f"anchor reach per class ({classes.size} classes)")
        seed = np.zeros((n, part.size), dtype=np.float32)
        for j, c in enumerate(part):
            seed[anchor_ids[anchor_labels == c], j] = 1.0 - alpha
        out = _spread_columns(s, seed, alpha, tol, max_iter, ctx)
        done += 1
        return out

    best = np.full(n, -np.inf, dtype=np.float32)
    owner = np.full(n, -1, dtype=np.int64)
    kept: list[np.ndarray] = []
    for b, part in enumerate(blocks):
        f = columns(part)
        top = f.argmax(axis=1)
        value = f[np.arange(n), top]
        better = value > best
        best[better], owner[better] = value[better], b * width + top[better]
        if len(blocks) == 1:
            kept.append(f)
    outside = np.zeros(n, dtype=bool)
    outside[anchor_ids] = True
    if exclude is not None and np.size(exclude):
        outside[np.asarray(exclude, dtype=np.int64)] = True
    owner[(best <= 0) | outside] = -1
    reach = np.zeros(n, dtype=np.float64)
    for b, part in enumerate(blocks):
        f = kept[0] if kept else columns(part)
        for j in range(part.size):
            region = owner == b * width + j
            if int(region.sum()) >= MIN_REGION:
                unit = float(np.median(f[region, j]))
            else:  # the encoder gives this class (almost) no samples of its own: its strongest share of the graph
                values = f[~outside, j]
                share = min(max(MIN_REGION, n // classes.size), values.size)
                unit = float(np.median(np.partition(values, -share)[-share:])) if share else 0.0
            if unit > 0:
                reach += f[:, j] / unit
    if ctx is not None:
        ctx.progress(steps, steps, "anchor reach per class")
    return reach


def groups_of(ids: np.ndarray, neighbors: np.ndarray) -> list[np.ndarray]:
    """``ids`` split into groups connected by kNN edges among themselves (either direction); sorted ids each."""
    from scipy.sparse.csgraph import connected_components

    ids = np.unique(np.asarray(ids, dtype=np.int64))
    neighbors = np.asarray(neighbors, dtype=np.int64)
    if ids.size == 0:
        return []
    position = np.full(neighbors.shape[0], -1, dtype=np.int64)
    position[ids] = np.arange(ids.size)
    rows = np.repeat(np.arange(ids.size, dtype=np.int64), neighbors.shape[1])
    cols = neighbors[ids].ravel()
    cols = np.where(cols >= 0, position[np.clip(cols, 0, None)], -1)
    keep = cols >= 0
    graph = sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(ids.size, ids.size))
    count, label = connected_components(graph, directed=False)
    order = np.argsort(label, kind="stable")
    return np.split(ids[order], np.cumsum(np.bincount(label, minlength=count))[:-1])


def far_from_anchors(ids: np.ndarray, reach: np.ndarray, neighbors: np.ndarray, limit: float) -> np.ndarray:
    """The ids of ``ids`` in groups (:func:`groups_of`) whose median ``reach`` is at most ``limit``; ``reach``
    is already relative to the median sample's. A group is judged whole: a rule adds clusters, and one
    member's reach is noisy where a group's median is not. Returns sorted ids."""
    kept = [group for group in groups_of(ids, neighbors) if float(np.median(reach[group])) <= limit]
    return np.sort(np.concatenate(kept)) if kept else np.empty(0, dtype=np.int64)


#: the cluster-reach rule fires only when the same pass holds a cluster with buffer members whose median reach is
#: at most this (relative to the median sample): the poisons' own clusters read 0.00-0.08 on the demo's six runs
#: (session 20), the clean ones spreading added 0.60-0.93
CLUSTER_REACH_EVIDENCE = 0.1


def reached_clusters(flagged: np.ndarray, buffer_ids: np.ndarray, reach: np.ndarray, neighbors: np.ndarray,
                     limit: float) -> np.ndarray:
    """The ids of the flagged clusters that label spreading added whole (none of their members is in the buffer
    B) and that the trusted anchors reach more than ``limit`` times as strongly as the median sample, when
    another flagged cluster with buffer members is reached at most :data:`CLUSTER_REACH_EVIDENCE`. Sorted ids;
    empty when the rule does not fire.

    Why: on the demo's recipe spreading ran on from the poisons into clean samples of the target class, and in
    4 of 6 runs they formed clusters of their own (4-70 clean "0"s, never in B, reach 0.60-0.93) that
    remove-and-retrain took out with the poisons; they read as any clean sample to their anchors while the
    poisons' clusters read ~0. The rule never drops a cluster that density put into B, and compares clusters
    within one pass: a pass whose flags are all reached says nothing about which of them are poisons
    (docs/dift.md, Cluster reach). The pipeline keeps the members the anchors barely reach themselves
    (``DiftConfig.cluster_reach_member_floor``)."""
    groups = groups_of(flagged, neighbors)
    if len(groups) < 2:
        return np.empty(0, dtype=np.int64)
    in_buffer = np.zeros(neighbors.shape[0], dtype=bool)
    in_buffer[np.asarray(buffer_ids, dtype=np.int64)] = True
    medians = [float(np.median(reach[group])) for group in groups]
    seeded = [bool(in_buffer[group].any()) for group in groups]
    if not any(s and m <= CLUSTER_REACH_EVIDENCE for s, m in zip(seeded, medians)):
        return np.empty(0, dtype=np.int64)
    dropped = [group for group, m, s in zip(groups, medians, seeded) if not s and m > limit]
    return np.sort(np.concatenate(dropped)) if dropped else np.empty(0, dtype=np.int64)
