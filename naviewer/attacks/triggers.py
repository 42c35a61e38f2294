"""Trigger patterns and how they are pasted.

A :class:`Trigger` is a small RGB pattern with an optional per-pixel mask. Built-in triggers are
deterministic high-contrast colour-block patterns in the spirit of the HTBA triggers (a g x g grid of
random corner-of-the-RGB-cube colours), generated from a seed so that a recipe such as
``blocks-14`` means the same pixels on every machine. Any image file can be a trigger too.

**One meaning of opacity.** Everywhere in naviewer, ``opacity`` is the fraction of the *trigger*
in the result: ``out = opacity * mask * trigger + (1 - opacity * mask) * base``, so 1.0 is fully
opaque (the default of every attack here, and of the test-time trigger) and 0.8 reproduces the
Noisy Alignment ``utils.py`` patch mode (its ``alpha=0.2`` keeps 20% of the base). ``mask`` is the
trigger file's own alpha channel (1 where the file has none).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np

from naviewer.errors import NaviewerError
from naviewer.io import check_regular_file

#: largest trigger file we decode (pixels), so a hostile file cannot exhaust memory
MAX_TRIGGER_PIXELS = 4096 * 4096

_BUILTIN = re.compile(r"^(blocks|checker|white)(?:-(\d+))?$")

#: the eight corners of the RGB cube: every pair differs by 255 in at least one channel
_PALETTE = np.array(
    [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255], [0, 255, 255]],
    dtype=np.uint8,
)


@dataclass(frozen=True)
class Trigger:
    """A trigger pattern at its native resolution.

    ``pixels`` is uint8 (h, w, 3); ``mask`` is float32 (h, w) in [0, 1] (the file's alpha, or ones);
    ``smooth`` says how to resize it: nearest for built-in block patterns (keeps them crisp), Lanczos
    for photographs loaded from files.
    """

    name: str
    pixels: np.ndarray
    mask: np.ndarray = field(default=None)  # type: ignore[assignment]
    smooth: bool = False

    def __post_init__(self) -> None:
        if self.mask is None:
            object.__setattr__(self, "mask", np.ones(self.pixels.shape[:2], dtype=np.float32))

    @property
    def size(self) -> tuple[int, int]:
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])

    def resized(self, width: int, height: int | None = None) -> "Trigger":
        """The trigger at ``width`` px; height keeps the aspect ratio (square for square triggers)."""
        if width < 1:
            raise NaviewerError(f"trigger size must be at least 1 px, got {width}")
        h0, w0 = self.size
        if height is None:
            height = max(1, int(round(h0 * width / w0)))
        if width * height > MAX_TRIGGER_PIXELS:  # allocated before any fit check: 100000 px read "out of memory,
            # try a smaller --batch-size" (a bad-input corpus, session 23)
            raise NaviewerError(f"a {width} px trigger ({width}x{height}) is larger than naviewer makes a trigger "
                                f"(at most {MAX_TRIGGER_PIXELS:,} pixels, 4096x4096); give a trigger_size that fits "
                                "the images")
        if (height, width) == (h0, w0):
            return self
        if not self.smooth:
            rows = (np.arange(height) * h0) // height
            cols = (np.arange(width) * w0) // width
            return Trigger(self.name, self.pixels[rows][:, cols], self.mask[rows][:, cols], self.smooth)
        from PIL import Image

        pix = np.asarray(Image.fromarray(self.pixels).resize((width, height), Image.LANCZOS))
        mask_img = Image.fromarray(np.rint(self.mask * 255).astype(np.uint8)).resize((width, height), Image.LANCZOS)
        return Trigger(self.name, pix, np.asarray(mask_img, dtype=np.float32) / 255.0, self.smooth)

    def describe(self) -> dict:
        """Name, size and a content hash of the pixels (so a file trigger is identifiable later)."""
        from naviewer.data.base import pixel_hash

        return {"name": self.name, "height": self.size[0], "width": self.size[1], "hash": pixel_hash(self.pixels)}


def builtin_names() -> list[str]:
    """Examples of built-in trigger names (any ``blocks-<seed>`` is valid)."""
    return ["blocks-14", "blocks-<seed>", "checker", "white"]


def builtin_trigger(name: str, size: int = 8) -> Trigger:
    """A built-in trigger drawn at ``size`` x ``size`` px.

    ``blocks-<seed>``: a 4 x 4 grid of colours from the RGB-cube corners, seeded, with no two
    neighbouring cells alike (high contrast at any crop); ``checker``: black/white 4 x 4
    checkerboard; ``white``: a white square (CorruptEncoder's non-colourful trigger).
    """
    match = _BUILTIN.match(name.strip().lower())
    if not match:
        raise NaviewerError(f"unknown built-in trigger {name!r}; use one of {', '.join(builtin_names())} or an image file")
    kind, seed = match.group(1), int(match.group(2) or 0)
    grid = 4
    if kind == "white":
        cells = np.full((1, 1, 3), 255, dtype=np.uint8)
    elif kind == "checker":
        parity = (np.arange(grid)[:, None] + np.arange(grid)[None, :]) % 2
        cells = _PALETTE[parity]
    else:
        rng = np.random.default_rng([0x7219, seed])
        codes = np.zeros((grid, grid), dtype=np.int64)
        for i in range(grid):
            for j in range(grid):
                banned = set()
                if i:
                    banned.add(int(codes[i - 1, j]))
                if j:
                    banned.add(int(codes[i, j - 1]))
                allowed = [c for c in range(len(_PALETTE)) if c not in banned]
                codes[i, j] = allowed[int(rng.integers(len(allowed)))]
        cells = _PALETTE[codes]
    base = Trigger(f"{kind}-{seed}" if kind == "blocks" else kind, cells)
    return base.resized(size, size)


def load_trigger(path: Union[str, "os.PathLike[str]"]) -> Trigger:
    """A trigger from any image file Pillow reads; its alpha channel (if any) becomes the mask."""
    path = Path(path)
    check_regular_file(path, "trigger file")
    try:
        from PIL import Image, UnidentifiedImageError

        with Image.open(path) as img:
            if img.width * img.height > MAX_TRIGGER_PIXELS:
                raise NaviewerError(f"trigger image is too large ({img.width}x{img.height})", path)
            img.load()
            rgba = np.asarray(img.convert("RGBA"))
    except NaviewerError:
        raise
    except FileNotFoundError as exc:
        raise NaviewerError("trigger file not found", path) from exc
    except UnidentifiedImageError:  # its text repeated the path the message names already
        raise NaviewerError("cannot read trigger image: not an image format naviewer reads (or a damaged file)",
                            path) from None
    except OSError as exc:
        from naviewer.io import describe_image_read_error

        raise NaviewerError(f"cannot read trigger image: {describe_image_read_error(exc)}", path) from None
    except (ValueError, Image.DecompressionBombError) as exc:  # type: ignore[attr-defined]
        raise NaviewerError(f"cannot read trigger image ({exc.__class__.__name__}: {exc})", path) from exc
    if rgba.shape[0] < 1 or rgba.shape[1] < 1:
        raise NaviewerError("trigger image is empty", path)
    if not rgba[..., 3].any():  # pasted, it changed no pixel: "poisons" identical to their clean images and an ASR
        # measured for a trigger that does nothing, exit 0 (a bad-input probe, session 30)
        raise NaviewerError("the trigger image is fully transparent (its alpha channel is 0 everywhere): pasted, it "
                            "would change no pixel", path)
    return Trigger(path.name, np.ascontiguousarray(rgba[..., :3]), rgba[..., 3].astype(np.float32) / 255.0, smooth=True)


def resolve_trigger(spec: str, size: int) -> Trigger:
    """A built-in name or an image path, resized to ``size`` px wide."""
    if not spec.strip():  # read as the current folder: ".: the trigger file is a folder" (a probe, session 30)
        raise NaviewerError("the trigger is empty: give a built-in name (blocks-14, ...) or an image file")
    if _BUILTIN.match(spec.strip().lower()):
        return builtin_trigger(spec, size)
    return load_trigger(spec).resized(size)


def paste_trigger(
    images: np.ndarray,
    trigger: Trigger,
    tops: np.ndarray | int,
    lefts: np.ndarray | int,
    opacity: float = 1.0,
) -> np.ndarray:
    """Paste ``trigger`` into every image of a uint8 batch (N, H, W, 3) at per-image top-left corners.

    Returns a new array; the inputs are not modified. ``opacity`` is the trigger's fraction of the
    result (1.0 = opaque). Corners must keep the whole trigger inside the image.
    """
    if not 0.0 <= opacity <= 1.0:
        raise NaviewerError(f"opacity must be in [0, 1], got {opacity}")
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    n, height, width = images.shape[:3]
    th, tw = trigger.size
    tops = np.broadcast_to(np.asarray(tops, dtype=np.int64), (n,))
    lefts = np.broadcast_to(np.asarray(lefts, dtype=np.int64), (n,))
    if n and ((tops < 0).any() or (lefts < 0).any() or (tops + th > height).any() or (lefts + tw > width).any()):
        raise ValueError(f"a {th}x{tw} trigger does not fit at the given corners of {height}x{width} images")
    out = images.copy()
    if n == 0:
        return out
    rows = tops[:, None, None] + np.arange(th)[None, :, None]
    cols = lefts[:, None, None] + np.arange(tw)[None, None, :]
    batch = np.arange(n)[:, None, None]
    weight = (opacity * trigger.mask)[None, :, :, None]
    if np.all(weight == 1.0):
        out[batch, rows, cols] = trigger.pixels[None]
    else:
        base = out[batch, rows, cols].astype(np.float32)
        mixed = weight * trigger.pixels[None].astype(np.float32) + (1.0 - weight) * base
        out[batch, rows, cols] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return out


def random_corners(
    rng: np.random.Generator, n: int, extent: int, size: int, low: float, high: float
) -> np.ndarray:
    """Uniform integer corners in ``[int(low*extent), int(high*extent) - size]`` (inclusive).

    The convention of the SSL-backdoor code (``randint`` over that range); when the range is empty
    (a trigger too large for the band) the lower end is used.
    """
    lo = int(low * extent)
    hi = max(int(high * extent) - size, lo)
    hi = min(hi, extent - size)
    lo = min(lo, hi)
    if lo < 0:
        raise NaviewerError(f"a {size} px trigger does not fit in a {extent} px image")
    return rng.integers(lo, hi + 1, size=n)
