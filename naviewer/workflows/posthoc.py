"""Post-hoc detection on a workspace with a finished encoder: one DIFT pass, and the B1 baselines.

The encoder's eval-mode backbone features of every workspace sample are saved to
``<ws>/embeddings/<run>/<tag>.npy`` (the analyst views and ``naviewer review --embeddings`` read
them), a DIFT pass (``PosthocDetector``: B = S of this one pass, then label spreading) is written as
a detection pass for review, and, on request, DBSCAN / OPTICS (spec §2, B1) as passes of their own
(``method`` ``dbscan`` / ``optics``, scores ``flagged`` and ``cluster``).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context

PathLike = Union[str, "os.PathLike[str]"]
BASELINES = ("dbscan", "optics")


@dataclass
class PosthocOutcome:
    run: str
    tag: str
    embeddings_path: Path
    pass_id: Optional[int]
    summary: dict
    baseline_passes: dict = field(default_factory=dict)      # method -> pass id
    baseline_metrics: dict = field(default_factory=dict)     # method -> {flagged, precision, recall, ...}
    result: Any = None                                       # the DetectionResult
    baselines: dict = field(default_factory=dict)            # method -> BaselineResult
    timings: dict = field(default_factory=dict)


def _tag_for(checkpoint: PathLike) -> str:
    stem = Path(checkpoint).stem
    tag = re.sub(r"[^A-Za-z0-9._+-]+", "_", stem).strip("._") or "encoder"
    return tag[:100]


def embed_workspace(ws, backbone, *, run: str, tag: str, image_size: Optional[int] = None, device=None,
                    store=None, ctx: Optional[JobContext] = None) -> np.ndarray:
    """Backbone features of every workspace sample, written (atomically) to the workspace."""
    from naviewer.data.store import ImageStore
    from naviewer.ssl.embed import extract_embeddings

    ctx = ensure_context(ctx)
    if store is None:
        store = ImageStore.from_dataset(ws.dataset(), ctx)
    return extract_embeddings(backbone, store, device=device, ctx=ctx, image_size=image_size,
                              out_path=ws.embeddings_path(run, tag))


def baseline_scores(result) -> dict[str, np.ndarray]:
    return {"flagged": result.flagged_mask(), "cluster": np.asarray(result.labels, dtype=np.int64)}


def run_baselines(ws, features: np.ndarray, methods: Sequence[str], config, *, run: str, knn=None,
                  truth: Optional[np.ndarray] = None, ctx: Optional[JobContext] = None) -> tuple[dict, dict, dict]:
    """B1 filters over ``features``; each saved as its own pass. Returns (results, pass ids, metrics)."""
    from naviewer.defense.baselines import dbscan_filter, optics_filter
    from naviewer.evaluation.detection import detection_metrics

    ctx = ensure_context(ctx)
    results, passes, metrics = {}, {}, {}
    for method in methods:
        if method not in BASELINES:
            raise NaviewerError(f"unknown baseline {method!r}; choose from {', '.join(BASELINES)}")
        ctx.check()
        fn = dbscan_filter if method == "dbscan" else optics_filter
        res = fn(features, config, knn=knn, ctx=ctx)
        results[method] = res
        settings = {**res.params, "seconds": res.seconds, "flagged": int(res.flagged.size)}
        passes[method] = int(ws.store.add_detection_pass(method, baseline_scores(res), settings, run=run))
        m = {"flagged": int(res.flagged.size), "seconds": res.seconds}
        if truth is not None:
            d = detection_metrics(res.flagged, truth)
            m.update(precision=d.precision, recall=d.recall, fpr=d.fpr)
        metrics[method] = m
    return results, passes, metrics


def posthoc_detect(ws, checkpoint: PathLike, *, backbone: Optional[dict] = None, config=None,
                   run: str = "posthoc", tag: Optional[str] = None, baselines: Sequence[str] = (),
                   image_size: Optional[int] = None, device=None, ctx: Optional[JobContext] = None) -> PosthocOutcome:
    """Embed the workspace with ``checkpoint``'s backbone, run one DIFT pass and the B1 baselines."""
    from naviewer.defense.config import DiftConfig
    from naviewer.defense.pipeline import PosthocDetector, save_detection
    from naviewer.ssl.checkpoints import load_encoder
    from naviewer.workflows.workspace_setup import ground_truth_mask, workspace_anchors

    ctx = ensure_context(ctx)
    config = (config or DiftConfig.from_dict(ws.config.get("dift"))).validate()
    tag = tag or _tag_for(checkpoint)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    encoder = load_encoder(checkpoint, backbone)
    features = embed_workspace(ws, encoder.backbone, run=run, tag=tag, image_size=image_size or encoder.image_size,
                               device=device, ctx=ctx)
    timings["embed"] = time.perf_counter() - start
    anchors = workspace_anchors(ws, config.anchors_per_class, config.seed)
    truth = ground_truth_mask(ws)  # evaluation only (the pass's metrics), never read by detection
    start = time.perf_counter()
    result = PosthocDetector(config).run(np.asarray(features), anchors, truth, ctx)
    timings["dift"] = time.perf_counter() - start
    ws.store.add_run(run, "posthoc", {"checkpoint": str(checkpoint), "tag": tag, "dift": config.to_dict(),
                                      "baselines": list(baselines)})
    pass_id = save_detection(ws.store, result, run=run)
    outcome = PosthocOutcome(run, tag, ws.embeddings_path(run, tag), pass_id, result.summary(), result=result,
                             timings=timings)
    if baselines:
        start = time.perf_counter()
        outcome.baselines, outcome.baseline_passes, outcome.baseline_metrics = run_baselines(
            ws, np.asarray(features), baselines, config, run=run, knn=result.detection.knn, truth=truth, ctx=ctx)
        timings["baselines"] = time.perf_counter() - start
    return outcome
