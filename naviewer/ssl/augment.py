"""Batched MoCo-v2 "aug+" augmentation, per-sample random parameters, straight from uint8 buckets.

Every sample of a batch gets its own crop box, jitter factors and order, grayscale/blur/flip
coins, exactly as torchvision's per-image pipeline draws them, but the work is done in a few
batched tensor ops on the training device:

1. **Crop + resize**: boxes come from :func:`naviewer.data.crops.sample_crop_boxes` (THE crop
   sampler, torchvision's ``RandomResizedCrop.get_params`` distribution) on each sample's TRUE size
   (``store.sizes``), so a 32x64 composite is cropped as it is. The crops are resampled to S x S by
   ``torchvision.ops.roi_align(aligned=True)``, one call per size bucket, which averages an adaptive
   grid of bilinear samples per output pixel (an anti-aliased bilinear resize).
2. **Colour jitter** (p=0.8): brightness, contrast, saturation, hue with per-sample factors drawn as
   ``ColorJitter.get_params`` draws them, applied in a per-sample random order like torchvision's
   (each of the 4 slots applies each op to the subset that has it in that slot). The formulas are
   torchvision's: blend with black / the grey mean / the greyscale image, and a hue rotation in HSV.
3. **Grayscale** (p=0.2, ITU-R 601 weights), **Gaussian blur** (p=0.5, sigma ~ U[0.1, 2], odd
   kernel of ~10 % of S, reflect padding, separable grouped convolution with per-sample kernels),
   **horizontal flip** (p=0.5), then normalisation with the CIFAR-10 mean/std.

Random parameters are drawn on the CPU from a ``numpy.random.Generator`` (cheap: a few numbers per
sample), which makes runs reproducible and resumable from a saved generator state.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from naviewer.data.crops import CropBoxes, sample_crop_boxes
from naviewer.data.store import ImageStore
from naviewer.errors import NaviewerError
from naviewer.settings import settings_from_dict

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
_GRAY = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class AugmentSettings:
    """MoCo-v2 aug+ at output size ``image_size``; set ``blur_p=0`` for CTRL's protocol."""

    image_size: int = 32
    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel: Optional[int] = None  # None: ~10 % of image_size, odd, at least 3
    hflip_p: float = 0.5
    mean: tuple[float, float, float] = CIFAR_MEAN
    std: tuple[float, float, float] = CIFAR_STD
    normalize: bool = True

    @property
    def kernel_size(self) -> int:
        if self.blur_kernel is not None:
            return int(self.blur_kernel) | 1
        return max(3, int(0.1 * self.image_size) | 1)

    @classmethod
    def from_dict(cls, values: Optional[dict[str, Any]]) -> "AugmentSettings":
        values = dict(values or {})
        for key in ("scale", "ratio", "jitter", "blur_sigma", "mean", "std"):
            if key in values and values[key] is not None:
                values[key] = tuple(float(v) for v in values[key])
        return settings_from_dict(cls, values, "augmentation")


@dataclass
class AugmentParams:
    """Per-sample random parameters of one batch of views (all arrays of length n)."""

    boxes: CropBoxes
    flip: np.ndarray
    jitter: np.ndarray
    brightness: np.ndarray
    contrast: np.ndarray
    saturation: np.ndarray
    hue: np.ndarray
    order: np.ndarray  # (n, 4): op index (0 b, 1 c, 2 s, 3 h) applied in each slot
    grayscale: np.ndarray
    blur: np.ndarray
    sigma: np.ndarray

    def __len__(self) -> int:
        return len(self.flip)


def _gray(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    return (_GRAY[0] * r + _GRAY[1] * g + _GRAY[2] * b).unsqueeze(1)


def _per_sample(f: torch.Tensor) -> torch.Tensor:
    return f.view(-1, 1, 1, 1)


def adjust_brightness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return (x * _per_sample(f)).clamp_(0, 1)


def adjust_contrast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
    f = _per_sample(f)
    return (f * x + (1 - f) * mean).clamp_(0, 1)


def adjust_saturation(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    f = _per_sample(f)
    return (f * x + (1 - f) * _gray(x)).clamp_(0, 1)


def adjust_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate hue by ``shift`` (fraction of a turn) in HSV, as torchvision's adjust_hue.

    RGB -> (h, s, v) as torchvision computes it, then the closed-form HSV -> RGB
    ``c_n = v - v s clamp(min(k, 4 - k), 0, 1)`` with ``k = (n + 6h) mod 6``, n = 5, 3, 1 for
    r, g, b, which evaluates all three channels in one broadcast instead of a 6-way table.
    """
    r, g, b = x.unbind(1)
    maxc, _ = x.max(dim=1)
    minc, _ = x.min(dim=1)
    delta = maxc - minc
    sat = delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc))
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    hue = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h6 = torch.remainder(hue + 6.0 * shift.view(-1, 1, 1), 6.0).unsqueeze(1)
    k = torch.remainder(torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1) + h6, 6.0)
    weight = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    v = maxc.unsqueeze(1)
    return (v - (v * sat.unsqueeze(1)) * weight).clamp_(0, 1)


_OPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Separable Gaussian blur with one sigma per sample (grouped convolution, reflect padding)."""
    n, c, h, w = x.shape
    half = kernel_size // 2
    t = torch.arange(kernel_size, device=x.device, dtype=x.dtype) - half
    k = torch.exp(-(t[None, :] ** 2) / (2 * sigma.to(x.dtype)[:, None] ** 2))
    k = (k / k.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (n*c, K)
    flat = x.reshape(1, n * c, h, w)
    pad_w, pad_h = min(half, w - 1), min(half, h - 1)
    if pad_w < half or pad_h < half:  # tiny images: reflect padding cannot exceed the size
        flat = F.pad(flat, (half, half, half, half), mode="replicate")
    else:
        flat = F.pad(flat, (half, half, half, half), mode="reflect")
    flat = F.conv2d(flat, k.view(n * c, 1, 1, kernel_size), groups=n * c)
    flat = F.conv2d(flat, k.view(n * c, 1, kernel_size, 1), groups=n * c)
    return flat.view(n, c, h, w)


class _BucketCache:
    """Per-bucket uint8 tensors of one store, on the CPU (zero-copy) or cached on the device."""

    def __init__(self, store: ImageStore, device: torch.device, on_device: bool) -> None:
        self.store = store
        self.device = device
        self.on_device = on_device
        if on_device:
            self.tensors = [torch.from_numpy(np.ascontiguousarray(b.images)).to(device) for b in store.buckets]
        else:
            self.tensors = []

    def gather(self, bucket: int, positions: np.ndarray) -> torch.Tensor:
        """(n, H, W, 3) uint8 on the device."""
        if self.on_device:
            pos = torch.from_numpy(positions).to(self.device)
            return self.tensors[bucket].index_select(0, pos)
        images = torch.from_numpy(self.store.buckets[bucket].images[positions])
        if self.device.type == "cuda":
            images = images.pin_memory().to(self.device, non_blocking=True)
        elif self.device.type != "cpu":
            images = images.to(self.device)
        return images


def crop_resize(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Crop (top, left, h, w) rows of ``boxes`` from uint8 NHWC ``images`` (one box per image,
    or ``boxes[:, 0]`` = image index when given as (k, 5) roi_align boxes) and resize to size x size.

    Returns float (k, 3, size, size) in [0, 255].
    """
    x = images.permute(0, 3, 1, 2).contiguous().float()  # NCHW in uint8 first: 4x less to move
    large = _oversized(boxes, size) if x.device.type == "cpu" else None  # the CUDA kernel precomputes nothing
    if large is None or not bool(large.any()):
        return roi_align(x, boxes, output_size=(size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    # only the oversized boxes get the capped grid: a crop never depends on its batch-mates
    out = x.new_empty((boxes.shape[0], x.shape[1], size, size))
    for mask, ratio in ((~large, -1), (large, int(math.isqrt(MAX_SAMPLES_PER_BIN)))):
        if bool(mask.any()):
            out[mask] = roi_align(x, boxes[mask], output_size=(size, size), spatial_scale=1.0, sampling_ratio=ratio,
                                  aligned=True)
    return out


#: most sampling points roi_align's adaptive grid may take per output pixel before it is capped: its CPU kernel
#: precomputes every point of every bin, and a 60,000,000 x 1 image (under the 64 Mpx limit) asked for 3.75M a
#: bin, 30 GB (std::bad_alloc, a traceback in embed and detect). 64 x 64 covers a 2048 px image at 32 px as before.
MAX_SAMPLES_PER_BIN = 64 * 64


def _oversized(boxes: torch.Tensor, size: int) -> Optional[torch.Tensor]:
    """Which (k, 5) roi boxes are so large against ``size`` that roi_align's adaptive grid would pass
    :data:`MAX_SAMPLES_PER_BIN` points a bin (they get a fixed 64 a side, a bounded average); None for other forms."""
    if not isinstance(boxes, torch.Tensor) or boxes.ndim != 2 or boxes.shape[1] != 5 or boxes.numel() == 0:
        return None
    b = boxes[:, 1:]  # x1, y1, x2, y2
    rows = torch.ceil((b[:, 3] - b[:, 1]).clamp(min=1.0) / size)
    cols = torch.ceil((b[:, 2] - b[:, 0]).clamp(min=1.0) / size)
    return rows * cols > MAX_SAMPLES_PER_BIN


def _roi_boxes(image_index: np.ndarray, top: np.ndarray, left: np.ndarray, height: np.ndarray,
               width: np.ndarray, device: torch.device) -> torch.Tensor:
    arr = np.stack([image_index, left, top, left + width, top + height], axis=1).astype(np.float32)
    return torch.from_numpy(arr).to(device)


@contextmanager
def cpu_threads(device: torch.device, threads: Optional[int]) -> Iterator[None]:
    """torch's intra-op threads set to ``threads`` for the block when it runs on the CPU, then restored."""
    before = torch.get_num_threads()
    if device.type != "cpu" or not threads or threads == before:
        yield
        return
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class BatchAugment:
    """The training augmentation: ``aug(store, indices, rng, device) -> (B, 3, S, S)`` float.

    ``two_views`` draws both views of a batch in one pass (each bucket's images are gathered once).
    ``cache_on_device`` keeps the whole store on a CUDA device (auto: when it fits in 2 GiB).
    """

    def __init__(self, settings: Optional[AugmentSettings] = None, *, cache_on_device: "bool | str" = "auto",
                 channels_last: bool = False, cpu_threads: Optional[int] = 1, **overrides: Any) -> None:
        settings = settings if settings is not None else AugmentSettings()
        self.settings = replace(settings, **overrides) if overrides else settings
        self.cache_on_device = cache_on_device
        self.channels_last = channels_last
        #: torch threads of the augmentation on the CPU (None: the process's): its many small ops lose
        #: more to thread hand-offs than they gain, and collapse when other processes load the cores
        #: (measured at load 5 on 2 cores: 1 thread 2.6-3.5k two-view samples/s, 2 threads 1.1-1.5k)
        self.cpu_threads = cpu_threads
        self._cache: Optional[_BucketCache] = None

    @property
    def image_size(self) -> int:
        return self.settings.image_size

    # -- parameters ----------------------------------------------------------------------------
    def sample_params(self, sizes: np.ndarray, rng: np.random.Generator) -> AugmentParams:
        """Per-sample parameters for canvases of ``sizes`` (n, 2) = (height, width)."""
        s = self.settings
        sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
        n = len(sizes)
        boxes = sample_crop_boxes(sizes[:, 0], sizes[:, 1], rng, scale=s.scale, ratio=s.ratio)
        b, c, sat, h = s.jitter

        def factor(amount: float) -> np.ndarray:
            return rng.uniform(max(0.0, 1.0 - amount), 1.0 + amount, size=n)

        return AugmentParams(
            boxes=boxes,
            flip=rng.random(n) < s.hflip_p,
            jitter=rng.random(n) < s.jitter_p,
            brightness=factor(b),
            contrast=factor(c),
            saturation=factor(sat),
            hue=rng.uniform(-h, h, size=n),
            order=np.argsort(rng.random((n, 4)), axis=1),
            grayscale=rng.random(n) < s.grayscale_p,
            blur=rng.random(n) < s.blur_p,
            sigma=rng.uniform(s.blur_sigma[0], s.blur_sigma[1], size=n),
        )

    # -- application ---------------------------------------------------------------------------
    def _bucket_cache(self, store: ImageStore, device: torch.device) -> _BucketCache:
        cache = self._cache
        if cache is not None and cache.store is store and cache.device == device:
            return cache
        on_device = self.cache_on_device
        if on_device == "auto":
            on_device = device.type == "cuda" and store.nbytes <= 2 * 1024**3
        self._cache = _BucketCache(store, device, bool(on_device) and device.type != "cpu")
        return self._cache

    def release(self) -> None:
        """Drop the cached store tensors (e.g. after the trainer swapped its data)."""
        self._cache = None

    def apply(self, store: ImageStore, indices: np.ndarray, params: AugmentParams,
              device: "torch.device | str | None" = None) -> torch.Tensor:
        """Views of samples ``indices`` (repeats allowed) with the given parameters."""
        device = torch.device(device) if device is not None else torch.device("cpu")
        with cpu_threads(device, self.cpu_threads):
            return self._apply(store, indices, params, device)

    def _apply(self, store: ImageStore, indices: np.ndarray, params: AugmentParams,
               device: torch.device) -> torch.Tensor:
        indices = np.asarray(indices, dtype=np.int64)
        s = self.settings
        size = s.image_size
        n = len(indices)
        cache = self._bucket_cache(store, device)
        out = torch.empty((n, 3, size, size), device=device, dtype=torch.float32)
        bucket_of = store.bucket_of[indices]
        box = params.boxes
        for bucket in np.unique(bucket_of):
            rows = np.flatnonzero(bucket_of == bucket)
            positions = store.position[indices[rows]]
            unique_pos, inverse = np.unique(positions, return_inverse=True)
            images = cache.gather(int(bucket), unique_pos)
            rois = _roi_boxes(inverse, box.top[rows], box.left[rows], box.height[rows], box.width[rows], device)
            out[torch.from_numpy(rows).to(device)] = crop_resize(images, rois, size)
        return self._finish(out.div_(255.0), params)

    def _finish(self, x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        s = self.settings
        device = x.device

        def t(values: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).to(device)

        if params.jitter.any():
            factors = [t(params.brightness), t(params.contrast), t(params.saturation), t(params.hue)]
            for slot in range(4):
                for op in range(4):
                    sel = np.flatnonzero(params.jitter & (params.order[:, slot] == op))
                    if len(sel):
                        idx = torch.from_numpy(sel).to(device)
                        x[idx] = _OPS[op](x[idx], factors[op][idx])
        if params.grayscale.any():
            idx = torch.from_numpy(np.flatnonzero(params.grayscale)).to(device)
            x[idx] = _gray(x[idx]).expand(-1, 3, -1, -1)
        if params.blur.any():
            sel = np.flatnonzero(params.blur)
            idx = torch.from_numpy(sel).to(device)
            x[idx] = gaussian_blur(x[idx], t(params.sigma[sel]), s.kernel_size)
        if params.flip.any():
            idx = torch.from_numpy(np.flatnonzero(params.flip)).to(device)
            x[idx] = x[idx].flip(-1)
        if s.normalize:
            mean = torch.tensor(s.mean, device=device).view(1, 3, 1, 1)
            std = torch.tensor(s.std, device=device).view(1, 3, 1, 1)
            x = x.sub_(mean).div_(std)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def __call__(self, store: ImageStore, indices: Sequence[int] | np.ndarray, rng: np.random.Generator,
                 device: "torch.device | str | None" = None) -> torch.Tensor:
        indices = np.asarray(indices, dtype=np.int64)
        return self.apply(store, indices, self.sample_params(store.sizes[indices], rng), device)

    def two_views(self, store: ImageStore, indices: Sequence[int] | np.ndarray, rng: np.random.Generator,
                  device: "torch.device | str | None" = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independently augmented views of each sample, drawn in one batched pass."""
        indices = np.asarray(indices, dtype=np.int64)
        both = np.concatenate([indices, indices])
        views = self.apply(store, both, self.sample_params(store.sizes[both], rng), device)
        return views[: len(indices)], views[len(indices):]


EMBED_VIEWS = ("squash", "center", "first", "second")


@dataclass(frozen=True)
class EvalTransform:
    """Deterministic eval transform: resize the whole image to S x S (toolbox ``Resize((S, S))``;
    non-square composites are squashed, as the toolbox does), scale to [0, 1], normalise."""

    image_size: int = 32
    mean: tuple[float, float, float] = CIFAR_MEAN
    std: tuple[float, float, float] = CIFAR_STD
    normalize: bool = True
    channels_last: bool = field(default=False)
    #: which part of a (possibly non-square) image is embedded: squash (the whole image resized to
    #: S x S, the toolbox's eval), center (the largest centred square), first / second (each half
    #: along the longer side: a composite's two source images)
    view: str = "squash"

    def __post_init__(self) -> None:
        if self.view not in EMBED_VIEWS:
            raise NaviewerError(f"unknown embedding view {self.view!r}; choose from {', '.join(EMBED_VIEWS)}")

    def _box(self, h: int, w: int) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the region of an h x w image this view embeds."""
        if self.view == "squash":
            return 0, 0, h, w
        if self.view == "center":
            side = min(h, w)
            return (h - side) // 2, (w - side) // 2, side, side
        second = self.view == "second"  # first / second: the halves along the longer side
        if w >= h:
            half = max(1, w // 2)
            return 0, (w - half) if second else 0, h, half
        half = max(1, h // 2)
        return (h - half) if second else 0, 0, half, w

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (n, H, W, 3) on any device -> float (n, 3, S, S) on the same device."""
        n, h, w, _ = images.shape
        size = self.image_size
        top, left, bh, bw = self._box(h, w)
        if (top, left, bh, bw) == (0, 0, size, size) and (h, w) == (size, size):
            x = images.permute(0, 3, 1, 2).contiguous().float()
        else:
            device = images.device
            rois = _roi_boxes(np.arange(n), np.full(n, top), np.full(n, left), np.full(n, bh), np.full(n, bw), device)
            x = crop_resize(images, rois, size)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        if self.normalize:  # (x / 255 - mean) / std in two in-place ops
            x = x.mul_(1.0 / (255.0 * std)).sub_(mean / std)
        else:
            x = x.mul_(1.0 / 255.0)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x
