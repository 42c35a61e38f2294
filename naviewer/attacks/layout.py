"""Regions of a crafted image and the probability that two random views realise the attack.

The crops are drawn by the training sampler, :func:`naviewer.data.crops.sample_crop_boxes` (THE
RandomResizedCrop sampler; it lives in ``data`` because training uses it too), so what the analyst
sees in the crop-layout view is what the encoder saw in training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from naviewer.data.crops import (
    DEFAULT_RATIO,
    DEFAULT_SCALE,
    Box,
    CropBoxes,
    as_generator,
    contains,
    disjoint,
    inside,
    sample_crop_boxes,
)


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


def view_roles(layout: Layout, crops: CropBoxes) -> dict[str, np.ndarray]:
    """What each crop box is to the attack, as bool arrays (for drawing example views).

    Keys present depend on the layout's regions: ``in_reference``, ``in_shadow``,
    ``in_object``, ``contains_trigger``, ``contains_object``, ``in_shadow_with_trigger``.
    """
    roles: dict[str, np.ndarray] = {}
    regions = layout.regions
    if "trigger" in regions:
        roles["contains_trigger"] = contains(crops, regions["trigger"])
    if "reference" in regions:
        roles["in_reference"] = inside(crops, regions["reference"])
    if "object" in regions:
        roles["in_object"] = inside(crops, regions["object"])
        roles["contains_object"] = contains(crops, regions["object"])
    if "shadow" in regions:
        roles["in_shadow"] = inside(crops, regions["shadow"])
        if "trigger" in regions:
            roles["in_shadow_with_trigger"] = roles["in_shadow"] & roles["contains_trigger"]
    return roles


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
    gen = as_generator(rng)
    hits = 0
    part_hits = {"view_a": 0, "view_b": 0, "views_disjoint": 0}
    done = 0
    while done < pairs:
        m = min(chunk, pairs - done)
        boxes = sample_crop_boxes(layout.height, layout.width, gen, n=2 * m, scale=scale, ratio=ratio)
        a, b = role_a(boxes), role_b(boxes)
        v1, v2 = boxes.split(m)
        apart = disjoint(v1, v2)
        event = (a[:m] & b[m:]) | (a[m:] & b[:m])
        if require_disjoint:
            event &= apart
        hits += int(event.sum())
        part_hits["view_a"] += int(a.sum())
        part_hits["view_b"] += int(b.sum())
        part_hits["views_disjoint"] += int(apart.sum())
        done += m
    return hits, part_hits, pairs


def na_view_tests(layout: Layout) -> tuple[Callable[[CropBoxes], np.ndarray], Callable[[CropBoxes], np.ndarray]]:
    """The two views of the NA event, as tests on crop boxes: (inside the shadow image and containing
    the trigger, inside the reference image). The event is one view passing each, the views disjoint."""
    for name in ("reference", "shadow", "trigger"):
        if name not in layout.regions:
            raise ValueError(f"layout has no {name!r} region")
    ref, shadow, trig = layout.regions["reference"], layout.regions["shadow"], layout.regions["trigger"]
    return (lambda c: inside(c, shadow) & contains(c, trig)), (lambda c: inside(c, ref))


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
    in_shadow_with_trigger, in_reference = na_view_tests(layout)
    hits, part, n = _pair_event(layout, in_shadow_with_trigger, in_reference, pairs, rng, scale, ratio, True, chunk)
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
    gen = as_generator(rng)
    hits, part, n = _pair_event(
        layout, lambda c: contains(c, obj), lambda c: contains(c, trig), pairs, gen, scale, ratio, False, chunk
    )
    inside_hits, inside_part, _ = _pair_event(
        layout, lambda c: inside(c, obj), lambda c: contains(c, trig), pairs, gen, scale, ratio, True, chunk
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
    """CorruptEncoder's left/right layout (its released ``generate_poisoned_images.py``): background ``area_ratio`` x the object
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
