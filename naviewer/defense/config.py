"""Every DIFT setting in one typed dataclass.

The DIFT paper leaves most numbers unstated; ``docs/dift.md`` says which choices naviewer made.
Each such choice is a field here so a user (or ``workspace.toml``) can change it, and so a detection
pass records exactly what it ran with (``to_dict``).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Mapping, Optional

from naviewer.errors import NaviewerError
from naviewer.settings import settings_from_dict

if TYPE_CHECKING:
    from naviewer.workspace import Workspace

KNN_BACKENDS = ("auto", "hnsw", "exact", "ivfpq", "ivfsq", "ivffs")
SPREAD_MODES = ("pool", "graph", "none")
RESTART_MODES = ("continue", "retrain")
MINDIST_SCALES = ("none", "anchor_spread")
MINDIST_AGGS = ("mean", "median", "auto")
UNTRUSTED_ANCHOR_RULES = ("screen", "as-is")
GRAPH_WEIGHTS = ("rbf", "connectivity")
ANCHOR_REACH_UNITS = ("joint", "class")

#: DIFT settings a new workspace starts from (``naviewer new --dift-preset``, written into its ``[dift]``).
#: ``paper``: the dataclass's defaults (Eq. 6 MinDist, 1 % candidates, label spreading alpha 0.2, argmax only).
#: ``naviewer``: the recipe measured on the detection matrix (docs/dift.md): scaled MinDist, 3 % candidates,
#: alpha 0.7, the weak-reach rule with the anchor-reach guard, crop agreement, and the closure. Post-hoc on the
#: real-image CIFAR cell it flagged 97 % of the poisons at 97 % precision where the paper's settings flagged 66 %,
#: and nothing on four no-poison encoders (docs/results.md, "The recipe post-hoc"). Crop agreement (since session
#: 12): DIFT in training on the CIFAR cell stopped with 67 % recall without it, 85 % with it (replayed on the stop's
#: encoder and buffer); it is skipped above ``crop_agreement_max_n`` samples (its eight crops an image). The reach
#: per class (since session 13): the guard held at 118 flags (98 / 100 %) with the reached clean class 1-8x the
#: others' size, where the joint reach let it back at 2-5x (233-247 flags at 47-50 %).
#: The cluster reach (since session 20): spreading's own flags in a cluster of their own, never in the buffer, that
#: the trusted anchors reach as clean samples are taken back; on the demo's six runs it took back the three large
#: clean clusters (14-70 clean "0"s) and no poison (docs/dift.md, Cluster reach). Crop outliers (since session 24):
#: on the CIFAR cell's in-training stop 107 poisons spreading never reached stood far out by their crop scores;
#: replayed, 262 flags at 94 / 70 % became 359 at 96 / 97 %, and nothing changed on 67 digits passes.
DIFT_PRESETS: dict[str, dict[str, Any]] = {
    "naviewer": {"mindist_scale": "anchor_spread", "candidate_fraction": 0.03, "ls_alpha": 0.7,
                 "ls_soft_threshold": 0.1, "ls_soft_votes": 0.9, "anchor_reach_limit": 0.75, "closure_votes": 0.7,
                 "crop_agreement": 2.0, "crop_agreement_threshold": 0.05, "crop_outlier_z": 6.0,
                 "anchor_reach_units": "class",
                 "cluster_reach_limit": 0.6, "cluster_reach_member_floor": 0.2},
    "paper": {},
}

#: ``[dift]`` keys an older naviewer wrote that this one no longer has: old name -> new name, or None
#: (accepted and ignored). Empty: no DIFT setting has been renamed or removed yet; add the old name
#: here when one is, so workspaces written before keep opening.
LEGACY_DIFT_KEYS: dict[str, Optional[str]] = {}


#: the largest value of the integer settings: far beyond any use, short of a run that never ends
INT_SETTING_MAX = {"gmm_n_init": 1000, "ls_max_iter": 1_000_000, "ft_max_steps": 10_000_000, "patience": 100_000,
                   "max_detection_epochs": 100_000, "k": 100_000, "graph_neighbors": 100_000, "closure_rounds": 1000,
                   "anchors_per_class": 1_000_000, "ft_check_every": 10_000_000, "hnsw_m": 4096,
                   "hnsw_ef_construction": 1_000_000, "hnsw_ef": 1_000_000, "retrain_epochs": 1_000_000}


@dataclass
class DiftConfig:
    """DIFT settings; the defaults are the choices ``docs/dift.md`` explains, step by step."""

    # -- kNN density -----------------------------------------------------------------------
    k: int = 20
    knn_backend: str = "auto"          # hnsw | exact | ivfpq / ivfsq / ivffs (FAISS) | auto (exact when N <= exact_max_n, HNSW up
                                       # to approx_max_n, FAISS IVF-PQ4 fast scan above when faiss is installed)
    approx_max_n: int = 3_000_000      # auto: HNSW in RAM up to this size, ivffs above (memory: codes, not vectors)
    ivf_nlist: Optional[int] = None    # IVF lists (None: max(4 sqrt(N), N / 256): lists of ~256 rows at scale, so a
                                       # query scans nprobe x 256 codes whatever N; at most N / 39)
    ivf_quantizer: str = "auto"        # IVF coarse quantiser: flat (exact, N x nlist x d to assign) | hnsw (FAISS
                                       # IndexHNSWFlat over two-level k-means centroids) | auto (hnsw above 8192 lists)
    ivf_add_ef: int = 16               # HNSW quantiser: efSearch while adding (each row's ONE list; queries use
                                       # max(64, 2 nprobe) for their nprobe lists). At 39k lists the assignment at
                                       # 64 cost ~190 us a row, a third of a 10M pass (docs/reproduction/scale)
    ivf_nprobe: int = 32               # lists visited per query (recall vs time: at 1M x 128, lists of 256, recall@10
                                       # 0.91 at 16, 0.98 at 32; docs/reproduction/scale)
    pq_dims_per_code: int = 4          # PQ: one 8-bit code per this many dims (d / 4 bytes per vector)
    ivf_train_size: int = 200_000      # rows the IVF-PQ quantisers are trained on (a seeded sample)
    recall_sample: int = 256           # approximate backends: recall@k against exact on this many rows (0: off)
    exact_max_n: int = 5000            # auto: exact up to this size on CPU (exact is O(N^2 D))
    exact_max_n_gpu: int = 200000      # auto: exact up to this size when CUDA is available
    exact_device: Optional[str] = None  # None: cuda when available, else cpu
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    hnsw_ef: Optional[int] = None      # None: max(128, 2k+1)
    num_threads: int = 0               # 0: every core
    knn_dims: Optional[int] = None     # PCA to this many dims before the index (None: full dims)
    knn_rerank: int = 10               # extra neighbours fetched then re-ranked in full dims when knn_dims is set
    knn_memory_mb: int = 512           # working memory of the chunked kNN passes: rows normalised, queried and re-ranked
                                       # at a time; memory-mapped embeddings have their pages released past it
    seed: int = 0
    normalize: bool = True             # L2-normalise features before detection (docs/dift.md, Embeddings)

    # -- candidates, MinDist, GMM ---------------------------------------------------------
    candidate_fraction: float = 0.01
    anchors_per_class: int = 10
    mindist_scale: str = "none"        # none: Eq. 6 as in the paper | anchor_spread: each class's mean anchor
                                       # distance divided by that class's own anchor spread (tight and broad
                                       # classes on one scale; a poison pile beside a tight class is "far")
    mindist_agg: str = "auto"          # mean: Eq. 6 as in the paper | median: each class's median anchor distance
                                       # (holds while under half of a class's anchors are poisons) | auto: mean
                                       # for trusted anchors, median for anchors drawn from the dataset's labels
    untrusted_anchors: str = "screen"  # anchors drawn from the labels of the suspect set: screen = drop those
                                       # that lie apart from their class's other anchors or among the densest
                                       # samples, with a note (defense/anchors.py, screen_anchors) | as-is
    gmm_covariance: str = "full"
    gmm_n_init: int = 5
    guard_separation: float = 2.0
    guard_reference_size: int = 2000
    guard_percentile: float = 95.0
    guard_check_split: bool = True     # also reject a separated split whose poison side lies within the benign range

    # -- buffer ----------------------------------------------------------------------------
    start_epoch: Optional[int] = 10    # None: min(10, max(5, ceil(2% of total epochs)))
    n_min: int = 10
    patience: int = 2
    max_detection_epochs: int = 40

    # -- label spreading -------------------------------------------------------------------
    spread_mode: str = "pool"          # pool (docs/dift.md) | graph (sparse kNN graph on all N) | none
    ls_gamma: float = 20.0
    ls_alpha: float = 0.2
    ls_max_iter: int = 30
    ls_tol: float = 1e-3
    pool_neighbors: int = 100
    pool_random: int = 2000
    pool_cap: int = 20000
    dense_max: int = 8000              # pools larger than this use a sparse RBF kNN graph, never N x N
    graph_neighbors: int = 20          # neighbours per point in the sparse graph
    graph_weight: str = "rbf"          # rbf: exp(-gamma d^2) on kNN edges | connectivity: 1 on kNN edges
    ls_soft_threshold: float = 0.0     # [F] also flag samples whose spread poison probability exceeds this when at
                                       # least ls_soft_votes of their k neighbours exceed it too (0: off, the paper's
                                       # argmax only). A second poison cluster far from the buffer is reached with a
                                       # low probability that its members share; benign samples reached that weakly
                                       # sit alone among unreached ones (docs/dift.md, Weakly reached clusters)
    ls_soft_votes: float = 0.9
    closure_votes: float = 0.0         # [F] after spreading, flag every sample whose k nearest neighbours are at
                                       # least this fraction flagged, repeated to a fixed point (0: off, the paper).
                                       # Spreading stops at a cluster's edge only where the kernel decays; poisons
                                       # it left inside a flagged cluster had 8-10 of 10 neighbours flagged
                                       # (docs/dift.md, Closure)
    closure_rounds: int = 10           # at most this many closure rounds
    crop_agreement: float = 0.0        # [F] before the closure, also flag samples spreading reached (probability above
                                       # crop_agreement_threshold) that the crop_density detector ranks within this
                                       # many times the flag count (0: off). Needs the encoder and the images (in
                                       # training: the trainer's; post-hoc: the checkpoint's); a loose group of
                                       # composites whose trigger crops cluster (docs/dift.md, Crop agreement)
    crop_agreement_threshold: float = 0.05
    crop_outlier_z: float = 0.0        # [F] with crop agreement on, after the closure, also flag samples whose crop
                                       # score is above the median by this many robust standard deviations (1.4826
                                       # MAD) within crop agreement's window, reached or not (0: off). The CIFAR cell's missed poisons read
                                       # probability 0 and crop scores far above every clean image's
                                       # (docs/dift.md, Crop outliers)
    crop_agreement_max_n: int = 1_000_000  # above this many samples the crop-agreement rule is skipped, with a warning:
                                       # it embeds eight crops of every image (about eight embedding passes) and keeps
                                       # the 8N crop embeddings and their kNN graph in memory (16 GB at 1M x 512)
    anchor_reach_limit: float = 0.0    # [F] drop a group that the weak-reach or crop-agreement rule would add when the
                                       # trusted anchors reach it (label spreading of the anchors alone) more than this
                                       # many times as strongly as the median sample (0: off). Poisons sit off the clean
                                       # manifold; a clean class next to a poison cluster (CorruptEncoder's target
                                       # objects) is reached weakly by the poison label but as strongly as any sample by
                                       # its anchors (docs/dift.md, Anchor reach)
    cluster_reach_limit: float = 0.0   # [F] take back a flagged cluster that label spreading added whole (none of it
                                       # in the buffer B) when the trusted anchors reach it more than this many times
                                       # as strongly as the median sample, and another flagged cluster with buffer
                                       # members is reached at most 0.1 (0: off; never with anchors drawn from the
                                       # suspect labels). On the demo spreading ran on into clean target-class
                                       # clusters (reach 0.60-0.93, poisons <= 0.08; naviewer's preset: 0.6) that remove-and-retrain then took
                                       # out (docs/dift.md, Cluster reach)
    cluster_reach_member_floor: float = 0.2  # [F] of a cluster the cluster-reach rule takes back, the members the
                                       # anchors themselves barely reach (own relative reach at most this) stay
                                       # flagged: a mixed cluster took back 62 poisons (reach median 0.03-0.07) with
                                       # 70-81 clean samples on mid-training encoders (session 23); over 56 stored passes
                                       # 0.2 kept 116 of the 179 poisons taken back and 4 of the 865 clean (0: off)
    anchor_reach_units: str = "joint"  # [F] "class": each class's anchors spread alone and read in that class's own
                                       # median reach, so a clean class several times the others' size is not read
                                       # as far from its anchors (with "joint", every anchor one label, such a class
                                       # fell under the limit at 2-5x: docs/dift.md, Anchor reach)

    anchor_mass_per_class: float = 10.0  # [F] label spreading weighs the anchors' (benign) label as if every class
                                       # had at least this many anchors (0: off, the paper: one unit a seed). Spreading
                                       # is linear in its seeds, so with 1-3 anchors a class the poison label's mass
                                       # outweighed the benign one and ran into clean data; holding the benign mass at
                                       # 10 a class kept the recipe's precision at 82-100 % on 9 of 11 stored stops with
                                       # one anchor a class (33-100 % before; docs/dift.md, Few anchors)
    trigger_check_reach: float = 0.0   # [F] in training, when the trusted anchors reach flags as clean above this
                                       # (own relative reach), PatchSearch looks for a trigger in every image, and
                                       # accept-all leaves unconfirmed the reached flags it finds none in (0: off;
                                       # the demo: 0.5). Cleared 55 clean "0"s and no poison over 14 stored runs
                                       # (docs/dift.md, The trigger check); costs one PatchSearch when it runs

    # -- fine-tuning (Eq. 7) ---------------------------------------------------------------
    ft_eps: float = 1e-6
    ft_lambda: Optional[float] = None  # None: 1/(sqrt(2) * median raw anchor norm)
    ft_lambda_fallback: float = 0.01
    base_lr: float = 0.06
    ft_lr_factor: float = 0.1
    ft_momentum: float = 0.9
    ft_weight_decay: float = 0.0
    ft_batch_size: int = 512
    ft_max_steps: int = 100
    ft_check_every: int = 10
    ft_cluster_k: int = 20
    ft_grad_clip: float = 1.0          # max total gradient norm per step (0: no clipping); keeps the step bounded
                                       # when the backbone's Jacobian is large (tiny nets, frozen-BN statistics)

    # -- restart ---------------------------------------------------------------------------
    restart_mode: str = "continue"     # continue: the paper (keep the fine-tuned weights, lr from the start over the
                                       # REMAINING epochs) | retrain: re-initialise the encoder (the run's seed) and
                                       # train a full budget on the kept samples, no Eq. 7. [F] for short schedules:
                                       # on the digits demo (restart at epoch ~37 of 50) "continue" kept the attack
                                       # success rate at 96% even with every poison removed (docs/results.md, demo)
    retrain_epochs: Optional[int] = None  # retrain: epochs of the new run (None: the run's configured epochs)
    restart_fallback: bool = True      # continue: when Eq. 7 takes no step (the confirmed samples judged spread out
                                       # already) retrain from scratch instead of going on from the weights the
                                       # poisons shaped (an independent composite attack kept 61-72 % ASR so);
                                       # False: the paper's restart as written (the matrix's "continue" column)
    check_after_retrain: bool = False  # [F] accept-all, after a remove-and-retrain: PatchSearch on the retrained
                                       # encoder, its flags among the kept samples confirmed too, and the recipe
                                       # retrained again without them (off; the demo: on). The demo's miss kept 4
                                       # sparse poisons (+10.2 points over its floor); the check found 3 and no clean
                                       # sample (+5.8). Costs a PatchSearch, and a training when it adds flags
                                       # (docs/dift.md, The check after the retrain)

    # -- review gate ---------------------------------------------------------------------
    review: str = "auto"               # DiftHook on its own: auto = accept the flags (the paper) | pause = wait at
                                       # its ReviewGate, or stop the run without one. The workspace workflow decides
                                       # itself (accept_all / its gate) and reports that decision instead.

    def validate(self) -> "DiftConfig":
        """Raise NaviewerError naming the first bad setting; return self for chaining."""

        def bad(name: str, why: str) -> NaviewerError:
            return NaviewerError(f"DIFT setting {name}={getattr(self, name)!r}: {why}")

        from dataclasses import fields as _fields

        for field_ in _fields(self):  # restart_fallback=no was kept as the string "no", which reads as true
            if field_.type in ("bool", bool) and not isinstance(getattr(self, field_.name), bool):
                raise bad(field_.name, "must be true or false")
        for name in ("k", "hnsw_m", "hnsw_ef_construction", "anchors_per_class", "gmm_n_init", "n_min",
                     "patience", "pool_cap", "graph_neighbors", "ft_batch_size", "ft_check_every",
                     "ft_cluster_k", "ls_max_iter", "approx_max_n", "ivf_nprobe", "ivf_add_ef", "pq_dims_per_code",
                     "ivf_train_size", "knn_memory_mb"):
            if int(getattr(self, name)) < 1:
                raise bad(name, "must be >= 1")
        for name in ("max_detection_epochs", "ft_max_steps", "pool_neighbors", "pool_random", "guard_reference_size",
                     "exact_max_n", "exact_max_n_gpu", "num_threads", "knn_rerank", "dense_max", "recall_sample"):
            if int(getattr(self, name)) < 0:
                raise bad(name, "must be >= 0")
        if self.ivf_nlist is not None and int(self.ivf_nlist) < 1:
            raise bad("ivf_nlist", "must be >= 1 or unset")
        if self.ivf_quantizer not in ("auto", "flat", "hnsw"):
            raise bad("ivf_quantizer", "choose auto, flat or hnsw")
        if self.knn_backend not in KNN_BACKENDS:
            raise bad("knn_backend", f"choose one of {KNN_BACKENDS}")
        if not 0.0 <= float(self.ls_soft_threshold) < 1.0:
            raise bad("ls_soft_threshold", "a probability: 0 (off) up to, not including, 1")
        if not 0.0 < float(self.ls_soft_votes) <= 1.0:
            raise bad("ls_soft_votes", "a fraction of the k neighbours, above 0 and at most 1")
        if not 0.0 <= float(self.crop_agreement) <= 100.0:
            raise bad("crop_agreement", "a multiple of the flag count: 0 (off) up to 100")
        if not 0.0 <= float(self.crop_outlier_z) <= 1000.0:
            raise bad("crop_outlier_z", "a number of robust standard deviations: 0 (off) up to 1000")
        if not 0.0 <= float(self.crop_agreement_threshold) < 1.0:
            raise bad("crop_agreement_threshold", "a probability: 0 up to, not including, 1")
        if int(self.crop_agreement_max_n) < 0:
            raise bad("crop_agreement_max_n", "a number of samples, 0 or more")
        if not 0.0 <= float(self.anchor_mass_per_class) <= 1e6:
            raise bad("anchor_mass_per_class", "anchors a class the benign label weighs at least as: 0 (off) up to 1e6")
        if not 0.0 <= float(self.anchor_reach_limit) <= 1000.0:
            raise bad("anchor_reach_limit", "a multiple of the median sample's anchor reach: 0 (off) up to 1000")
        if not 0.0 <= float(self.cluster_reach_limit) <= 1000.0:
            raise bad("cluster_reach_limit", "a multiple of the median sample's anchor reach: 0 (off) up to 1000")
        if not 0.0 <= float(self.cluster_reach_member_floor) <= 1000.0:
            raise bad("cluster_reach_member_floor", "a multiple of the median sample's anchor reach: 0 (off) up to 1000")
        if not 0.0 <= float(self.trigger_check_reach) <= 1000.0:
            raise bad("trigger_check_reach", "a multiple of the median sample's anchor reach: 0 (off) up to 1000")
        if self.anchor_reach_units not in ANCHOR_REACH_UNITS:
            raise bad("anchor_reach_units", f"choose one of {ANCHOR_REACH_UNITS}")
        if not 0.0 <= float(self.closure_votes) <= 1.0:
            raise bad("closure_votes", "a fraction of the k neighbours: 0 (off) to 1")
        if int(self.closure_rounds) < 1:
            raise bad("closure_rounds", "must be >= 1")
        if self.spread_mode not in SPREAD_MODES:
            raise bad("spread_mode", f"choose one of {SPREAD_MODES}")
        if self.graph_weight not in GRAPH_WEIGHTS:
            raise bad("graph_weight", f"choose one of {GRAPH_WEIGHTS}")
        if self.mindist_scale not in MINDIST_SCALES:
            raise bad("mindist_scale", f"choose one of {MINDIST_SCALES}")
        if self.mindist_agg not in MINDIST_AGGS:
            raise bad("mindist_agg", f"choose one of {MINDIST_AGGS}")
        if self.untrusted_anchors not in UNTRUSTED_ANCHOR_RULES:
            raise bad("untrusted_anchors", f"choose one of {UNTRUSTED_ANCHOR_RULES}")
        if self.restart_mode not in RESTART_MODES:
            raise bad("restart_mode", f"choose one of {RESTART_MODES}")
        if self.retrain_epochs is not None and int(self.retrain_epochs) < 1:
            raise bad("retrain_epochs", "must be >= 1 or unset")
        if self.review not in ("pause", "auto"):
            raise bad("review", "choose pause or auto")
        if self.gmm_covariance not in ("full", "tied", "diag", "spherical"):
            raise bad("gmm_covariance", "choose full, tied, diag or spherical")
        if not 0.0 < self.candidate_fraction < 1.0:
            raise bad("candidate_fraction", "must be in (0, 1)")
        if not 0.0 < self.ls_alpha < 1.0:
            raise bad("ls_alpha", "must be in (0, 1)")
        if not 0.0 < self.guard_percentile < 100.0:
            raise bad("guard_percentile", "must be in (0, 100)")
        for name in ("ls_gamma", "ft_eps", "ft_lambda_fallback", "base_lr", "ft_lr_factor"):
            if not float(getattr(self, name)) > 0:
                raise bad(name, "must be > 0")
        if not float(self.ft_grad_clip) >= 0 or not math.isfinite(float(self.ft_grad_clip)):
            raise bad("ft_grad_clip", "must be >= 0 (0: no clipping)")
        if self.ft_lambda is not None and not self.ft_lambda > 0:
            raise bad("ft_lambda", "must be > 0 or unset")
        if self.knn_dims is not None and self.knn_dims < 1:
            raise bad("knn_dims", "must be >= 1 or unset")
        if self.start_epoch is not None and self.start_epoch < 0:
            raise bad("start_epoch", "must be >= 0 or unset")
        # the bounds a bad-input sweep found unchecked: a negative seed or tolerance crashed inside numpy/sklearn
        # after the embeddings were made (and a failed run had already written them to workspace.toml); a huge
        # count ran for hours
        if not 0 <= int(self.seed) < 2 ** 32:
            raise bad("seed", "a random seed: 0 up to 2**32 - 1")
        if not 0.0 <= float(self.ls_tol) <= 1.0:  # 0: run to ls_max_iter (sklearn's meaning)
            raise bad("ls_tol", "label spreading's convergence tolerance: 0 (run to ls_max_iter) up to 1")
        for name, top in INT_SETTING_MAX.items():
            value = getattr(self, name)
            if value is not None and int(value) > top:
                raise bad(name, f"at most {top:,}")
        for name in ("ls_gamma", "ft_eps", "ft_lambda_fallback", "base_lr", "ft_lr_factor", "ft_grad_clip"):
            if not math.isfinite(float(getattr(self, name))):
                raise bad(name, "must be a finite number")
        if self.ft_lambda is not None and not math.isfinite(float(self.ft_lambda)):
            raise bad("ft_lambda", "must be a finite number or unset")
        return self

    @classmethod
    def fast(cls, **overrides: Any) -> "DiftConfig":
        """Settings tuned on 2 CPU cores (docs/performance.md, "Detection"): HNSW M=8, ef_c=64,
        ef=64 on a 64-d PCA projection with exact full-dimension re-ranking of 10 extra neighbours.
        kNN recall@20 vs exact 0.995 on clustered 50k x 512 embeddings, ~3x less CPU than the default
        M=16/ef_c=200/ef=128 in full dimensions."""
        from naviewer.catalogue import DIFT_FAST

        values: dict[str, Any] = dict(DIFT_FAST)
        values.update(overrides)
        return cls(**values).validate()

    # -- derived values ------------------------------------------------------------------
    @property
    def ef(self) -> int:
        """HNSW query breadth: max(128, 2k+1) unless set."""
        return int(self.hnsw_ef) if self.hnsw_ef else max(128, 2 * self.k + 1)

    @property
    def threads(self) -> int:
        return int(self.num_threads) if self.num_threads > 0 else (os.cpu_count() or 1)

    def n_candidates(self, n: int) -> int:
        """m = ceil(q N), at least 1 and at most N."""
        return int(min(n, max(1, math.ceil(self.candidate_fraction * n - 1e-9))))

    def detection_start(self, total_epochs: Optional[int] = None) -> int:
        """E_start: the setting, or for ``start_epoch=None`` min(10, max(5, ceil(2% of epochs)))."""
        if self.start_epoch is not None:
            return int(self.start_epoch)
        if total_epochs is None:
            return 10
        return int(min(10, max(5, math.ceil(0.02 * total_epochs))))

    # -- (de)serialisation for workspace.toml and pass records ---------------------------
    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, values: Optional[Mapping[str, Any]]) -> "DiftConfig":
        """Build from a (toml) dict, validated; unknown keys are a user error, not silently ignored
        (:func:`naviewer.settings.settings_from_dict`; :data:`LEGACY_DIFT_KEYS` are accepted)."""
        return settings_from_dict(cls, values, "DIFT", LEGACY_DIFT_KEYS).validate()

    @classmethod
    def from_workspace(cls, ws: "Workspace", overrides: Optional[Mapping[str, Any]] = None) -> "DiftConfig":
        """The workspace's ``[dift]`` section with ``overrides`` on top (e.g. ``--dift-set``), validated:
        the one place the section and the overrides are merged."""
        section = ws.config.get("dift") or {}
        try:
            return cls.from_dict({**section, **dict(overrides or {})})
        except NaviewerError as exc:
            try:
                cls.from_dict(section)
            except NaviewerError as own:  # the file's fault, not the options': name the file (a hand-edited
                # k = "abc" read as if --dift-set had given it)
                raise NaviewerError(f"[dift] {own.message}",
                                    getattr(ws, "config_path", None)) from None
            raise exc from None


def finetune_setting_names() -> frozenset:
    """The DIFT settings fine-tuning and its restart read: the Eq. 7 step, the restart, the seed, the threads, the
    normalisation and k of the confirmed cluster's density. ``finetune --dift-set`` with a detection setting
    changed nothing: the review is over and no detection runs after it (a sweep, session 18)."""
    from dataclasses import fields

    names = [f.name for f in fields(DiftConfig)]
    return frozenset(names[names.index("ft_eps"):names.index("review")]) | {"seed", "num_threads", "k", "normalize"}

