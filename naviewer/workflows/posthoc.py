"""Post-hoc detection on a workspace with a finished encoder: one DIFT pass, and the B1 baselines.

The encoder's eval-mode backbone features of every workspace sample are saved to
``<ws>/embeddings/<run>/<tag>.npy`` (the analyst views and ``naviewer review --embeddings`` read
them), a DIFT pass (``PosthocDetector``: B = S of this one pass, then label spreading) is written as
a detection pass for review, and, on request, DBSCAN / OPTICS (B1, docs/dift.md, Baselines) as passes of their own
(``method`` ``dbscan`` / ``optics``, scores ``flagged`` and ``cluster``).
"""

from __future__ import annotations

import functools
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import numpy as np

from naviewer.errors import NaviewerError
from naviewer.io import NPY_READ_ERRORS, npy_error_words, file_stamp, json_loads
from naviewer.jobs import JobContext, ensure_context
from naviewer.workflows.detector_passes import needs_images, run_detectors
from naviewer.workspace.runs import FinetuneOutcome, confirmed_ids, read_state

if TYPE_CHECKING:
    from naviewer.workspace import Workspace

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
    detector_passes: dict = field(default_factory=dict)      # detector name -> pass id
    detector_metrics: dict = field(default_factory=dict)     # detector name -> {flagged, auroc, precision, recall}
    anchors: Optional[dict] = None                           # AnchorSet.describe()
    warnings: list = field(default_factory=list)             # embedding / encoder warnings before any verdict


def _tag_for(checkpoint: PathLike) -> str:
    """The embeddings tag of a checkpoint: its name and 8 hex digits of its content, so two encoders
    with the same file name (every naviewer checkpoint is last.pt) never share an embeddings file."""
    stem = Path(checkpoint).stem
    tag = (re.sub(r"[^A-Za-z0-9._+-]+", "_", stem).strip("._") or "encoder")[:90]
    try:
        from naviewer.analysis.embeddings import file_fingerprint

        return f"{tag}-{file_fingerprint(checkpoint)[:8]}"
    except OSError:
        return tag


def embed_workspace(ws, backbone, *, run: str, tag: str, image_size: Optional[int] = None, device=None,
                    store=None, ctx: Optional[JobContext] = None, view: str = "squash") -> np.ndarray:
    """Backbone features of every workspace sample, written (atomically) to the workspace."""
    from naviewer.data.store import streaming_store
    from naviewer.ssl.embed import extract_embeddings

    ctx = ensure_context(ctx)
    if store is None:  # one visit per image: decoded a chunk at a time
        store = streaming_store(ws.checked_dataset())
    return extract_embeddings(backbone, store, device=device, ctx=ctx, image_size=image_size,
                              out_path=ws.embeddings_path(run, tag), view=view)


def adopt_embeddings(ws, source: PathLike, *, run: str, tag: str, ctx: Optional[JobContext] = None,
                     check_rows: int = 65536, expected_dim: Optional[int] = None) -> np.ndarray:
    """Precomputed features of every workspace sample (e.g. ``naviewer embed`` sharded under torchrun), taken
    into the workspace as ``embeddings/RUN/TAG.npy`` (hard-linked when the filesystem allows: a 10M x 512 file
    is not copied) after checking them: a 2-D float array, one row per sample, every value finite. Returns
    them memory-mapped. Detection then trusts that they are the checkpoint's features, row i = sample i."""
    import shutil

    from naviewer.io import atomic_path

    ctx = ensure_context(ctx)
    path = Path(source)
    if not path.is_file():
        raise NaviewerError("no such embeddings file" if not path.exists() else "not a file", path)
    from naviewer.io import not_npy_reason

    kind = not_npy_reason(path)
    if kind is not None:  # a .npz, a checkpoint, a CSV: said plainly, not as "shape ?" or "Python objects"
        raise NaviewerError(f"cannot read the embeddings: {kind}", path)
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except NPY_READ_ERRORS as exc:
        reason = npy_error_words(exc)
        reason = reason if "pickle" in str(exc) else f"not a readable .npy file ({reason})"
        raise NaviewerError(f"cannot read the embeddings: {reason}", path) from None
    n = ws.store.sample_count()
    if not isinstance(array, np.ndarray) or array.ndim != 2 or array.shape[1] < 1:
        raise NaviewerError(f"embeddings must be a 2-D (samples, dims) array, this one has shape "
                            f"{getattr(array, 'shape', '?')}", path)
    if expected_dim is not None and array.shape[1] != expected_dim:  # another encoder's (a sweep: rc 0, a pass saved)
        raise NaviewerError(f"the embeddings have {array.shape[1]} dimensions, the checkpoint's encoder gives "
                            f"{expected_dim}: they are not this encoder's features (naviewer embed --checkpoint the "
                            "same file writes them)", path)
    if not np.issubdtype(array.dtype, np.floating):
        raise NaviewerError(f"embeddings must be floating point, this file holds {array.dtype}", path)
    if len(array) != n:
        raise NaviewerError(f"the embeddings have {len(array)} rows, the workspace {n} samples (row i must be "
                            "sample i)", path)
    for begin in range(0, n, check_rows):  # a chunk at a time: memory bounded, not a 10M-row temporary
        ctx.check()
        ctx.progress(begin, n, "checking the embeddings")
        finite = np.isfinite(array[begin:begin + check_rows]).all(axis=1)
        if not finite.all():
            row = begin + int(np.flatnonzero(~finite)[0])
            raise NaviewerError(f"the embeddings hold NaN or infinite values (first in row {row})", path)
    ctx.progress(n, n, "checking the embeddings")
    del array
    target = ws.embeddings_path(run, tag)
    if target.exists() and os.path.samefile(target, path):
        return ws.load_embeddings(run, tag)
    with atomic_path(target) as tmp:
        try:
            os.link(path, tmp)
        except OSError:  # another filesystem, or links not allowed: a copy
            shutil.copyfile(path, tmp)
    return ws.load_embeddings(run, tag)


def check_embeddings_source(source: PathLike, backbone, store, *, image_size: Optional[int], device=None,
                            expected_dim: Optional[int] = None, rows: int = 16, least: float = 0.97) -> None:
    """Refuse precomputed features that are not ``backbone``'s, row i = sample i: a spot check of ``rows`` samples
    spread over the set, embedded here and compared with the file's rows (cosine after centring: the pooled ReLU
    features of any two encoders point the same way). Another checkpoint's file of the same shape, rows in another
    order or another --image-size were taken in and credited to this checkpoint (a read-through, session 28).
    Shape, dtype and whole-file finiteness are :func:`adopt_embeddings`'s (a file it will refuse anyway is left to it);
    NaN in the rows read here is said as such, before the spot check could call the file another encoder's."""
    from naviewer.ssl.embed import extract_embeddings

    path = Path(source)
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except NPY_READ_ERRORS:
        return
    n = len(store)
    if (not isinstance(array, np.ndarray) or array.ndim != 2 or len(array) != n or n < 2
            or not np.issubdtype(array.dtype, np.floating)
            or (expected_dim is not None and array.shape[1] != expected_dim)):
        return
    # spread over the set and drawn at random too (seeded by the file's size): 16 fixed rows let a file with 42 % of its
    # rows in another order through (a probe, session 29)
    spread = np.linspace(0, n - 1, num=min(rows, n)).round().astype(np.int64)
    drawn = np.random.default_rng([n, path.stat().st_size]).choice(n, size=min(rows, n), replace=False)
    picks = np.unique(np.concatenate([spread, drawn]))
    theirs = np.asarray(array[picks], dtype=np.float64)
    from naviewer.defense.sanity import require_finite

    # NaN in the rows read said as NaN, not as "another encoder's features" (a bad-input probe, session 32); the
    # whole file is scanned once, by adopt_embeddings
    bad = ~np.isfinite(theirs).all(axis=1)
    if bad.any():  # said with the file's own first bad row (scanned up to the one read here)
        require_finite(array[: int(picks[bad][0]) + 1], path)
    mine = np.asarray(extract_embeddings(backbone, store.subset(picks), device=device, image_size=image_size),
                      dtype=np.float64)
    spread = np.linalg.norm(mine - mine.mean(axis=0)) / max(float(np.linalg.norm(mine)), 1e-12)
    if spread > 1e-2:  # a collapsed encoder's rows differ by float16 noise alone: compared as they are
        mine -= mine.mean(axis=0)
        theirs -= theirs.mean(axis=0)
    norms = np.linalg.norm(mine, axis=1) * np.linalg.norm(theirs, axis=1)
    cosine = np.einsum("ij,ij->i", mine, theirs) / np.maximum(norms, 1e-12)
    agree = float(np.percentile(cosine, 10))  # nearly all of them, not the middle one
    if agree < least:
        raise NaviewerError(f"the embeddings are not this checkpoint's features of the workspace's samples: "
                            f"{len(picks)} samples embedded here agree with the file's rows at a cosine of only "
                            f"{agree:.2f} for a tenth of them (the same encoder gives about 1.00). They come from "
                            "another encoder, another --image-size or another sample order; naviewer embed "
                            "--checkpoint the same file on the workspace's dataset writes them", path)


def baseline_scores(result) -> dict[str, np.ndarray]:
    """A B1 result as pass scores. As in a DIFT pass, ``cluster`` numbers only the flagged clusters
    (0, 1, ...) and is -1 elsewhere: OPTICS also labels the clusters it did not flag."""
    flagged = result.flagged_mask()
    labels = np.asarray(result.labels, dtype=np.int64)
    cluster = np.full(labels.shape, -1, dtype=np.int64)
    if flagged.any():
        _, cluster[flagged] = np.unique(labels[flagged], return_inverse=True)
    return {"flagged": flagged, "cluster": cluster}


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


def encoder_checks(encoder, store, features: np.ndarray, labels: np.ndarray, image_size: Optional[int], device,
                   seed: int = 0, sample: int = 2000) -> list[str]:
    """A warning before a verdict when the encoder separates the dataset's classes no better than a
    random initialisation of the same network (on a seeded subsample). Degenerate embeddings are the
    detection's own check (:func:`naviewer.defense.pipeline.sanity_of`)."""
    import torch

    from naviewer.defense.sanity import encoder_report
    from naviewer.ssl.backbones import build_backbone
    from naviewer.ssl.embed import extract_embeddings

    labels = np.asarray(labels, dtype=np.int64)
    if np.unique(labels[labels >= 0]).size < 2:
        return []
    ids = np.arange(len(features))
    if ids.size > sample:
        ids = np.sort(np.random.default_rng(seed).choice(ids.size, sample, replace=False))
    draws = []
    for draw in range(RANDOM_INIT_DRAWS):  # one draw swung by 10 points on a small set (a newcomer, session 30)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + draw)
            random_init = build_backbone(encoder.config)
        draws.append(extract_embeddings(random_init, store.subset(ids), device=device, image_size=image_size))
    return encoder_report(features[ids], labels[ids], draws).warnings


#: random initialisations the trained encoder's class separation is compared with (their mean)
RANDOM_INIT_DRAWS = 3


def _encoder_warnings(result) -> list[str]:
    """Of a DIFT pass's warnings and advice, those about the encoder rather than DIFT's own flags (its flag share, its
    "nothing flagged" advice): the other detectors of the same Detect run on the same embeddings."""
    from naviewer.defense.pipeline import NOTHING_FLAGGED_ADVICE

    own = ("DIFT", NOTHING_FLAGGED_ADVICE)
    notes = [*list(result.warnings), *[a for a in getattr(result, "advice", []) or [] if "separate their classes" in a]]
    return [str(w) for w in notes if not str(w).startswith(own)]


def available_memory() -> Optional[int]:
    """Bytes of physical memory free now (Linux and most Unix); None where the system does not say."""
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def decoded_size_problem(store: Any, n: int, sample: int = 64, share: float = 0.5,
                         free: Optional[int] = None) -> str:
    """Why decoding all ``n`` images at once would not fit ("" when it would): their size estimated from a
    seeded sample of ``sample`` images against ``share`` of the free memory. A post-hoc crop-aware step holds
    every decoded image; 100k ImageNet-sized images are about 15 GB."""
    if isinstance(getattr(store, "buckets", None), list) or n == 0:
        return ""  # decoded already
    free = available_memory() if free is None else free
    if free is None:
        return ""
    dataset = getattr(store, "dataset", store)
    ids = np.random.default_rng(0).choice(n, size=min(n, sample), replace=False)
    per_image = float(np.mean([3 * np.prod(dataset.image_size(int(i))) for i in ids]))
    need = per_image * n
    if need <= share * free:
        return ""
    return (f"decoding the {n:,} images at once would take about {need / 2**30:.1f} GB, more than half the "
            f"{free / 2**30:.1f} GB free (run the crop_density detector on a subset, or on a larger machine)")


def check_dift_size(ws, config) -> None:
    """DIFT needs more samples than k + the workspace's own anchors: refused with where k comes from, before any
    embedding or training (``run --dift`` trained every epoch first and failed at the first detection; a sweep)."""
    n, section = ws.store.sample_count(), ws.config.get("anchors") or {}
    indices = section.get("indices") if isinstance(section, dict) else None
    if indices is not None and not isinstance(indices, list):  # `indices = 7` raised a TypeError here (a fuzz)
        raise NaviewerError(f"[anchors] indices must be a list of sample ids, not {type(indices).__name__} "
                            f"{str(indices)[:40]}: set the anchors again (naviewer anchors WS ...)", ws.config_path)
    internal = len(indices or [])  # (anchors drawn when read count 0 here: DIFT checks them exactly)
    if n <= config.k + internal:
        raise NaviewerError(f"DIFT needs more than k + anchors = {config.k} + {internal} samples, the workspace has "
                            f"{n}: lower k ([dift] k in workspace.toml, or --dift-set k=N) or the anchors a class",
                            ws.config_path)


def encoder_record(encoder: Any, checkpoint: PathLike, size: Optional[int], inferred: bool) -> dict:
    """What a detector pass records of the encoder it embedded with (the passes of three encoders all read "run
    posthoc", told apart by nothing; session 28)."""
    cfg = encoder.config
    return {"checkpoint": str(checkpoint), "arch": getattr(cfg, "arch", str(cfg)),
            "width": getattr(cfg, "width", None), "cifar_stem": getattr(cfg, "cifar_stem", None),
            "image_size": int(size or 0) or None, "inferred": bool(inferred),
            # a retrain writes its last.pt at the same path: the passes of two trainings are two encoders
            "stamp": file_stamp(checkpoint)}


def posthoc_detect(ws, checkpoint: PathLike, *, backbone: Optional[dict] = None, config=None,
                   run: str = "posthoc", tag: Optional[str] = None, baselines: Sequence[str] = (),
                   image_size: Optional[int] = None, device=None, ctx: Optional[JobContext] = None,
                   detectors: Sequence[str] = (), detector_settings: Optional[dict] = None,
                   view: str = "squash", embeddings: Optional[PathLike] = None) -> PosthocOutcome:
    """Embed the workspace with ``checkpoint``'s backbone, run one DIFT pass and the B1 baselines.

    ``embeddings``: that backbone's features computed already (an (N, D) ``.npy``, e.g. from ``naviewer embed``
    sharded across processes), checked and taken in instead of embedding again (:func:`adopt_embeddings`)."""
    from naviewer.data.store import ImageStore, streaming_store
    from naviewer.defense.config import DiftConfig
    from naviewer.defense.pipeline import PosthocDetector, save_detection
    from naviewer.ssl.checkpoints import load_encoder
    from naviewer.ssl.embed import extract_embeddings
    from naviewer.workflows.anchor_sources import UNTRUSTED_NOTICE, load_anchor_set
    from naviewer.workflows.workspace_setup import evaluation_truth

    ctx = ensure_context(ctx)
    ws.store.check_writable()  # before the embedding and the pass: the window's Detect did both, then failed to save
    # recorded with the run and the pass: absolute, so the Overview and a later finetune find it from anywhere (a
    # relative --checkpoint was kept as typed, relative to wherever the command ran)
    checkpoint = Path(checkpoint).expanduser().absolute()
    config = (config or DiftConfig.from_workspace(ws)).validate()
    if embeddings is not None and view != "squash":
        raise NaviewerError("--view applies to embedding the images; precomputed embeddings were made with "
                            "their own view", embeddings)
    tag = tag or (_tag_for(embeddings) if embeddings is not None else
                  _tag_for(checkpoint) + ("" if view == "squash" else f"-{view}"))
    timings: dict[str, float] = {}
    start = time.perf_counter()
    encoder = load_encoder(checkpoint, backbone)
    size = image_size or encoder.image_size
    check_dift_size(ws, config)  # said before the embedding (minutes at scale), where k comes from
    if detectors:  # bad detector settings are refused now, not after the embedding and the DIFT pass
        from naviewer.defense.detectors import make_detector

        for name in detectors:
            make_detector(name, **dict((detector_settings or {}).get(name) or {})).check_inputs(
                size, ws.store.sample_count(), encoder=getattr(encoder, "backbone", encoder))
    # one visit per image for the embedding and the encoder check: decoded a chunk at a time, so memory is
    # bounded by the decode budget, not N; the whole set is decoded only for a step that revisits images
    store = streaming_store(ws.checked_dataset())

    @functools.lru_cache(maxsize=1)
    def whole_store() -> ImageStore:
        if isinstance(store, ImageStore):
            return store
        return store.materialize(ctx, "loading the images for the crop-aware steps")

    if embeddings is not None:
        from naviewer.ssl.backbones import infer_feature_dim

        expected_dim = infer_feature_dim(encoder.backbone, size or 32)
        check_embeddings_source(embeddings, encoder.backbone, store, image_size=size, device=device,
                                expected_dim=expected_dim)
        features = adopt_embeddings(ws, embeddings, run=run, tag=tag, ctx=ctx, expected_dim=expected_dim)
    else:
        features = embed_workspace(ws, encoder.backbone, run=run, tag=tag, image_size=size, device=device,
                                   store=store, ctx=ctx, view=view)
    timings["embed"] = time.perf_counter() - start
    anchor_set = load_anchor_set(ws, config.anchors_per_class, config.seed, ctx)
    if not anchor_set.trusted:
        ctx.event("warning", message=UNTRUSTED_NOTICE)
    truth = evaluation_truth(ws, ctx)  # evaluation only (the pass's metrics), never read by detection
    start = time.perf_counter()
    samples = np.asarray(features)
    detect_on, anchors = anchor_set.for_features(samples, lambda trusted: extract_embeddings(
        encoder.backbone, trusted, device=device, image_size=size))
    def crop_scores():  # the crop-agreement rule's input, computed only when that rule runs
        from naviewer.defense.detectors.crops import crop_density_scores

        problem = decoded_size_problem(store, len(samples))
        if problem:  # the crop steps revisit images at random, so they hold every decoded image at once
            ctx.event("warning", message=f"DIFT: crop agreement skipped: {problem}")
            return None
        return crop_density_scores(encoder.backbone, whole_store(), len(samples), image_size=size, device=device, ctx=ctx,
                                   seed=int(config.seed))

    result = PosthocDetector(config).run(detect_on, anchors, truth, ctx, sample_count=len(samples),
                                         crop_scores=crop_scores)
    timings["dift"] = time.perf_counter() - start
    if not result.warnings:  # degenerate embeddings were said already; else: is the encoder trained at all?
        start = time.perf_counter()
        result.warnings = encoder_checks(encoder, store, samples, ws.store.samples()["label"], size, device,
                                         config.seed)  # saved with the pass
        for message in result.warnings:
            ctx.event("warning", message=message)
        timings["checks"] = time.perf_counter() - start
    ws.store.add_run(run, "posthoc", {"checkpoint": str(checkpoint), "tag": tag, "dift": config.to_dict(),
                                      **({"embeddings_from": str(embeddings)} if embeddings is not None else {}),
                                      "baselines": list(baselines), "view": view})
    detector_passes: dict = {}
    detector_metrics: dict = {}
    record_of_encoder = encoder_record(encoder, checkpoint, size, inferred=backbone is None)
    if detectors:  # saved before DIFT's pass, so DIFT's stays the latest (what review and export take)
        start = time.perf_counter()
        detector_passes, detector_metrics = run_detectors(
            ws, samples, [d for d in detectors if d != "dift"], run=run, anchors=anchors, settings=detector_settings,
            truth=truth, ctx=ctx, encoder=encoder.backbone, images=whole_store if needs_images(detectors) else None,
            image_size=size, device=device, encoder_warnings=_encoder_warnings(result), encoder_record=record_of_encoder)
        timings["detectors"] = time.perf_counter() - start
    from naviewer.analysis.embeddings import embeddings_record

    result.settings["embeddings"] = {**embeddings_record(ws, run, tag), "view": view}  # the review opens exactly these
    result.settings["encoder"] = dict(record_of_encoder)
    from naviewer.workspace.anchor_record import section_fingerprint

    result.settings["anchors_fingerprint"] = section_fingerprint(ws.config.get("anchors"))  # which anchors judged it
    pass_id = save_detection(ws.store, result, run=run)
    outcome = PosthocOutcome(run, tag, ws.embeddings_path(run, tag), pass_id, result.summary(), result=result,
                             timings=timings, anchors=anchor_set.describe(), warnings=list(result.warnings))
    if detector_passes:
        outcome.detector_passes, outcome.detector_metrics = detector_passes, detector_metrics
    if baselines:
        start = time.perf_counter()
        outcome.baselines, outcome.baseline_passes, outcome.baseline_metrics = run_baselines(
            ws, samples, baselines, config, run=run, knn=None if anchor_set.external is not None
            else result.detection.knn, truth=truth, ctx=ctx)
        timings["baselines"] = time.perf_counter() - start
    return outcome


def pass_finetune_result(ws: Workspace, pass_id: Optional[int]) -> Optional[dict]:
    """:func:`latest_finetune_result` of a pass's own run (for the HTML report); None when none can be read."""
    if pass_id is None:
        return None
    try:
        info = ws.store.pass_info(int(pass_id)) or {}
        run = info.get("run")
        result = latest_finetune_result(ws, run, int(pass_id))
        if result and run and not result.get("before") and not result.get("after") and not result.get("again"):
            # naviewer finetune writes no before/after record: the run's own metrics say it (its monitor's figures)
            from naviewer.workflows.finetune_record import review_before_after
            from naviewer.workflows.floor import read_floor

            before, after = review_before_after(ws.path / "runs" / str(run) / "metrics.jsonl")
            result = {**result, "before": before, "after": after, "floor": result.get("floor") or read_floor(ws)}
        return result
    except (NaviewerError, OSError, ValueError, TypeError):  # the report goes on without the section
        return None


def latest_finetune_result(ws: Workspace, run: Optional[str], pass_id: Optional[int] = None) -> Optional[dict]:
    """What the last fine-tune / remove-and-retrain of this pass's run did, read back from the
    workspace (so a reopened workspace shows it instead of offering the step again); None when
    nothing was done. Keys: ``kind`` (``retrain`` / ``finetune`` / ``posthoc``), ``confirmed``,
    ``checkpoint``, and where measured ``before``/``after``/``protocol``/``floor``. A floor measured after the step
    (Run ▸ Measure the no-poison floor) is the workspace's ``[floor]``: the table said "not measured" beside a
    monitor that showed it (a newcomer, session 26)."""
    from naviewer.workflows.floor import read_floor

    result = _latest_finetune_result(ws, run, pass_id)
    if result is not None and not result.get("floor") and (result.get("before") or result.get("after")):
        floor = read_floor(ws)
        if floor and (floor.get("protocol") or "uniform") == (result.get("protocol") or "uniform"):
            result = {**result, "floor": floor}
    return result


def _latest_finetune_result(ws: Workspace, run: Optional[str], pass_id: Optional[int]) -> Optional[dict]:
    if run:
        from naviewer.workflows.retrain_again import latest_again_result

        again = latest_again_result(ws, run)  # a retrain on the decisions changed after the first: the newest result
        if again is not None:
            return again
        path = ws.path / "runs" / run / "finetune_result.json"  # the demo / GUI in-training path
        if path.is_file():
            try:
                record = json_loads(path.read_text(encoding="utf-8"))
            except ValueError:
                record = None
            if isinstance(record, dict):
                return {**record, "kind": FinetuneOutcome.from_dict(record.get("finetune") or {}).kind}
        state = read_state(ws, run) or {}
        if state.get("status") in ("restarted", "finished") and state.get("finetune"):
            from naviewer.workspace.runs import stopped_after_review

            record = state["finetune"]
            return {"kind": FinetuneOutcome.from_dict(record).kind,
                    "confirmed": int(record.get("removed", record.get("confirmed", 0)) or 0), "finetune": record,
                    "checkpoint": str(ws.checkpoint_dir(run) / "last.pt"), "status": state.get("status"),
                    # stopped before training on the kept samples ended: not a result, a run to resume
                    "interrupted": state.get("status") == "restarted" and stopped_after_review(ws, run)}
    done = [r for r in ws.store.runs() if r.get("kind") == FINETUNE_RUN_KIND
            and (pass_id is None or (r.get("config") or {}).get("pass_id") in (None, pass_id)
                 or same_detection(ws, (r.get("config") or {}).get("pass_id"), pass_id))
            and (run is None or str(r.get("name", "")).startswith(f"{run}-finetune"))]
    if done:
        config = max(done, key=lambda r: r.get("created") or 0).get("config") or {}
        return {"kind": "posthoc", "confirmed": config.get("confirmed", 0), "before": config.get("before"),
                "after": config.get("after"), "checkpoint": config.get("checkpoint"),
                "protocol": config.get("protocol"), "floor": config.get("floor"),
                "finetune": config.get("finetune") or {}}
    return None


#: passes saved this close together under one run came from one detection call (one encoder, one embedding): a
#: call saves DIFT's pass and its detectors' together at its end (milliseconds apart), and no call is this short
#: (60 s took two detects of other checkpoints under the default run name "posthoc" for one; a review, session 25)
SAME_DETECTION_S = 2.0


def same_detection(ws: Workspace, a: Any, b: Any) -> bool:
    """Whether passes ``a`` and ``b`` came from one detection call (DIFT and the detectors beside it: one run, saved
    together, one encoder). A post-hoc fine-tune is recorded with the DIFT pass; the window reopened on the
    PatchSearch pass of the same detection offered the fine-tune again and showed nothing of it (a newcomer,
    session 25)."""
    try:
        info_a, info_b = ws.store.pass_info(int(a)), ws.store.pass_info(int(b))
    except (TypeError, ValueError, NaviewerError):
        return False
    if not info_a or not info_b or info_a.get("run") != info_b.get("run"):
        return False
    created_a, created_b = info_a.get("created"), info_b.get("created")
    return (isinstance(created_a, (int, float)) and isinstance(created_b, (int, float))
            and abs(float(created_a) - float(created_b)) <= SAME_DETECTION_S)


# -- post-hoc fine-tuning (the analyst's way: detect -> review -> fine-tune the finished encoder) --------

POSTHOC_KINDS = ("posthoc",)
FINETUNE_RUN_KIND = "posthoc-finetune"


#: what :func:`finetune_posthoc` returns: the fine-tune outcome of every path (``kind`` "posthoc").
#: ``before`` / ``after`` carry the fine-tune gate's keys: ``confirmed_density`` (mean kNN density of
#: the confirmed samples among all samples, cosine, k = the DIFT k), ``cluster_spread`` /
#: ``reference_spread`` (the Eq. 7 stop rule's s(S)), and, when the workspace has evaluation sets,
#: ``knn_acc`` and ``asr`` (ASR_nt; ``asr_all`` too).
PosthocFinetuneOutcome = FinetuneOutcome


def _warn_other_encoder(ws: Workspace, source: Path, ctx: JobContext) -> None:
    """Say so when ``--checkpoint`` is not the encoder whose embeddings the reviewed flags came from: the
    fine-tuning then pulls apart a cluster that encoder may not have (a sweep: it ran without a word)."""
    run = _reviewed_posthoc_run(ws, {r["name"]: r for r in ws.store.runs()})
    if run is None or not run["config"].get("checkpoint"):
        return  # the flags came from a training run (or none were recorded): nothing to compare with
    recorded = locate_recorded_checkpoint(ws, run["config"]["checkpoint"])
    try:
        same = recorded.resolve() == source.resolve() or (recorded.is_file() and source.is_file()
                                                            and recorded.samefile(source))
    except OSError:
        same = False
    if not same:
        ctx.event("warning", message=f"the reviewed flags were detected on {recorded}, not on {source}: fine-tuning "
                                     "this encoder on them assumes it packs the same samples together (detect on it "
                                     "first to check: naviewer detect WORKSPACE --checkpoint " + str(source) + ")")


def _reviewed_posthoc_run(ws: Workspace, runs: dict[str, dict]) -> Optional[dict]:
    """The run record of the latest DIFT pass when a post-hoc detection made it, else None (``runs`` by name)."""
    latest = ws.store.latest_pass_id("dift")
    if latest is None:
        return None
    run = runs.get((ws.store.pass_info(latest) or {}).get("run") or "")
    return run if run is not None and run["kind"] in POSTHOC_KINDS else None


def posthoc_checkpoint(ws: Workspace) -> tuple[Path, str, str]:
    """(checkpoint, run, tag) of the post-hoc detection whose flags the analyst reviewed: the run of
    the latest DIFT pass when it is a post-hoc run, else the latest post-hoc run."""
    runs = {r["name"]: r for r in ws.store.runs()}
    chosen = _reviewed_posthoc_run(ws, runs)
    if chosen is None:
        posthoc = [r for r in runs.values() if r["kind"] in POSTHOC_KINDS and r["config"].get("checkpoint")]
        chosen = max(posthoc, key=lambda r: r["created"]) if posthoc else None
    if chosen is None or not chosen["config"].get("checkpoint"):
        raise NaviewerError("no post-hoc detection with a recorded checkpoint in this workspace: run "
                            "naviewer detect WORKSPACE --checkpoint CKPT first, or give --checkpoint", ws.path)
    checkpoint = locate_recorded_checkpoint(ws, chosen["config"]["checkpoint"])
    return checkpoint, chosen["name"], chosen["config"].get("tag") or _tag_for(checkpoint)


def locate_recorded_checkpoint(ws: Workspace, recorded: "str | Path") -> Path:
    """The file a run recorded as its checkpoint, found again after the workspace moved: as recorded; else,
    when it lay in a workspace's ``checkpoints/`` folder, the same place in this workspace; else relative to
    the workspace (passes from before session 12 kept the path as typed, relative to wherever the command
    ran, and the GUI's fine-tune failed with "checkpoint file not found"). Returns the recorded path when
    none exists, so the error names what was recorded."""
    path = Path(recorded).expanduser()
    parts = path.parts
    if "checkpoints" in parts:
        index = len(parts) - 1 - parts[::-1].index("checkpoints")
        moved = ws.path.joinpath(*parts[index:])
        if moved.is_file():  # this workspace's own copy first: a copied workspace used the original's file
            return moved
        if _same_workspace(ws, Path(*parts[:index])):
            # the original of this copy: its file is not this workspace's (a sweep: a copy whose checkpoints/ was
            # deleted fine-tuned the original's encoder); the error names this workspace's missing file
            return moved
    if path.is_file():
        return path
    if not path.is_absolute() and (ws.path / path).is_file():
        return ws.path / path
    return path


def _same_workspace(ws: Workspace, other: Path) -> bool:
    """``other`` is another folder holding this very workspace (a copy's original): the same creation stamp and
    dataset."""
    try:
        if other.resolve() == Path(ws.path).resolve():
            return False
        from naviewer.workspace.config import tomllib  # (the tomli backport on 3.10)

        theirs = tomllib.loads((other / "workspace.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):  # (tomllib's error is a ValueError)
        return False

    def stamp(config: dict) -> tuple:
        return ((config.get("workspace") or {}).get("created"), (config.get("dataset") or {}).get("content_hash"))

    return all(stamp(ws.config)) and stamp(theirs) == stamp(ws.config)


def confirmed_density(features: np.ndarray, ids: np.ndarray, k: int) -> Optional[float]:
    """Mean kNN density 1 / d_k of ``ids`` among all samples on L2-normalised features (the DIFT
    density, docs/dift.md): how tight the confirmed cluster still is. None when undefined."""
    from naviewer.defense.knn import exact_knn

    ids = np.asarray(ids, dtype=np.int64)
    x = np.asarray(features, dtype=np.float32)
    if ids.size == 0 or len(x) <= k or not np.isfinite(x).all():
        return None
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    _, dist = exact_knn(x, x[ids], k, query_ids=ids)
    return float(np.mean(1.0 / np.maximum(dist[:, -1], 1e-12)))


def _unique_path(path: Path) -> Path:
    if not path.exists():
        return path
    n = 2
    while path.with_name(f"{path.stem}-{n}{path.suffix}").exists():
        n += 1
    return path.with_name(f"{path.stem}-{n}{path.suffix}")


def finetune_unchanged_reason(finetune: dict, before: dict) -> str:
    """Why a post-hoc fine-tuning changed nothing ("" when it took steps): Eq. 7 stops before its first step
    when the confirmed samples are already as spread out as the reference samples. The GUI said "Done:
    fine-tuned the encoder" over a 0-step run with every figure unchanged (newcomer session 13)."""
    if int(finetune.get("steps") or 0) > 0:
        return ""
    spread, reference = before.get("cluster_spread"), before.get("reference_spread")
    measured = (f" (their spread {spread:.3g} against the reference's {reference:.3g})"
                if isinstance(spread, (int, float)) and isinstance(reference, (int, float)) else "")
    return ("Nothing to fine-tune: the confirmed samples are already as spread out as clean samples of the same "
            f"density{measured}, so the encoder was left as it was (0 steps; the new checkpoint holds the same "
            f"weights). {RETRAIN_WITHOUT_CONFIRMED}")


#: how a post-hoc review's confirmed poisons are trained out: the window's path first (a newcomer read only a terminal
#: command, and the Overview named a Remove and retrain button that post-hoc passes do not have; session 27)
RETRAIN_WITHOUT_CONFIRMED = ("To remove what they taught the encoder, train a fresh one without them: Run ▸ Train… with "
                             "\"Leave out the samples confirmed as poisons\" ticked (naviewer run WORKSPACE "
                             "--leave-out-confirmed); on a workspace crafted with an attack its monitor measures "
                             "the ASR against the no-poison floor.")


def finetune_posthoc(ws: Workspace, checkpoint: Optional[PathLike] = None, *, config=None, ctx: Optional[JobContext] = None,
                     out: Optional[PathLike] = None, backbone: Optional[dict] = None, device=None,
                     evaluate: bool = True) -> FinetuneOutcome:
    """Fine-tune a finished encoder on the CONFIRMED flags (Eq. 7) and write a new checkpoint.

    ``checkpoint`` None: the one the post-hoc detection recorded (:func:`posthoc_checkpoint`). One
    augmented view per image (the SSL training augmentation at the encoder's training size), BN
    layers frozen, the stop rule against benign dense samples of the latest DIFT pass. The result goes
    to ``out`` (default ``<ws>/checkpoints/<run>/<tag>-finetuned.pt``, never overwriting), the
    before/after embeddings to ``<ws>/embeddings/<run>/``, and the run is registered
    (kind ``posthoc-finetune``). Qt-free: the GUI's fine-tune gate runs it in a worker job."""
    import torch

    from naviewer.data.store import ImageStore
    from naviewer.defense.config import DiftConfig
    from naviewer.defense.finetune import finetune_backbone, make_cluster_score_fn, reference_ids
    from naviewer.ssl.augment import AugmentSettings, BatchAugment
    from naviewer.ssl.checkpoints import BACKBONE_BRANCHES, checkpoint_with_backbone, load_encoder, load_file, save_atomic
    from naviewer.ssl.device import resolve_device
    from naviewer.ssl.embed import extract_embeddings
    from naviewer.workflows.workspace_setup import evaluate_on_sets, evaluation_sets, workspace_anchors

    ctx = ensure_context(ctx)
    ws.store.check_writable()  # before minutes of embedding: the pass is saved at the end
    config = (config or DiftConfig.from_workspace(ws)).validate()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if checkpoint is None:
        source, run, tag = posthoc_checkpoint(ws)
    else:
        source = Path(checkpoint)
        run, tag = "posthoc", _tag_for(source)
        for r in ws.store.runs():
            if r["kind"] in POSTHOC_KINDS and r["config"].get("checkpoint") and \
                    Path(r["config"]["checkpoint"]).resolve() == source.resolve():
                run, tag = r["name"], r["config"].get("tag") or tag
        _warn_other_encoder(ws, source, ctx)
    confirmed = confirmed_ids(ws)
    if confirmed.size < 2:
        raise NaviewerError(f"fine-tuning needs at least 2 samples confirmed as poisons, the review has "
                            f"{confirmed.size}: confirm flags first (naviewer review, or the GUI)", ws.path)
    encoder = load_encoder(source, backbone)
    source_obj = load_file(source)
    meta_config = (encoder.meta.get("config") or {}) if encoder.meta else {}
    device = resolve_device(device if device is not None else "auto")
    model = encoder.backbone.to(device)
    store = ImageStore.from_dataset(ws.checked_dataset(), ctx)
    size = int(encoder.image_size or meta_config.get("image_size") or 0) or None
    from naviewer.catalogue import LEGACY_RECIPE, augment_values

    # the encoder's own training augmentation (its recipe; checkpoints from before recipes used aug+)
    aug_values = augment_values(meta_config.get("augment_recipe") or LEGACY_RECIPE, meta_config.get("augment") or {})
    if size:
        aug_values["image_size"] = size
    else:
        size = int(np.median(store.sizes[:, 0]))
        aug_values["image_size"] = size
    augment = BatchAugment(AugmentSettings.from_dict(aug_values), cache_on_device=False)
    emb_kw = dict(image_size=size, mean=tuple(augment.settings.mean), std=tuple(augment.settings.std))
    sets = evaluation_sets(ws, ctx) if evaluate else None
    timings["load"] = time.perf_counter() - t0

    def embed_all(message: str) -> np.ndarray:
        return extract_embeddings(model, store, device=device, ctx=ctx, message=message, **emb_kw)

    def embed(backbone_, ids: np.ndarray) -> np.ndarray:
        return extract_embeddings(backbone_, store.subset(np.asarray(ids, dtype=np.int64)), device=device, **emb_kw)

    def measure(features: np.ndarray) -> dict:
        values: dict[str, Any] = {"confirmed_density": confirmed_density(features, confirmed, config.k)}
        values.update(evaluate_on_sets(model, sets, size, device, ctx))
        return values

    t1 = time.perf_counter()
    before_features = embed_all("embedding before fine-tuning")
    anchors = workspace_anchors(ws, config.anchors_per_class, config.seed)
    anchor_ids = anchors.indices[anchors.indices < len(store)]
    anchor_norms = np.linalg.norm(before_features[anchor_ids], axis=1) if anchor_ids.size else None
    score_fn = None
    pass_id = ws.store.latest_pass_id("dift")
    if pass_id is not None:
        scores = ws.store.pass_scores(pass_id)
        if "candidate" in scores and "rank" in scores and len(scores["rank"]) == len(store):
            ref_size = min(int(confirmed.size), len(store) - int(confirmed.size))
            if ref_size >= 2:
                ref = reference_ids(np.flatnonzero(np.asarray(scores["candidate"], dtype=bool)), confirmed,
                                    np.asarray(scores["rank"], dtype=np.int64), ref_size, seed=config.seed)
                score_fn = make_cluster_score_fn(embed, confirmed, ref, k=config.ft_cluster_k)
    before = measure(before_features)
    timings["before"] = time.perf_counter() - t1
    rng = np.random.default_rng([config.seed, 7207])

    def poison_views(idx: np.ndarray) -> "torch.Tensor":
        return augment(store, confirmed[np.asarray(idx, dtype=np.int64)], rng, device)

    t2 = time.perf_counter()
    ft = finetune_backbone(model, poison_views, int(confirmed.size), config, ctx, cluster_score_fn=score_fn,
                           anchor_norms=anchor_norms, device=device)
    augment.release()
    timings["finetune"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    model.eval()
    after_features = embed_all("embedding after fine-tuning")
    after = measure(after_features)
    for values, score in ((before, ft.before), (after, ft.after)):
        if score is not None:
            values.update(cluster_spread=score.poison, reference_spread=score.reference)
    timings["after"] = time.perf_counter() - t3
    ft_run = f"{run}-finetune"
    target = Path(out) if out is not None else _unique_path(ws.checkpoint_dir(run) / f"{tag}-finetuned.pt")
    from naviewer.workflows.floor import read_floor

    record = {"source": str(source), "confirmed": int(confirmed.size), "pass_id": pass_id, "image_size": size,
              "finetune": ft.to_dict(), "before": before, "after": after, "dift": config.to_dict(),
              "protocol": sets.protocol if sets is not None else None, "floor": read_floor(ws)}
    # the momentum branches get the fine-tuned weights too (DIFT's branch sync)
    payload = checkpoint_with_backbone(source_obj, encoder, model.state_dict(), size, BACKBONE_BRANCHES)
    payload["posthoc_finetune"] = record
    save_atomic(payload, target, replace=False)  # never over a file another command wrote meanwhile
    paths = {"before": ws.save_embeddings(ft_run, f"{tag}-before", np.asarray(before_features, dtype=np.float32)),
             "after": ws.save_embeddings(ft_run, f"{_tag_for(target)}", np.asarray(after_features, dtype=np.float32))}
    ws.store.add_run(ft_run, FINETUNE_RUN_KIND, {**record, "checkpoint": str(target), "tag": _tag_for(target)})
    ctx.event("log", message=f"post-hoc fine-tuning on {confirmed.size} confirmed samples: {ft.steps} steps; "
              f"checkpoint {target}")
    timings["total"] = time.perf_counter() - t0
    return FinetuneOutcome(int(confirmed.size), ft.to_dict(), source=source, checkpoint=target, run=ft_run,
                           before=before, after=after, embeddings=paths, timings=timings,
                           protocol=sets.protocol if sets is not None else None, floor=read_floor(ws))
