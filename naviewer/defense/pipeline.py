"""DIFT entry points: a post-hoc detection pass and the in-training hook.

* :class:`PosthocDetector` runs one detection pass on a given embedding array (a finished encoder)
  and returns per-sample arrays in the workspace scores contract plus metrics.
* :class:`DiftHook` is the trainer hook (``naviewer.ssl.trainer.TrainHook``: ``after_epoch(trainer, epoch)``): it embeds
  the training set through a callable, runs :func:`detect_epoch`, folds the result into the buffer,
  emits ``dift_*`` epoch metrics and, once the buffer is stable (or capped), label-spreads and hands
  the result to ``on_stable(result)``; the review decision (what ``on_stable`` returns, auto-accept,
  or the one :class:`~naviewer.defense.review.ReviewGate`) is reported truthfully in a
  ``dift_decision`` event before any fine-tuning and restart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np
import scipy.sparse as sp

from naviewer.defense.anchors import NOTHING_FLAGGED_ADVICE, Anchors, few_anchors_notice
from naviewer.defense.buffer import DetectionBuffer
from naviewer.defense.config import DiftConfig
from naviewer.defense.dift import EpochDetection, detect_epoch
from naviewer.defense.finetune import reference_ids
from naviewer.defense.knn import density_rank, is_mapped
from naviewer.defense.mitigate import mitigate_in_training, trainer_embed_settings
from naviewer.defense.review import ReviewDecision
from naviewer.defense.sanity import (
    SanityReport,
    anchor_report,
    embedding_report,
    flag_rate_warning,
    partly_separated_notice,
)
from naviewer.defense.spreading import (LATER_RULE_KEYS, REACH_MAX_CLASSES, SpreadResult, anchor_reach,
                                        anchor_reach_by_class, crop_agreement, crop_outliers, far_from_anchors,
                                        groups_of, label_spread, neighbourhood_closure, reached_clusters,
                                        weakly_reached_cluster)
from naviewer.evaluation.detection import detection_metrics
from naviewer.jobs import JobContext, ensure_context

if TYPE_CHECKING:
    from naviewer.ssl.trainer import Trainer

SCORE_KEYS = ("density", "rank", "candidate", "mindist", "posterior", "flagged", "spread", "cluster")


def flagged_clusters(flagged: np.ndarray, neighbors: np.ndarray, density: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """Connected components of the kNN graph restricted to flagged samples, numbered by density.

    Returns (cluster per sample, -1 off the flagged set; summaries densest first). Cluster 0 has the
    highest median density - what an analyst should review first.
    """
    n = neighbors.shape[0]
    cluster = np.full(n, -1, dtype=np.int64)
    flagged = np.unique(np.asarray(flagged, dtype=np.int64))
    if flagged.size == 0:
        return cluster, []
    local = np.full(n, -1, dtype=np.int64)
    local[flagged] = np.arange(flagged.size)
    nb = neighbors[flagged]
    rows = np.repeat(np.arange(flagged.size), nb.shape[1])
    cols = local[nb.ravel()]
    keep = cols >= 0
    graph = sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(flagged.size, flagged.size))
    n_comp, comp = sp.csgraph.connected_components(graph, directed=True, connection="weak")
    dens = np.asarray(density, dtype=np.float64)[flagged]
    medians = np.array([np.median(dens[comp == c]) for c in range(n_comp)])
    sizes = np.bincount(comp, minlength=n_comp)
    order = sorted(range(n_comp), key=lambda c: (-medians[c], -sizes[c], c))
    renumber = np.empty(n_comp, dtype=np.int64)
    renumber[order] = np.arange(n_comp)
    cluster[flagged] = renumber[comp]
    summaries = [{"cluster": int(renumber[c]), "size": int(sizes[c]), "median_density": float(medians[c])}
                 for c in order]
    return cluster, summaries


@dataclass
class DetectionResult:
    """A finished DIFT detection: per-sample scores, the sets, clusters, metrics and settings."""

    n: int
    detection: EpochDetection
    buffer_ids: np.ndarray          # B (before label spreading)
    final_ids: np.ndarray           # D̂_p (after label spreading) - empty when DIFT is a no-op
    spread: Optional[SpreadResult]
    clusters: list[dict]
    cluster: np.ndarray
    noop: bool
    settings: dict
    metrics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)   # degenerate embeddings / anchors, said before any verdict
    advice: list[str] = field(default_factory=list)     # weaker than a warning: the verdict holds, read it wider
    sample_count: Optional[int] = None  # leading rows that are dataset samples (trusted anchors from outside
                                        # the training set follow them); None: all n

    @property
    def samples(self) -> int:
        """How many dataset samples the per-sample arrays cover (n without appended external anchors)."""
        return self.n if self.sample_count is None else int(self.sample_count)

    def _mask(self, ids: np.ndarray) -> np.ndarray:
        """A length-n bool array, True at ``ids``."""
        mask = np.zeros(self.n, dtype=bool)
        mask[ids] = True
        return mask

    def _trim(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        m = self.samples
        return {key: np.asarray(value)[:m] for key, value in arrays.items()}

    def scores(self) -> dict[str, np.ndarray]:
        """Arrays of length N for ``store.add_detection_pass``: density, rank, candidate, mindist,
        posterior, flagged (final DIFT flag), spread (added by label spreading's own argmax: flagged, not in the
        buffer, and not added by a rule after spreading alone), cluster (-1 none; 0 = densest flagged cluster)."""
        out = self.detection.scores()
        flagged, in_buffer = self._mask(self.final_ids), self._mask(self.buffer_ids)
        out["flagged"] = flagged
        # the rules after spreading (weak reach, crop agreement and outliers, closure) have rows of their own: a
        # crop outlier that spreading never reached (probability 0) read "added by label spreading: yes"
        by_spreading = self._mask(self.spread.flagged) if self.spread is not None else flagged
        out["spread"] = flagged & by_spreading & ~in_buffer
        out["cluster"] = self.cluster
        out = self._trim(out)
        if self.samples < self.n:  # external anchors follow the samples: rank among the samples only (the
            # inspector read "density rank 4,513 of 4,422" on a workspace with 100 trusted outside images)
            out["rank"] = density_rank(np.asarray(self.detection.knn.kth_distance)[:self.samples])
        return out

    def extra_scores(self) -> dict[str, np.ndarray]:
        """Numeric arrays beyond the contract, useful to the inspector: d_k and buffer membership."""
        out = {"kth_distance": self.detection.knn.kth_distance.astype(np.float32), "buffer": self._mask(self.buffer_ids)}
        if self.spread is not None:
            out["poison_probability"] = self.spread.probability_of_all(self.n)  # label spreading's, 0 = unreached
            for name in LATER_RULE_KEYS:  # flagged by a rule after spreading, not by its argmax
                ids = getattr(self.spread, name)
                if ids.size:
                    out[name] = self._mask(ids)
            if self.spread.crop_score is not None:  # what crop agreement ranked (the crop_density score)
                out["crop_score"] = self.spread.crop_score[:self.n]
            if self.spread.reach is not None:  # what the anchor-reach guard read, and whom it kept out
                out["anchor_reach"] = self.spread.reach[:self.n]
                out["guarded"] = self._mask(self.spread.guarded)
                if self.spread.reach_dropped.size:
                    out["reach_dropped"] = self._mask(self.spread.reach_dropped)
        return self._trim(out)

    def summary(self) -> dict[str, Any]:
        anchors = self.detection.anchor_info()
        extra = {"warnings": list(self.warnings)} if self.warnings else {}
        from naviewer.defense.dift import guard_record

        guard = guard_record(getattr(self.detection, "split", None)) if self.noop else None
        if guard is not None:
            extra["guard"] = guard  # why nothing was taken, said where the pass is shown (nothing_words)
        return {"n": self.samples, **anchors, **extra, "candidates": int(self.detection.candidates.size), "buffer": int(self.buffer_ids.size),
                "flagged": int(self.final_ids.size), "noop": self.noop, "clusters": len(self.clusters),
                **({"spread": self.spread.info()} if self.spread else {}), **self.metrics}


def sanity_of(detection: EpochDetection, sample_count: Optional[int] = None) -> SanityReport:
    """Warnings that make a verdict on these embeddings meaningless (collapsed encoder, anchors that do not
    separate classes), from the detection's normalised features, with their figures (the anchors' separation
    feeds a weaker advice too)."""
    z = detection.features
    if z is None:
        return SanityReport()
    samples = z[:sample_count] if sample_count is not None else z
    if is_mapped(samples):  # as_float32 checked every row already: judge a seeded sample, not the whole map
        rows = np.random.default_rng(0).choice(len(samples), size=min(len(samples), 5000), replace=False)
        samples = np.asarray(samples[np.sort(rows)])
    report = embedding_report(samples)
    if not report.warnings and len(detection.anchors):
        report.extend(anchor_report(z[detection.anchors.indices], detection.anchors.labels))
    return report


def finalize(detection: EpochDetection, buffer_ids: np.ndarray, anchors: Anchors, config: DiftConfig,
             ground_truth: Optional[np.ndarray] = None, ctx: Optional[JobContext] = None,
             history: Optional[list[dict]] = None, sample_count: Optional[int] = None,
             crop_scores: Optional[Callable[[], Optional[np.ndarray]]] = None) -> DetectionResult:
    """From the buffer B to the final set: label spreading (unless |B| < n_min: the no-op), the opt-in
    rules after it, clusters, metrics. ``crop_scores()`` gives the samples' ``crop_density`` scores for
    the crop-agreement rule; it is called only when that rule is on and spreading flagged something."""
    ctx = ensure_context(ctx)
    anchors = detection.anchors if detection.anchors is not None else anchors  # after any untrusted-anchor screen
    buffer_ids = np.unique(np.asarray(buffer_ids, dtype=np.int64))
    timings: dict[str, float] = {}
    sanity = sanity_of(detection, sample_count)
    checks = sanity.warnings
    for message in checks:
        ctx.event("warning", message=f"DIFT: {message}")
    noop = buffer_ids.size < config.n_min
    spread = None
    advice: list[str] = []
    notice = few_anchors_notice(anchors)  # a verdict of none reads differently with few anchors too
    if notice is not None:
        advice.append(notice)
        ctx.event("warning", message=f"DIFT: {notice}")
    if noop:
        final = np.empty(0, dtype=np.int64)
        from naviewer.defense.dift import guard_record, nothing_words

        guard = guard_record(getattr(detection, "split", None))
        ctx.event("log", message=f"DIFT flagged nothing ({buffer_ids.size} < n_min={config.n_min} in the buffer): "
                                 + nothing_words({"guard": guard} if guard else {})
                  + (" - but see the warnings above: the verdict may mean nothing" if checks else ""))
    else:
        start = time.perf_counter()
        spread = label_spread(detection.features, buffer_ids, anchors.indices, config, index=detection.index,
                              knn=detection.knn, ctx=ctx, anchor_labels=anchors.labels)
        timings["spread"] = time.perf_counter() - start
        final = spread.flagged
        guard = _ReachGuard(detection, anchors, config, spread, ctx, timings)
        if config.ls_soft_threshold > 0 and final.size:
            soft = weakly_reached_cluster(spread.probability_of_all(detection.n), detection.knn.neighbors,
                                          config.ls_soft_threshold, config.ls_soft_votes, anchors.indices)
            spread.soft = guard(np.setdiff1d(soft, final))
            final = np.union1d(final, spread.soft)
        n_samples = detection.n if sample_count is None else int(sample_count)
        crop_rules = "crop agreement" + (" and crop outliers" if config.crop_outlier_z > 0 else "")
        if config.crop_outlier_z > 0 and config.crop_agreement <= 0:  # it reads crop agreement's scores and window
            ctx.event("warning", message="DIFT: crop outliers are on (crop_outlier_z) but crop agreement is off, whose "
                                         "crop scores and window they read: they were skipped (--dift-set "
                                         "crop_agreement=2 to run both)")
        if config.crop_agreement > 0 and final.size and n_samples > config.crop_agreement_max_n:
            ctx.event("warning", message=f"DIFT: {crop_rules} skipped: {n_samples:,} samples is above "
                                         f"crop_agreement_max_n ({config.crop_agreement_max_n:,}); it embeds eight "
                                         "crops of every image and keeps them in memory (--dift-set "
                                         "crop_agreement_max_n=N to run it anyway)")
        elif config.crop_agreement > 0 and final.size:
            start = time.perf_counter()
            scores = crop_scores() if crop_scores is not None else None
            if scores is None:
                ctx.event("warning", message=f"DIFT: this pass has no crop scores for {crop_rules} (no encoder "
                                             "and images here, or a distributed run): skipped")
            else:
                spread.crop_score = np.asarray(scores, dtype=np.float32)
                spread.crop = guard(crop_agreement(spread.probability_of_all(detection.n), scores, final,
                                                   config.crop_agreement_threshold, config.crop_agreement,
                                                   anchors.indices))
                final = np.union1d(final, spread.crop)
                timings["crop_agreement"] = time.perf_counter() - start
        if config.closure_votes > 0 and final.size:
            added = neighbourhood_closure(final, detection.knn.neighbors, config.closure_votes, anchors.indices,
                                          config.closure_rounds)
            spread.closure = added
            final = np.union1d(final, added)
        if config.crop_outlier_z > 0 and spread.crop_score is not None and final.size:
            # what the crop score alone is sure of, reached or not; after the closure, which would grow from these
            # isolated samples into their clean neighbours (on the CIFAR stop: 28 clean where it took 3 without)
            spread.crop_outliers = guard(crop_outliers(spread.crop_score, final, config.crop_agreement,
                                                       config.crop_outlier_z, anchors.indices))
            final = np.union1d(final, spread.crop_outliers)
        if config.cluster_reach_limit > 0 and final.size:
            final = _take_back_reached_clusters(final, buffer_ids, anchors, detection, config, spread, guard, ctx)
    if final.size == 0:
        weak = partly_separated_notice(sanity)  # nothing flagged by an encoder that barely separates the anchors
        if weak is not None:
            advice.append(weak)
            ctx.event("warning", message=f"DIFT: {weak}")
        advice.append(NOTHING_FLAGGED_ADVICE)
    n_all = detection.n if sample_count is None else int(sample_count)
    too_many = flag_rate_warning("DIFT", int(final.size), n_all)
    if too_many is not None:
        checks = [*checks, too_many]
        ctx.event("warning", message=f"DIFT: {too_many}")
    start = time.perf_counter()
    cluster, clusters = flagged_clusters(final, detection.knn.neighbors, detection.density)
    timings["clusters"] = time.perf_counter() - start
    metrics: dict[str, Any] = {}
    if ground_truth is not None:
        truth = np.asarray(ground_truth, dtype=bool)
        for name, ids in (("candidates", detection.candidates), ("buffer", buffer_ids), ("final", final)):
            m = detection_metrics(ids, truth)
            metrics.update({f"{name}_precision": m.precision, f"{name}_recall": m.recall, f"{name}_fpr": m.fpr,
                            f"{name}_f1": m.f1, f"{name}_count": m.n_flagged})
    return DetectionResult(n=detection.n, detection=detection, buffer_ids=buffer_ids, final_ids=final, spread=spread,
                           clusters=clusters, cluster=cluster, noop=noop, settings=config.to_dict(), metrics=metrics,
                           history=list(history or []), timings=timings, warnings=checks, advice=advice,
                           sample_count=sample_count)


def _take_back_reached_clusters(final: np.ndarray, buffer_ids: np.ndarray, anchors: Anchors,
                                detection: EpochDetection, config: DiftConfig, spread, guard: "_ReachGuard",
                                ctx: JobContext) -> np.ndarray:
    """``final`` less the clusters the cluster-reach rule takes back (:func:`reached_clusters`); with anchors
    drawn from the suspect labels the rule is skipped (a poisoned anchor reaches its poisons)."""
    if not getattr(anchors, "trusted", True):
        ctx.event("log", message="DIFT: the cluster-reach rule needs trusted anchors; these are drawn from the "
                                 "dataset's labels, so it was skipped")
        return final
    if len(groups_of(final, detection.knn.neighbors)) < 2:
        return final  # one cluster: nothing to compare (and the anchors' reach, costly at scale, is not computed)
    reach = guard.relative_reach()
    if reach is None:
        return final
    whole = reached_clusters(final, buffer_ids, reach, detection.knn.neighbors, config.cluster_reach_limit)
    # a cluster's median is its majority's: on mid-training encoders one held 62 poisons (own reach median
    # 0.03-0.07) beside 70-81 clean samples and went back whole (session 23); members barely reached stay flagged
    dropped = whole[reach[whole] > config.cluster_reach_member_floor] if config.cluster_reach_member_floor > 0 \
        else whole
    if whole.size and not dropped.size:  # every member barely reached: the rule would have taken poisons back
        ctx.event("log", message=f"DIFT: the cluster-reach rule took nothing back: the {whole.size} member(s) of the "
                                 "clusters it would take the anchors barely reach themselves (own reach at most "
                                 f"{config.cluster_reach_member_floor:g})")
    if dropped.size:
        spread.reach_dropped = dropped
        kept = whole.size - dropped.size
        ctx.event("log", message=f"DIFT: {dropped.size} flag(s) taken back: label spreading reached them in clusters "
                                 f"of their own that the trusted anchors reach as clean samples (cluster reach "
                                 f"above {config.cluster_reach_limit:g})"
                                 + (f"; {kept} member(s) the anchors barely reach (own reach at most "
                                    f"{config.cluster_reach_member_floor:g}) stay flagged" if kept else ""))
    return np.setdiff1d(final, dropped)


class _ReachGuard:
    """The anchor-reach guard on what a rule after spreading adds (``config.anchor_reach_limit``; off at 0).

    The anchors' reach is computed once, on the first call that has something to judge, and kept on
    the spread result (relative to the median non-anchor sample) with the ids it kept out."""

    def __init__(self, detection: EpochDetection, anchors: Anchors, config: DiftConfig, spread,
                 ctx: JobContext, timings: dict[str, float]) -> None:
        self.detection, self.anchors, self.config, self.spread = detection, anchors, config, spread
        self.ctx, self.timings = ctx, timings
        self.skipped = False

    def relative_reach(self) -> Optional[np.ndarray]:
        if self.spread.reach is None and not self.skipped:
            start = time.perf_counter()
            knn = self.detection.knn
            per_class = self.config.anchor_reach_units == "class"
            n_classes = int(np.unique(self.anchors.labels).size)
            if per_class and n_classes > REACH_MAX_CLASSES:
                per_class = False
                self.ctx.event("warning", message=f"DIFT: the anchor-reach guard read the joint reach, not the reach "
                                                  f"per class: {n_classes} classes is above {REACH_MAX_CLASSES} (one "
                                                  "label spreading a class); a clean class much larger than the "
                                                  "others can then pass as far from its anchors")
            if per_class:
                reach = anchor_reach_by_class(knn.neighbors, knn.distances, self.anchors.indices, self.anchors.labels,
                                              self.config.ls_alpha, self.config.ls_gamma, self.config.graph_weight,
                                              exclude=self.spread.flagged, ctx=self.ctx)
            else:
                reach = anchor_reach(knn.neighbors, knn.distances, self.anchors.indices, self.config.ls_alpha,
                                     self.config.ls_gamma, self.config.graph_weight)
            typical = float(np.median(np.delete(reach, self.anchors.indices)))
            self.timings["anchor_reach"] = time.perf_counter() - start
            if typical <= 0:
                self.skipped = True
                self.ctx.event("warning", message="DIFT: the anchors reach fewer than half the samples through the "
                                                  "kNN graph, so the anchor-reach guard cannot judge: it was skipped")
            else:
                self.spread.reach = (reach / typical).astype(np.float32)
        return self.spread.reach

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        if self.config.anchor_reach_limit <= 0 or ids.size == 0:
            return ids
        reach = self.relative_reach()
        if reach is None:
            return ids
        kept = far_from_anchors(ids, reach, self.detection.knn.neighbors, self.config.anchor_reach_limit)
        self.spread.guarded = np.union1d(self.spread.guarded, np.setdiff1d(ids, kept))
        return kept


def save_detection(store, result: DetectionResult, run: Optional[str] = None, epoch: Optional[int] = None,
                   method: str = "dift", extras: bool = True) -> int:
    """Record a result as a detection pass of a workspace store (``store.add_detection_pass``)."""
    scores = result.scores()
    if extras:
        scores.update(result.extra_scores())
    settings = {**result.settings, "summary": result.summary(), "clusters": result.clusters[:100],
                "history": result.history, "anchor_notes": list(result.detection.anchor_notes),
                "warnings": list(result.warnings), **({"advice": list(result.advice)} if result.advice else {})}
    return int(store.add_detection_pass(method, scores, settings, run=run, epoch=epoch))


class PosthocDetector:
    """One DIFT pass over the embeddings of a finished encoder (no buffer: B = S of this pass)."""

    def __init__(self, config: Optional[DiftConfig] = None) -> None:
        self.config = (config or DiftConfig()).validate()

    def run(self, embeddings: np.ndarray, anchors: Anchors, ground_truth: Optional[np.ndarray] = None,
            ctx: Optional[JobContext] = None, sample_count: Optional[int] = None,
            crop_scores: Optional[Callable[[], Optional[np.ndarray]]] = None) -> DetectionResult:
        """One pass; ``sample_count``: the leading rows that are dataset samples (external anchors follow);
        ``crop_scores``: the crop-agreement rule's input (:func:`finalize`)."""
        ctx = ensure_context(ctx)
        start = time.perf_counter()
        detection = detect_epoch(embeddings, anchors, self.config, ctx, sample_count=sample_count)
        t_detect = time.perf_counter() - start
        result = finalize(detection, detection.selected, anchors, self.config, ground_truth, ctx,
                          sample_count=sample_count, crop_scores=crop_scores)
        result.timings = {**detection.timings, "detect": t_detect, **result.timings,
                          "total": time.perf_counter() - start}
        return result


def _default_embed(trainer: Trainer) -> np.ndarray:
    """Backbone features of the trainer's current training set (eval mode, no augmentation) at the
    TRAINING image size and normalisation, like every other DIFT embedding of a run."""
    from naviewer.ssl.embed import extract_embeddings

    return extract_embeddings(trainer.method.backbone, trainer.store, device=getattr(trainer, "device", None),
                              ctx=getattr(trainer, "ctx", None), message="DIFT: embedding the training set",
                              **trainer_embed_settings(trainer))


def _default_crop_scores(trainer: Trainer, n: int, seed: int = 0) -> Optional[np.ndarray]:
    """The ``crop_density`` scores of the trainer's training set through its current backbone at the
    training size (the crop-agreement rule's input); None when the trainer has no backbone or store."""
    from naviewer.defense.detectors.crops import crop_density_scores

    backbone = getattr(getattr(trainer, "method", None), "backbone", None)
    store = getattr(trainer, "store", None)
    if backbone is None or store is None or len(store) < n:
        return None
    size = trainer_embed_settings(trainer).get("image_size")
    return crop_density_scores(backbone, store, n, image_size=size, device=getattr(trainer, "device", None),
                               ctx=getattr(trainer, "ctx", None), seed=seed)


class DiftHook:
    """In-training DIFT (docs/dift.md, The run) as a trainer hook; see the module docstring.

    ``embed_fn(trainer) -> (N, D)`` gives the training-set embeddings (default: the SSL engine's
    ``extract_embeddings`` on ``trainer.method.backbone`` / ``trainer.store`` at the training size).
    ``ground_truth`` (bool mask) only feeds the metrics. When detection stops, ``on_stable(result)``
    is called; the review decision is then, in this order:

    * what ``on_stable`` returned (a :class:`~naviewer.defense.review.ReviewDecision` or a decision
      string): the application's own gate decided (the workspace workflow does this);
    * with ``config.review == "auto"``: the flags are accepted as proposed (the paper);
    * with "pause": the decision made with :meth:`accept` / :meth:`reject` beforehand, else the
      :class:`~naviewer.defense.review.ReviewGate` ``gate`` (the job waits in ``gate.wait``), else
      nobody can answer now: the trainer is asked to stop (``request_stop("dift_review")``) and the
      decision is ``awaiting_review``.

    A ``dift_decision`` event reports the decision truthfully ("accepted" only when the flags are
    acted on). With ``mitigate`` (True: :func:`naviewer.defense.mitigate.mitigate_in_training`; or a
    callable ``mitigate(trainer, ids)``) an accepted set is then fine-tuned away and training
    restarts without it.
    """

    def __init__(self, anchors: Anchors, config: Optional[DiftConfig] = None,
                 embed_fn: Optional[Callable[[Any], np.ndarray]] = None,
                 on_stable: Optional[Callable[[DetectionResult], Any]] = None,
                 ground_truth: Optional[np.ndarray] = None, total_epochs: Optional[int] = None,
                 ctx: Optional[JobContext] = None, mitigate: Any = False, gate: Any = None,
                 prepare: Optional[Callable[[Any, np.ndarray], tuple[np.ndarray, Anchors]]] = None,
                 crop_fn: Optional[Callable[[Any, int, int], Optional[np.ndarray]]] = None,
                 on_update: Optional[Callable[[int, np.ndarray], None]] = None,
                 replay: Optional[Callable[[], list[tuple[int, np.ndarray]]]] = None) -> None:
        self.anchors = anchors
        #: ``on_update(epoch, selected)``: each detection epoch's S_t, as it folds into the buffer (a run keeps them
        #: so that an interrupted run can be resumed); ``replay()``: the (epoch, S_t) of the epochs before a resume,
        #: folded in again before the first detection of the resumed run, so its buffer is the one it had
        self.on_update = on_update
        self.replay = replay
        #: ``crop_fn(trainer, n, seed) -> (n,) scores``: the crop-agreement rule's ``crop_density`` scores at the stop
        self.crop_fn = crop_fn or _default_crop_scores
        #: ``prepare(trainer, features) -> (features, anchors)``: appends trusted anchors from outside the
        #: training set (embedded with this epoch's encoder) after the samples; results keep the samples only
        self.prepare = prepare
        self.config = (config or DiftConfig()).validate()
        self.embed_fn = embed_fn or _default_embed
        self.on_stable = on_stable
        self.ground_truth = None if ground_truth is None else np.asarray(ground_truth, dtype=bool)
        self.total_epochs = total_epochs
        self.ctx = ctx
        self.mitigate = mitigate
        self.gate = gate
        self.buffer: Optional[DetectionBuffer] = None
        self.last_detection: Optional[EpochDetection] = None
        self.result: Optional[DetectionResult] = None
        self.accepted: Optional[np.ndarray] = None     # the ids acted on (None: no decision yet)
        self.decision: str = ""                        # accepted | rejected | awaiting_review | noop
        self.mitigation = None
        self._choice = None                            # a ReviewDecision made before the stop
        #: (epoch, guard decision, separation) of each detection epoch of this process: why an empty buffer stayed
        #: empty, said at the end ("never held still" was said of a run whose guard took nothing at every epoch;
        #: a newcomer, session 32)
        self.guard_log: list[tuple[int, str, float]] = []

    @property
    def finished(self) -> bool:
        return self.buffer is not None and self.buffer.finished

    # -- review (may be called from the GUI thread while the job waits at the gate) ----------------
    def accept(self, ids: Optional[np.ndarray] = None) -> None:
        """Accept the proposed flags, or the analyst's edited ``ids`` (releases a waiting gate)."""
        self._choice = ReviewDecision("accepted", ids)
        if self.gate is not None:
            self.gate.accept(ids)

    def reject(self) -> None:
        """Keep every sample and train on unchanged (releases a waiting gate)."""
        self._choice = ReviewDecision("rejected")
        if self.gate is not None:
            self.gate.reject()

    def _context(self, trainer: Trainer) -> JobContext:
        return self.ctx or getattr(trainer, "ctx", None) or ensure_context(None)

    def _emit_metrics(self, trainer: Trainer, values: dict) -> None:
        if hasattr(trainer, "add_epoch_metrics"):
            trainer.add_epoch_metrics(**values)
        else:
            self._context(trainer).metric(**values)

    def _emit_event(self, trainer: Trainer, event: str, **data: Any) -> None:
        if hasattr(trainer, "log_event"):
            trainer.log_event(event, **data)
        else:
            self._context(trainer).event(event, **data)

    def after_epoch(self, trainer: Trainer, epoch: int) -> None:
        if self.buffer is None:
            total = self.total_epochs if self.total_epochs is not None else getattr(trainer, "total_epochs", None)
            self.buffer = DetectionBuffer(self.config, total, self.ground_truth)
            earlier = sorted((r for r in (self.replay() if self.replay is not None else []) if r[0] < epoch),
                             key=lambda r: r[0])  # later ones belong to the interrupted attempt
            for done, selected in earlier:
                self.buffer.update(done, selected)
            if self.buffer.finished:  # it stopped there, killed before its pass was saved: detect again now
                self.buffer = DetectionBuffer(self.config, total, self.ground_truth)
                for done, selected in earlier[:-1]:
                    self.buffer.update(done, selected)
        if not self.buffer.should_detect(epoch):
            return
        ctx = self._context(trainer)
        features = self.embed_fn(trainer)
        samples, anchors = len(features), self.anchors
        if self.prepare is not None:
            features, anchors = self.prepare(trainer, features)
        detection = detect_epoch(features, anchors, self.config, ctx, epoch=epoch, sample_count=samples)
        record = self.buffer.update(epoch, detection.selected)
        split = detection.split
        self.guard_log.append((int(epoch), str(getattr(split, "guard_decision", "") or ""),
                               float(getattr(split, "separation", float("nan")))))
        if self.on_update is not None:
            self.on_update(int(epoch), np.asarray(detection.selected, dtype=np.int64))
        self.last_detection = detection
        values: dict[str, Any] = {"dift_detected": record.detected, "dift_candidates": int(detection.candidates.size),
                                  "dift_stable": bool(record.stable)}
        if record.precision is not None:
            values["dift_precision"] = record.precision
            values["dift_recall"] = record.recall
        self._emit_metrics(trainer, values)
        if not self.buffer.finished:
            # free the index and the normalised copy between epochs (2.6 GB at 1.28M x 512)
            self.last_detection.index = None
            self.last_detection.features = None
            return
        self.result = finalize(detection, self.buffer.ids(), anchors, self.config, self.ground_truth, ctx,
                               history=self.buffer.history_dicts(with_ids=True), sample_count=samples,
                               crop_scores=lambda: self.crop_fn(trainer, samples, int(self.config.seed)))
        # the figures after label spreading too (with a ground truth): the monitor's header and plots said the
        # buffer's 26 "flagged" of a demo whose pass flagged 110 (session 18)
        summary = self.result.summary()
        final = {key: summary[key] for key in ("final_precision", "final_recall") if summary.get(key) is not None}
        self._emit_event(trainer, "dift_stop", epoch=int(epoch), reason=self.buffer.stop_reason,
                         buffer=int(self.result.buffer_ids.size), flagged=int(self.result.final_ids.size),
                         noop=bool(self.result.noop), **final)
        answer = self.on_stable(self.result) if self.on_stable is not None else None
        self._review(trainer, ctx, epoch, answer)

    def _decide(self, trainer: Trainer, ctx: JobContext, epoch: int, answer: Any):
        result = self.result
        if result.noop:
            return ReviewDecision("noop", np.empty(0, dtype=np.int64))
        if isinstance(answer, ReviewDecision):
            return answer
        if isinstance(answer, str):
            return ReviewDecision(answer)
        if self.config.review == "auto":
            return self._choice or ReviewDecision("accepted", reviewer="auto")
        if self._choice is not None:
            return self._choice
        info = {"epoch": int(epoch), "flagged": int(result.final_ids.size)}
        self._emit_event(trainer, "dift_review", **info)
        if self.gate is None:
            if hasattr(trainer, "request_stop"):
                trainer.request_stop("dift_review")
            return ReviewDecision("awaiting_review")
        go = self.gate.wait(info, ctx)  # blocks until the analyst decides; raises JobCancelled on cancel
        if self._choice is not None:
            return self._choice
        return ReviewDecision("accepted", getattr(self.gate, "ids", None), "analyst") if go \
            else ReviewDecision("rejected", reviewer="analyst")

    def _review(self, trainer: Trainer, ctx: JobContext, epoch: int, answer: Any = None) -> None:
        result = self.result
        choice = self._decide(trainer, ctx, epoch, answer)
        self.decision = choice.decision
        if choice.decision == "accepted":
            self.accepted = result.final_ids if choice.ids is None else choice.ids
        else:
            self.accepted = np.empty(0, dtype=np.int64)
        if choice.decision == "noop":
            return
        self._emit_event(trainer, "dift_decision", decision=choice.decision, accepted=int(self.accepted.size),
                         flagged=int(result.final_ids.size), **({"reviewer": choice.reviewer} if choice.reviewer else {}))
        if not self.mitigate or choice.decision != "accepted":
            return
        if callable(self.mitigate):
            self.mitigation = self.mitigate(trainer, self.accepted)
        elif self.accepted.size >= 2:

            det = result.detection
            reference = reference_ids(det.candidates, self.accepted, det.rank, size=int(self.accepted.size),
                                      seed=self.config.seed)
            self.mitigation = mitigate_in_training(trainer, self.accepted, self.anchors, self.config, reference, ctx)
