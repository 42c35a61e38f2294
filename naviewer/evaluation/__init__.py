"""Evaluation of encoders: weighted kNN, linear probe, ASR (both definitions), detection metrics."""

from naviewer.evaluation.asr import accuracy, attack_success_rates
from naviewer.evaluation.detection import detection_metrics
from naviewer.evaluation.encoder import evaluate_encoder, triggered_store
from naviewer.evaluation.knn import knn_accuracy, knn_predict, knn_scores
from naviewer.evaluation.linear import LinearProbe, LinearProbeSettings, train_linear_probe

__all__ = [
    "LinearProbe", "LinearProbeSettings", "accuracy", "attack_success_rates", "detection_metrics",
    "evaluate_encoder", "knn_accuracy", "knn_predict", "knn_scores", "train_linear_probe", "triggered_store",
]
