"""Crop geometry: the one RandomResizedCrop sampler, shared by training and the layout analysis.

``sample_crop_boxes`` draws boxes with exactly the distribution of torchvision's
``RandomResizedCrop.get_params`` (ten tries of scale/log-ratio, then the centred fall-back), but for
a whole batch at once and for per-sample canvas sizes, so that a 2:1 Noisy Alignment composite is
cropped as it is. What the analyst sees in the crop-layout view is what the encoder saw in training.

It lives in ``data`` (the lowest layer) because training (``naviewer.ssl.augment``) crops with it and
must not depend on the attacks; ``naviewer.attacks.layout`` and ``naviewer.analysis.crop_event``
compute the crop events of a crafted image's regions (a :class:`Box` each) with the predicates here
(:func:`inside`, :func:`contains`, :func:`disjoint`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import numpy as np

ArrayLike = Union[int, np.ndarray]

DEFAULT_SCALE = (0.2, 1.0)
DEFAULT_RATIO = (3.0 / 4.0, 4.0 / 3.0)
_TRIES = 10


@dataclass(frozen=True)
class CropBoxes:
    """n crop boxes in pixel coordinates of their canvases: rows ``top..top+height``, cols ``left..left+width``."""

    top: np.ndarray
    left: np.ndarray
    height: np.ndarray
    width: np.ndarray

    def __len__(self) -> int:
        return len(self.top)

    @property
    def bottom(self) -> np.ndarray:
        return self.top + self.height

    @property
    def right(self) -> np.ndarray:
        return self.left + self.width

    def as_array(self) -> np.ndarray:
        """(n, 4) int64 array of (top, left, height, width)."""
        return np.stack([self.top, self.left, self.height, self.width], axis=1)

    def split(self, m: int) -> "tuple[CropBoxes, CropBoxes]":
        """The first ``m`` boxes and the rest (two views drawn in one call)."""
        return (
            CropBoxes(self.top[:m], self.left[:m], self.height[:m], self.width[:m]),
            CropBoxes(self.top[m:], self.left[m:], self.height[m:], self.width[m:]),
        )


def sample_crop_boxes(
    heights: ArrayLike,
    widths: ArrayLike,
    rng: np.random.Generator,
    n: int | None = None,
    scale: tuple[float, float] = DEFAULT_SCALE,
    ratio: tuple[float, float] = DEFAULT_RATIO,
) -> CropBoxes:
    """Draw RandomResizedCrop boxes, vectorised, one per canvas.

    ``heights``/``widths`` are scalars (then ``n`` boxes on that canvas) or arrays of per-sample
    canvas sizes. Follows ``torchvision.transforms.RandomResizedCrop.get_params``: up to ten tries of
    area ~ U(scale) * H * W and log-aspect ~ U(log ratio); w = round(sqrt(area * aspect)),
    h = round(sqrt(area / aspect)); accept if 0 < w <= W and 0 < h <= H, then a uniform integer
    position; if all ten fail, the centred crop clamped to the ratio range.
    """
    heights_arr = np.asarray(heights, dtype=np.int64)
    widths_arr = np.asarray(widths, dtype=np.int64)
    if n is None:
        n = int(np.broadcast(heights_arr, widths_arr).size)
    canvas_h = np.broadcast_to(heights_arr, (n,)).astype(np.int64)
    canvas_w = np.broadcast_to(widths_arr, (n,)).astype(np.int64)
    if scale[0] > scale[1] or ratio[0] > ratio[1]:
        raise ValueError(f"scale {scale} and ratio {ratio} must be (low, high)")

    area = (canvas_h * canvas_w).astype(np.float64)[:, None]
    target_area = area * rng.uniform(scale[0], scale[1], size=(n, _TRIES))
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    aspect = np.exp(rng.uniform(log_ratio[0], log_ratio[1], size=(n, _TRIES)))
    w_try = np.rint(np.sqrt(target_area * aspect)).astype(np.int64)
    h_try = np.rint(np.sqrt(target_area / aspect)).astype(np.int64)
    ok = (w_try > 0) & (w_try <= canvas_w[:, None]) & (h_try > 0) & (h_try <= canvas_h[:, None])
    first = np.argmax(ok, axis=1)
    found = ok[np.arange(n), first]
    h = h_try[np.arange(n), first]
    w = w_try[np.arange(n), first]

    # torch.randint(0, H - h + 1) is uniform over 0..H-h; draw for every row, use where found.
    top = np.floor(rng.random(n) * (canvas_h - h + 1)).astype(np.int64)
    left = np.floor(rng.random(n) * (canvas_w - w + 1)).astype(np.int64)

    if not found.all():
        miss = ~found
        fh, fw = canvas_h[miss], canvas_w[miss]
        in_ratio = fw / fh
        fb_w = fw.copy()
        fb_h = fh.copy()
        narrow = in_ratio < min(ratio)
        wide = in_ratio > max(ratio)
        fb_h = np.where(narrow, np.rint(fw / min(ratio)).astype(np.int64), fb_h)
        fb_w = np.where(wide, np.rint(fh * max(ratio)).astype(np.int64), fb_w)
        h[miss], w[miss] = fb_h, fb_w
        top[miss] = (fh - fb_h) // 2
        left[miss] = (fw - fb_w) // 2

    return CropBoxes(top=top, left=left, height=h, width=w)


@dataclass(frozen=True)
class Box:
    """An axis-aligned pixel box: rows ``top..top+height``, cols ``left..left+width``."""

    top: int
    left: int
    height: int
    width: int

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def right(self) -> int:
        return self.left + self.width

    def as_list(self) -> list[int]:
        """[top, left, height, width]: the form stored in ground truth records."""
        return [int(self.top), int(self.left), int(self.height), int(self.width)]

    @classmethod
    def from_list(cls, values) -> "Box":
        top, left, height, width = (int(v) for v in values)
        return cls(top, left, height, width)

    def shifted(self, dy: int, dx: int) -> "Box":
        return Box(self.top + dy, self.left + dx, self.height, self.width)

    def scaled(self, sy: float, sx: float) -> "Box":
        """The box after resizing its image by (sy, sx), rounded outward-safe to whole pixels."""
        top, left = int(round(self.top * sy)), int(round(self.left * sx))
        return Box(top, left, max(1, int(round(self.bottom * sy)) - top), max(1, int(round(self.right * sx)) - left))


def inside(crops: CropBoxes, box: Box) -> np.ndarray:
    """Per crop: does it lie wholly inside ``box``?"""
    return (crops.top >= box.top) & (crops.left >= box.left) & (crops.bottom <= box.bottom) & (crops.right <= box.right)


def contains(crops: CropBoxes, box: Box) -> np.ndarray:
    """Per crop: does it cover the whole of ``box``?"""
    return (crops.top <= box.top) & (crops.left <= box.left) & (crops.bottom >= box.bottom) & (crops.right >= box.right)


def disjoint(a: CropBoxes, b: CropBoxes) -> np.ndarray:
    """Per pair ``a[i]``, ``b[i]``: do the two crops not overlap?"""
    return (a.bottom <= b.top) | (b.bottom <= a.top) | (a.right <= b.left) | (b.right <= a.left)


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """``rng`` itself when it is a Generator, else a new one seeded with it."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
