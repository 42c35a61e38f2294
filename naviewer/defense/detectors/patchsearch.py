"""``patchsearch``: PatchSearch (Tejankar et al., CVPR 2023) for patch triggers, written from its description.

Why: a patch trigger (SSL-Backdoor's, CorruptEncoder's) is a small region that, pasted anywhere, pulls an
image into the poisons' part of the embedding. PatchSearch looks for such regions directly instead of
reading density alone, and needs neither labels nor anchors.

1. **Clusters**: k-means (K clusters) on the L2-normalised embeddings; each sample keeps its cluster a(i).
2. **Test images**: T samples, ``T // K`` nearest each centroid (one from each of T random clusters
   when T < K).
3. **Search**, cluster by cluster: every cluster starts as a candidate; each round pops ``per_round``
   random unsearched samples from every candidate, and for each one
   (a) Grad-CAM on the encoder (target: the cosine to its own centroid; layer: the deepest stage whose
   map is still >= 4 px, so 16 px inputs are not localised on a 2 x 2 map), (b) the w x w window of
   largest CAM mass is its candidate patch, (c) the patch is pasted at a uniform random place on every
   test image, which are embedded again, L2-normalised and assigned to their nearest centroid,
   (d) **poison score** = #{pasted test images now in a(i)} - #{test images already in a(i)}.
   A cluster's score is its best sample's; the lowest ``floor(prune * |candidates|)`` clusters leave.
   Unlike the published code (whose loop ends once that floor is 0), the last few candidates are
   searched until they run out or ``max_searched`` is reached, so a poison cluster is searched whole.
4. **Poison classifier** (``classifier=True``): a small ResNet learns "image" vs "image with one of the
   top patches pasted" on every sample but the top 10 % by search score; an ensemble's probability of
   "patch pasted" is the classifier's p for **every** sample. PatchSearch's flags are p > 0.5
   (``rule="own"``); naviewer's rule reads the log-odds instead (:func:`classifier_flags` says why).
5. **Neighbours** (``neighbours`` = k > 0, naviewer's addition): the detector's score is the classifier's
   log-odds averaged with the mean log-odds of the sample's k nearest neighbours in the embedding, and the
   flags are its robust outliers. An attack poisons one target class, so a poison's neighbours are mostly
   fellow poisons, while the clean images the classifier also scores high (a car's headlight, a logo: any
   small high-contrast block) sit among clean neighbours. Measured (results.md, session 25): on a real-image
   patch cell the classifier's top 400 held 133 clean images of every class and no cut of its p reached
   precision 0.8; with k = 10 the flags went from 223 at 67 / 46 % (precision / recall) to 247 at 81 / 62 %,
   and over the eleven digits cells of session 23 recall rose or held on ten (one NA cell 68 -> 80 %).
   ``neighbours=0`` with ``rule="gmm2"`` is the session-11 rule.
   Without the classifier the score is the search score (NaN where never searched) and the rule flags.

All of it runs in the encoder's evaluation view (the whole image resized to S x S, as the pass's
embeddings). Extras: ``search_score`` (NaN = not searched), ``best_box`` (each searched sample's
window in its own pixels, for the GUI to outline), ``patches`` (the top patches, S-scale pixels),
``validation`` (the classifier's accuracy on the top-20 vs bottom-20 searched samples).
Scaled for CPUs: the classifier's ensemble and iterations are below the published 5 x 2,000.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from naviewer.catalogue import DETECTOR_SUMMARIES
from naviewer.defense.detectors.base import (
    THRESHOLD_RULES,
    Detector,
    DetectorInputs,
    register_detector,
    threshold,
    with_outliers,
)
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext

#: the smallest CAM map (pixels a side) the automatic layer choice accepts
MIN_CAM_SIDE = 4
CAM_STAGES = ("layer4", "layer3", "layer2", "layer1")


@dataclass
class PatchSearchSettings:
    clusters: int = 0                 # K; 0 = N // 100 within [10, 1000] (the CIFAR scaling 500 at 50k)
    test_images: int = 0              # T; 0 = N // 10 within [50, 1000]
    window: int = 0                   # w in evaluation pixels; 0 = S // 4, at least 8 (8 of 32, 56 of 224)
    per_round: int = 2                # s: samples searched per candidate cluster and round
    prune: float = 0.25               # rho: share of the candidate clusters dropped each round
    max_searched: int = 3000          # at most this many samples searched (each costs T forward passes)
    cam_layer: str = "auto"           # a module name of the encoder, or auto (see the module docstring)
    classifier: bool = True           # the second stage: flags from a poison classifier
    top_patches: int = 20
    ensemble: int = 3                 # published: 5
    iterations: int = 600             # published: 2,000 (batch 32, SGD lr 0.01)
    classifier_width: int = 16
    batch: int = 256                  # images per forward pass
    rule: str = "robust_z"            # on the classifier's (neighbour-averaged) log-odds; own: p > 0.5
    search_rule: str = "gmm2"         # without the classifier: on the search score (the rule before session 25)
    neighbours: int = 10              # k nearest in the embedding whose log-odds average with a sample's; 0 = off
    max_fraction: float = 0.2         # more flags than this share: no flags (the classifier found no trigger)
    fraction: float = 0.01
    z: float = 3.5
    seed: int = 0


# -- evaluation-view tensors ------------------------------------------------------------------------

def eval_tensor(store: Any, ids: np.ndarray, size: int, device: Any = None):
    """float (len(ids), 3, S, S): the samples ``ids`` of ``store`` in the evaluation view, normalised."""
    import torch

    from naviewer.ssl.augment import EvalTransform

    ids = np.asarray(ids, dtype=np.int64)
    transform = EvalTransform(image_size=int(size))
    out = torch.empty((ids.size, 3, int(size), int(size)), dtype=torch.float32, device=device)
    buckets = store.bucket_of[ids]
    for b in np.unique(buckets):
        rows = np.flatnonzero(buckets == b)
        shrunk = _shrunk_bucket(store, int(b), int(size), transform)
        if shrunk is not None:
            out[torch.as_tensor(rows, device=device)] = shrunk[store.position[ids[rows]]].to(device)
            continue
        pixels = store.buckets[int(b)].images[store.position[ids[rows]]]
        out[torch.as_tensor(rows, device=device)] = transform(torch.from_numpy(np.ascontiguousarray(pixels)).to(device))
    return out


#: a bucket whose images have this many times the evaluation view's pixels is shrunk once and kept (at most
#: SHRUNK_BYTES of them a store, all buckets together; past it, resized per call as before): one 823-byte JPEG
#: claiming 8000x8000 px was resized again at every step of the search, and PatchSearch on 31 images ran past 300 s
#: where 30 took 75 s (a fuzz, session 34)
SHRUNK_FACTOR = 16
SHRUNK_BYTES = 64 << 20


def _shrunk_bucket(store: Any, b: int, size: int, transform: Any) -> Any:
    """Bucket ``b``'s images in the evaluation view (float, on the CPU), computed once a store and size, when they are
    large against ``size`` and their view is small; None otherwise (resized per call, as before)."""
    import torch

    bucket = store.buckets[b]
    count = len(bucket.indices)
    cache = store.__dict__.setdefault("_shrunk_views", {})
    key = (b, size)
    if key in cache:
        return cache[key]
    held = sum(int(view.numel()) * 4 for view in cache.values())
    if bucket.height * bucket.width < SHRUNK_FACTOR * size * size or held + count * 3 * size * size * 4 > SHRUNK_BYTES:
        return None
    parts = [transform(torch.from_numpy(np.ascontiguousarray(bucket.images[i:i + 1]))) for i in range(count)]
    cache[key] = torch.cat(parts) if parts else torch.empty((0, 3, size, size))
    return cache[key]


def embed_tensor(backbone: Any, x, batch: int) -> np.ndarray:
    """L2-normalised eval-mode features of ``x`` (numpy float32)."""
    import torch

    parts = []
    with torch.no_grad():
        for begin in range(0, x.shape[0], max(1, int(batch))):
            f = backbone(x[begin:begin + batch]).float()
            parts.append(torch.nn.functional.normalize(f, dim=1).cpu().numpy())
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def nearest_centroid(z: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (L2) for unit-norm rows ``z``."""
    return np.argmax(z @ centroids.T - 0.5 * np.sum(centroids * centroids, axis=1)[None, :], axis=1)


# -- Grad-CAM and the window --------------------------------------------------------------------------

def cam_module(backbone: Any, name: str, size: int, device: Any = None) -> tuple[str, Any]:
    """(name, module) whose activation map Grad-CAM reads: ``name``, or with ``auto`` the deepest of
    ``layer4..layer1`` whose map is >= MIN_CAM_SIDE px at input size ``size`` (else the last Conv2d)."""
    import torch

    modules = dict(backbone.named_modules())
    if name != "auto":
        if name not in modules:
            raise NaviewerError(f"patchsearch: the encoder has no module {name!r} for Grad-CAM")
        return name, modules[name]
    stages = [s for s in CAM_STAGES if s in modules]
    if stages:
        sides: dict[str, int] = {}
        hooks = [modules[s].register_forward_hook(lambda m, i, o, s=s: sides.__setitem__(s, int(o.shape[-1])))
                 for s in stages]
        try:
            with torch.no_grad():
                backbone(torch.zeros((1, 3, size, size), device=device))
        finally:
            for h in hooks:
                h.remove()
        for s in stages:  # deepest first
            if sides.get(s, 0) >= MIN_CAM_SIDE:
                return s, modules[s]
        return stages[-1], modules[stages[-1]]
    convs = [(n, m) for n, m in modules.items() if isinstance(m, torch.nn.Conv2d)]
    if not convs:
        raise NaviewerError("patchsearch: the encoder has no convolution for Grad-CAM; set cam_layer")
    return convs[-1]


def grad_cam(backbone: Any, layer: Any, x, centroids, targets) -> Any:
    """(n, S, S) Grad-CAM maps: the target of row i is the cosine of its feature to ``centroids[targets[i]]``."""
    import torch
    import torch.nn.functional as F

    store: dict[str, Any] = {}
    hook = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    try:
        with torch.enable_grad():
            z = F.normalize(backbone(x).float(), dim=1)
            objective = (z * centroids[targets]).sum()
            acts = store["a"]
            grads = torch.autograd.grad(objective, acts)[0]
    finally:
        hook.remove()
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * acts).sum(dim=1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return cam[:, 0]


def best_windows(cam, window: int) -> np.ndarray:
    """(n, 2) top-left (y, x) of the w x w window with the largest CAM mass."""
    import torch.nn.functional as F

    mass = F.avg_pool2d(cam[:, None], kernel_size=int(window), stride=1)[:, 0]
    n, h, w = mass.shape
    flat = mass.reshape(n, -1).argmax(dim=1).cpu().numpy()
    return np.stack([flat // w, flat % w], axis=1).astype(np.int64)


def paste(images, patches, positions: np.ndarray):
    """Copy of ``images`` (R, 3, S, S) with ``patches`` (R, 3, w, w) at ``positions`` (R, 2) = (y, x)."""
    import torch

    out = images.clone()
    r, _, w, _ = patches.shape
    dev = images.device
    rows = torch.arange(r, device=dev)[:, None, None]
    ys = torch.as_tensor(positions[:, 0], device=dev)[:, None, None] + torch.arange(w, device=dev)[None, :, None]
    xs = torch.as_tensor(positions[:, 1], device=dev)[:, None, None] + torch.arange(w, device=dev)[None, None, :]
    cl = out.permute(0, 2, 3, 1)  # a view: writing into it writes into out
    cl[rows, ys, xs] = patches.permute(0, 2, 3, 1)
    return out


# -- the detector -------------------------------------------------------------------------------------

def auto_window(size: int) -> int:
    """S // 4 but at least 8 px (at most S): the published windows (8 of 32 on CIFAR, 60 of 224) and,
    on small images, a window that still holds a trigger of the CIFAR attacks' 8 px."""
    return int(min(size, max(size // 4, 8)))


def classifier_flags(prob: np.ndarray, rule: str, fraction: float, z: float, seed: int,
                     max_fraction: float = 1.0) -> dict:
    """Flags from the classifier's p: ``own`` is PatchSearch's p > 0.5; any other rule splits the log-odds.

    Why not only p > 0.5: the classifier learns square patches pasted at training scale, while a poison
    carries its trigger as the evaluation view shows it (a 2:1 composite squashed to half width), so its p
    can sit far below 0.5 while still far above every clean sample's (measured on CorruptEncoder:
    poisons' median p 0.18, clean 99th percentile 0.002). The robust outliers of the log-odds (z > ``z``) are
    flagged too; when the split finds no second population the flags are p > 0.5 or those outliers.

    A classifier that calls more than ``max_fraction`` of the samples poisoned has learned something
    every image has, not a trigger (measured on a CIFAR cell: p > 0.5 for 32 % of the samples, 6 % of them
    poisons): then nothing is flagged and the threshold record says why."""
    out = _classifier_flags(prob, rule, fraction, z, seed)
    share = float(np.mean(out["flags"])) if len(out["flags"]) else 0.0
    if share > max_fraction:
        out = {"flags": np.zeros_like(out["flags"]),
               "threshold": {**out["threshold"], "refused": f"{share:.0%} of the samples flagged, more than "
                             f"max_fraction {max_fraction:g}: the classifier does not single out a trigger"}}
    return out


def _classifier_flags(prob: np.ndarray, rule: str, fraction: float, z: float, seed: int) -> dict:
    own = np.asarray(prob) > 0.5
    if rule == "own":
        return {"flags": own, "threshold": {"rule": "own", "classifier": "p > 0.5"}}
    p = np.clip(np.asarray(prob, dtype=np.float64), 1e-7, 1 - 1e-7)
    log_odds = np.log(p / (1 - p))
    flags, description = threshold(log_odds, rule, fraction, z, seed=seed)
    # the log-odds' robust outliers (z > ``z`` above the clean mass) are flagged with either answer: poisons
    # whose p spreads out from the clean mass leave no second mode for the split, and where some saturate
    # at p ~ 1 the split can take only those (a held-out NA cell: 57 of 107 poisons; with the outliers 107)
    if not flags.any() or (rule == "gmm2" and description.get("value") is None):
        # no two populations: PatchSearch's own p > 0.5, plus the outliers
        flags, description = with_outliers(log_odds, own, {**description, "fallback": "p > 0.5 or robust_z"}, z)
    else:
        flags, description = with_outliers(log_odds, flags, {**description, "on": "log-odds of p"}, z)
    return {"flags": flags, "threshold": description}


def neighbour_averaged(prob: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """p whose log-odds are the mean of the sample's own and the mean of its neighbours' (rows of ``neighbours``):
    a poison among fellow poisons keeps a high p, a clean image the classifier alone scores high (among clean
    neighbours) falls back towards the clean mass."""
    p = np.clip(np.asarray(prob, dtype=np.float64), 1e-7, 1 - 1e-7)
    log_odds = np.log(p / (1 - p))
    averaged = 0.5 * (log_odds + log_odds[np.asarray(neighbours, dtype=np.int64)].mean(axis=1))
    return 1.0 / (1.0 + np.exp(-averaged))


def _neighbours(inputs: DetectorInputs, z: np.ndarray, k: int, ctx: JobContext) -> np.ndarray:
    """The k nearest others of every sample in the pass's embedding: the pass's shared neighbour table
    (:func:`~naviewer.defense.detectors.density.neighbour_table`), on ``z`` when the pass gave no embeddings."""
    from naviewer.defense.detectors.density import neighbour_table

    if "z" not in inputs.cache:  # (PatchSearch embedded the images itself: the table is built on those)
        inputs.cache["z"] = np.ascontiguousarray(z, dtype=np.float32)
    ctx.progress(0, None, "patchsearch: neighbours")
    return neighbour_table(inputs, k, ctx)[0]


def auto_clusters(n: int) -> int:
    return int(min(1000, max(10, n // 100)))


def auto_test_images(n: int) -> int:
    return int(min(1000, max(50, n // 10)))


def test_image_ids(labels: np.ndarray, distance: np.ndarray, k: int, t: int, rng: np.random.Generator) -> np.ndarray:
    """T test samples: the ``T // K`` nearest each centroid, or one from each of T random clusters."""
    chosen = []
    clusters = np.arange(k) if t >= k else rng.choice(k, size=t, replace=False)
    per = max(1, t // k)
    for c in clusters:
        members = np.flatnonzero(labels == c)
        if members.size:
            chosen.append(members[np.argsort(distance[members], kind="stable")[:per]])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


@register_detector
class PatchSearchDetector(Detector):
    """PatchSearch: Grad-CAM windows that flip test images into the sample's cluster (module docstring)."""

    SAMPLE_NEIGHBOURS = ("neighbours",)  # the embedding neighbours its log-odds are averaged over

    name = "patchsearch"
    Settings = PatchSearchSettings
    needs = ("encoder", "images")
    summary = DETECTOR_SUMMARIES[name]

    def validate(self) -> None:
        super().validate()
        s = self.settings
        for key in ("clusters", "test_images", "window"):
            if int(getattr(s, key)) < 0:
                raise NaviewerError(f"detector patchsearch: {key} must be >= 0 (0 = automatic), got {getattr(s, key)}")
        if str(s.search_rule) not in THRESHOLD_RULES:
            raise NaviewerError(f"detector patchsearch: search_rule must be one of {', '.join(THRESHOLD_RULES)}, got "
                                f"{s.search_rule!r}")
        if int(s.neighbours) < 0:
            raise NaviewerError(f"detector patchsearch: neighbours must be >= 0 (0 = off), got {s.neighbours}")
        if int(s.per_round) < 1 or int(s.max_searched) < 1:
            raise NaviewerError("detector patchsearch: per_round and max_searched must be >= 1")
        if not 0.0 < float(s.max_fraction) <= 1.0:
            raise NaviewerError(f"detector patchsearch: max_fraction must be in (0, 1], got {s.max_fraction}")
        if not 0.0 <= float(s.prune) < 1.0:
            raise NaviewerError(f"detector patchsearch: prune must be in [0, 1), got {s.prune}")
        if s.classifier and (int(s.top_patches) < 1 or int(s.ensemble) < 1 or int(s.iterations) < 1):
            raise NaviewerError("detector patchsearch: top_patches, ensemble and iterations must be >= 1")

    def check_inputs(self, image_size: Optional[int] = None, n_samples: Optional[int] = None,
                     encoder: Any = None) -> None:
        super().check_inputs(image_size, n_samples, encoder)
        if image_size and int(self.settings.window) > int(image_size):
            raise NaviewerError(f"patchsearch: window {self.settings.window} is larger than the image size {image_size}")
        name = str(self.settings.cam_layer)
        if encoder is not None and name != "auto" and name not in dict(encoder.named_modules()):
            convs = [n for n, m in encoder.named_modules() if type(m).__name__ == "Conv2d"]
            raise NaviewerError(f"patchsearch: the encoder has no module {name!r} for Grad-CAM (cam_layer); auto, or "
                                f"one of its layers, e.g. {', '.join(convs[-3:]) or 'layer4'}")

    def score(self, inputs: DetectorInputs, ctx: JobContext):
        import torch

        s = self.settings
        store = inputs.images
        n = inputs.n
        if len(store) < n:
            raise NaviewerError(f"patchsearch: {len(store)} images for {n} samples")
        backbone = inputs.encoder
        params = list(backbone.parameters())
        device = torch.device(inputs.device) if inputs.device is not None else (
            params[0].device if params else torch.device("cpu"))
        size = int(inputs.image_size or getattr(backbone, "naviewer_image_size", 0) or int(store.sizes[:n, 0].min()))
        window = int(s.window) or auto_window(size)
        if window > size:
            raise NaviewerError(f"patchsearch: window {window} is larger than the image size {size}")
        k = min(int(s.clusters) or auto_clusters(n), n)
        t = min(int(s.test_images) or auto_test_images(n), n)
        rng = np.random.default_rng(int(s.seed))
        was_training = backbone.training
        backbone.eval()
        try:
            z = np.asarray(inputs.embeddings, dtype=np.float32)[:n]
            if z.ndim != 2 or z.shape[1] == 0:
                z = np.concatenate([embed_tensor(backbone, eval_tensor(store, np.arange(b, min(b + int(s.batch), n)),
                                                                       size, device), int(s.batch))
                                    for b in range(0, n, int(s.batch))])
            z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
            labels, centroids, distance = _kmeans(z, k, int(s.seed))
            ctx.progress(0, None, "patchsearch: clusters")
            test_ids = test_image_ids(labels, distance, k, t, rng)
            test_x = eval_tensor(store, test_ids, size, device)
            layer_name, layer = cam_module(backbone, str(s.cam_layer), size, device)
            cent_t = torch.as_tensor(centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12),
                                     device=device)
            search, windows = self._search(backbone, layer, store, z, labels, centroids, cent_t, test_ids, test_x,
                                           size, window, rng, ctx)
            scale = store.sizes[:n].astype(np.float64) / float(size)  # window -> the sample's own pixels
            best_box = np.full((n, 4), -1, dtype=np.int64)
            done = np.isfinite(search)
            best_box[done, 0] = np.floor(windows[done, 0] * scale[done, 0]).astype(np.int64)
            best_box[done, 1] = np.floor(windows[done, 1] * scale[done, 1]).astype(np.int64)
            best_box[done, 2] = np.maximum(1, np.round(window * scale[done, 0])).astype(np.int64)
            best_box[done, 3] = np.maximum(1, np.round(window * scale[done, 1])).astype(np.int64)
            extras: dict[str, Any] = {"search_score": search, "best_box": best_box, "clusters_k": k,
                                      "test_images_t": int(test_ids.size), "window_px": window,
                                      "cam_layer": layer_name, "searched": int(done.sum()), "image_size": size}
            order = np.argsort(-np.where(done, search, -np.inf), kind="stable")[:min(int(s.top_patches), int(done.sum()))]
            patches = _cut(eval_tensor(store, order, size, device), windows[order], window) if order.size else None
            extras["top_ids"] = order
            if s.classifier and patches is not None:
                prob, validation = self._classify(store, n, size, search, patches, device, ctx)
                extras["validation"] = validation
                extras["patches"] = patches.cpu().numpy()
                note = "the poison classifier's p(a top patch is pasted)"
                if int(s.neighbours) > 0 and n > int(s.neighbours):
                    extras["classifier_p"] = prob
                    # "a trigger in this image" is the classifier's word on the image alone (the session-11 rule on its
                    # own p): a clean image among poisons is flagged by the averaged score, and the anchor-reach
                    # pointer that asks "no trigger?" of such clean images must not read that (a review, session 25)
                    own = classifier_flags(prob, "gmm2", s.fraction, s.z, int(s.seed), float(s.max_fraction))["flags"]
                    extras["trigger_found"] = np.asarray(own, dtype=np.uint8)
                    prob = neighbour_averaged(prob, _neighbours(inputs, z, int(s.neighbours), ctx))
                    note += f", its log-odds averaged with its {int(s.neighbours)} nearest neighbours'"
                extras.update(classifier_flags(prob, s.rule, s.fraction, s.z, int(s.seed), float(s.max_fraction)),
                              direction_note=note)
                return prob, extras
            if patches is not None:
                extras["patches"] = patches.cpu().numpy()
            flags, rule = threshold(search, s.search_rule, s.fraction, s.z, seed=int(s.seed))
            extras.update(flags=flags, threshold=rule, direction_note="flips into the sample's cluster (NaN: not searched)")
            return search, extras
        finally:
            backbone.train(was_training)

    def _search(self, backbone, layer, store, z, labels, centroids, cent_t, test_ids, test_x, size, window, rng,
                ctx) -> tuple[np.ndarray, np.ndarray]:
        """(search score per sample, NaN = not searched; window top-left (y, x) per sample)."""
        s = self.settings
        n = z.shape[0]
        k = centroids.shape[0]
        test_assign = nearest_centroid(z[test_ids], centroids) if test_ids.size else np.zeros(0, np.int64)
        baseline = np.bincount(test_assign, minlength=k)
        queue = {c: list(rng.permutation(np.flatnonzero(labels == c))) for c in range(k)}
        candidates = [c for c in range(k) if queue[c]]
        cluster_best = np.full(k, -np.inf)
        search = np.full(n, np.nan)
        windows = np.zeros((n, 2), dtype=np.int64)
        budget = min(int(s.max_searched), n)
        searched = 0
        t = test_x.shape[0]
        per_batch = max(1, int(s.batch) // max(t, 1))
        while candidates and searched < budget:
            ctx.check()
            picked = []
            for c in candidates:
                take = min(int(s.per_round), len(queue[c]), budget - searched - len(picked))
                picked += [queue[c].pop() for _ in range(max(take, 0))]
            if not picked:
                break
            picked = np.asarray(picked, dtype=np.int64)
            for begin in range(0, picked.size, per_batch):
                ids = picked[begin:begin + per_batch]
                search[ids], windows[ids] = self._score_batch(backbone, layer, store, ids, labels, cent_t, centroids,
                                                              test_x, baseline, size, window, rng)
            searched += picked.size
            ctx.progress(searched, budget, "patchsearch: searching")
            for c in np.unique(labels[picked]):
                members = picked[labels[picked] == c]
                cluster_best[c] = max(cluster_best[c], float(np.max(search[members])))
            candidates = [c for c in candidates if queue[c]]
            drop = int(math.floor(float(s.prune) * len(candidates)))
            if drop:
                ranked = sorted(candidates, key=lambda c: cluster_best[c])
                candidates = [c for c in candidates if c not in set(ranked[:drop])]
        return search, windows

    def _score_batch(self, backbone, layer, store, ids, labels, cent_t, centroids, test_x, baseline, size, window,
                     rng) -> tuple[np.ndarray, np.ndarray]:
        import torch

        x = eval_tensor(store, ids, size, test_x.device)
        targets = torch.as_tensor(labels[ids], device=test_x.device)
        cam = grad_cam(backbone, layer, x, cent_t, targets)
        corners = best_windows(cam, window)
        patches = _cut(x, corners, window)
        t = test_x.shape[0]
        rows = test_x.repeat(len(ids), 1, 1, 1)
        positions = rng.integers(0, size - window + 1, size=(len(ids) * t, 2))
        pasted = paste(rows, patches.repeat_interleave(t, dim=0), positions)
        assign = nearest_centroid(embed_tensor(backbone, pasted, int(self.settings.batch)), centroids).reshape(len(ids), t)
        own = labels[ids]
        flips = (assign == own[:, None]).sum(axis=1) - baseline[own]
        return flips.astype(np.float64), corners

    def _classify(self, store, n, size, search, patches, device, ctx) -> tuple[np.ndarray, dict]:
        """p(a top patch is pasted) for every sample, from an ensemble trained on all but the top 10 %."""
        import torch

        s = self.settings
        finite = np.where(np.isfinite(search), search, -np.inf)
        top = np.argsort(-finite, kind="stable")[:int(math.ceil(0.1 * n))]
        train_ids = np.setdiff1d(np.arange(n), top[np.isfinite(finite[top])])
        if train_ids.size < 2:
            raise NaviewerError("patchsearch: too few samples to train the poison classifier")
        logits = torch.zeros((n, 2), device=device)
        for member in range(int(s.ensemble)):
            gen = torch.Generator().manual_seed(int(s.seed) * 1000 + member)
            model = _train_classifier(store, train_ids, size, patches, int(s.iterations), int(s.classifier_width), gen,
                                      device, ctx, member, int(s.ensemble))
            with torch.no_grad():
                for begin in range(0, n, int(s.batch)):
                    ids = np.arange(begin, min(begin + int(s.batch), n))  # a batch at a time: memory bounded by it
                    logits[begin:begin + ids.size] += model(eval_tensor(store, ids, size, device)).float()
        prob = torch.softmax(logits / int(s.ensemble), dim=1)[:, 1].cpu().numpy().astype(np.float64)
        searched = np.flatnonzero(np.isfinite(search))
        validation: dict[str, Any] = {}
        if searched.size >= 2:
            ranked = searched[np.argsort(-search[searched], kind="stable")]
            m = min(20, ranked.size // 2)
            hi, lo = ranked[:m], ranked[-m:]
            validation = {"top": int(m), "accuracy": float(((prob[hi] > 0.5).sum() + (prob[lo] <= 0.5).sum()) / (2 * m))}
        return prob, validation


def _kmeans(z: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, centroids, distance to own centroid): k-means, 20 iterations (MiniBatch above 50k)."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if len(z) > 50_000:
        model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=1, max_iter=20, batch_size=4096).fit(z)
    else:
        model = KMeans(n_clusters=k, random_state=seed, n_init=1, max_iter=20).fit(z)
    labels = model.labels_.astype(np.int64)
    centroids = model.cluster_centers_.astype(np.float32)
    distance = np.linalg.norm(z - centroids[labels], axis=1)
    return labels, centroids, distance


def _cut(x, corners: np.ndarray, window: int):
    """(n, 3, w, w) windows of ``x`` at ``corners`` (y, x)."""
    import torch

    return torch.stack([x[i, :, y:y + window, c:c + window] for i, (y, c) in enumerate(corners)])


def _train_classifier(store, train_ids: np.ndarray, size: int, patches, iterations: int, width: int, gen, device, ctx,
                      member: int, members: int):
    """A [1,1,1,1] ResNet learning clean (0) vs a top patch pasted (1), resized to U[0.375w, 1.5w) (p = 0.5).
    One thread on the CPU: these small steps ran 13x slower on 2 threads beside another job."""
    import torch

    from naviewer.ssl.augment import cpu_threads

    with cpu_threads(torch.device(device) if device is not None else torch.device("cpu"), 1):
        return _fit_classifier(store, train_ids, size, patches, iterations, width, gen, device, ctx, member, members)


def _fit_classifier(store, train_ids: np.ndarray, size: int, patches, iterations: int, width: int, gen, device, ctx,
                    member: int, members: int):
    import torch
    import torch.nn.functional as F

    from naviewer.ssl.backbones import BackboneConfig, build_backbone

    w = patches.shape[-1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        config = BackboneConfig(arch="resnet10", width=int(width), cifar_stem=True)
        model = torch.nn.Sequential(build_backbone(config), torch.nn.Linear(config.feature_dim, 2)).to(device)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    lo, hi = max(2, int(round(0.375 * w))), max(3, min(size, int(round(1.5 * w))))
    model.train()
    for step in range(iterations):
        if step % 20 == 0:
            ctx.check()
            ctx.progress(member * iterations + step, members * iterations, "patchsearch: poison classifier")
        pick = torch.randint(0, train_ids.size, (32,), generator=gen).numpy()
        x = eval_tensor(store, train_ids[pick], size, device)  # decoded per step: nothing of size N is held
        # (but the views of far larger images, shrunk once: at most SHRUNK_BYTES a store)
        label = (torch.rand(32, generator=gen) < 0.5).long()
        for row in torch.nonzero(label).flatten().tolist():
            side = int(torch.randint(lo, hi, (1,), generator=gen))
            p = patches[int(torch.randint(0, patches.shape[0], (1,), generator=gen))]
            p = F.interpolate(p[None], size=(side, side), mode="bilinear", align_corners=False)[0]
            y, c = (int(v) for v in torch.randint(0, size - side + 1, (2,), generator=gen))
            x[row, :, y:y + side, c:c + side] = p
        flip = torch.rand(32, generator=gen) < 0.5
        x[flip.to(x.device)] = x[flip.to(x.device)].flip(-1)
        loss = F.cross_entropy(model(x), label.to(device))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    model.eval()
    return model
