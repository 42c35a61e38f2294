"""Crop geometry: the one RandomResizedCrop sampler, shared by training and the layout analysis.

``sample_crop_boxes`` draws boxes with exactly the distribution of torchvision's
``RandomResizedCrop.get_params`` (ten tries of scale/log-ratio, then the centred fall-back), but for
a whole batch at once and for per-sample canvas sizes, so that a 2:1 Noisy Alignment composite is
cropped as it is. What the analyst sees in the crop-layout view is what the encoder saw in training.
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


# ---------------------------------------------------------------------------------------------
# Regions of a crafted image and the probability that two random views realise the attack
# ---------------------------------------------------------------------------------------------


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


#: orientation name -> (position of the reference, position of the shadow) in half-units
ORIENTATIONS = ("ref-left", "ref-right", "ref-top", "ref-bottom")


@dataclass(frozen=True)
class Layout:
    """The regions of one crafted image, e.g. ``reference``, ``shadow``, ``trigger``, ``gap``, ``object``."""

    height: int
    width: int
    regions: dict
    orientation: str = ""

    def to_json(self) -> dict:
        return {
            "canvas": [int(self.height), int(self.width)],
            "orientation": self.orientation,
            "regions": {name: box.as_list() for name, box in self.regions.items()},
        }

    @classmethod
    def from_json(cls, record: dict) -> "Layout":
        height, width = record["canvas"]
        regions = {name: Box.from_list(v) for name, v in record.get("regions", {}).items() if v is not None}
        return cls(int(height), int(width), regions, record.get("orientation", ""))


def na_layout(
    r: int,
    trigger_size: int,
    trigger_position: tuple[int, int] | None = None,
    gap: int = 0,
    extra_height: int = 0,
    orientation: str = "ref-left",
) -> Layout:
    """The paper layout of a Noisy Alignment composite (Theorems 1-2), with ablation knobs.

    Two r x r images side by side (``ref-left``/``ref-right``) or stacked (``ref-top``/``ref-bottom``),
    ``gap`` px between them, ``extra_height`` px of padding added along the short side (after the
    images). ``trigger_position`` is the trigger's top-left inside the shadow image (default: centred).
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {ORIENTATIONS}")
    if not 0 < trigger_size <= r:
        raise ValueError(f"trigger size {trigger_size} must be in 1..r={r}")
    if trigger_position is None:
        ty = tx = (r - trigger_size) // 2
    else:
        ty, tx = (int(v) for v in trigger_position)
    if not (0 <= ty <= r - trigger_size and 0 <= tx <= r - trigger_size):
        raise ValueError(f"trigger at {trigger_position} does not fit in the {r}px shadow image")
    first, second = Box(0, 0, r, r), None
    horizontal = orientation in ("ref-left", "ref-right")
    if horizontal:
        second = Box(0, r + gap, r, r)
        height, width = r + extra_height, 2 * r + gap
        gap_box = Box(0, r, r, gap) if gap else None
    else:
        second = Box(r + gap, 0, r, r)
        height, width = 2 * r + gap, r + extra_height
        gap_box = Box(r, 0, gap, r) if gap else None
    ref, shadow = (first, second) if orientation in ("ref-left", "ref-top") else (second, first)
    regions = {"reference": ref, "shadow": shadow, "trigger": Box(ty, tx, trigger_size, trigger_size).shifted(shadow.top, shadow.left)}
    if gap_box is not None:
        regions["gap"] = gap_box
    return Layout(height, width, regions, orientation)


@dataclass(frozen=True)
class Estimate:
    """A Monte-Carlo probability and its standard error."""

    value: float
    se: float

    @classmethod
    def of(cls, hits: int, n: int) -> "Estimate":
        p = hits / n if n else float("nan")
        return cls(p, math.sqrt(max(p * (1 - p), 0.0) / n) if n else float("nan"))

    def to_json(self) -> dict:
        return {"value": self.value, "se": self.se}


@dataclass(frozen=True)
class EventEstimate:
    """P(event) for two independent views, with its parts (per single view unless named ``views_*``)."""

    event: Estimate
    parts: dict
    pairs: int

    def to_json(self) -> dict:
        return {"event": self.event.to_json(), "parts": {k: v.to_json() for k, v in self.parts.items()}, "pairs": self.pairs}


def _inside(crops: CropBoxes, box: Box) -> np.ndarray:
    return (crops.top >= box.top) & (crops.left >= box.left) & (crops.bottom <= box.bottom) & (crops.right <= box.right)


def _contains(crops: CropBoxes, box: Box) -> np.ndarray:
    return (crops.top <= box.top) & (crops.left <= box.left) & (crops.bottom >= box.bottom) & (crops.right >= box.right)


def _disjoint(a: CropBoxes, b: CropBoxes) -> np.ndarray:
    return (a.bottom <= b.top) | (b.bottom <= a.top) | (a.right <= b.left) | (b.right <= a.left)


def view_roles(layout: Layout, crops: CropBoxes) -> dict[str, np.ndarray]:
    """What each crop box is to the attack, as bool arrays (for drawing example views).

    Keys present depend on the layout's regions: ``in_reference``, ``in_shadow``,
    ``in_object``, ``contains_trigger``, ``contains_object``, ``in_shadow_with_trigger``.
    """
    roles: dict[str, np.ndarray] = {}
    regions = layout.regions
    if "trigger" in regions:
        roles["contains_trigger"] = _contains(crops, regions["trigger"])
    if "reference" in regions:
        roles["in_reference"] = _inside(crops, regions["reference"])
    if "object" in regions:
        roles["in_object"] = _inside(crops, regions["object"])
        roles["contains_object"] = _contains(crops, regions["object"])
    if "shadow" in regions:
        roles["in_shadow"] = _inside(crops, regions["shadow"])
        if "trigger" in regions:
            roles["in_shadow_with_trigger"] = roles["in_shadow"] & roles["contains_trigger"]
    return roles


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _pair_event(
    layout: Layout,
    role_a,
    role_b,
    pairs: int,
    rng: np.random.Generator | int | None,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    require_disjoint: bool,
    chunk: int,
) -> tuple[int, dict[str, int], int]:
    """Count pairs where (A(V1) and B(V2)) or (A(V2) and B(V1)) [and V1, V2 disjoint], in chunks."""
    gen = _rng(rng)
    hits = 0
    part_hits = {"view_a": 0, "view_b": 0, "views_disjoint": 0}
    done = 0
    while done < pairs:
        m = min(chunk, pairs - done)
        boxes = sample_crop_boxes(layout.height, layout.width, gen, n=2 * m, scale=scale, ratio=ratio)
        a, b = role_a(boxes), role_b(boxes)
        v1 = CropBoxes(boxes.top[:m], boxes.left[:m], boxes.height[:m], boxes.width[:m])
        v2 = CropBoxes(boxes.top[m:], boxes.left[m:], boxes.height[m:], boxes.width[m:])
        disjoint = _disjoint(v1, v2)
        event = (a[:m] & b[m:]) | (a[m:] & b[:m])
        if require_disjoint:
            event &= disjoint
        hits += int(event.sum())
        part_hits["view_a"] += int(a.sum())
        part_hits["view_b"] += int(b.sum())
        part_hits["views_disjoint"] += int(disjoint.sum())
        done += m
    return hits, part_hits, pairs


def na_event_probability(
    layout: Layout,
    pairs: int = 100_000,
    rng: np.random.Generator | int | None = 0,
    scale: tuple[float, float] = DEFAULT_SCALE,
    ratio: tuple[float, float] = DEFAULT_RATIO,
    chunk: int = 250_000,
) -> EventEstimate:
    """P(one view inside the shadow image and containing the trigger, the other inside the reference,
    views disjoint), both view orders, for the layout's canvas; ``pairs`` independent view pairs.

    Parts: ``view_in_reference`` = P(V inside reference), ``view_in_shadow_with_trigger`` = P(V inside
    shadow and containing the trigger), ``views_disjoint`` = P(V1 and V2 disjoint).
    """
    for name in ("reference", "shadow", "trigger"):
        if name not in layout.regions:
            raise ValueError(f"layout has no {name!r} region")
    ref, shadow, trig = layout.regions["reference"], layout.regions["shadow"], layout.regions["trigger"]
    hits, part, n = _pair_event(
        layout,
        lambda c: _inside(c, shadow) & _contains(c, trig),
        lambda c: _inside(c, ref),
        pairs, rng, scale, ratio, True, chunk,
    )
    parts = {
        "view_in_reference": Estimate.of(part["view_b"], 2 * n),
        "view_in_shadow_with_trigger": Estimate.of(part["view_a"], 2 * n),
        "views_disjoint": Estimate.of(part["views_disjoint"], n),
    }
    return EventEstimate(Estimate.of(hits, n), parts, n)


def na_layout_probability(
    r: int = 32,
    trigger_size: int = 8,
    trigger_position: tuple[int, int] | None = None,
    gap: int = 0,
    extra_height: int = 0,
    scale: tuple[float, float] = DEFAULT_SCALE,
    ratio: tuple[float, float] = DEFAULT_RATIO,
    pairs: int = 100_000,
    seed: int | None = 0,
) -> EventEstimate:
    """The NA event probability for layout parameters: what the GUI's sliders call live.

    ``gap`` and ``extra_height`` are in pixels, ``trigger_position`` is the trigger's top-left inside
    the shadow image (None = centred). The orientation does not matter (symmetry), so ``ref-left`` is used.
    """
    layout = na_layout(r, trigger_size, trigger_position, gap, extra_height)
    return na_event_probability(layout, pairs=pairs, rng=seed, scale=scale, ratio=ratio)


def corruptencoder_event_probability(
    layout: Layout,
    pairs: int = 100_000,
    rng: np.random.Generator | int | None = 0,
    scale: tuple[float, float] = DEFAULT_SCALE,
    ratio: tuple[float, float] = DEFAULT_RATIO,
    chunk: int = 250_000,
) -> EventEstimate:
    """CorruptEncoder's event: one view contains the whole reference object, the other the trigger.

    Parts: ``view_contains_object``, ``view_contains_trigger`` (single views), ``views_disjoint``;
    and ``event_inside_object``: the NA-style variant (one view inside the object, the other containing
    the trigger, disjoint), which for whole-image objects is the more likely way the pair forms.
    """
    obj = layout.regions.get("object", layout.regions.get("reference"))
    if obj is None or "trigger" not in layout.regions:
        raise ValueError("layout needs an 'object' (or 'reference') and a 'trigger' region")
    trig = layout.regions["trigger"]
    gen = _rng(rng)
    hits, part, n = _pair_event(
        layout, lambda c: _contains(c, obj), lambda c: _contains(c, trig), pairs, gen, scale, ratio, False, chunk
    )
    inside_hits, inside_part, _ = _pair_event(
        layout, lambda c: _inside(c, obj), lambda c: _contains(c, trig), pairs, gen, scale, ratio, True, chunk
    )
    parts = {
        "view_contains_object": Estimate.of(part["view_a"], 2 * n),
        "view_contains_trigger": Estimate.of(part["view_b"], 2 * n),
        "views_disjoint": Estimate.of(part["views_disjoint"], n),
        "view_inside_object": Estimate.of(inside_part["view_a"], 2 * n),
        "event_inside_object": Estimate.of(inside_hits, n),
    }
    return EventEstimate(Estimate.of(hits, n), parts, n)


def corruptencoder_layout(
    object_height: int,
    object_width: int,
    trigger_size: int,
    area_ratio: float = 2.0,
    side: str = "left",
    object_x: int | None = None,
    trigger_position: tuple[int, int] | None = None,
) -> Layout:
    """CorruptEncoder's left/right layout (spec section 4.1): background ``area_ratio`` x the object
    width, object at one side spanning the full height, trigger in the other part.

    Defaults: the object flush with its side; the trigger at the centre of the band the code draws it
    from (``t_x`` in the remaining part with 0.125 margins, ``t_y`` in [0.25 h, 0.75 h - t]).
    """
    if side not in ("left", "right"):
        raise ValueError("side must be 'left' or 'right'")
    p_h, p_w = int(object_height), int(round(area_ratio * object_width))
    o_w = int(object_width)
    if object_x is None:
        object_x = 0 if side == "left" else p_w - o_w
    if trigger_position is None:
        lo_x, hi_x = corruptencoder_trigger_range(p_w, o_w, object_x, trigger_size, side)
        lo_y, hi_y = int(0.25 * p_h), max(int(0.75 * p_h) - trigger_size, int(0.25 * p_h))
        trigger_position = ((lo_y + hi_y) // 2, (lo_x + hi_x) // 2)
    ty, tx = trigger_position
    regions = {
        "background": Box(0, 0, p_h, p_w),
        "object": Box(0, int(object_x), p_h, o_w),
        "trigger": Box(int(ty), int(tx), trigger_size, trigger_size),
    }
    return Layout(p_h, p_w, regions, f"object-{side}")


def corruptencoder_trigger_range(p_w: int, o_w: int, o_x: int, t_w: int, side: str) -> tuple[int, int]:
    """Inclusive range of the trigger's left edge: the centre of the part the object leaves free."""
    margin = int(0.125 * p_w)
    if side == "left":
        lo, hi = o_x + o_w + margin, p_w - margin - t_w
    else:
        lo, hi = margin, o_x - margin - t_w
    hi = min(max(hi, lo), p_w - t_w)
    lo = max(0, min(lo, hi))
    return lo, hi
