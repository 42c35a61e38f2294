"""Detector passes: registered detectors over one set of embeddings, each saved as a pass of the workspace
(what a post-hoc Detect runs beside DIFT, and the trigger check in training). Apart from :mod:`posthoc` so that a
training run can save one without importing the post-hoc workflow (which imports the retrain, which trains)."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context

#: a detector's per-sample box extra (``crop_density``'s ``best_box``: top, left, height, width) is saved
#: with its pass as one array per field, ``<extra>_<field>`` (the store keeps one value per sample)
BOX_FIELDS = ("top", "left", "height", "width")
#: the per-sample extras saved with a detector's pass: boxes (N, 4) and counts (N,)
PASS_BOX_EXTRAS = ("best_box",)
PASS_EXTRAS = ("support", "classifier_p", "trigger_found")


def pass_extras(extras: dict, n: int) -> dict[str, np.ndarray]:
    """The per-sample extras of a detector result that its pass keeps: each box of :data:`PASS_BOX_EXTRAS`
    (N, 4) as ``<name>_top``, ``_left``, ``_height``, ``_width`` (int64), each count of :data:`PASS_EXTRAS`
    (N,) as is. Anything else, or of another shape, is left out (the pass's settings keep the rest)."""
    out: dict[str, np.ndarray] = {}
    for name in PASS_BOX_EXTRAS:
        value = extras.get(name)
        if value is None:
            continue
        boxes = np.asarray(value)
        if boxes.shape == (n, len(BOX_FIELDS)) and np.issubdtype(boxes.dtype, np.number):
            for i, field_name in enumerate(BOX_FIELDS):
                out[f"{name}_{field_name}"] = boxes[:, i].astype(np.int64)
    for name in PASS_EXTRAS:
        value = extras.get(name)
        if value is None:
            continue
        array = np.asarray(value)
        if array.shape == (n,) and np.issubdtype(array.dtype, np.number):
            out[name] = array
    return out


def needs_images(names: Sequence[str]) -> bool:
    """Whether any of the registered detectors ``names`` revisits the images (crop_density, patchsearch)."""
    from naviewer.defense.detectors import DETECTORS

    return any("images" in getattr(DETECTORS.get(name), "needs", ()) for name in names if name != "dift")


def run_detectors(ws, features: np.ndarray, names: Sequence[str], *, run: str, anchors=None,
                  settings: Optional[dict] = None, truth: Optional[np.ndarray] = None,
                  ctx: Optional[JobContext] = None, encoder=None, images=None, image_size: Optional[int] = None,
                  device=None, encoder_warnings: Sequence[str] = (),
                  encoder_record: Optional[dict] = None, epoch: Optional[int] = None,
                  record_extra: Optional[dict] = None) -> tuple[dict, dict]:
    """Registered detectors (:mod:`naviewer.defense.detectors`) over ``features``, each saved as a pass
    of its own (method = its name; scores ``score``, ``flagged``, ``cluster``, and the per-sample extras
    of :func:`pass_extras`, e.g. ``crop_density``'s densest crop), sharing one neighbour table. Returns
    (pass ids, metrics: flagged and, with the ground truth, AUROC both ways, precision, recall). ``images``
    may be a function returning the ImageStore, called once here (the dataset is decoded only for them).
    ``encoder_warnings``: what the same Detect found wrong with the encoder (collapsed embeddings, anchors that do not
    separate their classes), saved on every pass: only the DIFT pass said so, and a newcomer read a patchsearch pass
    of the same weak encoder, at chance, as a verdict (session 28). ``encoder_record``: the checkpoint they embedded
    with, saved on every pass (passes of three encoders all read "run posthoc", told apart by nothing; the same).
    ``epoch``: the training epoch of an encoder still in training (the trigger check); ``record_extra``: more keys
    for every pass's settings."""
    from naviewer.defense.detectors import DetectorInputs, make_detector
    from naviewer.defense.sanity import flag_rate_warning
    from naviewer.evaluation.detection import auroc, detection_metrics

    ctx = ensure_context(ctx)
    if callable(images):  # decoded only now, when a detector that revisits images is about to run
        images = images()
    inputs = DetectorInputs(np.asarray(features), anchors=anchors, ground_truth=truth, encoder=encoder, images=images,
                            image_size=image_size, device=device)
    passes, metrics = {}, {}
    detectors = [(name, make_detector(name, **dict((settings or {}).get(name) or {}))) for name in names]
    results = []
    for name, detector in detectors:  # every detector runs before any pass is saved: all of them, or none
        ctx.check()
        ctx.progress(0, None, f"detector {name}")
        try:
            results.append((name, detector.run(inputs, ctx)))
        except NaviewerError as exc:
            raise NaviewerError(f"detector {name}: {exc.message if hasattr(exc, 'message') else exc}"
                                + ("; no detector's pass was saved" if len(detectors) > 1 else ""),
                                getattr(exc, "path", None)) from None
    for name, result in results:
        record = {**result.settings, "threshold": result.threshold, "direction_note": result.direction_note,
                  "seconds": result.seconds, "flagged": int(result.flags.sum())}
        m: dict[str, Any] = {"flagged": int(result.flags.sum()), "seconds": result.seconds,
                             "threshold": result.threshold}
        if truth is not None:
            d = detection_metrics(result.flagged, truth)
            high = auroc(result.score, truth)
            m.update(auroc=high, auroc_reversed=None if high is None else 1.0 - high, precision=d.precision,
                     recall=d.recall)
        too_many = flag_rate_warning(name, int(result.flags.sum()), len(result.score))
        if too_many is not None:  # said on the pass (the Analyst's yellow box, the report) and now
            ctx.event("warning", message=f"{name}: {too_many}")
        if encoder_record:
            record["encoder"] = dict(encoder_record)
        record.update(record_extra or {})
        said = [*encoder_warnings, *([too_many] if too_many is not None else [])]
        if said:
            record["warnings"] = said
        record["summary"] = m
        arrays = {**result.scores_for_pass(), **pass_extras(result.extras, len(result.score))}
        passes[name] = int(ws.store.add_detection_pass(name, arrays, record, run=run, epoch=epoch))
        metrics[name] = m
    return passes, metrics
