"""``crop_density``: how tightly an image's crops sit with *other* images' crops (a crop-aware score).

Why: a Noisy Alignment composite is a unique image whose whole-image embedding need not cluster
(the eval transform squashes a 2r x r canvas, mixing the reference with a half-width trigger), but
the crops a backdoored encoder saw in training, those covering the trigger, should cluster across
poisons. So every image gets the same crop plan: the two halves along its longer side (a
composite's two source images, deterministically) plus ``crops`` random boxes from the training
crop sampler (:func:`naviewer.data.crops.sample_crop_boxes`, seeded by (seed, sample id), so one
sample's plan is reproducible alone). Every crop is embedded through the training path
(``crop_resize``, S x S, eval mode, L2-normalised); each crop's k-th nearest neighbour **among
other images' crops** (same-image crops dropped: an image's own overlapping crops would make every
image look dense) gives ``s = -ln d_k``; an image's score is its best crop's.

This is the proposal of the research notes (``docs/detectors.md`` in this repository describes it
with the measurements); it is not a published method. Extras per sample: the argmax crop's box
(top, left, height, width) for the GUI to outline, and its support (distinct owners among that
crop's k neighbours).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from naviewer.data.crops import DEFAULT_RATIO, sample_crop_boxes
from naviewer.defense.config import DiftConfig
from naviewer.catalogue import DETECTOR_SUMMARIES
from naviewer.defense.detectors.base import Detector, DetectorInputs, register_detector, threshold, with_outliers
from naviewer.defense.knn import KnnIndex, as_float32
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context

HALVES = 2


@dataclass
class CropDensitySettings:
    crops: int = 6                       # random sampler crops per image, beyond the two halves
    halves: bool = True                  # the two halves along the longer side
    k: int = 16                          # cross-image neighbours (<< the poisons' trigger crops)
    scale: tuple = (0.2, 1.0)            # the training crop scale (aug+; SimCLR's CIFAR recipe uses 0.08)
    ratio: tuple = DEFAULT_RATIO
    rule: str = "gmm2"                   # the separation guard (no split -> top_fraction(fraction)), or robust_z > z
    fraction: float = 0.01
    z: float = 3.5
    exclude_same_image: bool = True      # off only to show why it is on (every image looks dense)
    batch_crops: int = 1024
    backend: str = "auto"
    seed: int = 0


def crop_flags(score: np.ndarray, s: CropDensitySettings) -> tuple[np.ndarray, dict]:
    """(flags, threshold record) of crop_density's scores: ``s.rule``; with ``gmm2`` (the default) the split's
    upper part, else the top ``s.fraction``, and with either every robust outlier (z > ``s.z``): the split
    alone took 84 of 354 poisons on the CIFAR cell (docs/results.md, crop_density and the cut)."""
    flags, rule = threshold(score, s.rule, s.fraction, s.z, seed=int(s.seed))
    if s.rule != "gmm2":
        return flags, rule
    if not flags.any():
        flags, fallback = threshold(score, "top_fraction", s.fraction)
        rule = {**rule, "fallback": fallback}
    return with_outliers(score, flags, rule, float(s.z))


def crop_plan(heights: np.ndarray, widths: np.ndarray, crops: int, halves: bool, seed: int,
              scale: tuple = (0.2, 1.0), ratio: tuple = DEFAULT_RATIO, ids: Optional[np.ndarray] = None) -> np.ndarray:
    """(N, C, 4) int64 boxes (top, left, height, width): the halves first, then ``crops`` sampler boxes.

    Every image gets the same count C; square images are halved left/right like landscape ones.
    ``ids`` (default 0..N-1) seed each image's boxes with (seed, id)."""
    heights = np.asarray(heights, dtype=np.int64)
    widths = np.asarray(widths, dtype=np.int64)
    n = heights.size
    ids = np.arange(n) if ids is None else np.asarray(ids, dtype=np.int64)
    count = (HALVES if halves else 0) + int(crops)
    if count < 1:
        raise NaviewerError("crop_density needs at least one crop per image (halves or crops >= 1)")
    plan = np.zeros((n, count, 4), dtype=np.int64)
    if halves:
        wide = widths >= heights
        half_w, half_h = np.maximum(widths // 2, 1), np.maximum(heights // 2, 1)
        # first half: left (wide) / top (tall); second: the remaining right / bottom part
        plan[:, 0] = np.where(wide[:, None], np.stack([np.zeros(n, np.int64), np.zeros(n, np.int64), heights, half_w], 1),
                              np.stack([np.zeros(n, np.int64), np.zeros(n, np.int64), half_h, widths], 1))
        plan[:, 1] = np.where(wide[:, None], np.stack([np.zeros(n, np.int64), widths - half_w, heights, half_w], 1),
                              np.stack([heights - half_h, np.zeros(n, np.int64), half_h, widths], 1))
    start = HALVES if halves else 0
    for row in range(n):
        if crops <= 0:
            break
        rng = np.random.default_rng([int(seed), int(ids[row])])
        boxes = sample_crop_boxes(int(heights[row]), int(widths[row]), rng, n=int(crops), scale=tuple(scale),
                                  ratio=tuple(ratio))
        plan[row, start:] = boxes.as_array()
    return plan


def embed_crops(backbone: Any, store: Any, plan: np.ndarray, image_size: int, device: Any = None,
                batch_crops: int = 1024, ctx: Optional[JobContext] = None) -> np.ndarray:
    """(N * C, D) float32 eval-mode features of every planned crop, row ``i * C + j`` = crop j of sample i,
    through the training path (roi-align crop + resize to S x S, the CIFAR normalisation)."""
    import torch

    from naviewer.ssl.augment import CIFAR_MEAN, CIFAR_STD, crop_resize

    ctx = ensure_context(ctx)
    n, count = plan.shape[:2]
    params = list(backbone.parameters())
    dev = torch.device(device) if device is not None else (params[0].device if params else torch.device("cpu"))
    was_training = backbone.training
    backbone.eval()
    mean = torch.tensor(CIFAR_MEAN, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD, device=dev).view(1, 3, 1, 1)
    out: Optional[np.ndarray] = None
    per_batch = max(1, int(batch_crops) // count)
    done = 0
    try:
        with torch.no_grad():
            for bucket in store.buckets:
                for begin in range(0, len(bucket.indices), per_batch):
                    ctx.check()
                    ids = bucket.indices[begin:begin + per_batch]
                    images = torch.from_numpy(np.ascontiguousarray(bucket.images[begin:begin + per_batch])).to(dev)
                    boxes = plan[ids].reshape(-1, 4)
                    owner = np.repeat(np.arange(len(ids)), count)
                    rois = np.stack([owner, boxes[:, 1], boxes[:, 0], boxes[:, 1] + boxes[:, 3],
                                     boxes[:, 0] + boxes[:, 2]], axis=1).astype(np.float32)
                    x = crop_resize(images, torch.from_numpy(rois).to(dev), int(image_size))
                    x = x.mul_(1.0 / 255.0).sub_(mean).div_(std)
                    feats = backbone(x).float().cpu().numpy()
                    if out is None:
                        out = np.empty((n * count, feats.shape[1]), dtype=np.float32)
                    rows = (ids[:, None] * count + np.arange(count)[None, :]).reshape(-1)
                    out[rows] = feats
                    done += len(ids)
                    ctx.progress(done, n, "embedding crops")
    finally:
        backbone.train(was_training)
    if out is None:
        raise NaviewerError("crop_density: no images to embed")
    return out


def cross_image_kdist(z: np.ndarray, owner: np.ndarray, k: int, per_image: int, exclude_same: bool,
                      ctx: JobContext, backend: str = "auto", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(distance to the k-th neighbour from another image, those k neighbours' row ids) per crop row."""
    m = len(z)
    index = KnnIndex(z, DiftConfig(knn_backend=backend, seed=seed), ctx)
    kth = np.full(m, np.nan)
    neighbours = np.full((m, k), -1, dtype=np.int64)
    todo = np.arange(m)
    fetch = k + per_image + 1
    while todo.size:
        fetch = min(fetch, m)
        labels, dist = index.query(z[todo], fetch, ctx)
        keep = labels != todo[:, None]  # never a crop itself
        if exclude_same:
            keep &= owner[labels] != owner[todo][:, None]
        rank = np.cumsum(keep, axis=1)
        enough = rank[:, -1] >= k
        rows = np.flatnonzero(enough)
        if rows.size:
            hit = keep[rows] & (rank[rows] <= k)
            cols = np.argsort(~hit, axis=1, kind="stable")[:, :k]  # the first k kept, in distance order
            neighbours[todo[rows]] = np.take_along_axis(labels[rows], cols, axis=1)
            kth[todo[rows]] = np.take_along_axis(dist[rows], cols[:, -1:], axis=1)[:, 0]
        if fetch >= m:
            break
        todo = todo[~enough]
        fetch *= 2
    return kth, neighbours


@register_detector
class CropDensityDetector(Detector):
    """Crop-aware density: an image's best crop's cross-image kNN density (see the module docstring)."""

    SAMPLE_NEIGHBOURS = ()  # its k counts other images' crops, not samples

    name = "crop_density"
    Settings = CropDensitySettings
    needs = ("encoder", "images")
    summary = DETECTOR_SUMMARIES[name]

    def validate(self) -> None:
        super().validate()
        s = self.settings
        if int(s.crops) < 0:
            raise NaviewerError(f"detector crop_density: crops must be >= 0, got {s.crops}")
        if len(tuple(s.scale)) != 2 or not 0 < float(s.scale[0]) <= float(s.scale[1]) <= 1:
            raise NaviewerError(f"detector crop_density: scale must be (low, high) in (0, 1], got {s.scale}")
        ratio = tuple(s.ratio)  # an aspect range: [0, 0] raised "math domain error" from the crop sampler (a probe)
        if (len(ratio) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in ratio)
                or not 0 < float(ratio[0]) <= float(ratio[1]) < float("inf")):
            raise NaviewerError(f"detector crop_density: ratio must be (low, high), two aspect ratios above 0 with "
                                f"low <= high (the training sampler's is (0.75, 1.33)), got {s.ratio}")
        if int(s.crops) == 0 and not s.halves:
            raise NaviewerError("detector crop_density: crops=0 with halves off leaves no crop to score")

    def check_inputs(self, image_size: Optional[int] = None, n_samples: Optional[int] = None,
                     encoder: Any = None) -> None:
        super().check_inputs(image_size, n_samples, encoder)
        s = self.settings
        per_image = int(s.crops) + (2 if s.halves else 0)
        if n_samples is None:
            return
        # the crops a crop's neighbours are drawn from: the other images' (or every other crop with exclude off)
        pool = (int(n_samples) - 1) * per_image if s.exclude_same_image else int(n_samples) * per_image - 1
        if int(s.k) > pool:  # k=100000 was refused after the embedding (a probe, session 32)
            raise NaviewerError(f"detector crop_density: k={s.k} neighbouring crops, but there are {max(pool, 0):,} "
                                f"to draw from ({per_image} an image): give --detector-set crop_density:k=N with N at "
                                f"most {max(pool, 1):,}")

    def score(self, inputs: DetectorInputs, ctx: JobContext):
        s = self.settings
        store = inputs.images
        n = inputs.n
        if len(store) < n:
            raise NaviewerError(f"crop_density: {len(store)} images for {n} samples")
        sizes = store.sizes[:n]
        plan = crop_plan(sizes[:, 0], sizes[:, 1], int(s.crops), bool(s.halves), int(s.seed), tuple(s.scale),
                         tuple(s.ratio))
        count = plan.shape[1]
        size = int(inputs.image_size or getattr(inputs.encoder, "naviewer_image_size", 0) or int(sizes[:, 0].min()))
        feats = embed_crops(inputs.encoder, store, plan, size, inputs.device, int(s.batch_crops), ctx)
        z = as_float32(feats, True)
        owner = np.repeat(np.arange(n), count)
        if n * count <= int(s.k) + count:
            raise NaviewerError(f"crop_density: k={s.k} needs more crops than {n * count}")
        kth, neighbours = cross_image_kdist(z, owner, int(s.k), count, bool(s.exclude_same_image), ctx, s.backend,
                                            int(s.seed))
        crop_score = -np.log(np.maximum(kth, 1e-12)).reshape(n, count)
        finite = np.where(np.isfinite(crop_score), crop_score, -np.inf)
        best = np.argmax(finite, axis=1)
        score = finite[np.arange(n), best]
        score[~np.isfinite(score)] = np.nan
        best_rows = np.arange(n) * count + best
        support = np.array([np.unique(owner[r[r >= 0]]).size for r in neighbours[best_rows]], dtype=np.int64)
        flags, rule = crop_flags(score, s)
        return score, {"flags": flags, "threshold": rule, "direction_note": "-ln d_k of the best crop (dense)",
                       "best_box": plan[np.arange(n), best], "best_crop": best, "support": support,
                       "crops_per_image": count, "image_size": size}


def crop_density_scores(encoder: Any, images: Any, n: int, image_size: Optional[int] = None, device: Any = None,
                        ctx: Optional[JobContext] = None, seed: int = 0) -> np.ndarray:
    """The ``crop_density`` score (default settings, ``seed``) of the first ``n`` samples of ``images``
    through ``encoder``: what DIFT's crop-agreement rule reads at its stop (docs/dift.md, Crop agreement)."""
    inputs = DetectorInputs(np.empty((int(n), 0), dtype=np.float32), encoder=encoder, images=images,
                            image_size=image_size, device=device)
    return CropDensityDetector(seed=int(seed)).run(inputs, ctx).score
