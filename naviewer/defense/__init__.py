"""DIFT (density-based identification and fine-tuning) and the B1 density baselines.

Works on plain (N, D) embedding arrays (numpy, memory-mappable) and torch modules; the SSL trainer
and the workspace are reached only through small callables and duck-typed objects. Entry points:

* :class:`PosthocDetector` - one detection pass over a finished encoder's embeddings;
* :class:`DiftHook` - the in-training hook (``after_epoch(trainer, epoch)``);
* :func:`detect_epoch`, :class:`DetectionBuffer`, :func:`label_spread`, :func:`finetune_backbone`,
  :func:`mitigate_in_training` - the stages, for scripts and the GUI;
* :class:`ReviewGate` - the one review gate (the hook and the workspace workflow wait there);
* :class:`KnnIndex` - kNN queries of single samples (the inspector).
"""

from naviewer.defense.anchors import Anchors, draw_anchors, user_anchors
from naviewer.defense.baselines import BaselineResult, dbscan_filter, optics_filter
from naviewer.defense.buffer import BufferRecord, DetectionBuffer
from naviewer.defense.config import DiftConfig
from naviewer.defense.dift import EpochDetection, GmmSplit, detect_epoch, gmm_split, min_dist, select_candidates
from naviewer.defense.finetune import (ClusterScore, FinetuneResult, cluster_spread, density_reduction_loss,
                                       finetune_backbone, lambda_from_norms, make_cluster_score_fn)
from naviewer.defense.knn import KnnIndex, KnnResult, exact_knn, knn_density
from naviewer.defense.mitigate import MitigationResult, mitigate_in_training, mitigate_result
from naviewer.defense.pipeline import (SCORE_KEYS, DetectionResult, DiftHook, PosthocDetector, finalize,
                                       flagged_clusters, save_detection)
from naviewer.defense.review import ReviewDecision, ReviewGate
from naviewer.defense.spreading import SpreadResult, label_spread

__all__ = [
    "Anchors", "BaselineResult", "BufferRecord", "ClusterScore", "DetectionBuffer", "DetectionResult", "DiftConfig",
    "DiftHook", "EpochDetection", "FinetuneResult", "GmmSplit", "KnnIndex", "KnnResult", "MitigationResult",
    "PosthocDetector", "ReviewDecision", "ReviewGate", "SCORE_KEYS", "SpreadResult", "cluster_spread",
    "dbscan_filter", "density_reduction_loss", "detect_epoch", "draw_anchors", "exact_knn", "finalize",
    "finetune_backbone", "flagged_clusters", "gmm_split", "knn_density", "label_spread", "lambda_from_norms",
    "make_cluster_score_fn", "min_dist", "mitigate_in_training", "mitigate_result", "optics_filter",
    "save_detection", "select_candidates", "user_anchors",
]
